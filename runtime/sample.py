"""`gantool sample`: a grid PNG or raw uint8 .npy from any generator file or zoo name."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from gantool.errors import GantoolError
from gantool.fileio import atomic_write_bytes
from gantool.runtime.generator import Generator
from gantool.images import make_grid, save_png


def run_sample(model: str, output: str, labels: list[int] | None, per_label: int, n: int, seed: int,
               engine: str = "auto") -> tuple[Path, tuple[int, ...]]:
    out = Path(output)
    if out.suffix not in (".png", ".npy"):
        raise GantoolError(f"-o {output}: unknown output type {out.suffix or '(none)'}; allowed: .png, .npy.")
    with Generator.load(model, engine=engine) as g:
        images, ncol = g.grid_images(labels, per_label, n, seed)
    if out.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, images)
        atomic_write_bytes(out, buf.getvalue())
        return out, images.shape
    grid = make_grid(images, ncol=ncol)
    save_png(out, grid, scale=2)
    return out, grid.shape
