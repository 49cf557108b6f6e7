"""Shared fixtures: the MNIST copy beside the project, an IDX writer, and GPU/TensorRT markers that skip
with a reason. Tests take what they need from here as fixtures; nothing imports this module."""

from __future__ import annotations

import gzip
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("GANTOOL_TEST_DATA", ROOT.parent / "shared" / "data" / "mnist"))


# The runtime tunes each model once per machine on its first load (runtime/tune.py): seconds of timing
# that would land in whichever test loads a model first, and make its backend depend on the load at that
# moment. Tests get the untuned default; tests/runtime/test_tune.py turns tuning on where it is the subject.
os.environ.setdefault("GANTOOL_TUNE", "off")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    has_cuda = False
    if importlib.util.find_spec("torch") is not None:
        import torch

        has_cuda = torch.cuda.is_available()
    has_trt = importlib.util.find_spec("tensorrt") is not None
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU; none is visible to torch on this machine"))
        if "trt" in item.keywords and not has_trt:
            item.add_marker(pytest.mark.skip(reason="needs TensorRT (the `trt` extra); it is not installed here"))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"MNIST not found at {MNIST_DIR}; tests read it from ../shared/data/mnist "
                    f"(or set GANTOOL_TEST_DATA).")
    return MNIST_DIR


def _write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write a uint8 array in IDX layout (gzip when compress), as MNIST ships it."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data, compresslevel=1))
    else:
        path.write_bytes(data)
    return path


@pytest.fixture(scope="session")
def write_idx() -> Callable[..., Path]:
    """write_idx(path, array, compress=True) -> the path written (path + ".gz" when compressed)."""
    return _write_idx


@pytest.fixture(scope="session")
def small_mnist(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    """The first 4096 MNIST training and 2000 test images, as their own IDX dataset: fast runs."""
    from gantool.train.data import load_split

    d = tmp_path_factory.mktemp("small_mnist")
    for split_name, prefix, n in (("train", "train", 4096), ("test", "t10k", 2000)):
        split = load_split(mnist_dir, split_name)
        _write_idx(d / f"{prefix}-images-idx3-ubyte", split.images[:n])
        _write_idx(d / f"{prefix}-labels-idx1-ubyte", split.labels[:n].astype(np.uint8))
    return d


@pytest.fixture(scope="session")
def export_file():
    """export_onnx's in-memory graph written to a path: (path, metadata), for tests of the fp32 graph alone."""
    from gantool.export.onnx import export_onnx

    def write(spec, g, path, **kw):
        model, meta = export_onnx(spec, g, **kw)
        Path(path).write_bytes(model.SerializeToString())
        return Path(path), meta

    return write
