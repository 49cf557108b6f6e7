"""The class-weight (mix) graph: zoo generators take (B, K) class weights where they take labels, and
`gantool export --mix` writes a graph declaring that input, checked on mixtures as well as single classes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from gantool.cli import main
from gantool.contract import CLASS_WEIGHTS, read_metadata
from gantool.train.zoo import MNIST_INFO, ZOO, build_generator, build_spec

CONDITIONAL = [name for name, e in ZOO.items() if e.conditional]


@pytest.mark.parametrize("name", CONDITIONAL)
def test_an_integer_label_and_its_one_hot_row_give_identical_images(name):
    from gantool.train.checkpoint import load_generator
    from gantool.train.shipped import shipped_path

    torch.manual_seed(0)
    spec, g = load_generator(str(shipped_path(name)))
    g = g.eval()
    z, y = torch.randn(20, spec.latent_dim), torch.arange(20) % 10
    with torch.no_grad():
        by_label, by_row = g(z, y), g(z, torch.nn.functional.one_hot(y, 10).float())
        mixed = g(z[:1], torch.full((1, 10), 0.1))
    assert torch.allclose(by_label, by_row, atol=1e-6, rtol=0)
    assert (mixed - by_label[:1]).abs().mean() > 0.05  # a mixture is not class 0 (outputs span [-1, 1])


def test_a_mixture_conditions_on_the_weighted_sum_of_embeddings():
    """cdcgan multiplies z by the condition vector: for a mixture, by the weighted sum of the class embeddings."""
    torch.manual_seed(0)
    spec = build_spec("cdcgan", MNIST_INFO)
    g = build_generator(spec).eval()
    w = torch.zeros(1, 10)
    w[0, 3], w[0, 8] = 0.3, 0.7
    z = torch.rand(1, spec.latent_dim) * 2 - 1
    e = g.label_embedding.weight
    with torch.no_grad():
        got = g(z, w)
        zz = z.view(1, -1, 1, 1)
        want = g.upsample(g.initial(zz * (0.3 * e[3] + 0.7 * e[8]).view_as(zz)) + g.noise_injection(zz))
    assert torch.allclose(got, want, atol=1e-6)


def test_export_mix_writes_a_checked_class_weight_graph(tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["export", "--model", "cgan", "--mix", "-o", f"{tmp_path}/", "--json", str(report)]) == 0
    path = tmp_path / "cgan.mix.onnx"
    model = onnx.load(str(path))
    inputs = {i.name: (i.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
              for i in model.graph.input}
    assert inputs == {"z": (onnx.TensorProto.FLOAT, ["batch", 100]),
                      "class_weights": (onnx.TensorProto.FLOAT, ["batch", 10])}
    meta = read_metadata({p.key: p.value for p in model.metadata_props}, path.name)
    assert meta.condition == CLASS_WEIGHTS and meta.precision == "fp32"
    from gantool.export.variants import family_digest

    assert meta.family == family_digest("cgan")  # the shipped cgan.onnx's family: the runtime pairs them
    cases = {c["labels"]: c for r in json.loads(report.read_text())["parity"] for c in r["comparisons"]}
    assert {"=0", "=9", "pairs 50/50", "mixtures", "path a->b"} <= set(cases)
    assert all(c["passed"] and c["max_abs"] <= 1e-4 for c in cases.values())
    assert cases["pairs 50/50"]["batch"] == 45 and cases["mixtures"]["batch"] == 64


@pytest.mark.parametrize("args, message", [
    (["--model", "gan", "--mix"], "gan is unconditional"),
    (["--model", "cgan", "--mix", "--precision", "fp16"], "fp32 only, not fp16"),
    (["--model", "cgan", "--mix", "--variants"], "--variants writes a conditional model's class-weight graph by itself"),
    (["--model", "cgan", "--mix", "--format", "triton"], "--format triton writes a conditional model's class-weight"),
])
def test_export_mix_refusals_are_one_line(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_mix_input_cannot_be_declared_for_an_unconditional_model():
    from gantool.contract import CONDITION_KEY, GeneratorMetadata, MetadataError, write_metadata

    gan = GeneratorMetadata(spec=build_spec("gan", MNIST_INFO))
    props = write_metadata(gan)
    props[CONDITION_KEY] = CLASS_WEIGHTS
    with pytest.raises(MetadataError, match="class_weights for conditional models only"):
        read_metadata(props, "x.onnx")
    cgan = GeneratorMetadata(spec=build_spec("cgan", MNIST_INFO))
    assert CONDITION_KEY not in write_metadata(cgan)  # label graphs keep the metadata they always had
    assert read_metadata(write_metadata(cgan.replace(condition=CLASS_WEIGHTS)), "m").condition == CLASS_WEIGHTS
    props = write_metadata(cgan)
    props[CONDITION_KEY] = "onehot"
    with pytest.raises(MetadataError, match="allowed: labels, class_weights"):
        read_metadata(props, "x.onnx")
    np.testing.assert_array_equal(GeneratorMetadata(spec=cgan.spec, condition=CLASS_WEIGHTS).contract.feeds(
        np.zeros((2, 100), np.float32), np.array([1, 2]))[CLASS_WEIGHTS].argmax(1), [1, 2])
