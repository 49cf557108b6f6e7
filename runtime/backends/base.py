"""The interface every engine implements, so the Generator, parity and bench treat them alike.

As in Polygraphy's runners, the base class owns the lifecycle: `activate()` runs the engine's
`_activate()` once and sets `active`; `deactivate()` runs `_deactivate()`. A backend opens itself
from a file and, when asked for `generator_metadata()`, reads its own metadata through the contract
and checks it against the graph it loaded, so no caller re-reads a file or sets a backend's limits.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any, Mapping

import numpy as np

from gantool.contract import Z, GeneratorMetadata, TensorSpec, read_metadata
from gantool.errors import GantoolError


class ModelLoadError(GantoolError, ValueError):
    """An engine could not load a file: corrupt, truncated, or not a model (a ValueError for apps)."""


def infer_split(backend: "Backend", feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Run feeds through a backend in pieces of its max batch (an engine's profile limit) or its
    preferred chunk, whichever is smaller, writing each piece into one output array. An engine with a
    profile minimum above 1 (a TensorRT plan built with --min-batch) refuses a smaller request with
    backend.below_min(n), or pads it when backend.pad_small_batches; a last piece below the minimum
    runs as the request's last min_batch rows (samples are independent), keeping the new ones."""
    n = len(feeds[Z])
    lo = backend.min_batch or 1
    if n < lo:
        if not backend.pad_small_batches:
            raise backend.below_min(n)
        padded = {k: np.concatenate([v, np.repeat(v[-1:], lo - n, axis=0)]) for k, v in feeds.items()}
        return backend.infer(padded)[:n]
    step = max(min(backend.max_batch or n, backend.chunk or n), lo)
    if n <= step:
        return backend.infer(feeds)
    first = backend.infer({k: v[:step] for k, v in feeds.items()})
    out = np.empty((n, *first.shape[1:]), first.dtype)
    out[:step] = first
    for i in range(step, n, step):
        if n - i < lo:  # the tail is below the profile's minimum: run the last lo rows, keep the n - i new ones
            out[i:] = backend.infer({k: v[n - lo:] for k, v in feeds.items()})[lo - (n - i):]
        else:
            out[i:i + step] = backend.infer({k: v[i:i + step] for k, v in feeds.items()})
    return out


class Backend(ABC):
    """One engine instance over one model. activate() does the expensive load once; infer() may then
    be called many times, from many threads; deactivate() frees native resources. A context manager."""

    engine: str = "backend"  # the registry name (runtime/backends/__init__.py)
    suffixes: tuple[str, ...] = (".onnx",)  # the files it opens
    compute_precisions: tuple[str, ...] = ()  # precisions it can compute an fp32 file in (OpenVINO: bf16)
    last_gpu_ms: float | None = None  # the last call's GPU time, where the engine measures it (trt: CUDA events)

    def __init__(self, model: str | os.PathLike | bytes, threads: int | None = None, name: str | None = None,
                 compute: str | None = None) -> None:
        if compute is not None and compute not in self.compute_precisions:
            allowed = ", ".join(self.compute_precisions) or "only the file's own precision"
            raise GantoolError(f"engine {self.engine} cannot compute in {compute}; allowed: {allowed}.")
        self.model, self.threads, self.compute = model, threads, compute
        self.name = name or self.engine
        self.active = False
        self.max_batch: int | None = None  # None: any batch; otherwise the engine's profile limit
        self.min_batch: int | None = None  # None: from 1; otherwise the engine's profile minimum
        self.pad_small_batches = False  # True: infer_split pads a batch below min_batch instead of refusing it
        self.chunk: int | None = None  # larger requests run in pieces of this size (CPU: activations stay in cache)
        self._metadata: GeneratorMetadata | None = None

    @property
    def source(self) -> str:
        return "the model bytes" if isinstance(self.model, bytes) else str(self.model)

    @property
    def path(self) -> Path:
        if isinstance(self.model, bytes):
            raise GantoolError(f"the {self.name} backend runs model bytes, not a file.")
        return Path(self.model)

    # --- lifecycle --------------------------------------------------------------------------------
    def activate(self) -> None:
        if not self.active:
            self._activate()
            self.active = True
            if self._metadata is not None:  # re-activated: settings that follow from the metadata again
                self._configure(self._metadata)

    def deactivate(self) -> None:
        if self.active:
            self.active = False
            self._deactivate()

    def generator_metadata(self) -> GeneratorMetadata:
        """The file's gantool metadata, validated and checked against the loaded graph's real I/O."""
        if self._metadata is None:
            self.activate()
            meta = read_metadata(self._metadata_props(), self.source)
            inputs, outputs = self.graph_io()
            meta.contract.check_graph(inputs, outputs, self.source)
            self._configure(meta)
            self._metadata = meta
        return self._metadata

    def require_active(self) -> None:
        if not self.active:
            raise GantoolError(f"the {self.name} backend is not active; call activate() first.")

    # --- what each engine implements -------------------------------------------------------------
    @abstractmethod
    def _activate(self) -> None: ...

    @abstractmethod
    def _deactivate(self) -> None: ...

    @abstractmethod
    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """feeds {"z": float32 (B, latent)[, "labels": int64 (B,)]} -> float32 images (B, C, H, W)."""

    @abstractmethod
    def _metadata_props(self) -> Mapping[str, Any]:
        """The raw gantool metadata the loaded file carries (ONNX metadata_props, a plan's sidecar)."""

    @abstractmethod
    def graph_io(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        """The loaded graph's real inputs and outputs."""

    def below_min(self, n: int) -> GantoolError:
        """The error for a batch below min_batch (an engine says how to get a smaller profile)."""
        return GantoolError(f"batch {n} is below the {self.name} engine's minimum batch {self.min_batch}; "
                            f"allowed: {self.min_batch} or more.")

    def _configure(self, meta: GeneratorMetadata) -> None:
        """Settings that follow from the metadata (the CPU chunk, an engine profile); none by default."""

    def __enter__(self) -> "Backend":
        self.activate()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.deactivate()
