"""`Generator`: what apps embed. Load an exported generator, sample uint8 images.

Everything it needs (latent size, class count, image shape, output range, noise distribution)
comes from the file's own metadata, read and checked through gantool.contract by the backend that
opened it. It never imports torch, onnx, gantool.train or gantool.export; noise comes from
gantool.noise, so a seed gives the images `gantool eval` and every backend give, within the
precision's tolerance.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from gantool.contract import (
    CLASS_WEIGHTS,
    GRID_COLUMNS,
    GRID_IMAGES,
    MAX_BATCH,
    Z_LIMIT,
    GeneratorContract,
    Z,
    check_class_weights,
    class_path,
    grid_columns,
    grid_labels,
)
from gantool.errors import GantoolError
from gantool.images import Uint8Map, make_grid, save_png
from gantool.noise import check_truncation, fresh_noise, latent_path, make_noise
from gantool.paths import cached_onnx, shipped_onnx
from gantool.runtime.backends import ENGINES, Backend, infer_split, open_backend
from gantool.runtime.select import Selection, select
from gantool.runtime.tune import TUNE_ENV, Progress
from gantool.runtime.variants import MIX_TAG, VARIANT_TAGS, variant_name
from gantool.spec import ZOO_NAMES

DEFAULT_MAX_N = MAX_BATCH

__all__ = ["ENGINES", "Generator", "ModelNotCached", "SampleError", "resolve_model"]


class SampleError(GantoolError, ValueError):
    """Bad input to load() or sample(): a ValueError for apps, one clear line for the CLI."""


class ModelNotCached(SampleError):
    """A 64x64 zoo model has no ONNX in the cache yet; filling it is an export step, above the runtime."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        super().__init__(f"{name} does not ship as ONNX (its 64x64 export is large) and is not in the cache "
                         f"({path}).", note=f"fill the cache once with: gantool export --model {name} --to-cache "
                                            f"(needs the train and export extras), or pass an exported .onnx file.")


def resolve_model(name_or_path: str | Path) -> Path:
    """A file path as is; a zoo name to its shipped ONNX (28x28 models) or its cached export (64x64)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    name = str(name_or_path)
    if name not in ZOO_NAMES:
        raise SampleError(f"{name!r} is neither a file nor a zoo model; allowed: a .onnx, .ort or .plan file, or one of "
                          f"{', '.join(ZOO_NAMES)}.")
    if shipped_onnx(name).is_file():
        return shipped_onnx(name)
    cached = cached_onnx(name)
    if not cached.is_file():
        raise ModelNotCached(name, cached)
    return cached


class Generator:
    """Thread-safe: backends run concurrent calls (ORT sessions are re-entrant; a TensorRT context is
    locked), and sample() keeps no state between calls."""

    def __init__(self, backend: Backend | Selection, max_n: int = DEFAULT_MAX_N) -> None:
        self.selection = backend if isinstance(backend, Selection) else Selection({1: backend}, "pinned", "fp32")
        self.backend, self.max_n = self.selection.primary, max_n
        self.metadata = self.backend.generator_metadata()  # validated against the backend's own graph
        self.spec, self.contract = self.metadata.spec, self.metadata.contract
        self.source = self.backend.source
        self.to_uint8 = Uint8Map(*self.spec.output_range)  # the spec's output range -> gray levels
        self._mix: Backend | None = None  # NAME.mix.onnx, opened on the first class-weight request
        self._mix_lock = threading.Lock()

    @classmethod
    def load(cls, model: str | Path, engine: str = "auto", threads: int | None = None,
             max_n: int = DEFAULT_MAX_N, precision: str = "fp32", tune: bool | None = None,
             progress: Progress | None = None, retune: bool = False) -> "Generator":
        """model: a .onnx, .ort or .plan file, or a zoo name (gan, cgan, cdcgan, cwgan ship as ONNX; dcgan and
        cgan-in are read from the cache that `gantool export --model NAME --to-cache` fills).

        precision: fp32 (exact, the default), auto (any variant validated at export), bf16 or int8.
        On the CPU, engine="auto" with no thread count picks the fastest candidate per batch size once per
        machine and caches it (runtime/tune.py); tune=False (or GANTOOL_TUNE=off) keeps the default,
        and a pinned engine, thread count or reduced precision skips tuning; retune=True measures again."""
        if isinstance(max_n, bool) or not isinstance(max_n, int) or not 1 <= max_n <= MAX_BATCH:
            raise SampleError(f"max_n must be an integer in 1..{MAX_BATCH}, got {max_n!r}.")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise SampleError(f"threads must be an integer >= 1 (or None for all cores), got {threads!r}.")
        if tune is not None and not isinstance(tune, bool):
            raise SampleError(f"tune must be True, False or None (the {TUNE_ENV} setting), got {tune!r}.")
        if progress is not None and not callable(progress):
            raise SampleError(f"progress must be a callable (what, done, total) or None, got {progress!r}.")
        return cls(select(resolve_model(model), engine, threads, precision, tune, progress, retune), max_n)

    @property
    def precision(self) -> str:
        """What sampling computes in: one precision, or several joined by "+" when the tuned routes differ
        by batch size (precision="auto"); `precisions` has them per batch size."""
        return "+".join(sorted(set(self.precisions.values())))

    @property
    def precisions(self) -> dict[int, str]:
        """Tuned batch size -> the precision its route computes in (bf16: OpenVINO on an fp32 file)."""
        return self.selection.precisions()

    @property
    def choice(self) -> dict[str, Any]:
        """Which backend serves which batch size, and why (pinned, default, cached or tuned)."""
        return self.selection.describe()

    @property
    def conditional(self) -> bool:
        return self.spec.conditional

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    # --- input checks ---------------------------------------------------------------------------
    def check_labels(self, labels: Any) -> np.ndarray:
        if not self.spec.conditional:
            raise SampleError(f"{self.spec.arch} is unconditional; it takes no labels (pass n instead).")
        arr = np.asarray(labels)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise SampleError(f"labels must be a 1-D sequence of integers, got shape {arr.shape}.")
        if arr.dtype.kind not in "iu":
            if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)  # 3.0 is the label 3
            else:
                raise SampleError(f"labels must be integers in 0..{self.spec.num_classes - 1}, got dtype {arr.dtype}.")
        arr = arr.astype(np.int64, copy=False)
        # viewed unsigned, a negative label is huge: one max instead of min and max; for a few labels a
        # Python max of the list is 10x cheaper than a numpy reduction (~0.1 against ~1 us)
        unsigned = arr.view(np.uint64)
        if arr.size and (max(unsigned.tolist()) if arr.size <= 32 else unsigned.max()) >= self.spec.num_classes:
            bad = arr[(arr < 0) | (arr >= self.spec.num_classes)][0]
            raise SampleError(f"label {bad} is out of range; allowed: 0..{self.spec.num_classes - 1}.")
        return arr

    def _count(self, n: Any) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise SampleError(f"n must be an integer, got {n!r}.")
        if not 1 <= n <= self.max_n:
            raise SampleError(f"n must be in 1..{self.max_n}, got {n}.")
        return int(n)

    def check_truncation(self, truncation: Any) -> float:
        try:
            return check_truncation(truncation)
        except ValueError as e:
            raise SampleError(f"{e}.") from None

    def check_class_weights(self, class_weights: Any) -> np.ndarray:
        if not self.spec.conditional:
            raise SampleError(f"{self.spec.arch} is unconditional; it takes no class weights (pass n instead).")
        try:
            return check_class_weights(class_weights, self.spec.num_classes)
        except ValueError as e:
            raise SampleError(f"{e}.") from None

    def inputs(self, n: int | None = None, labels: Any = None, seed: int | None = None,
               z: Any = None, truncation: float = 1.0, class_weights: Any = None) -> dict[str, np.ndarray]:
        """The validated feeds: z from the project's noise (or given), labels cycled 0..K-1 by default;
        class_weights (n, K) instead of labels feed the mix graph."""
        t = self.check_truncation(truncation)
        if z is not None and t != 1:
            raise SampleError("truncation applies to the noise gantool draws; given z is used as it is (pass seed).")
        if class_weights is not None:
            if labels is not None:
                raise SampleError("give labels or class_weights, not both (a one-hot row is its label).")
            w = self.check_class_weights(class_weights)
            count = self._count(len(w))
            if n is not None and self._count(n) != count:
                raise SampleError(f"n={n} but {count} rows of class weights were given; give one row per image.")
            return GeneratorContract(self.spec, CLASS_WEIGHTS).feeds(self._noise(count, seed, z, t), w)
        y = None if labels is None else self.check_labels(labels)
        if y is not None:
            count = self._count(len(y)) if n is None else self._count(n)
            if count != len(y):
                raise SampleError(f"n={count} but {len(y)} labels were given; give one label per image.")
        elif z is not None:
            count = self._count(n if n is not None else len(np.asarray(z)) if np.ndim(z) == 2 else 0)
        else:
            count = self._count(1 if n is None else n)
        return self.contract.feeds(self._noise(count, seed, z, t),
                                   y if y is not None else self.contract.default_labels(count))

    def _noise(self, count: int, seed: int | None, z: Any, t: float) -> np.ndarray:
        """z for `count` images: the seed's noise, fresh noise without a seed, or the given z, checked."""
        if z is None and seed is None:
            zz = fresh_noise(count, self.spec.latent_dim, self.spec.noise, t)  # no seed to replay: no PCG64 to build
        elif z is None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise SampleError(f"seed must be a non-negative integer, got {seed!r}.")
            zz = make_noise(int(seed), count, self.spec.latent_dim, self.spec.noise, t)
        else:
            zz = np.asarray(z)
            if zz.shape != (count, self.spec.latent_dim):
                raise SampleError(f"z must have shape ({count}, {self.spec.latent_dim}), got {zz.shape}.")
            # one reduction (0.9 us at batch 1): the sum of squares is NaN or inf if any value is, and past
            # the bound for values that would overflow inside the net (3e38 draws garbage, not a digit)
            if zz.dtype.kind != "f" or not np.vdot(zz, zz) <= Z_LIMIT * Z_LIMIT * zz.size:
                raise SampleError(f"z must be finite floats with a root mean square of at most {Z_LIMIT:g} "
                                  f"(the noise is N(0, 1) or U[-1, 1)).")
            zz = np.ascontiguousarray(zz, dtype=np.float32)
        return zz

    # --- sampling ---------------------------------------------------------------------------------
    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Raw float output (N, C, H, W), split into the engine's max batch; class-weight feeds run on
        the mix graph."""
        if CLASS_WEIGHTS in feeds and self.contract.condition != CLASS_WEIGHTS:
            return infer_split(self.mix_backend(), feeds)
        return infer_split(self.selection.backend_for(len(feeds[Z])), feeds)

    def mix_path(self) -> Path:
        """Where this model's class-weight graph is: the file itself when it is one, else NAME.mix.onnx
        beside the base file of its family."""
        source = Path(self.source)
        if self.contract.condition == CLASS_WEIGHTS:
            return source
        stem = source.stem
        for tag in VARIANT_TAGS:
            stem = stem.removesuffix(f".{tag}")
        mix = source.with_name(variant_name(stem, MIX_TAG))
        return mix.with_suffix(".ort") if source.suffix == ".ort" else mix  # a .plan's is the .mix.onnx beside it

    def mix_backend(self) -> Backend:
        """The mix graph's backend, opened once (thread-safe), after checking it is this same model."""
        if self.contract.condition == CLASS_WEIGHTS:
            return self.backend
        with self._mix_lock:
            if self._mix is None:
                self._mix = self._open_mix()
            return self._mix

    def _open_mix(self) -> Backend:
        path = self.mix_path()
        hint = (f"gantool export --model {self.spec.arch} --format ort -o {path.parent}/ writes it with the rest"
                if path.suffix == ".ort" else
                f"gantool export --model {self.spec.arch} --mix -o {path.parent}/ writes it (or --variants, the "
                f"whole family); Generator.load() of a .mix.onnx file takes labels and class weights alike.")
        if not path.is_file():
            raise SampleError(f"class weights need the class-weight graph {path.name}, which is not beside "
                              f"{Path(self.source).name}.", note=hint)
        engine = "auto" if self.backend.engine == "trt" else self.backend.engine  # a .plan: ONNX Runtime beside it
        mix = open_backend(path, engine, self.backend.threads)
        meta = mix.generator_metadata()
        same = meta.family is not None and meta.family == self.metadata.family and meta.spec == self.spec
        if meta.condition != CLASS_WEIGHTS or not same:
            mix.deactivate()
            why = "takes no class weights" if meta.condition != CLASS_WEIGHTS else (
                f"is another model (family {meta.family}, not {self.metadata.family})")
            raise SampleError(f"{path.name} {why}: it cannot stand in for {Path(self.source).name}.", note=hint)
        return mix

    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        """Raw output (N, C, H, W) -> uint8 images (N, H, W), or (N, H, W, C) for color."""
        return self.to_uint8.images(raw)

    def sample(self, n: int | None = None, labels: Any = None, seed: int | None = None, z: Any = None,
               truncation: float = 1.0, class_weights: Any = None) -> np.ndarray:
        """uint8 images (N, H, W) (or (N, H, W, C) for color). Conditional models without labels
        cycle 0..K-1, as `gantool eval` does, so a seed gives the same images there. truncation < 1
        trades diversity for fidelity (gantool.noise: the central share t of each z coordinate).
        class_weights (N, K): each row a mix of classes (non-negative, summing to 1), run on the
        model's mix graph (NAME.mix.onnx); a one-hot row gives its label's image."""
        # run() returns a fresh array (every backend copies out of its engine), so uint8 may reuse it
        return self.to_uint8.images(self.run(self.inputs(n, labels, seed, z, truncation, class_weights)), consume=True)

    def interpolate(self, a: int, b: int, steps: int = 10, seed: int | None = None, rows: int = 1,
                    truncation: float = 1.0) -> np.ndarray:
        """uint8 images (rows * steps, ...), row by row: each row one z of the seed's noise, its class
        weights moving from class a to class b in `steps` (both ends included: the first column is a's
        image, the last b's)."""
        if not self.spec.conditional:
            raise SampleError(f"{self.spec.arch} is unconditional: class interpolation needs a conditional model "
                              f"(a noise walk, interpolate_z / --interpolate-z, works for any).")
        steps, rows = self._positive(steps, "steps", 2), self._positive(rows, "rows", 1)
        ends = self.check_labels([a, b])
        if ends[0] == ends[1]:
            raise SampleError(f"the two classes are both {ends[0]}: nothing would change along the path; give two "
                              f"different classes.")
        self._per_call(rows, steps)
        z = self._noise(rows, seed, None, self.check_truncation(truncation))
        weights = np.tile(class_path(int(ends[0]), int(ends[1]), steps, self.spec.num_classes), (rows, 1))
        return self.sample(z=np.repeat(z, steps, axis=0), class_weights=weights)

    def interpolate_z(self, steps: int = 10, rows: int = 1, seed: int | None = None, labels: Any = None,
                      truncation: float = 1.0) -> np.ndarray:
        """uint8 images (rows * steps, ...), row by row: row r walks from z_2r to z_2r+1 of the seed's
        noise in `steps` (both ends included), on the great circle for Gaussian z and the straight line
        for uniform z. Each row holds its label fixed: `labels` one for all rows or one per row
        [default: rows cycle 0..K-1]."""
        steps, rows = self._positive(steps, "steps", 2), self._positive(rows, "rows", 1)
        self._per_call(rows, steps)
        y = None
        if labels is not None or self.spec.conditional:
            per_row = self.check_labels(np.arange(rows) % self.spec.num_classes if labels is None else labels)
            if len(per_row) not in (1, rows):
                raise SampleError(f"give one label for every row or one per row ({rows}), got {len(per_row)}.")
            y = np.repeat(np.broadcast_to(per_row, (rows,)), steps)
        ends = self._noise(2 * rows, seed, None, self.check_truncation(truncation))
        z = np.concatenate([latent_path(ends[2 * r], ends[2 * r + 1], steps, self.spec.noise) for r in range(rows)])
        return self.sample(z=z, labels=y)

    def _per_call(self, rows: int, steps: int) -> None:
        if rows * steps > self.max_n:
            raise SampleError(f"rows x steps = {rows} x {steps} = {rows * steps:,} images; allowed: at most "
                              f"{self.max_n:,} per call.")

    @staticmethod
    def _positive(value: Any, name: str, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise SampleError(f"{name} must be an integer >= {low}, got {value!r}.")
        return int(value)

    def grid_images(self, labels: Any = None, per_label: int | None = None, n: int | None = None,
                    seed: int | None = None, truncation: float = 1.0) -> tuple[np.ndarray, int]:
        """The images of a grid and its column count. Conditional: `labels` gives one image each, or
        `per_label` images each in a row per label (every class, GRID_COLUMNS each, by default); `n` gives
        n images with labels cycled. Unconditional: n images (GRID_IMAGES by default) in rows of 8."""
        if not self.spec.conditional:
            if labels is not None:
                self.check_labels(labels)  # raises: unconditional models take no labels
            if per_label is not None:
                raise SampleError(f"{self.spec.arch} is unconditional; per_label needs a conditional model (pass n).")
            count = self._count(GRID_IMAGES if n is None else n)
            return self.sample(n=count, seed=seed, truncation=truncation), grid_columns(False, n=count)
        if n is not None:
            if labels is not None or per_label is not None:
                raise SampleError("give either n (labels cycled 0..K-1) or labels / per_label, not both.")
            return self.sample(n=n, seed=seed, truncation=truncation), GRID_COLUMNS
        rows = self.check_labels(range(self.spec.num_classes) if labels is None else labels)
        per = (GRID_COLUMNS if labels is None else 1) if per_label is None else per_label
        if isinstance(per, bool) or not isinstance(per, (int, np.integer)) or per < 1:
            raise SampleError(f"per_label must be an integer >= 1, got {per!r}.")
        self._count(len(rows) * int(per))  # before allocating
        return (self.sample(labels=grid_labels(rows, int(per)), seed=seed, truncation=truncation),
                int(per) if per > 1 else GRID_COLUMNS)

    def grid(self, labels: Any = None, per_label: int | None = None, n: int | None = None,
             seed: int | None = None, truncation: float = 1.0) -> np.ndarray:
        """A uint8 grid image (see grid_images)."""
        return make_grid(*self.grid_images(labels, per_label, n, seed, truncation))

    def save_grid(self, path: str | Path, scale: int = 2, **kw: Any) -> Path:
        save_png(path, self.grid(**kw), scale=scale)
        return Path(path)

    def close(self) -> None:
        self.selection.close()
        if self._mix is not None:
            self._mix.deactivate()

    def __enter__(self) -> "Generator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Generator({self.spec.arch}, {self.backend.name}, {self.source})"
