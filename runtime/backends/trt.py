"""A TensorRT engine (.plan) as a backend: name-based I/O tensors, execute_async_v3 on a CUDA
stream, device buffers through cuda-python. tensorrt and cuda are imported in _activate() only.

The plan's JSON sidecar (written by `gantool build`) carries the generator's metadata, in the same
schema as an ONNX file's metadata_props, and the batch profile the engine was built for."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

import numpy as np

from gantool.contract import IMAGES, TensorSpec
from gantool.errors import GantoolError
from gantool.runtime.backends.base import Backend

SIDECAR_SCHEMA = 2


class TensorRTMissing(GantoolError):
    exit_code = 2


def import_tensorrt() -> ModuleType:
    try:
        import tensorrt
    except ImportError:
        raise TensorRTMissing("TensorRT is not installed, so no engine can be built or run here.",
                              note='on a machine with an NVIDIA GPU: pip install "gantool[trt]" (tensorrt wheels '
                                   "come from NVIDIA's index, pypi.nvidia.com); export --precision fp16 works "
                                   "without it.") from None
    return tensorrt


def sidecar_path(plan: str | Path) -> Path:
    return Path(str(plan) + ".json")


def read_sidecar(plan: str | Path) -> dict[str, Any]:
    side = sidecar_path(plan)
    if not side.is_file():
        raise GantoolError(f"{plan}: its sidecar {side.name} is missing, so the engine's model is unknown.",
                           note="build engines with gantool build, which writes the sidecar beside the plan.")
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise GantoolError(f"{side}: not a readable gantool sidecar ({type(e).__name__}).") from None
    if not isinstance(data, dict) or data.get("sidecar_schema") != SIDECAR_SCHEMA:
        found = data.get("sidecar_schema") if isinstance(data, dict) else None
        raise GantoolError(f"{side}: sidecar schema {found!r}; this gantool reads schema {SIDECAR_SCHEMA}.",
                           note="rebuild the engine with this gantool (gantool build).")
    profile = data.get("profile")
    if not (isinstance(profile, dict) and isinstance(profile.get("max_batch"), int) and profile["max_batch"] >= 1):
        raise GantoolError(f"{side}: its profile has no valid max_batch.")
    return data


def _check(result: Any) -> Any:
    """cuda-python returns (err, *values); raise on a non-zero error."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise GantoolError(f"CUDA call failed with error {int(err)} ({err}).")
    return rest[0] if len(rest) == 1 else rest


class TrtBackend(Backend):
    """One engine, one execution context, one stream; calls are serialised by a lock because a
    context is not re-entrant. Buffers grow to the largest batch seen."""

    engine = "trt"
    suffixes = (".plan",)

    def __init__(self, model: str | Path, threads: int | None = None, name: str | None = None) -> None:
        super().__init__(model, threads, name)
        self.sidecar: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)

    def _activate(self) -> None:
        self.sidecar = read_sidecar(self.path)
        self.max_batch = int(self.sidecar["profile"]["max_batch"])
        trt = import_tensorrt()
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            raise GantoolError("running a TensorRT engine needs cuda-python, which is not installed.",
                               note='pip install "gantool[trt]" installs it with tensorrt.') from None
        self.trt, self.cudart = trt, cudart
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.cuda_engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.cuda_engine is None:
            raise GantoolError(f"{self.path}: TensorRT could not deserialize the engine (built with TensorRT "
                               f"{self.sidecar.get('tensorrt_version')} on {self.sidecar.get('gpu')}; this is "
                               f"{trt.__version__}).", note="engines are specific to a TensorRT version and GPU; "
                                                            "rebuild it here with gantool build.")
        self.context = self.cuda_engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        self.names = [self.cuda_engine.get_tensor_name(i) for i in range(self.cuda_engine.num_io_tensors)]
        self.inputs = [n for n in self.names if self.cuda_engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in self.names if self.cuda_engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: np.dtype(trt.nptype(self.cuda_engine.get_tensor_dtype(n))) for n in self.names}

    def _metadata_props(self) -> Mapping[str, Any]:
        meta = self.sidecar.get("metadata")
        return meta if isinstance(meta, dict) else {}

    def graph_io(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        def spec(n: str) -> TensorSpec:
            shape = tuple(d if d >= 0 else None for d in self.cuda_engine.get_tensor_shape(n))
            return TensorSpec(n, self.dtypes[n].name, shape)

        return [spec(n) for n in self.inputs], [spec(n) for n in self.outputs]

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(self.cudart.cudaFree(ptr))
            ptr = _check(self.cudart.cudaMalloc(nbytes))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        self.require_active()
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
                raise GantoolError(f"TensorRT failed to run {self.path} at batch {len(next(iter(feeds.values())))}.")
            for name, host in results.items():
                _check(cudart.cudaMemcpyAsync(host.ctypes.data, self._buffers[name][0], host.nbytes, d2h, self.stream))
            _check(cudart.cudaStreamSynchronize(self.stream))
        return results[IMAGES].astype(np.float32, copy=False)

    def _deactivate(self) -> None:
        with self._lock:
            for ptr, _ in self._buffers.values():
                self.cudart.cudaFree(ptr)
            self._buffers.clear()
            self.cudart.cudaStreamDestroy(self.stream)
            self.context = self.cuda_engine = None
