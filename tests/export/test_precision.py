"""FP16 and INT8 variants: graph types, the fp16 emulation, Q/DQ form, tolerances and the judge's verdict."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from gantool.cli import main
from gantool.export import parity
from gantool.export.precision import fp16_emulation, to_fp16
from gantool.export.run import run_export
from gantool.noise import make_noise
from gantool.runtime.backends.ort import OrtBackend
from gantool.train.checkpoint import load_generator


@pytest.fixture(scope="module")
def cdcgan_fp32(tmp_path_factory, export_file):
    spec, g = load_generator("cdcgan")
    path, _ = export_file(spec, g, tmp_path_factory.mktemp("fp32") / "cdcgan.onnx")
    return spec, g, path


def test_fp16_graph_is_strongly_typed_with_fp32_io(cdcgan_fp32):
    _, _, path = cdcgan_fp32
    m = to_fp16(onnx.load(str(path)))
    floats = [t for t in m.graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
    assert floats and all(t.data_type == TensorProto.FLOAT16 for t in floats)
    assert {i.name: i.type.tensor_type.elem_type for i in m.graph.input} == {"z": TensorProto.FLOAT,
                                                                             "labels": TensorProto.INT64}
    assert m.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    convs = [n for n in m.graph.node if n.op_type == "ConvTranspose"]
    assert convs  # and their inputs are fp16 tensors, as TensorRT's strongly typed parser will see them
    inferred = onnx.shape_inference.infer_shapes(m)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    assert all(types.get(n.output[0]) == TensorProto.FLOAT16 for n in convs)


def test_emulation_rounds_every_intermediate_and_stays_within_the_fp16_bar(cdcgan_fp32):
    spec, g, path = cdcgan_fp32
    m = onnx.load(str(path))
    emu = fp16_emulation(m)
    casts = [n for n in emu.graph.node if n.op_type == "Cast" and n.attribute[0].i == TensorProto.FLOAT16]
    assert len(casts) >= len(m.graph.node)  # one rounding per float tensor
    z = make_noise(3, 64, spec.latent_dim, spec.noise)
    feeds = {"z": z, "labels": np.arange(64, dtype=np.int64) % 10}
    with OrtBackend(path) as a, OrtBackend(emu.SerializeToString()) as b:
        exact, rounded = a.infer(feeds), b.infer(feeds)
    diff = np.abs(exact - rounded)
    assert 1e-5 < diff.max() <= parity.TOLERANCES["fp16"].max_abs  # it really rounds, and within the bar
    # every stored value is representable in fp16
    w = numpy_helper.to_array(max(emu.graph.initializer, key=lambda t: t.dims[0] if t.dims else 0))
    assert np.array_equal(w, w.astype(np.float16).astype(np.float32))


def test_fp16_export_reports_both_runners_and_judge_agreement(cdcgan_fp32, tmp_path):
    result = run_export("cdcgan", str(tmp_path / "c.fp16.onnx"), precision="fp16", semantic_samples=1000)
    assert [r.runner for r in result.parity] == ["onnxruntime-cpu fp32", "onnxruntime-cpu fp16 graph",
                                                  "fp16-emulation"]
    assert all(r.passed for r in result.parity)
    assert result.agreement.agreement >= 0.99 and result.agreement.passed
    assert result.agreement.label_accuracy_low >= 0.95


def test_int8_is_symmetric_qdq_and_keeps_the_judges_verdict(tmp_path):
    # cwgan: the cdcgan weights shipped in session 15 fail the s8 per-element bound at batch 1 (their u8 file passes)
    result = run_export("cwgan", str(tmp_path / "c.int8.onnx"), precision="int8", semantic_samples=1000)
    m = onnx.load(str(result.path))
    ops = {n.op_type for n in m.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "QLinearConv" not in ops  # Q/DQ, not QOperator
    zero_points = [numpy_helper.to_array(t) for t in m.graph.initializer if t.name.endswith("zero_point")]
    assert zero_points and all((zp == 0).all() and zp.dtype == np.int8 for zp in zero_points)  # TensorRT's form
    assert result.agreement.agreement >= 0.98


def test_int8_activations_are_declared_for_int8_files_only():
    from gantool.contract import INT8_ACTIVATIONS_KEY, GeneratorMetadata, MetadataError, read_metadata, write_metadata
    from gantool.errors import GantoolError
    from gantool.train.zoo import MNIST_INFO, build_spec

    int8 = GeneratorMetadata(spec=build_spec("cdcgan", MNIST_INFO), precision="int8")
    assert INT8_ACTIVATIONS_KEY not in write_metadata(int8)  # s8: the files made before the key read the same
    u8 = write_metadata(int8.replace(int8_activations="u8"))
    assert u8[INT8_ACTIVATIONS_KEY] == "u8" and read_metadata(u8, "m").int8_activations == "u8"
    with pytest.raises(GantoolError, match="int8 files only"):
        write_metadata(int8.replace(precision="fp32", int8_activations="u8"))
    fp32 = write_metadata(int8.replace(precision="fp32"))
    for props, value in ((fp32, "u8"), (dict(u8), "u4")):
        props[INT8_ACTIVATIONS_KEY] = value
        with pytest.raises(MetadataError, match="allowed: s8, u8 \\(int8 files only\\)"):
            read_metadata(props, "x.onnx")
    with pytest.raises(GantoolError, match="apply to --precision int8"):
        run_export("cdcgan", "x.onnx", precision="fp16", int8_activations="u8")


def test_failed_fp16_parity_is_an_error_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(parity.TOLERANCES, "fp16", parity.Tolerance(max_abs=1e-7))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cdcgan.fp16.onnx").write_bytes(b"the user's earlier export")
    code = main(["export", "--model", "cdcgan", "--precision", "fp16", "--samples", "100"])
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress lines: one error line
    assert code == 1 and last.startswith("gantool: error: parity FAILED") and "fp16-emulation" in last
    assert [p.name for p in tmp_path.iterdir()] == ["cdcgan.fp16.onnx"]  # no temp file left
    assert (tmp_path / "cdcgan.fp16.onnx").read_bytes() == b"the user's earlier export"  # and the old file kept


def test_export_cli_default_names_for_variants(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model", "gan", "--precision", "fp16", "--samples", "200", "--json", "r.json"]) == 0
    assert (tmp_path / "gan.fp16.onnx").exists() and not list(tmp_path.glob("*.tmp"))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["judge_agreement"]["label_accuracy_fp32"] is None  # unconditional: agreement only
    assert "judge agreement" in capsys.readouterr().out
