"""Export and build refuse bad input with one line, a non-zero exit, and no file left behind."""

from __future__ import annotations

import pytest

from gantool.cli import main
from gantool.train.shipped import WEIGHTS_DIR


def truncated(tmp_path, src, name):
    p = tmp_path / "in" / name
    p.parent.mkdir()
    p.write_bytes(src.read_bytes()[:5000])
    return str(p)


def other_model(tmp_path):
    """A checkpoint whose spec says cgan but whose weights are gan's."""
    from gantool.train.checkpoint import save_checkpoint
    from gantool.train.recipe import Recipe
    from gantool.train.zoo import MNIST_INFO, build_models, build_spec

    p = tmp_path / "in" / "mixed.pt"
    p.parent.mkdir()
    save_checkpoint(p, {"spec": build_spec("cgan", MNIST_INFO).to_dict(), "recipe": Recipe().to_dict(),
                        "generator": build_models(build_spec("gan", MNIST_INFO)).generator.state_dict()})
    return str(p)


@pytest.mark.parametrize("case, message", [
    ("unknown", "unknown model 'nope'"),
    ("judge", "not a gantool generator"),
    ("truncated-weights", "not a gantool generator"),
    ("truncated-ckpt", "not a readable gantool checkpoint"),
    ("onnx", "is an exported engine, not PyTorch weights"),
    ("other-model", "weights do not fit a cgan generator"),
])
def test_export_bad_model_inputs(case, message, tmp_path, monkeypatch, capsys):
    model = {"unknown": lambda: "nope",
             "judge": lambda: str(WEIGHTS_DIR / "judge-mnist.safetensors"),
             "truncated-weights": lambda: truncated(tmp_path, WEIGHTS_DIR / "cgan.safetensors", "cgan.safetensors"),
             "truncated-ckpt": lambda: truncated(tmp_path, WEIGHTS_DIR / "cgan.safetensors", "run.pt"),
             "onnx": lambda: truncated(tmp_path, WEIGHTS_DIR / "cgan.safetensors", "cgan.onnx"),
             "other-model": lambda: other_model(tmp_path)}[case]()
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    for fmt in ("onnx", "triton"):
        code = main(["export", "--model", model, "--format", fmt])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1 and message in err, err
    assert list(out.iterdir()) == []
