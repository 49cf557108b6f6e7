"""engine="auto" on a CPU: ONNX Runtime for small batches, OpenVINO for large ones where it pays.

Measured side by side on the 2-core dev machine (fp32 both, lowered graphs, p50 per batch): at batch
256 OpenVINO ran cdcgan in 20.1 ms against ONNX Runtime's 22.1 ms (and 5.3 against 5.8 ms at 64), and
dcgan level (161 against 165 ms); at batch 1 it is about 2x slower, and on the MLPs (no convolutions)
it is not faster. So OpenVINO, when the `openvino` extra is installed, takes batches of
OPENVINO_FROM_BATCH or more for graphs with convolutions; it is compiled on the first such batch.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from gantool.runtime.backends.base import Backend, infer_split

OPENVINO_FROM_BATCH = 64


class BatchRouter(Backend):
    """Sends each call to `small` or, from `threshold` samples on, to the backend `make_large` builds
    (None: there is none, and `small` takes everything)."""

    def __init__(self, small: Backend, make_large: Callable[[], Backend | None], threshold: int,
                 large_name: str = "openvino") -> None:
        super().__init__()
        self.small, self.make_large, self.threshold = small, make_large, threshold
        self.name = f"{small.name} (batches >= {threshold}: {large_name} where available)"
        self._large: Backend | None = None
        self._decided = False
        self._lock = threading.Lock()

    def large(self) -> Backend | None:
        if not self._decided:
            with self._lock:
                if not self._decided:
                    self._large = self.make_large()
                    self._decided = True
        return self._large

    def activate(self) -> None:
        if not self.small.active:
            self.small.activate()
        self.active = True

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        target = self.large() if len(feeds["z"]) >= self.threshold else None
        return infer_split(target or self.small, feeds)

    def deactivate(self) -> None:
        self.small.deactivate()
        if self._large is not None:
            self._large.deactivate()
        self.active = False
