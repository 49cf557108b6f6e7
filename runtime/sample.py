"""`gantool sample`: a grid PNG or raw uint8 .npy from any generator file, torch-free."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gantool.errors import GantoolError
from gantool.fileio import atomic_write_bytes, refuse_overwrite
from gantool.images import make_grid, save_gif, save_png
from gantool.runtime.generator import Generator

OUTPUT_TYPES = (".png", ".npy", ".gif")
PNG_SCALE = 2
INTERPOLATION_STEPS = 10  # columns of an interpolation grid (frames of its GIF)
INTERPOLATION_ROWS = 8  # paths in one picture, without --rows or --labels
GIF_COLUMNS = 8  # a GIF frame lays its rows' images out in lines of this many


@dataclass(frozen=True)
class SampleResult:
    path: Path
    images: int
    size: tuple[int, ...]  # PNG: (width, height) in pixels of the file; .npy: the array's shape
    ran_on: str = ""  # what the images were computed on, and why (Selection.text)

    def text(self) -> str:
        if self.path.suffix == ".gif":
            head = f"wrote {self.path} ({self.images} images in {self.size[2]} frames; {self.size[0]} x {self.size[1]} pixels)"
        elif self.path.suffix == ".png":
            head = f"wrote {self.path} ({self.images} images; {self.size[0]} x {self.size[1]} pixels)"
        else:
            head = f"wrote {self.path} (uint8 array of shape {' x '.join(map(str, self.size))})"
        return head + (f"\nran on {self.ran_on}" if self.ran_on else "")


def run_sample(model: str | Path, output: str, labels: list[int] | None = None, per_label: int | None = None,
               n: int | None = None, seed: int = 0, engine: str = "auto", *, truncation: float = 1.0,
               interpolate_z: bool = False, steps: int | None = None, rows: int | None = None,
               interpolate: tuple[int, int] | None = None, **load: Any) -> SampleResult:
    """Generator.grid_images(labels, per_label, n, seed) into a PNG grid or an .npy file; with
    interpolate_z, Generator.interpolate_z into a grid (rows: pairs of z, columns: steps) or a GIF;
    with interpolate=(a, b), Generator.interpolate (rows: one z each, columns: class a to class b)."""
    out = Path(output)
    if out.suffix not in OUTPUT_TYPES:
        raise GantoolError(f"-o {output}: unknown output type {out.suffix or '(none)'}; allowed: "
                           f"{', '.join(OUTPUT_TYPES)}.")
    walk = interpolate_z or interpolate is not None
    if interpolate_z and interpolate is not None:
        raise GantoolError("--interpolate (between classes, z fixed) and --interpolate-z (between noise vectors, "
                           "the label fixed) are two pictures; give one.")
    if not walk:
        if out.suffix == ".gif":
            raise GantoolError(f"-o {output}: a .gif plays an interpolation; add --interpolate A:B or --interpolate-z, "
                               f"or write .png/.npy.")
        given = [o for o, v in (("--steps", steps), ("--rows", rows)) if v is not None]
        if given:
            verb = "apply" if len(given) > 1 else "applies"
            raise GantoolError(f"{' and '.join(given)} {verb} to --interpolate and --interpolate-z only: the option "
                               f"would change nothing.")
    elif n is not None or per_label is not None:
        flag = "--interpolate-z" if interpolate_z else "--interpolate"
        raise GantoolError(f"{flag} lays out rows x --steps images; give --rows{' (and --labels)' if interpolate_z else ''}"
                           f", not --n or --per-label.")
    elif interpolate is not None and labels is not None:
        raise GantoolError("--interpolate A:B names its two classes itself; drop --labels.")
    refuse_overwrite({"-o": out}, {"--model": model})
    if interpolate is not None:  # the label graph only opens the way to its mix graph: nothing to tune
        if load.get("precision", "fp32") != "fp32":
            raise GantoolError(f"--precision {load['precision']} applies to the label graph; --interpolate runs the "
                               f"class-weight graph, which is fp32 only: drop --precision.")
        load["tune"] = False
    with Generator.load(model, engine=engine, **load) as g:
        if interpolate is not None:
            k = steps or INTERPOLATION_STEPS
            images, ncol = g.interpolate(*interpolate, k, seed, rows or INTERPOLATION_ROWS, truncation), k
            mix = g.mix_backend()
            ran_on = f"{mix.name} fp32 {Path(mix.source).name} (the class-weight graph)"
        elif walk:
            count = len(labels) if labels and rows is None else rows or INTERPOLATION_ROWS
            k = steps or INTERPOLATION_STEPS
            images, ncol = g.interpolate_z(k, count, seed, labels, truncation), k
        else:
            images, ncol = g.grid_images(labels, per_label, n, seed, truncation)
        if interpolate is None:
            ran_on = g.selection.text(len(images))
    if out.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, images)
        atomic_write_bytes(out, buf.getvalue())
        return SampleResult(out, len(images), images.shape, ran_on)
    if out.suffix == ".gif":  # frame s: every row's image at step s
        per_step = images.reshape(-1, ncol, *images.shape[1:]).swapaxes(0, 1)
        frames = [make_grid(f, ncol=min(len(f), GIF_COLUMNS)) for f in per_step]
        return SampleResult(out, len(images), (*save_gif(out, frames, scale=PNG_SCALE), len(frames)), ran_on)
    return SampleResult(out, len(images), save_png(out, make_grid(images, ncol=ncol), scale=PNG_SCALE), ran_on)
