import os

import numpy as np
import pytest
from PIL import Image

from gantool.fileio import atomic_write_bytes
from gantool.images import Uint8Map, make_grid, save_png, to_uint8


def test_to_uint8_maps_the_tanh_range_and_clips():
    x = np.array([-1.5, -1.0, 0.0, 1.0, 2.0], np.float32)
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255]


def test_uint8_map_rounds_half_up_for_any_range_and_size():
    levels = np.arange(256, dtype=np.float32)
    x = np.concatenate([levels / 255, (levels + 0.51) / 255, (levels + 0.49) / 255])  # [0, 1] output range
    big = np.tile(x, 300).reshape(300, 1, 1, -1)  # large arrays take the same path
    want = np.concatenate([levels, np.minimum(levels + 1, 255), levels]).astype(np.uint8)
    assert (Uint8Map(0.0, 1.0)(x) == want).all()
    assert (Uint8Map(0.0, 1.0)(big) == np.tile(want, 300).reshape(big.shape)).all()
    assert Uint8Map()(np.array([-7.0, 7.0], np.float32)).tolist() == [0, 255]


def test_consuming_map_gives_the_same_pixels_and_only_overwrites_float32():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.3, 1.3, (5, 1, 28, 28)).astype(np.float32)
    m = Uint8Map(-1.0, 1.0)
    want = m(x)
    mine = x.copy()
    assert np.array_equal(m(mine, consume=True), want)
    assert not np.array_equal(mine, x)  # scaled in place: the caller said it was its to overwrite
    half = x.astype(np.float16)
    kept = half.copy()
    assert np.array_equal(m(half, consume=True), m(kept))  # float16 is widened into a new buffer
    assert np.array_equal(half, kept)
    frozen = x.copy()
    frozen.flags.writeable = False
    assert np.array_equal(m.images(frozen, consume=True), want[:, 0])


def test_grid_places_each_image_in_its_cell():
    imgs = np.stack([np.full((3, 4), i * 10, np.uint8) for i in range(5)])
    grid = make_grid(imgs, ncol=2, pad=1)
    assert grid.shape == (3 * 4 + 1, 2 * 5 + 1)
    assert grid[1, 1] == 0 and grid[1, 6] == 10 and grid[5, 1] == 20 and grid[9, 1] == 40
    assert grid[9, 6] == 0  # the empty sixth cell keeps the fill


def test_png_round_trip_and_scale(tmp_path):
    img = (np.arange(12, dtype=np.uint8) * 20).reshape(3, 4)
    save_png(tmp_path / "g.png", img, scale=2)
    back = np.asarray(Image.open(tmp_path / "g.png"))
    assert back.shape == (6, 8) and (back[::2, ::2] == img).all()
    assert oct(os.stat(tmp_path / "g.png").st_mode & 0o777) != oct(0o600)


def test_failed_atomic_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]  # fails mid-write
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
