"""A TensorRT engine (.plan) as a backend: name-based I/O tensors, execute_async_v3 on a CUDA
stream, device buffers through cuda-python. tensorrt and cuda are imported in activate() only."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from gantool.errors import GantoolError
from gantool.runtime.backends.base import Backend


def read_sidecar(plan: str | Path) -> dict[str, Any]:
    side = Path(str(plan) + ".json")
    if not side.is_file():
        raise GantoolError(f"{plan}: its sidecar {side.name} is missing, so the engine's model is unknown.",
                           note="build engines with gantool build, which writes the sidecar beside the plan.")
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError) as e:
        raise GantoolError(f"{side}: not a readable gantool sidecar ({type(e).__name__}).") from None


def _check(result: Any) -> Any:
    """cuda-python returns (err, *values); raise on a non-zero error."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise GantoolError(f"CUDA call failed with error {int(err)} ({err}).")
    return rest[0] if len(rest) == 1 else rest


class TrtBackend(Backend):
    """One engine, one execution context, one stream; calls are serialised by a lock because a
    context is not re-entrant. Buffers grow to the largest batch seen."""

    def __init__(self, plan: str | Path, name: str = "trt") -> None:
        super().__init__()
        self.plan, self.name = Path(plan), name
        self.sidecar = read_sidecar(plan)
        self.max_batch = int(self.sidecar["profile"]["max_batch"])
        self._lock = threading.Lock()
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)

    def activate(self) -> None:
        from gantool.export.trt import import_tensorrt

        trt = import_tensorrt()
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            raise GantoolError("running a TensorRT engine needs cuda-python, which is not installed.",
                               note='pip install "gantool[trt]" installs it with tensorrt.') from None
        self.trt, self.cudart = trt, cudart
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(self.plan.read_bytes())
        if self.engine is None:
            raise GantoolError(f"{self.plan}: TensorRT could not deserialize the engine (built with TensorRT "
                               f"{self.sidecar.get('tensorrt_version')} on {self.sidecar.get('gpu')}; this is "
                               f"{trt.__version__}).", note="engines are specific to a TensorRT version and GPU; "
                                                            "rebuild it here with gantool build.")
        self.context = self.engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in self.names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in self.names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in self.names}
        self.active = True

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(self.cudart.cudaFree(ptr))
            ptr = _check(self.cudart.cudaMalloc(nbytes))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if not self.active:
            raise GantoolError(f"the {self.name} backend is not active; call activate() first.")
        cudart = self.cudart
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        with self._lock:
            for name in self.inputs:
                host = np.ascontiguousarray(feeds[name], dtype=self.dtypes[name])
                self.context.set_input_shape(name, host.shape)
                ptr = self._buffer(name, host.nbytes)
                _check(cudart.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, h2d, self.stream))
                self.context.set_tensor_address(name, ptr)
            results = {}
            for name in self.outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                results[name] = np.empty(shape, dtype=self.dtypes[name])
                self.context.set_tensor_address(name, self._buffer(name, results[name].nbytes))
            if not self.context.execute_async_v3(self.stream):
                raise GantoolError(f"TensorRT failed to run {self.plan} at batch {len(next(iter(feeds.values())))}.")
            for name, host in results.items():
                _check(cudart.cudaMemcpyAsync(host.ctypes.data, self._buffers[name][0], host.nbytes, d2h, self.stream))
            _check(cudart.cudaStreamSynchronize(self.stream))
        return results[self.outputs[0]].astype(np.float32, copy=False)

    def deactivate(self) -> None:
        with self._lock:
            if not self.active:
                return
            for ptr, _ in self._buffers.values():
                self.cudart.cudaFree(ptr)
            self._buffers.clear()
            self.cudart.cudaStreamDestroy(self.stream)
            self.context = self.engine = None
            self.active = False
