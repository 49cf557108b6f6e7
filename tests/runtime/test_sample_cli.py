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
    assert parse_labels("-1") == [-1]  # parsed, then refused by the Generator as out of range


def test_sample_labels_mean_what_they_mean_in_the_api(tmp_path, capsys):
    from gantool.runtime import Generator

    assert main(["sample", "--model", "cdcgan", "--labels", "3,3,7", "-o", str(tmp_path / "a.npy")]) == 0
    with Generator.load("cdcgan") as g:
        assert np.array_equal(np.load(tmp_path / "a.npy"), g.sample(labels=[3, 3, 7], seed=0))
    assert "3 x 28 x 28" in capsys.readouterr().out
    assert main(["sample", "--model", "cdcgan", "--n", "13", "-o", str(tmp_path / "n.npy")]) == 0
    with Generator.load("cdcgan") as g:
        assert np.array_equal(np.load(tmp_path / "n.npy"), g.sample(n=13, seed=0))


def test_sample_png_grid_has_one_row_per_label(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["sample", "--model", "cdcgan", "--labels", "3,7", "--per-label", "5", "-o", str(out)]) == 0
    im = Image.open(out)
    assert im.size == (2 * (5 * 30 + 2), 2 * (2 * 30 + 2))  # 5 columns x 2 rows of 28px + 2px padding, x2 scale
    assert f"10 images; {im.size[0]} x {im.size[1]} pixels" in capsys.readouterr().out  # the file's width x height


def test_sample_npy_and_unconditional_n(tmp_path, capsys):
    assert main(["sample", "--model", "cdcgan", "--labels", "0-9", "--per-label", "2", "-o", str(tmp_path / "a.npy")]) == 0
    a = np.load(tmp_path / "a.npy")
    assert a.shape == (20, 28, 28) and a.dtype == np.uint8
    assert main(["sample", "--model", "gan", "--n", "12", "-o", str(tmp_path / "u.npy")]) == 0
    assert np.load(tmp_path / "u.npy").shape == (12, 28, 28)


def test_sample_bad_input_is_one_line(tmp_path, capsys):
    for args, message in ((["--model", "gan", "--labels", "1"], "unconditional"),
                          (["--model", "gan", "--per-label", "2"], "unconditional"),
                          (["--model", "cdcgan", "--labels", "4-x"], "is not an integer or a range"),
                          (["--model", "cdcgan", "--labels", "10"], "out of range"),
                          (["--model", "cdcgan", "--labels", "-1"], "label -1 is out of range"),
                          (["--model", "cdcgan", "--labels", "0-9999999999"], "allowed: at most 65536"),
                          (["--model", "cdcgan", "--per-label", "10000"], "n must be in 1..65536"),
                          (["--model", "cdcgan", "--labels", "3", "--n", "4"], "give either n"),
                          (["--model", "cdcgan", "-o", str(tmp_path / "a.jpg")], "allowed: .png, .npy, .gif"),
                          (["--model", "cdcgan", "-o", str(tmp_path / "a.gif")], "add --interpolate A:B or --interpolate-z"),
                          (["--model", "cdcgan", "--rows", "2"], "--rows applies to --interpolate and --interpolate-z"),
                          (["--model", "cdcgan", "--interpolate-z", "--n", "4"], "not --n or --per-label"),
                          (["--model", "cdcgan", "--interpolate", "3:8", "--per-label", "2"], "not --n or --per-label"),
                          (["--model", "cdcgan", "--interpolate", "3:8", "--labels", "3"], "drop --labels"),
                          (["--model", "cdcgan", "--interpolate", "3:8", "--interpolate-z"], "give one"),
                          (["--model", "cdcgan", "--interpolate", "3"], "allowed form A:B"),
                          (["--model", "cdcgan", "--interpolate", "3:10"], "label 10 is out of range"),
                          (["--model", "gan", "--interpolate", "0:1"], "gan is unconditional: class interpolation"),
                          (["--model", "cgan", "--interpolate", "3:3"], "nothing would change"),
                          (["--model", "cgan", "--interpolate", "3:8", "--precision", "int8"], "fp32 only")):
        assert main(["sample", *args]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    assert main(["sample", "--model", "cdcgan", "--truncation", "1.5", "-o", str(tmp_path / "t.png")]) == 2  # usage
    assert capsys.readouterr().err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_interpolation_grid_and_gif_hold_the_generators_images(tmp_path, capsys):
    from gantool.runtime.generator import Generator

    with Generator.load("cdcgan", tune=False) as g:
        want = g.interpolate_z(steps=4, rows=2, seed=3, labels=[5, 1])
    assert main(["sample", "--model", "cdcgan", "--interpolate-z", "--steps", "4", "--labels", "5,1", "--seed", "3",
                 "-o", str(tmp_path / "z.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), want)
    assert main(["sample", "--model", "cdcgan", "--interpolate-z", "--steps", "4", "--labels", "5,1", "--seed", "3",
                 "-o", str(tmp_path / "z.gif")]) == 0
    gif = Image.open(tmp_path / "z.gif")
    assert gif.n_frames == 4 and "4 frames" in capsys.readouterr().out
    for s in range(4):  # frame s: both rows' images at step s, side by side, pixels exact (scaled 2x)
        gif.seek(s)
        frame = np.asarray(gif.convert("L"))[::2, ::2]
        np.testing.assert_array_equal(frame[2:30, 2:30], want[s])
        np.testing.assert_array_equal(frame[2:30, 32:60], want[4 + s])


def test_class_morph_grid_and_gif_hold_the_generators_images(tmp_path, capsys):
    from gantool.runtime.generator import Generator

    with Generator.load("cgan", tune=False) as g:
        want = g.interpolate(3, 8, steps=5, seed=2, rows=3)
    assert main(["sample", "--model", "cgan", "--interpolate", "3:8", "--steps", "5", "--rows", "3", "--seed", "2",
                 "-o", str(tmp_path / "m.npy")]) == 0
    assert "cgan.mix.onnx (the class-weight graph)" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), want)
    assert main(["sample", "--model", "cgan", "--interpolate", "3:8", "--steps", "5", "--rows", "3", "--seed", "2",
                 "-o", str(tmp_path / "m.png")]) == 0
    png = np.asarray(Image.open(tmp_path / "m.png").convert("L"))[::2, ::2]  # rows: z, columns: the steps
    np.testing.assert_array_equal(png[2:30, 2:30], want[0])
    np.testing.assert_array_equal(png[32:60, 2 + 4 * 30:30 + 4 * 30], want[5 + 4])  # row 1, last step
    assert main(["sample", "--model", "cgan", "--interpolate", "3:8", "--steps", "5", "--rows", "3", "--seed", "2",
                 "-o", str(tmp_path / "m.gif")]) == 0
    assert Image.open(tmp_path / "m.gif").n_frames == 5


def test_inspect_prints_metadata_precision_and_io(capsys):
    assert main(["inspect", "--model", "cdcgan"]) == 0
    out = capsys.readouterr().out
    assert "model: cdcgan" in out and "input  labels: int64 ['batch']" in out
    assert "output images: float32 ['batch', 1, 28, 28]" in out
    assert "(onnx, fp32, " in out and "opset 18" in out and "MiB" in out and "ops: " in out
    assert main(["inspect", str(shipped_onnx("cdcgan"))]) == 0  # the 0.1 spelling, for one release
    assert "deprecated" in capsys.readouterr().err
