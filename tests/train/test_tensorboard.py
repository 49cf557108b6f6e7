"""`gantool train --tensorboard`: log.csv's rows and the grids as events, each step once across a kill
and --resume, training itself untouched, and a missing extra refused before training."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from gantool.cli import main
from gantool.train.checkpoint import load_checkpoint
from gantool.train.distributed import World
from gantool.train.loop import RunOptions, RunOutputs, Trainer
from gantool.train.tensorboard_log import IMAGE_TAG, LR_TAGS, SCALAR_TAGS

pytest.importorskip("tensorboard", reason="--tensorboard needs the tensorboard package (the train extra)")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

TINY = ["--model", "cgan", "--batch-size", "16"]
ALL_TAGS = {*SCALAR_TAGS.values(), *LR_TAGS.values()}


def _train(run: Path, data: Path, *extra: str) -> int:
    return main(["train", *TINY, "--data-dir", str(data), "-o", str(run), *extra])


def _rows(run: Path, drop: tuple[str, ...] = ()) -> list[dict[str, str]]:
    with (run / "log.csv").open(newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def _board(directory: Path) -> EventAccumulator:
    """What TensorBoard shows: every event of every file in the folder, purges applied; nothing sampled away."""
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _steps(acc: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


@pytest.fixture(scope="module")
def boarded(tmp_path_factory: pytest.TempPathFactory, small_mnist: Path) -> Path:
    run = tmp_path_factory.mktemp("board") / "run"
    assert _train(run, small_mnist, "--max-steps", "6", "--tensorboard") == 0  # no DIR: RUN_DIR/tensorboard
    return run


def test_every_log_row_is_a_set_of_scalars_at_its_step(boarded):
    acc, rows = _board(boarded / "tensorboard"), _rows(boarded)
    steps = [int(r["step"]) for r in rows]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert set(acc.Tags()["scalars"]) == ALL_TAGS
    for column, tag in SCALAR_TAGS.items():
        assert _steps(acc, tag) == steps, tag
        assert [e.value for e in acc.Scalars(tag)] == pytest.approx([float(r[column]) for r in rows], rel=1e-5), tag
    recipe = load_checkpoint(boarded / "checkpoint.pt")["recipe"]
    for net, tag in LR_TAGS.items():
        assert _steps(acc, tag) == steps
        rate = recipe[f"lr_{net.lower()}"]
        assert [e.value for e in acc.Scalars(tag)] == pytest.approx([rate] * len(steps), rel=1e-6)


def test_every_sample_grid_is_an_image_at_its_step(boarded):
    acc = _board(boarded / "tensorboard")
    assert acc.Tags()["images"] == [IMAGE_TAG]
    [event] = acc.Images(IMAGE_TAG)
    assert [p.name for p in (boarded / "samples").iterdir()] == ["step_0000006.png"] and event.step == 6
    saved = np.asarray(Image.open(boarded / "samples" / "step_0000006.png").convert("L"))[::2, ::2]  # PNG: 2x
    shown = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("L"))
    assert shown.shape == saved.shape == (event.height, event.width) and np.array_equal(shown, saved)


def test_tensorboard_changes_nothing_in_training(boarded, tmp_path, small_mnist):
    """The events only read what the loop computed: the same run without them, the same losses and weights."""
    plain = tmp_path / "plain"
    assert _train(plain, small_mnist, "--max-steps", "6") == 0
    assert not (plain / "tensorboard").exists()
    assert _rows(plain, drop=("images_per_s",)) == _rows(boarded, drop=("images_per_s",))
    a, b = (load_checkpoint(r / "checkpoint.pt") for r in (plain, boarded))
    for net in ("generator", "discriminator"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net


def test_a_killed_and_resumed_run_shows_every_step_once(boarded, tmp_path, small_mnist, monkeypatch):
    run, board = tmp_path / "run", tmp_path / "tb"  # an explicit DIR, outside the run folder
    assert _train(run, small_mnist, "--max-steps", "3", "--tensorboard", str(board)) == 0  # checkpoint at 3
    step = Trainer.step

    def killed_before_step_6(self: Trainer) -> dict[str, float]:
        if self.step_count == 5:
            raise KeyboardInterrupt  # steps 4 and 5 logged, never checkpointed
        return step(self)

    monkeypatch.setattr(Trainer, "step", killed_before_step_6)
    assert _train(run, small_mnist, "--max-steps", "6", "--resume", "--tensorboard", str(board)) == 130
    monkeypatch.undo()
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3
    assert _steps(_board(board), "loss/D") == [1, 2, 3, 4, 5]  # events past the checkpoint are on disk

    assert _train(run, small_mnist, "--max-steps", "6", "--resume", "--tensorboard", str(board)) == 0
    acc, rows, whole = _board(board), _rows(run), _board(boarded / "tensorboard")
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    for tag in ALL_TAGS:
        assert _steps(acc, tag) == [1, 2, 3, 4, 5, 6], tag  # no step twice, none missing
    for column, tag in SCALAR_TAGS.items():
        if column != "images_per_s":  # exact resume: the uninterrupted run's figures
            assert [e.value for e in acc.Scalars(tag)] == [e.value for e in whole.Scalars(tag)], tag
    assert [e.step for e in acc.Images(IMAGE_TAG)] == [3, 6]  # the grids of both finished invocations


def test_without_tensorboard_the_option_fails_before_training_in_one_line(capsys, tmp_path, small_mnist,
                                                                          monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` raises ImportError
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    assert _train(tmp_path / "run", small_mnist, "--max-steps", "2", "--tensorboard") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gantool: error: --tensorboard needs TensorBoard")
    assert 'pip install "gantool[train]"' in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_new_run_refuses_a_folder_with_another_runs_events(capsys, boarded, tmp_path, small_mnist):
    before = sorted(p.name for p in (boarded / "tensorboard").iterdir())
    assert _train(tmp_path / "new", small_mnist, "--max-steps", "2", "--tensorboard",
                  str(boarded / "tensorboard")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds TensorBoard events from another run" in err
    assert not (tmp_path / "new").exists() and sorted(p.name for p in (boarded / "tensorboard").iterdir()) == before


def test_only_rank_0_writes_events(tmp_path):
    """Under torchrun the other ranks hold silent outputs: no writer, no folder."""
    other_rank = SimpleNamespace(world=World(rank=1, size=2), step_count=0)
    opts = RunOptions(out_dir=tmp_path / "run", tensorboard=tmp_path / "tb", progress=False)
    outputs = RunOutputs(other_rank, opts, total=2)  # type: ignore[arg-type]
    assert outputs.tb is None and outputs.csv_log is None
    outputs.close()
    assert not (tmp_path / "tb").exists()
