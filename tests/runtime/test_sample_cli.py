"""`gantool sample` and `gantool inspect` from the command line."""

from __future__ import annotations

import numpy as np
from PIL import Image

from gantool.cli import main
from gantool.cli.sampling import parse_labels
from gantool.paths import shipped_onnx


def test_parse_labels_forms():
    assert parse_labels("0-9") == list(range(10))
    assert parse_labels("3,3,7") == [3, 3, 7]
    assert parse_labels("0-2,7") == [0, 1, 2, 7]


def test_sample_png_grid_has_one_row_per_label(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["sample", "--model", "cdcgan", "--labels", "3,7", "--per-label", "5", "-o", str(out)]) == 0
    im = Image.open(out)
    assert im.size == (2 * (5 * 30 + 2), 2 * (2 * 30 + 2))  # 5 columns x 2 rows of 28px + 2px padding, x2 scale


def test_sample_npy_and_unconditional_n(tmp_path, capsys):
    assert main(["sample", "--model", "cdcgan", "--labels", "0-9", "--per-label", "2", "-o", str(tmp_path / "a.npy")]) == 0
    a = np.load(tmp_path / "a.npy")
    assert a.shape == (20, 28, 28) and a.dtype == np.uint8
    assert main(["sample", "--model", "gan", "--n", "12", "-o", str(tmp_path / "u.npy")]) == 0
    assert np.load(tmp_path / "u.npy").shape == (12, 28, 28)


def test_sample_bad_input_is_one_line(tmp_path, capsys):
    for args, message in ((["--model", "gan", "--labels", "1"], "unconditional"),
                          (["--model", "cdcgan", "--labels", "4-x"], "not a list of integers"),
                          (["--model", "cdcgan", "--labels", "10"], "out of range"),
                          (["--model", "cdcgan", "-o", str(tmp_path / "a.jpg")], "allowed: .png, .npy")):
        assert main(["sample", *args]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_inspect_prints_metadata_and_io(capsys):
    assert main(["inspect", str(shipped_onnx("cdcgan"))]) == 0
    out = capsys.readouterr().out
    assert "model: cdcgan" in out and "input  labels: tensor(int64) ['batch']" in out
    assert "output images: tensor(float) ['batch', 1, 28, 28]" in out
