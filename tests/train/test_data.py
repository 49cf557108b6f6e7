import gzip

import numpy as np
import pytest

from gantool.errors import DataError
from gantool.train.data import load_split, read_idx, resolve_data_dir
from gantool.train.zoo import build_spec


def test_reads_shared_mnist(mnist_dir):
    train, test = load_split(mnist_dir, "train"), load_split(mnist_dir, "test")
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    assert train.info.num_classes == 10 and train.info.image_size == 28
    assert np.bincount(test.labels).min() > 800  # every digit present
    assert len(train.info.files["train-images-idx3-ubyte.gz"]) == 64  # sha256 recorded for the model card


def test_raw_and_gzip_give_the_same_array(tmp_path, write_idx):
    a = np.arange(2 * 5 * 5, dtype=np.uint8).reshape(2, 5, 5)
    raw = write_idx(tmp_path / "r-idx3-ubyte", a, compress=False)
    gz = write_idx(tmp_path / "g-idx3-ubyte", a, compress=True)
    np.testing.assert_array_equal(read_idx(raw, 3), a)
    np.testing.assert_array_equal(read_idx(gz, 3), a)


def test_torchvision_layout_is_found(tmp_path, write_idx):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((3, 8, 8), np.uint8), compress=False)
    write_idx(raw / "train-labels-idx1-ubyte", np.array([0, 1, 2], np.uint8), compress=False)
    assert load_split(tmp_path).images.shape == (3, 8, 8)


def test_other_idx_dataset_sets_size_and_classes(tmp_path, write_idx):
    """Image size and class count come from the files, not from constants."""
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 255, (40, 16, 16), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", (np.arange(40) % 5).astype(np.uint8))
    split = load_split(tmp_path)
    assert (split.info.num_classes, split.info.image_size) == (5, 16)
    assert build_spec("cgan", split.info).image_size == 16
    assert build_spec("cgan", split.info).num_classes == 5
    assert build_spec("cdcgan", split.info).image_size == 28  # conv archs keep their native size


@pytest.mark.parametrize("case, message", [
    ("missing", "file not found"),
    ("wrong_magic", "wrong magic number"),
    ("truncated_raw", "truncated"),
    ("truncated_gzip", "cannot be read as gzip"),
    ("wrong_rank", "holds a 2-d array"),
    ("count_mismatch", "expected equal counts"),
])
def test_bad_files_get_one_clear_error_naming_the_file(tmp_path, write_idx, case, message):
    imgs = np.zeros((4, 6, 6), np.uint8)
    labels = np.arange(4, dtype=np.uint8)
    img_path = write_idx(tmp_path / "train-images-idx3-ubyte", imgs)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    blob = gzip.decompress(img_path.read_bytes())
    if case == "missing":
        img_path.unlink()
    elif case == "wrong_magic":
        img_path.write_bytes(gzip.compress(b"\x89PNG" + blob[4:]))
    elif case == "truncated_raw":
        img_path.write_bytes(gzip.compress(blob[:-10]))
    elif case == "truncated_gzip":
        img_path.write_bytes(img_path.read_bytes()[:-12])
    elif case == "wrong_rank":
        write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 36), np.uint8))
    elif case == "count_mismatch":
        write_idx(tmp_path / "train-labels-idx1-ubyte", labels[:3])
    with pytest.raises(DataError, match=message) as e:
        load_split(tmp_path)
    assert "train-" in str(e.value) and "\n" not in str(e.value)


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTOOL_DATA", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_dir(tmp_path / "nope")
