"""The judge classifier: shipped weights meet the accuracy bar; training and loading work end to end."""

import json

import numpy as np
import pytest
import torch

from gantool.cli import main
from gantool.errors import CheckpointError
from gantool.train.data import load_split
from gantool.train.judge import SHIPPED_JUDGE, Judge, JudgeConfig, accuracy, load_judge, to_unit


def test_shipped_judge_reaches_99_2_percent_on_the_mnist_test_split(mnist_dir):
    assert SHIPPED_JUDGE.is_file(), "the MNIST judge ships inside the package"
    judge, metrics = load_judge()
    acc, per_class = accuracy(judge, load_split(mnist_dir, "test"))
    assert acc >= 0.992, acc
    assert min(per_class) >= 0.98
    assert abs(acc - metrics["test_accuracy"]) < 1e-6  # the recorded metric is the real one


def test_judge_train_cli_writes_a_loadable_judge(capsys, tmp_path, small_mnist):
    out = tmp_path / "j.safetensors"
    code = main(["judge", "train", "--data-dir", str(small_mnist), "--epochs", "2", "-o", str(out),
                 "--json", str(tmp_path / "j.json")])
    assert code == 0, capsys.readouterr().err
    assert "judge test accuracy" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "j.json").read_text())
    assert metrics["test_accuracy"] > 0.9  # two epochs on 4096 images already learn the digits (chance: 0.1)
    judge, saved = load_judge(out)
    assert saved == metrics and judge.cfg.num_classes == 10


def test_64x64_images_are_area_averaged_to_the_judges_size():
    judge = Judge(JudgeConfig()).eval()
    x = to_unit(np.random.default_rng(0).integers(0, 255, (3, 28, 28), dtype=np.uint8))
    big = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 56x56, each pixel a 2x2 block
    with torch.no_grad():
        torch.testing.assert_close(judge.features(big), judge.features(x))
        assert judge.features(torch.zeros(2, 1, 64, 64)).shape == (2, 128)


def test_bad_judge_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_judge(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a gantool judge"):
        load_judge(tmp_path / "bad.safetensors")
