"""OpenVINO on the CPU: an optional engine (the `openvino` extra), chosen with engine="openvino".

Not an automatic choice: on the lowered cdcgan and dcgan graphs ONNX Runtime measured faster at
every batch (cdcgan at 256: 17.7 ms against OpenVINO's 26.4 ms on the same file, 21.6 ms on its best
file, which keeps the phase interleave); on gan and cwgan OpenVINO was 17-21% faster at batch 256,
and 0-6% on cgan-in depending on the run (benchmarks/results/bench/). The LATENCY hint is used: one
request under THROUGHPUT measured ~2x slower."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from gantool.errors import GantoolError
from gantool.runtime.backends.base import Backend


def compile_config(threads: int | None, hint: str = "LATENCY") -> dict[str, Any]:
    """fp32 kept fp32: on CPUs with bf16 units OpenVINO otherwise computes in bfloat16 by default
    (measured here: up to 0.05 off on lowered cdcgan, 6 gray levels, where ONNX Runtime is at 3e-6)."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": "f32"}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


class OpenVinoBackend(Backend):
    """One compiled model; each calling thread gets its own infer request (requests are not re-entrant)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, hint: str = "LATENCY",
                 name: str = "openvino") -> None:
        super().__init__()
        self.path, self.threads, self.hint, self.name = Path(path), threads, hint, name
        self._local = threading.local()
        self.compiled: Any = None

    def activate(self) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise GantoolError("engine openvino needs OpenVINO, which is not installed.",
                               note='pip install "gantool[openvino]".') from None
        self.compiled = ov.Core().compile_model(str(self.path), "CPU", compile_config(self.threads, self.hint))
        self.output = self.compiled.outputs[0]
        self.active = True

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self.compiled is None:
            raise GantoolError(f"the {self.name} backend is not active; call activate() first.")
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        return np.array(request.infer(feeds)[self.output], copy=True)  # the request reuses its output buffer

    def deactivate(self) -> None:
        self.compiled = None
        self._local = threading.local()
        self.active = False
