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


@pytest.mark.parametrize("case, message", [
    ("unknown", "unknown model 'nope'"),
    ("judge", "not a gantool generator"),
    ("truncated-weights", "not a gantool generator"),
    ("truncated-ckpt", "not a readable gantool checkpoint"),
    ("onnx", "is an exported engine, not PyTorch weights"),
])
def test_export_bad_model_inputs(case, message, tmp_path, monkeypatch, capsys):
    model = {"unknown": lambda: "nope",
             "judge": lambda: str(WEIGHTS_DIR / "judge-mnist.safetensors"),
             "truncated-weights": lambda: truncated(tmp_path, WEIGHTS_DIR / "cgan.safetensors", "cgan.safetensors"),
             "truncated-ckpt": lambda: truncated(tmp_path, WEIGHTS_DIR / "cgan.safetensors", "run.pt"),
             "onnx": lambda: truncated(tmp_path, WEIGHTS_DIR / "cgan.safetensors", "cgan.onnx")}[case]()
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    for fmt in ("onnx", "triton"):
        code = main(["export", "--model", model, "--format", fmt])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1 and message in err, err
    assert list(out.iterdir()) == []
