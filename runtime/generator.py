"""`Generator`: what apps embed. Load an exported generator, sample uint8 images.

Everything it needs (latent size, class count, image shape, output range, noise distribution)
comes from the file's own metadata: the ONNX metadata_props or a TensorRT plan's sidecar. It never
imports torch or onnx; noise comes from gantool.noise, so a seed gives the images `gantool eval`
and every backend give, within the precision's tolerance.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from gantool.errors import GantoolError
from gantool.noise import fresh_noise, make_noise
from gantool.paths import cached_onnx, shipped_onnx
from gantool.runtime.backends.base import Backend, infer_split
from gantool.images import Uint8Map, make_grid, save_png
from gantool.spec import ZOO_NAMES, ModelSpec

DEFAULT_MAX_N = 65536
ORT_TRT_MAX_BATCH = 1024  # the TensorRT provider's profile: batch 1..1024, larger requests are split
ENGINES = ("auto", "ort", "ort-cuda", "ort-trt", "trt", "openvino")


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
        raise SampleError(f"{name!r} is neither a file nor a zoo model; allowed: a .onnx or .plan file, or one of "
                          f"{', '.join(ZOO_NAMES)}.")
    if shipped_onnx(name).is_file():
        return shipped_onnx(name)
    cached = cached_onnx(name)
    if not cached.is_file():
        raise ModelNotCached(name, cached)
    return cached


def read_onnx_metadata(session: Any) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)


def spec_from_metadata(meta: dict[str, str], source: str) -> ModelSpec:
    if "gantool.spec" not in meta:
        raise SampleError(f"{source} is not a gantool generator: it has no gantool.* metadata.",
                          note="export generators with gantool export; it writes the metadata the runtime reads.")
    try:
        return ModelSpec.from_dict(json.loads(meta["gantool.spec"]))
    except (ValueError, TypeError, KeyError) as e:
        raise SampleError(f"{source} has unreadable gantool metadata ({e}).") from None


def onnx_spec(path: str | Path) -> ModelSpec:
    """The spec an ONNX generator declares, read through a CPU session (no onnx package needed)."""
    from gantool.runtime.backends.ort import OrtBackend

    with OrtBackend(path) as probe:
        return spec_from_metadata(read_onnx_metadata(probe.session), str(path))


def input_dims(spec: ModelSpec) -> dict[str, int]:
    """Input name -> per-sample size: z's latent size, 0 for the scalar label."""
    return {"z": spec.latent_dim, **({"labels": 0} if spec.conditional else {})}


def open_backend(path: Path, engine: str = "auto", threads: int | None = None) -> tuple[Backend, ModelSpec]:
    """The backend for a file, activated, and the spec its metadata declares."""
    if engine not in ENGINES:
        raise SampleError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}.")
    if path.suffix == ".plan":
        if engine not in ("auto", "trt"):
            raise SampleError(f"{path} is a TensorRT engine; it runs only with engine trt, not {engine}.")
        from gantool.runtime.backends.trt import TrtBackend, read_sidecar

        spec = spec_from_metadata(read_sidecar(path).get("metadata", {}), str(path))
        backend: Backend = TrtBackend(path)
    elif path.suffix == ".onnx":
        from gantool.paths import cache_dir
        from gantool.runtime.backends.ort import ACTIVATION_KEY, OrtBackend, cpu_chunk, trt_provider_options
        from gantool.runtime.ort import import_onnxruntime

        if engine == "trt":
            raise SampleError(f"engine trt runs .plan files; build one with gantool build --model {path}.")
        if engine == "openvino":
            from gantool.runtime.backends.openvino import OpenVinoBackend

            backend = OpenVinoBackend(path, threads)
            backend.activate()
            return backend, onnx_spec(path)
        if engine == "auto":
            engine = "ort-cuda" if "CUDAExecutionProvider" in import_onnxruntime().get_available_providers() else "ort"
        options = None
        if engine == "ort-trt":  # explicit profile shapes and a persistent engine cache
            options = trt_provider_options(cache_dir() / "ort-trt", input_dims(onnx_spec(path)), ORT_TRT_MAX_BATCH)
        backend = OrtBackend(path, engine=engine, threads=threads, provider_options=options)
        if engine == "ort-trt":
            backend.max_batch = ORT_TRT_MAX_BATCH
    else:
        raise SampleError(f"{path} is not a gantool generator file; allowed: .onnx (gantool export) or .plan "
                          f"(gantool build).")
    backend.activate()
    if path.suffix == ".onnx":
        meta = read_onnx_metadata(backend.session)  # type: ignore[attr-defined]
        spec = spec_from_metadata(meta, str(path))
        if engine == "ort":
            backend.chunk = cpu_chunk(int(meta.get(ACTIVATION_KEY, "0")))
    return backend, spec


class Generator:
    """Thread-safe: backends run concurrent calls (ORT sessions are re-entrant; a TensorRT context is
    locked), and sample() keeps no state between calls."""

    def __init__(self, backend: Backend, spec: ModelSpec, max_n: int = DEFAULT_MAX_N, source: str = "") -> None:
        self.backend, self.spec, self.max_n, self.source = backend, spec, max_n, source
        self.to_uint8 = Uint8Map(*spec.output_range)  # the spec's output range -> gray levels

    @classmethod
    def load(cls, model: str | Path, engine: str = "auto", threads: int | None = None,
             max_n: int = DEFAULT_MAX_N) -> "Generator":
        """model: a .onnx or .plan file, or a zoo name (gan, cgan, cdcgan, cwgan ship as ONNX)."""
        if not (isinstance(max_n, int) and max_n >= 1):
            raise SampleError(f"max_n must be an integer >= 1, got {max_n!r}.")
        path = resolve_model(model)
        backend, spec = open_backend(path, engine, threads)
        return cls(backend, spec, max_n, str(path))

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

    def inputs(self, n: int | None = None, labels: Any = None, seed: int | None = None,
               z: Any = None) -> dict[str, np.ndarray]:
        """The validated feeds: z from the project's noise (or given), labels cycled 0..K-1 by default."""
        y = None if labels is None else self.check_labels(labels)
        if y is not None:
            count = self._count(len(y)) if n is None else self._count(n)
            if count != len(y):
                raise SampleError(f"n={count} but {len(y)} labels were given; give one label per image.")
        elif z is not None:
            count = self._count(n if n is not None else len(np.asarray(z)) if np.ndim(z) == 2 else 0)
        else:
            count = self._count(1 if n is None else n)
        if z is None and seed is None:
            zz = fresh_noise(count, self.spec.latent_dim, self.spec.noise)  # no seed to replay: no PCG64 to build
        elif z is None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise SampleError(f"seed must be a non-negative integer, got {seed!r}.")
            zz = make_noise(int(seed), count, self.spec.latent_dim, self.spec.noise)
        else:
            zz = np.asarray(z)
            if zz.shape != (count, self.spec.latent_dim):
                raise SampleError(f"z must have shape ({count}, {self.spec.latent_dim}), got {zz.shape}.")
            # a sum is finite only if every element is (NaN and inf propagate); overflow falls through
            if zz.dtype.kind != "f" or not (math.isfinite(zz.sum()) or np.all(np.isfinite(zz))):
                raise SampleError("z must be finite floats (no NaN or inf).")
            zz = np.ascontiguousarray(zz, dtype=np.float32)
        feeds = {"z": zz}
        if self.spec.conditional:
            feeds["labels"] = y if y is not None else np.arange(count, dtype=np.int64) % self.spec.num_classes
        return feeds

    # --- sampling ---------------------------------------------------------------------------------
    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Raw float output (N, C, H, W), split into the engine's max batch."""
        return infer_split(self.backend, feeds)

    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        """Raw output (N, C, H, W) -> uint8 images (N, H, W), or (N, H, W, C) for color."""
        return self.to_uint8.images(raw)

    def sample(self, n: int | None = None, labels: Any = None, seed: int | None = None, z: Any = None) -> np.ndarray:
        """uint8 images (N, H, W) (or (N, H, W, C) for color). Conditional models without labels
        cycle 0..K-1, as `gantool eval` does, so a seed gives the same images there."""
        return self.to_uint8.images(self.run(self.inputs(n, labels, seed, z)))

    def grid_images(self, labels: Any = None, per_label: int = 8, n: int = 64,
                    seed: int | None = None) -> tuple[np.ndarray, int]:
        """The images of a grid and its column count: one row per label (conditional), else rows of 8."""
        if self.spec.conditional:
            rows = self.check_labels(range(self.spec.num_classes) if labels is None else labels)
            return self.sample(labels=np.repeat(rows, per_label), seed=seed), per_label
        if labels is not None:
            self.check_labels(labels)  # raises: unconditional models take no labels
        return self.sample(n=n, seed=seed), min(8, n)

    def grid(self, labels: Any = None, per_label: int = 8, n: int = 64, seed: int | None = None) -> np.ndarray:
        """A uint8 grid image (see grid_images)."""
        return make_grid(*self.grid_images(labels, per_label, n, seed))

    def save_grid(self, path: str | Path, scale: int = 2, **kw: Any) -> Path:
        save_png(path, self.grid(**kw), scale=scale)
        return Path(path)

    def close(self) -> None:
        self.backend.deactivate()

    def __enter__(self) -> "Generator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Generator({self.spec.arch}, {self.backend.name}, {self.source})"
