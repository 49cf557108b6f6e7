"""`gantool sample`: a grid PNG or raw uint8 .npy from any generator file, torch-free."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gantool.errors import GantoolError
from gantool.fileio import atomic_write_bytes, refuse_overwrite
from gantool.images import make_grid, save_png
from gantool.runtime.generator import Generator

OUTPUT_TYPES = (".png", ".npy")
PNG_SCALE = 2


@dataclass(frozen=True)
class SampleResult:
    path: Path
    images: int
    size: tuple[int, ...]  # PNG: (width, height) in pixels of the file; .npy: the array's shape
    ran_on: str = ""  # what the images were computed on, and why (Selection.text)

    def text(self) -> str:
        if self.path.suffix == ".png":
            head = f"wrote {self.path} ({self.images} images; {self.size[0]} x {self.size[1]} pixels)"
        else:
            head = f"wrote {self.path} (uint8 array of shape {' x '.join(map(str, self.size))})"
        return head + (f"\nran on {self.ran_on}" if self.ran_on else "")


def run_sample(model: str | Path, output: str, labels: list[int] | None = None, per_label: int | None = None,
               n: int | None = None, seed: int = 0, engine: str = "auto", **load: Any) -> SampleResult:
    """Generator.grid_images(labels, per_label, n, seed) into a PNG grid or an .npy file."""
    out = Path(output)
    if out.suffix not in OUTPUT_TYPES:
        raise GantoolError(f"-o {output}: unknown output type {out.suffix or '(none)'}; allowed: "
                           f"{', '.join(OUTPUT_TYPES)}.")
    refuse_overwrite({"-o": out}, {"--model": model})
    with Generator.load(model, engine=engine, **load) as g:
        images, ncol = g.grid_images(labels, per_label, n, seed)
        ran_on = g.selection.text(len(images))
    if out.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, images)
        atomic_write_bytes(out, buf.getvalue())
        return SampleResult(out, len(images), images.shape, ran_on)
    return SampleResult(out, len(images), save_png(out, make_grid(images, ncol=ncol), scale=PNG_SCALE), ran_on)
