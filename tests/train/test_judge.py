"""The judge classifier: shipped weights meet the accuracy bar; training and loading work end to end."""

import json

import numpy as np
import pytest
import torch

from gantool.cli import main
from gantool.errors import CheckpointError
from gantool.train.data import load_split
from gantool.train.judge import (
    SHIPPED_JUDGE,
    SHIPPED_JUDGES,
    Judge,
    JudgeConfig,
    accuracy,
    load_judge,
    robustness,
    to_unit,
)


def test_shipped_judge_reaches_99_2_percent_on_the_mnist_test_split(mnist_dir):
    assert SHIPPED_JUDGE.is_file(), "the MNIST judge ships inside the package"
    judge, metrics = load_judge()
    acc, per_class = accuracy(judge, load_split(mnist_dir, "test"))
    assert acc >= 0.992, acc
    assert min(per_class) >= 0.98
    assert abs(acc - metrics["test_accuracy"]) < 1e-6  # the recorded metric is the real one


def test_judge_train_cli_writes_a_loadable_judge_of_the_chosen_architecture(capsys, tmp_path, small_mnist):
    out = tmp_path / "j.safetensors"
    code = main(["judge", "train", "--arch", "resnet", "--data-dir", str(small_mnist), "--epochs", "2", "-o", str(out),
                 "--json", str(tmp_path / "j.json")])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "judge (resnet) test accuracy" in printed and "round trip 64" in printed and "blurred sigma2" in printed
    metrics = json.loads((tmp_path / "j.json").read_text())
    assert metrics["test_accuracy"] > 0.8  # two epochs on 4096 images already learn the digits (chance: 0.1)
    judge, saved = load_judge(out)
    assert saved == metrics and judge.cfg.num_classes == 10 and judge.cfg.arch == "resnet"
    assert judge.cfg.data_digest == load_split(small_mnist, "train").digest()  # it knows what it learned
    assert set(metrics["robustness"]) == {"real", "round_trip_64", "blurred_sigma2"}
    assert metrics["robustness"]["real"] == metrics["test_accuracy"]


def test_the_second_shipped_judge_is_another_architecture_and_reaches_99_3_percent(mnist_dir):
    """Two judges err on different images only if they are built differently: residual blocks and a
    global average against plain convs, max-pooling and a wide dense layer."""
    (a, _), (b, metrics) = load_judge(SHIPPED_JUDGES["cnn"]), load_judge(SHIPPED_JUDGES["resnet"])
    assert (a.cfg.arch, b.cfg.arch) == ("cnn", "resnet")
    kinds = [{type(m).__name__ for m in j.modules()} for j in (a, b)]
    assert "MaxPool2d" in kinds[0] - kinds[1] and {"_Residual", "AdaptiveAvgPool2d"} <= kinds[1] - kinds[0]
    test = load_split(mnist_dir, "test")
    acc, _ = accuracy(b, test)
    assert acc >= 0.993 and abs(acc - metrics["test_accuracy"]) < 1e-6
    rob = robustness(b, test)  # the recorded accuracies on round-tripped and blurred digits are the real ones
    assert all(abs(rob[k] - metrics["robustness"][k]) < 1e-6 for k in rob)
    assert rob["round_trip_64"] > 0.98 and rob["blurred_sigma2"] < rob["real"]


def test_a_dataset_is_the_same_data_by_its_arrays_not_its_files(tmp_path, small_mnist):
    """A gzipped and an unpacked copy of one dataset have one digest; one changed pixel another."""
    import gzip
    import shutil

    plain = tmp_path / "plain"
    plain.mkdir()
    for f in small_mnist.iterdir():
        with gzip.open(f) as src, (plain / f.name.removesuffix(".gz")).open("wb") as dst:
            shutil.copyfileobj(src, dst)
    a, b = load_split(small_mnist, "train"), load_split(plain, "train")
    assert a.info.files != b.info.files and a.digest() == b.digest()
    a.images[0, 0, 0] ^= 1
    assert a.digest() != b.digest()


def test_a_shipped_judge_refuses_data_it_was_not_trained_on(small_mnist, mnist_dir):
    from gantool.errors import DataError
    from gantool.train.judge import check_judge_data

    judge, _ = load_judge()
    train, test = load_split(mnist_dir, "train"), load_split(mnist_dir, "test")
    check_judge_data(judge, (train, test), "gantool eval", str(mnist_dir))  # its own data passes
    with pytest.raises(DataError, match=f"training split in {small_mnist} is not the data the cnn judge.*"
                                        f"gantool judge train --data-dir {small_mnist} "):
        check_judge_data(judge, (load_split(small_mnist, "train"), test), "gantool eval", str(small_mnist))
    test.images[0] = 0  # the real training split with an altered test split: its reference would be wrong
    with pytest.raises(DataError, match="the test split in D is not the data"):
        check_judge_data(judge, (train, test), "gantool eval", "D")


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

