"""OpenVINO on the CPU: an optional engine (the `openvino` extra), pinned with engine="openvino" or
chosen by the tuner where it wins: its bf16 and int8 kernels (AMX, AVX512-BF16, VNNI) on the phases
graph are what `precision="auto"` runs on most CPUs (docs/benchmarks.md). The LATENCY hint is used:
one request under THROUGHPUT measured ~2x slower."""

from __future__ import annotations

import os
import threading
from typing import Any, Mapping

import numpy as np

from gantool.contract import TensorSpec
from gantool.errors import GantoolError
from gantool.runtime.backends.base import Backend, ModelLoadError

INFERENCE_PRECISION = {None: "f32", "bf16": "bf16"}  # compute precision -> OpenVINO's hint


def compile_config(threads: int | None, hint: str = "LATENCY", compute: str | None = None) -> dict[str, Any]:
    """fp32 kept fp32 unless bf16 is asked for: on CPUs with bf16 units OpenVINO otherwise computes in
    bfloat16 by default (measured here: up to 0.05 off on lowered cdcgan, 6 gray levels, where ONNX
    Runtime is at 3e-6). bf16 runs only where the export validated it (contract.Validation)."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[compute]}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def _spec(port: Any) -> TensorSpec:
    shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
    return TensorSpec(port.get_any_name(), str(port.get_element_type().to_dtype()), shape)


class OpenVinoBackend(Backend):
    """One compiled model; each calling thread gets its own infer request (requests are not re-entrant)."""

    engine = "openvino"
    compute_precisions = ("bf16",)

    def __init__(self, model: str | os.PathLike, threads: int | None = None, name: str | None = None,
                 hint: str = "LATENCY", compute: str | None = None) -> None:
        super().__init__(model, threads, name, compute)
        self.hint = hint
        self._local = threading.local()
        self.compiled: Any = None
        self.graph: Any = None

    def _activate(self) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise GantoolError("engine openvino needs OpenVINO, which is not installed.",
                               note='pip install "gantool[openvino]".') from None
        core = ov.Core()
        try:
            self.graph = core.read_model(str(self.path))
        except RuntimeError as e:
            raise ModelLoadError(f"OpenVINO could not read {self.source}: {str(e).splitlines()[0][:200]}") from None
        self.compiled = core.compile_model(self.graph, "CPU", compile_config(self.threads, self.hint, self.compute))
        self.output = self.compiled.outputs[0]  # the contract's single output; generator_metadata() checks its name

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        compiled = self.compiled
        if compiled is None:
            raise GantoolError(f"the {self.name} backend is not active; call activate() first.")
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = compiled.create_infer_request()
        return np.array(request.infer(feeds)[self.output], copy=True)  # the request reuses its output buffer

    def _deactivate(self) -> None:
        self.compiled = self.graph = None
        self._local = threading.local()

    def _metadata_props(self) -> Mapping[str, Any]:
        """ONNX metadata_props, which OpenVINO's ONNX frontend keeps in the model's rt_info["framework"]."""
        info = self.graph.get_rt_info()
        if "framework" not in info:
            return {}
        framework = info["framework"]
        framework = framework.astype(dict) if hasattr(framework, "astype") else framework
        return {str(k): v.astype(str) if hasattr(v, "astype") else str(v) for k, v in framework.items()}

    def graph_io(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        return [_spec(p) for p in self.graph.inputs], [_spec(p) for p in self.graph.outputs]
