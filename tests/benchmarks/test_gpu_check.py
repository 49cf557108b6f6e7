"""benchmarks/gpu_check.sh, the first GPU run: without a GPU it exits 2 with one line and writes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.sh"


@pytest.mark.parametrize("smi", [None, "exit 9"])  # nvidia-smi missing, or failing (no driver, no device)
def test_without_a_gpu_it_exits_2_with_one_line(smi, tmp_path):
    if smi is None and shutil.which("nvidia-smi"):
        pytest.skip("nvidia-smi is installed here")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    path = os.environ["PATH"]
    if smi is not None:
        (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\n{smi}\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    out = tmp_path / "results"
    p = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PATH": f"{bin_dir}:{path}"}, cwd=tmp_path)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == "gpu_check: no NVIDIA GPU here (nvidia-smi is missing or fails); nothing was run.\n"
    assert not out.exists()
