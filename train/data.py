"""MNIST-layout IDX datasets: a strict reader, and where to find the files.

Resolution order: --data-dir, then $GANTOOL_DATA, then ~/.cache/gantool/mnist, then a
torchvision download into that cache (only where the machine is online). Image size and class
count are read from the files, so any dataset in MNIST's IDX layout works the same way.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gantool.errors import DataError
from gantool.spec import DataInfo

if TYPE_CHECKING:
    import torch

IDX_DTYPES: dict[int, type | np.dtype] = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gantool" / "mnist"


def read_idx(path: Path, expect_ndim: int) -> np.ndarray:
    """Read one IDX file (raw or .gz), checking magic, rank and length against the header."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataError(f"{path}: cannot be read as {'gzip' if path.suffix == '.gz' else 'a file'} "
                        f"({_one_line(e)}); expected an IDX file, optionally gzip-compressed.") from None
    expected = f"an IDX file with magic 0x0000{0x08:02x}{expect_ndim:02x} (uint8, {expect_ndim}-d)"
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path}: wrong magic number {raw[:4].hex() or '(empty file)'}; expected {expected}.")
    ndim = raw[3]
    if ndim != expect_ndim:
        raise DataError(f"{path}: holds a {ndim}-d array; expected {expected}.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes); expected {expected}.")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    need = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != need:
        raise DataError(f"{path}: {'truncated' if len(raw) < need else 'has trailing bytes'}: "
                        f"{len(raw)} bytes, but its header {dims} needs {need}.")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(np.uint8 if raw[2] == 0x08 else dtype.newbyteorder("="))


def _one_line(e: BaseException, limit: int = 200) -> str:
    """An exception as one short line: library messages may span several (torchvision's download does)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _find(directory: Path, stem: str) -> Path | None:
    for sub in (directory, directory / "MNIST" / "raw", directory / "raw"):
        for name in (stem + ".gz", stem):
            if (sub / name).is_file():
                return sub / name
    return None


def resolve_data_dir(data_dir: str | os.PathLike | None, download: bool = True) -> Path:
    """Pick the data directory; download MNIST with torchvision only when nothing was given."""
    if data_dir is not None or os.environ.get("GANTOOL_DATA"):
        chosen = Path(data_dir if data_dir is not None else os.environ["GANTOOL_DATA"]).expanduser()
        if not chosen.is_dir():
            raise DataError(f"data directory {chosen} does not exist; expected a folder holding "
                            f"{SPLIT_FILES['train'][0]}[.gz] and the other MNIST-layout IDX files.")
        return chosen
    if _find(DEFAULT_CACHE, SPLIT_FILES["train"][0]) is None and download:
        _download_mnist(DEFAULT_CACHE)
    return DEFAULT_CACHE


def shown_dir(data_dir: str | os.PathLike | None) -> str:
    """The data folder as a user would type it in a command that a message suggests."""
    return str(data_dir) if data_dir is not None else str(resolve_data_dir(None, download=False))


def _download_mnist(root: Path) -> None:
    try:
        from torchvision.datasets import MNIST

        root.mkdir(parents=True, exist_ok=True)
        MNIST(str(root), train=True, download=True)
        MNIST(str(root), train=False, download=True)
    except Exception as e:  # noqa: BLE001  (offline, torchvision missing: any failure means "no download")
        raise DataError(f"no MNIST found in {root} and the torchvision download failed "
                        f"({type(e).__name__}: {_one_line(e)}).",
                        note="pass --data-dir (or set GANTOOL_DATA) to a folder with the MNIST IDX files.") from None


def prepare_images(images: np.ndarray, size: int) -> torch.Tensor:  # torch only here: the reader is numpy
    """(N, H, W) uint8 -> (N, 1, size, size) uint8: what a model of that size trains on (bilinear, as the
    seeds did, rounded back to uint8). Evaluation takes real test images through this same function,
    so that its reference for a 64x64 model is the data that model learned."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(images).unsqueeze(1)
    if x.shape[-1] == size:
        return x.contiguous()
    chunks = [F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
              .round().clamp(0, 255).to(torch.uint8) for c in x.split(4096)]
    return torch.cat(chunks)


@dataclass
class Split:
    images: np.ndarray  # (N, H, W) uint8
    labels: np.ndarray  # (N,) int64
    info: DataInfo

    def digest(self) -> str:
        """sha256 of the decoded arrays, not of the files: a gzipped and an unpacked copy, or two
        rebuilds of one dataset, are the same data when their pixels and labels match."""
        h = hashlib.sha256(f"{self.images.shape} {self.labels.shape}".encode())
        h.update(np.ascontiguousarray(self.images, dtype=np.uint8).tobytes())
        h.update(np.ascontiguousarray(self.labels, dtype="<i8").tobytes())
        return h.hexdigest()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_files(data_dir: str | os.PathLike | None) -> dict[str, Path]:
    """The dataset files a command would read, found without downloading or validating anything:
    what an output path must not replace (gantool.fileio.refuse_overwrite)."""
    try:
        directory = resolve_data_dir(data_dir, download=False)
    except DataError:
        return {}
    found = {}
    for stems in SPLIT_FILES.values():
        for stem in stems:
            p = _find(directory, stem)
            if p is not None:
                found[f"--data-dir file {p.name}"] = p
    return found


def load_split(data_dir: str | os.PathLike | None, split: str = "train", download: bool = True) -> Split:
    """Load one split, validated: images and labels agree in count, labels are 0..K-1."""
    if split not in SPLIT_FILES:
        raise DataError(f"unknown split {split!r}; allowed: {', '.join(SPLIT_FILES)}.")
    directory = resolve_data_dir(data_dir, download)
    paths = []
    for stem in SPLIT_FILES[split]:
        p = _find(directory, stem)
        if p is None:
            raise DataError(f"{directory / (stem + '.gz')}: file not found; expected {stem}[.gz] "
                            f"in {directory} (or its MNIST/raw/ subfolder).")
        paths.append(p)
    images = read_idx(paths[0], 3)
    labels = read_idx(paths[1], 1).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels; "
                        f"expected equal counts.")
    if len(labels) == 0:
        raise DataError(f"{paths[0]}: holds no images; expected at least one image and label.")
    if labels.min() < 0:
        raise DataError(f"{paths[1]}: labels must be non-negative class indices; found min {labels.min()}.")
    if images.shape[1] != images.shape[2] or images.shape[1] < 1:
        raise DataError(f"{paths[0]}: images are {images.shape[1]}x{images.shape[2]}; expected square images of at "
                        f"least 1x1 pixels.")
    info = DataInfo(num_classes=int(labels.max()) + 1, image_size=int(images.shape[1]), channels=1,
                    name=directory.name, files={p.name: sha256(p) for p in paths})
    return Split(images=images, labels=labels, info=info)
