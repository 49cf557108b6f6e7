"""The CLI: every user error is one line on stderr with a non-zero exit, never a traceback."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gantool
from gantool.cli import main
from gantool.train.checkpoint import load_checkpoint


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gantool: error: ") and "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_version_through_the_console_script():
    p = subprocess.run([sys.executable, "-m", "gantool.cli", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and gantool.__version__ in p.stdout


def test_models_lists_the_zoo_with_params_and_flops(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "models", "--json", str(tmp_path / "m.json"))
    assert code == 0
    for name in ("gan", "dcgan", "cgan", "cdcgan", "cgan-in", "cwgan"):
        assert f"\n{name} " in out
    import json

    rows = {r["name"]: r for r in json.loads((tmp_path / "m.json").read_text())}
    assert rows["gan"]["g_params"] == 1486352 and rows["dcgan"]["g_mflops"] > 100


@pytest.fixture()
def bad_data(tmp_path, write_idx):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    write_idx(d / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    return d


def test_user_errors_are_one_line(capsys, tmp_path, bad_data, small_mnist):
    cases = [
        (["train", "--model", "stylegan", "--data-dir", str(small_mnist)], ["stylegan", "neither a zoo model", "allowed: gan"]),
        (["train", "--model", "gan", "--data-dir", str(tmp_path / "nowhere")], ["does not exist"]),
        (["train", "--model", "gan", "--data-dir", str(bad_data)], ["train-images-idx3-ubyte.gz", "gzip"]),
        (["train", "--model", "gan", "--data-dir", str(small_mnist), "--device", "cuda"], ["no CUDA GPU"]),
        (["train", "--model", "dcgan", "--data-dir", str(small_mnist), "--image-size", "32"], ["64x64 only"]),
        (["train", "--model", "gan", "--batch-size", "1"], ["--batch-size", "1"]),
        (["train", "--model", "gan", "--device", "tpu"], ["--device", "tpu"]),
        (["train", "--model", "gan", "--loss", "kl"], ["--loss"]),
        (["train"], ["--model"]),
        (["frobnicate"], ["No such command"]),
        (["train", "--model", "gan", "--data-dir", str(small_mnist), "-o", str(tmp_path / "r"), "--resume"],
         ["--resume", "does not exist"]),
        (["train", "--model", str(bad_data / "train-labels-idx1-ubyte.gz"), "--data-dir", str(small_mnist)],
         ["not a readable gantool checkpoint"]),
    ]
    import torch

    if torch.cuda.is_available():
        cases = [c for c in cases if "cuda" not in c[0]]
    for args, fragments in cases:
        code, _, err = run_cli(capsys, *args)
        assert_one_line_error(code, err, *fragments)


def test_existing_run_is_never_overwritten_and_resume_keeps_its_recipe(capsys, tmp_path, small_mnist):
    run = tmp_path / "run"
    base = ["train", "--model", "gan", "--data-dir", str(small_mnist), "-o", str(run), "--batch-size", "16"]
    code, out, err = run_cli(capsys, *base, "--max-steps", "3")
    assert code == 0, err
    assert "trained 3 steps" in out and (run / "samples" / "step_0000003.png").exists()
    before = (run / "checkpoint.pt").read_bytes()
    code, _, err = run_cli(capsys, *base, "--max-steps", "5")
    assert_one_line_error(code, err, "already holds a training run", "--resume")
    assert (run / "checkpoint.pt").read_bytes() == before
    code, _, err = run_cli(capsys, *base, "--max-steps", "5", "--resume", "--lr", "0.1")
    assert_one_line_error(code, err, "--lr-g", "--lr-d")
    code, _, err = run_cli(capsys, *base, "--max-steps", "5", "--resume")
    assert code == 0, err
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 5


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(capsys, tmp_path, small_mnist,
                                                                                 monkeypatch):
    from gantool.train import losses

    real_g_loss, calls = losses.g_loss, [0]

    def exploding(kind, fake):
        calls[0] += 1
        loss = real_g_loss(kind, fake)
        return loss * float("nan") if calls[0] == 5 else loss

    monkeypatch.setattr(losses, "g_loss", exploding)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--model", "cgan", "--data-dir", str(small_mnist), "-o", str(run),
                           "--batch-size", "16", "--max-steps", "10", "--ckpt-every", "2")
    started = [ln for ln in err.splitlines() if ln.startswith("precision: ")]  # training began: its one info line
    assert len(started) == 1
    err = err.replace(started[0] + "\n", "")
    assert_one_line_error(code, err, "G loss became nan at step 5", "last good checkpoint is kept")
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 4


def test_same_seed_same_losses_and_json(capsys, tmp_path, small_mnist):
    logs = []
    for name in ("a", "b"):
        args = ["train", "--model", "cdcgan", "--data-dir", str(small_mnist), "-o", str(tmp_path / name),
                "--batch-size", "16", "--max-steps", "4", "--seed", "5", "--json", str(tmp_path / f"{name}.json")]
        assert run_cli(capsys, *args)[0] == 0
        with (tmp_path / name / "log.csv").open() as f:
            logs.append([(r["d_loss"], r["g_loss"]) for r in csv.DictReader(f)])
    assert logs[0] == logs[1] and len(logs[0]) == 4
    import json

    assert json.loads((tmp_path / "a.json").read_text())["steps"] == 4


def test_installed_console_script_reports_errors_in_one_line(tmp_path):
    script = Path(sys.executable).parent / "gantool"
    assert script.exists(), "the `gantool` console script should be installed beside python"
    p = subprocess.run([str(script), "train", "--model", "gan", "--data-dir", str(tmp_path / "none")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "does not exist" in p.stderr


def test_max_minutes_stops_with_a_checkpoint_and_seed_recipe_trains(capsys, tmp_path, small_mnist):
    import torch

    out = tmp_path / "run"
    assert main(["train", "--model", "cgan", "--recipe", "seed", "--data-dir", str(small_mnist), "-o", str(out),
                 "--max-minutes", "0.001", "--epochs", "5"]) == 0
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert 1 <= ckpt["step"] < 5 * 4096 // 32 and ckpt["recipe"]["fake_labels"] == "uniform"
    assert ckpt["recipe"]["batch_size"] == 32 and "trained" in capsys.readouterr().out
