"""An interrupted export (Ctrl-C, kill -9) leaves the old target exactly as it was; the next run
removes a killed run's temp files and replaces the target only after its checks pass."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gantool.cli import main

OLD = b"the user's earlier export, which must survive"


def _default_sigint() -> None:
    # A shell without job control starts background jobs with SIGINT ignored (CI may run us so), and an
    # ignored signal stays ignored across exec: give the child Python's own Ctrl-C handling back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_export(folder: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gantool.cli", "export", "--model", "cdcgan", "-o", "x.onnx"],
                            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


def wait_for_temp(folder: Path, proc: subprocess.Popen, timeout: float = 240) -> Path:
    """The staged temp beside the target: it exists from the first check to the final rename."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        temps = list(folder.glob(".x.onnx.*.tmp"))
        if temps:
            return temps[0]
        if proc.poll() is not None:
            pytest.fail(f"export ended before it staged a temp file: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("export staged no temp file in time")


@pytest.mark.slow
def test_ctrl_c_and_kill_9_during_export_keep_the_old_target(tmp_path, capsys):
    target = tmp_path / "x.onnx"
    target.write_bytes(OLD)
    proc = start_export(tmp_path)
    wait_for_temp(tmp_path, proc)
    proc.send_signal(signal.SIGINT)  # Ctrl-C during validation
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "gantool: interrupted" and "Traceback" not in err
    assert target.read_bytes() == OLD and sorted(p.name for p in tmp_path.iterdir()) == ["x.onnx"]

    proc = start_export(tmp_path)
    stale = wait_for_temp(tmp_path, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert target.read_bytes() == OLD and stale.exists()  # a kill -9 cannot clean up; the target is untouched

    os.chdir(tmp_path)
    try:
        assert main(["export", "--model", "cdcgan", "-o", "x.onnx"]) == 0
    finally:
        os.chdir(Path(__file__).resolve().parents[2])
    assert "PASSED" in capsys.readouterr().out
    assert target.read_bytes() != OLD and target.read_bytes()[:2] != b"th"  # replaced by a checked export
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.onnx"]  # the killed run's temp was removed
