"""No import from runtime/ reaches train/ or export/: a fresh process in which torch, onnx, gantool.train
and gantool.export cannot import samples a shipped 28x28 model and a cached 64x64 one, and a 64x64 model
missing from the cache is the runtime's ModelNotCached, naming the export command that fills it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from gantool.cli import main

BLOCKED = ("torch", "torchvision", "onnx", "onnxscript", "onnxslim", "safetensors", "gantool.train", "gantool.export")

CHILD = textwrap.dedent("""
    import json, sys
    BLOCKED = {blocked!r}

    def blocked(name):
        return any(name == b or name.startswith(b + ".") for b in BLOCKED)

    class Block:
        def find_spec(self, name, path=None, target=None):
            if blocked(name):
                raise ImportError("blocked: " + name)

    sys.meta_path.insert(0, Block())
    from gantool.runtime import Generator
    from gantool.runtime.generator import ModelNotCached

    out = {{}}
    with Generator.load("cgan") as g:
        out["cgan"] = [list(g.sample(labels=[3, 3, 7], seed=1).shape), str(g.sample(n=2, seed=2).dtype)]
    with Generator.load("dcgan") as g:
        a, b = g.sample(n=4, seed=5), g.sample(n=4, seed=5)
        out["dcgan"] = [list(a.shape), str(a.dtype), bool((a == b).all())]
    try:
        Generator.load("cgan-in")
        out["cgan-in"] = "loaded"
    except ModelNotCached as e:
        out["cgan-in"] = str(e)
    out["mods"] = sorted(m for m in sys.modules if blocked(m))
    print(json.dumps(out))
""").format(blocked=BLOCKED)


@pytest.mark.slow
def test_runtime_samples_28x28_and_cached_64x64_without_train_or_export(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANTOOL_CACHE", str(cache))
    assert main(["export", "--model", "dcgan", "--to-cache"]) == 0  # the step above the runtime fills it
    assert len(list((cache / "onnx").glob("dcgan-*.onnx"))) == 1

    env = {**os.environ, "GANTOOL_CACHE": str(cache)}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=180, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["cgan"] == [[3, 28, 28], "uint8"]
    assert r["dcgan"] == [[4, 64, 64], "uint8", True]
    assert "gantool export --model cgan-in --to-cache" in r["cgan-in"], r["cgan-in"]
    assert r["mods"] == []
