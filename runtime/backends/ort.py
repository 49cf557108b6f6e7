"""ONNX Runtime: CPU, and the CUDA / TensorRT execution providers of onnxruntime-gpu."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from gantool.errors import GantoolError
from gantool.runtime.backends.base import Backend
from gantool.runtime.ort import import_onnxruntime

# Large CPU batches run in pieces whose activations stay in cache. Measured on the 2-core dev machine
# (2 MiB L2 per core), per 256 images with lowered graphs: cdcgan 22.0 ms as 4 x 64 against 26.2 ms as
# one batch; dcgan (64x64) 159.8 ms as 16 x 16 against 214.2 ms. Both bests hold about 1M activation
# values (cdcgan's largest tensor is 12.5k values per sample, dcgan's 65.5k); MLPs stay whole.
CHUNK_VALUES = 2 ** 20
ACTIVATION_KEY = "gantool.peak_activation_values"  # ONNX metadata: the exporter writes it, cpu_chunk's input


def cpu_chunk(peak_activation_values: int) -> int | None:
    """The piece size for ONNX Runtime on CPU (a power of two), or None for files without the figure."""
    if peak_activation_values <= 0:
        return None
    return 2 ** max(0, round(math.log2(CHUNK_VALUES / peak_activation_values)))


PROVIDERS = {
    "ort": "CPUExecutionProvider",
    "ort-cuda": "CUDAExecutionProvider",
    "ort-trt": "TensorrtExecutionProvider",
}


def available_providers() -> list[str]:
    return list(import_onnxruntime().get_available_providers())


def trt_provider_options(cache_dir: str | os.PathLike, names: dict[str, int], max_batch: int) -> dict[str, Any]:
    """Engine caching and explicit profile shapes for ORT's TensorRT provider (names: input -> trailing dim)."""

    def shapes(b: int) -> str:
        return ",".join(f"{n}:{b}x{d}" if d else f"{n}:{b}" for n, d in names.items())

    return {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir), "trt_timing_cache_enable": True,
            "trt_profile_min_shapes": shapes(1), "trt_profile_opt_shapes": shapes(max(1, max_batch // 4)),
            "trt_profile_max_shapes": shapes(max_batch)}


class OrtBackend(Backend):
    """An InferenceSession tuned for latency: full graph optimisation, memory pattern, a settable
    thread count, and the single output fetched by name."""

    def __init__(self, model: str | os.PathLike | bytes, engine: str = "ort", threads: int | None = None,
                 provider_options: dict[str, Any] | None = None, output: str = "images",
                 name: str | None = None) -> None:
        super().__init__()
        if engine not in PROVIDERS:
            raise GantoolError(f"unknown ONNX Runtime engine {engine!r}; allowed: {', '.join(PROVIDERS)}.")
        self.model, self.engine, self.threads = model, engine, threads
        self.provider_options = provider_options or {}
        self.output, self.name = output, name or engine
        self.session: Any = None
        self._run: Any = None  # the session's run method, see activate()
        self._lock = threading.Lock()

    def activate(self) -> None:
        ort = import_onnxruntime()
        provider = PROVIDERS[self.engine]
        if provider not in ort.get_available_providers():
            raise GantoolError(f"engine {self.engine} needs ONNX Runtime's {provider}, which this onnxruntime "
                               f"lacks (it has: {', '.join(ort.get_available_providers())}).",
                               note='the CUDA and TensorRT providers come with pip install "gantool[gpu]" '
                                    "(onnxruntime-gpu) on a machine with an NVIDIA GPU.")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.enable_mem_pattern = True
        so.log_severity_level = 3
        if self.threads is not None:
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
        providers: list[Any] = [(provider, self.provider_options)] if provider != "CPUExecutionProvider" else []
        providers.append("CPUExecutionProvider")
        model = self.model if isinstance(self.model, bytes) else str(self.model)
        try:
            self.session = ort.InferenceSession(model, so, providers=providers)
        except Exception as e:  # ORT raises its own exception types; keep one clear line
            where = "the model bytes" if isinstance(self.model, bytes) else str(self.model)
            raise GantoolError(f"ONNX Runtime could not load {where}: {str(e).splitlines()[0][:200]}") from None
        # InferenceSession.run re-checks feed names and ownership in Python on every call, then calls its
        # native session: ~2 us, 2% of cdcgan's batch-1 time. On the CPU provider (no fallback provider
        # for the wrapper to retry on) we call the native method directly; the Generator builds complete,
        # checked feeds, and a missing input still fails cleanly in ORT. Any other wrapper: the public run.
        native = getattr(self.session, "_sess", None)
        self._run = native.run if provider == "CPUExecutionProvider" and native is not None else self.session.run
        self.active = True

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        # Session runs are thread-safe; the lock only guards a session swapped by deactivate().
        run = self._run
        if run is None:
            raise GantoolError(f"the {self.name} backend is not active; call activate() first.")
        return run([self.output], feeds, None)[0]

    def deactivate(self) -> None:
        with self._lock:
            self.session = self._run = None
            self.active = False

    @property
    def path(self) -> Path | None:
        return None if isinstance(self.model, bytes) else Path(self.model)
