"""The backend interface every engine implements, so the Generator, parity and bench treat them alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

import numpy as np


def infer_split(backend: "Backend", feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Run feeds through a backend in pieces of its max batch (an engine's profile limit) or its
    preferred chunk, whichever is smaller, writing each piece into one output array."""
    n = len(feeds["z"])
    step = min(backend.max_batch or n, backend.chunk or n)
    if n <= step:
        return backend.infer(feeds)
    first = backend.infer({k: v[:step] for k, v in feeds.items()})
    out = np.empty((n, *first.shape[1:]), first.dtype)
    out[:step] = first
    for i in range(step, n, step):
        out[i:i + step] = backend.infer({k: v[i:i + step] for k, v in feeds.items()})
    return out


class Backend(ABC):
    """One engine instance. activate() does the expensive load once; infer() may then be called
    many times; deactivate() frees native resources. Also a context manager."""

    name: str = "backend"
    max_batch: int | None = None  # None: any batch; otherwise the engine's profile limit
    chunk: int | None = None  # larger requests run in pieces of this size (CPU: activations stay in cache)

    def __init__(self) -> None:
        self.active = False

    @abstractmethod
    def activate(self) -> None: ...

    @abstractmethod
    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """feeds {"z": float32 (B, latent)[, "labels": int64 (B,)]} -> float32 images (B, C, H, W)."""

    @abstractmethod
    def deactivate(self) -> None: ...

    def __enter__(self) -> "Backend":
        if not self.active:
            self.activate()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.deactivate()
