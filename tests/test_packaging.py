"""The layout survives a real install: a normal (non-editable) wheel, in a fresh venv, used from outside
the repo, has gantool.train & co. (the gantool/ symlinks were packaged as folders) and py.typed, and
samples a shipped 28x28 model through the CLI and the Python API. An editable-only trick fails here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# what a build reads: the package (its links), the folders they point to, and the metadata files
SOURCES = ("pyproject.toml", "README.md", "gantool", "train", "export", "runtime", "benchmarks", "serve")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_has_every_subpackage_and_samples(tmp_path):
    src = tmp_path / "src"  # a copy, so the build's build/ and egg-info never touch the working tree
    src.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, symlinks=True, ignore=skip)  # the links stay links, as in a clone
        else:
            shutil.copy2(p, src / name)
    assert (src / "gantool" / "train").is_symlink()

    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)])
    wheel, = dist.glob("gantool-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for sub in ("train", "export", "runtime", "benchmarks", "serve"):
        assert f"gantool/{sub}/__init__.py" in names, f"the wheel lacks gantool/{sub}: the link was not packaged"
    assert "gantool/py.typed" in names and "gantool/weights/cgan.onnx" in names
    assert "gantool/runtime/backends/__init__.py" in names  # subpackages under a link ship too
    from gantool.export.browser import ASSETS  # --format web copies these from the installed package

    assert {f"gantool/export/web/{a}" for a in ASSETS} <= names
    assert not any(n.split("/")[0] in ("train", "export", "runtime", "benchmarks", "serve") for n in names)

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    run([str(py), "-m", "pip", "install", "-q", f"{wheel}[cpu]"])

    work = tmp_path / "elsewhere"  # outside the repo: nothing can come from the checkout
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["GANTOOL_CACHE"] = str(tmp_path / "cache")
    run([str(bindir / "gantool"), "sample", "--model", "cgan", "-o", "x.png"], cwd=work, env=env)
    assert (work / "x.png").stat().st_size > 1000

    code = textwrap.dedent("""
        import json, importlib.util, pathlib
        import gantool
        from gantool.runtime import Generator
        with Generator.load("cgan") as g:
            a = g.sample(labels=[3, 3, 7], seed=1)
        root = pathlib.Path(gantool.__file__).parent
        print(json.dumps({"shape": list(a.shape), "dtype": str(a.dtype), "root": str(root),
                          "train": importlib.util.find_spec("gantool.train") is not None,
                          "train_dir": (root / "train").is_dir() and not (root / "train").is_symlink(),
                          "typed": (root / "py.typed").is_file()}))
    """)
    r = json.loads(run([str(py), "-c", code], cwd=work, env=env).stdout.strip().splitlines()[-1])
    assert r["shape"] == [3, 28, 28] and r["dtype"] == "uint8"
    assert Path(r["root"]).is_relative_to(venv), f"gantool came from {r['root']}, not the wheel"
    assert r["train"] and r["train_dir"] and r["typed"]
