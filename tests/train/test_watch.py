"""`gantool train --eval-every`: a curve, the best checkpoint kept, and training itself untouched."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from gantool.cli import main
from gantool.train.checkpoint import load_checkpoint
from gantool.train.judge import SHIPPED_JUDGE

TINY = ["--model", "cgan", "--batch-size", "16"]


def _train(run: Path, data: Path, *extra: str) -> None:
    code = main(["train", *TINY, "--data-dir", str(data), "-o", str(run), *extra])
    assert code == 0


def _rows(path: Path, drop: tuple[str, ...] = ("images_per_s",)) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


WATCH = ["--eval-every", "2", "--eval-samples", "100", "--judge", str(SHIPPED_JUDGE)]


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory, small_mnist: Path) -> Path:
    run = tmp_path_factory.mktemp("watch") / "run"
    _train(run, small_mnist, "--max-steps", "6", *WATCH, "--keep-evals")
    return run


def test_eval_every_writes_the_curve_and_keeps_the_lowest_fd_checkpoint(watched):
    rows = _rows(watched / "eval.csv")
    assert [r["step"] for r in rows] == ["2", "4", "6"]
    fds = [float(r["fd_judge"]) for r in rows]
    best = min(range(3), key=fds.__getitem__)
    assert [r["best"] for r in rows][best] == "1"
    kept = load_checkpoint(watched / "best.pt")
    assert kept["step"] == int(rows[best]["step"]) and kept["best_eval"]["fd_judge"] == pytest.approx(fds[best], rel=1e-5)
    assert load_checkpoint(watched / "checkpoint.pt")["step"] == 6  # the last stays beside the best
    assert (watched / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(0 <= float(r["label_accuracy"]) <= 1 for r in rows)


def test_keep_evals_keeps_every_measured_checkpoint_with_its_measurement(watched):
    rows = _rows(watched / "eval.csv")
    kept = sorted((watched / "evals").iterdir())
    assert [p.name for p in kept] == ["step-0000002.pt", "step-0000004.pt", "step-0000006.pt"]
    for path, row in zip(kept, rows):
        ck = load_checkpoint(path)
        assert ck["step"] == int(row["step"]) and ck["eval"]["fd_judge"] == pytest.approx(float(row["fd_judge"]), rel=1e-5)
    best = load_checkpoint(watched / "best.pt")
    same = load_checkpoint(watched / "evals" / f"step-{best['step']:07d}.pt")
    assert all(torch.equal(best["generator"][k], same["generator"][k]) for k in best["generator"])


def test_eval_every_changes_nothing_in_training(watched, tmp_path, small_mnist):
    """The judge only measures: the same run without it logs the same losses and ends in the same weights."""
    _train(tmp_path / "plain", small_mnist, "--max-steps", "6")
    assert _rows(tmp_path / "plain" / "log.csv") == _rows(watched / "log.csv")
    a, b = (load_checkpoint(r / "checkpoint.pt")["generator"] for r in (tmp_path / "plain", watched))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_run_continues_the_curve_and_its_best(watched, tmp_path, small_mnist):
    run = tmp_path / "run"
    _train(run, small_mnist, "--max-steps", "4", *WATCH)
    _train(run, small_mnist, "--max-steps", "6", "--resume", *WATCH)
    assert _rows(run / "eval.csv") == _rows(watched / "eval.csv")  # exact resume: the same figures
    assert load_checkpoint(run / "best.pt")["step"] == load_checkpoint(watched / "best.pt")["step"]


def test_eval_every_refuses_before_training_what_it_cannot_measure(capsys, tmp_path, small_mnist):
    # the shipped judge knows the full MNIST training split, not this subset: refused before any step
    assert main(["train", *TINY, "--data-dir", str(small_mnist), "-o", str(tmp_path / "a"), "--max-steps", "2",
                 "--eval-every", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gantool judge train" in err and not (tmp_path / "a").exists()
    assert main(["train", *TINY, "--data-dir", str(small_mnist), "-o", str(tmp_path / "b"), "--max-steps", "2",
                 "--eval-samples", "100"]) == 1
    err = capsys.readouterr().err
    assert "--eval-samples applies to --eval-every only" in err and not (tmp_path / "b").exists()
    assert main(["train", *TINY, "--data-dir", str(small_mnist), "-o", str(tmp_path / "c"), "--max-steps", "2",
                 "--keep-evals"]) == 1
    assert "--keep-evals applies to --eval-every only" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_a_resume_that_would_measure_differently_is_refused(capsys, tmp_path, small_mnist):
    """FD on another sample size (or by another judge) does not compare with the best so far."""
    run = tmp_path / "run"
    _train(run, small_mnist, "--max-steps", "2", *WATCH)
    before = (run / "best.pt").read_bytes()
    other = ["--eval-every", "2", "--eval-samples", "200", "--judge", str(SHIPPED_JUDGE)]
    assert main(["train", *TINY, "--data-dir", str(small_mnist), "-o", str(run), "--max-steps", "4", "--resume",
                 *other]) == 1
    err = capsys.readouterr().err
    assert "measured on 100 samples" in err and "--eval-samples 100" in err
    assert (run / "best.pt").read_bytes() == before and load_checkpoint(run / "checkpoint.pt")["step"] == 2


def test_another_runs_best_checkpoint_is_never_adopted_or_replaced(capsys, watched, tmp_path, small_mnist):
    """A folder holding only someone's best.pt: a new run (with --eval-every or without) is refused
    before it writes anything; a resumed run whose best.pt is another run's is refused too."""
    import shutil

    folder = tmp_path / "f"
    folder.mkdir()
    shutil.copy(watched / "best.pt", folder / "best.pt")
    for extra in ([], WATCH):
        assert main(["train", *TINY, "--data-dir", str(small_mnist), "-o", str(folder), "--max-steps", "2",
                     *extra]) == 1
        assert "already holds best.pt from another run" in capsys.readouterr().err
        assert sorted(p.name for p in folder.iterdir()) == ["best.pt"]  # not even samples/
    other = tmp_path / "other"
    _train(other, small_mnist, "--max-steps", "2", "--seed", "1")
    shutil.copy(watched / "best.pt", other / "best.pt")
    before = (other / "best.pt").read_bytes()
    assert main(["train", *TINY, "--data-dir", str(small_mnist), "-o", str(other), "--max-steps", "4", "--resume",
                 *WATCH]) == 1
    assert "is not from the run being resumed" in capsys.readouterr().err
    assert (other / "best.pt").read_bytes() == before
