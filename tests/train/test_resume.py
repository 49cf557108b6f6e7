"""Exact resume after SIGKILL, including a kill while a checkpoint is being written and one during a
resumed run: log.csv keeps every row up to the last checkpoint, and ends equal to an uninterrupted run's."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gantool.train.checkpoint import load_checkpoint

TIMING_COLUMNS = ("images_per_s",)  # wall-clock throughput: the one column two runs may disagree on
# cgan: BatchNorm, dropout and labels; cwgan: n_critic and the gradient penalty's own randomness.
MODELS = {"cgan": ["--batch-size", "16"], "cwgan": ["--batch-size", "8"]}

# Runs the real CLI; with GANTOOL_TEST_HANG_AT_CKPT=N, the N-th checkpoint write stops after its
# temp file is complete and before the rename, so the test can SIGKILL it mid-write; with
# GANTOOL_TEST_HANG_AT_STEP=N, training stops before step N (after the rows of the steps before it).
WRAPPER = textwrap.dedent("""
    import os, sys, time
    hang_at = int(os.environ.get("GANTOOL_TEST_HANG_AT_CKPT", "0"))
    hang_step = int(os.environ.get("GANTOOL_TEST_HANG_AT_STEP", "0"))
    if hang_step:
        from gantool.train import loop
        real_step = loop.Trainer.step
        def step(self):
            if self.step_count + 1 == hang_step:
                open(os.environ["GANTOOL_TEST_MARKER"], "w").close()
                time.sleep(600)
            return real_step(self)
        loop.Trainer.step = step
    real_replace, calls = os.replace, [0]
    def replace(src, dst, *a, **k):
        if str(dst).endswith("checkpoint.pt"):
            calls[0] += 1
            if calls[0] == hang_at:
                open(os.environ["GANTOOL_TEST_MARKER"], "w").close()
                time.sleep(600)
        return real_replace(src, dst, *a, **k)
    os.replace = replace
    from gantool.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def gantool(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRAPPER, *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def log_rows(run: Path) -> list[dict[str, str]]:
    """log.csv's rows, every column but the timing ones; the header must be the loop's."""
    from gantool.train.loop import LOG_FIELDS

    with (run / "log.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in reader]
        assert reader.fieldnames == LOG_FIELDS or (reader.fieldnames is None and not rows)
    return rows


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.time()
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"training exited early: {proc.communicate()}")
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out waiting for the training subprocess")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("model", list(MODELS))
def test_sigkill_then_resume_matches_an_uninterrupted_run(model, small_mnist, tmp_path):
    common = ["train", "--model", model, "--data-dir", str(small_mnist), "--max-steps", "18", "--ckpt-every", "6",
              "--seed", "3", *MODELS[model]]
    ref, run = tmp_path / "ref", tmp_path / "run"
    p = gantool([*common, "-o", str(ref)])
    assert p.wait(timeout=300) == 0, p.communicate()
    expected = log_rows(ref)
    assert len(expected) == 18 and [r["step"] for r in expected] == [str(s) for s in range(1, 19)]

    # 1) a plain SIGKILL some time after the first checkpoint
    marker = tmp_path / "hung"
    p = gantool([*common, "-o", str(run)], env={"GANTOOL_TEST_HANG_AT_CKPT": "2", "GANTOOL_TEST_MARKER": str(marker)})
    # 2) ... which lands while the second checkpoint (step 12) is being written: temp complete, not renamed
    wait_for(marker.exists, p)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert list(run.glob(".checkpoint.pt.*.tmp")), "the kill should leave the half-done temp file"
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 6  # the previous checkpoint is intact
    assert log_rows(run)[:6] == expected[:6]

    # 3) a kill during the resumed run, before its first checkpoint: the rows up to step 6 survive it
    marker = tmp_path / "hung-resumed"
    p = gantool([*common, "-o", str(run), "--resume"],
                env={"GANTOOL_TEST_HANG_AT_STEP": "9", "GANTOOL_TEST_MARKER": str(marker)})
    wait_for(marker.exists, p)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    rows = log_rows(run)
    assert len(rows) >= 6 and rows == expected[:len(rows)], rows

    r = gantool([*common, "-o", str(run), "--resume"])
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    rows = log_rows(run)  # same data order, RNG and optimizer state: identical rows
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected):
        assert got == want
    assert not list(run.glob(".*.tmp"))
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 18


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_resume(small_mnist, tmp_path):
    common = ["train", "--model", "gan", "--data-dir", str(small_mnist), "--max-steps", "40", "--ckpt-every", "5",
              "--batch-size", "32", "--seed", "1"]
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert gantool([*common, "-o", str(ref)]).wait(timeout=300) == 0
    p = gantool([*common, "-o", str(run)])
    wait_for(lambda: (run / "checkpoint.pt").exists() and len(log_rows(run)) >= 12, p)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert load_checkpoint(run / "checkpoint.pt")["step"] % 5 == 0
    r = gantool([*common, "-o", str(run), "--resume"])
    assert r.wait(timeout=300) == 0, r.communicate()
    assert log_rows(run) == log_rows(ref)
