"""ONNX export: dynamic batch and labels, self-describing metadata, folded BatchNorm, parity."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from onnx import numpy_helper

from gantool.cli import main
from gantool.contract import read_metadata
from gantool.export.parity import ParityError, ParityReport, compare_backend, torch_reference
from gantool.runtime.backends.ort import OrtBackend
from gantool.spec import ModelSpec
from gantool.train.zoo import MNIST_INFO, ZOO, build_models, build_spec


def onnx_parity(spec: ModelSpec, g: torch.nn.Module, path) -> ParityReport:
    report = compare_backend(spec, OrtBackend(path, name="onnxruntime-cpu"), torch_reference(g), "fp32")
    if not report.passed:
        raise ParityError([report])
    return report


def trained_like(name: str) -> tuple[ModelSpec, torch.nn.Module]:
    """A zoo generator with non-trivial BatchNorm statistics, so that folding them is really tested."""
    spec = build_spec(name, MNIST_INFO)
    g = build_models(spec).generator
    torch.manual_seed(0)
    for m in g.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return spec, g.eval()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ZOO))
def test_every_model_exports_with_dynamic_batch_metadata_and_parity(name, tmp_path, export_file):
    spec, g = trained_like(name)
    path, _ = export_file(spec, g, tmp_path / f"{name}.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert dims["z"] == ["batch", spec.latent_dim] and types["z"] == onnx.TensorProto.FLOAT
    if spec.conditional:
        assert dims["labels"] == ["batch"] and types["labels"] == onnx.TensorProto.INT64
    else:
        assert set(dims) == {"z"}
    out = model.graph.output[0]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", *spec.image_shape]
    assert not [n for n in model.graph.node if n.op_type == "BatchNormalization"]  # folded
    meta = read_metadata({p.key: p.value for p in model.metadata_props}, str(path))
    assert meta.spec == spec and meta.precision == "fp32" and meta.graph == "lowered"
    assert ModelSpec.from_dict(json.loads({p.key: p.value for p in model.metadata_props}["gantool.spec"])) == spec
    report = onnx_parity(spec, g, path)
    assert report.passed and {c.batch for c in report.comparisons} >= {1, 2, 7, 64, 1024}
    assert max(c.max_abs for c in report.comparisons) <= 1e-4


def test_a_wrong_graph_fails_parity_with_every_mismatch_listed(tmp_path, export_file):
    spec, g = trained_like("cgan")
    path, _ = export_file(spec, g, tmp_path / "cgan.onnx")
    model = onnx.load(str(path))
    emb = max(model.graph.initializer, key=lambda t: t.name.count("embedding"))
    w = numpy_helper.to_array(emb).copy()
    w[3] += 0.5  # label 3 now embeds wrongly: only samples asking for a 3 differ
    emb.CopyFrom(numpy_helper.from_array(w, emb.name))
    onnx.save(model, str(path))
    with pytest.raises(ParityError) as e:
        onnx_parity(spec, g, path)
    failed = [c for c in e.value.reports[0].comparisons if not c.passed]
    assert {c.labels for c in failed if c.batch == 1} == {"=3"}
    assert "parity FAILED" in str(e.value) and "\n" not in str(e.value)


def test_export_cli_writes_name_onnx_and_reports(capsys, tmp_path, monkeypatch, small_mnist):
    run = tmp_path / "run"
    assert main(["train", "--model", "cwgan", "--data-dir", str(small_mnist), "-o", str(run), "--batch-size", "8",
                 "--max-steps", "1"]) == 0
    monkeypatch.chdir(tmp_path)
    code = main(["export", "--model", str(run / "checkpoint.pt"), "--json", "r.json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (tmp_path / "cwgan.onnx").exists() and "PASSED" in out
    assert [r["passed"] for r in json.loads((tmp_path / "r.json").read_text())["parity"]] == [True]
    code = main(["export", "--model", str(run / "checkpoint.pt"), "--precision", "int4"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "'int4' is not one of 'fp32', 'fp16', 'int8'" in err
    code = main(["export", "--model", str(run / "checkpoint.pt"), "-o", str(run / "checkpoint.pt")])
    err = capsys.readouterr().err
    assert code == 1 and "same file as --model" in err and torch.load(run / "checkpoint.pt", weights_only=True)


def test_export_into_a_folder_names_the_file_and_shows_progress(tmp_path, capsys):
    (tmp_path / "existing").mkdir()
    assert main(["export", "--model", "gan", "-o", str(tmp_path / "new") + "/"]) == 0
    assert main(["export", "--model", "gan", "-o", str(tmp_path / "existing")]) == 0
    assert (tmp_path / "new" / "gan.onnx").is_file() and (tmp_path / "existing" / "gan.onnx").is_file()
    captured = capsys.readouterr()
    assert "exporting gan (opset 18, lowered graph) ..." in captured.err and "parity of the fp32 graph" in captured.err
    assert "bound: max abs <= 0.0001 PASSED" in captured.out and "against torch fp32" in captured.out
