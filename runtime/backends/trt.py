"""A TensorRT engine (.plan) as a backend: name-based I/O tensors, execute_async_v3 on a CUDA
stream, device buffers through cuda-python. tensorrt and cuda are imported in _activate() only.

The plan's JSON sidecar (written by `gantool build`) carries the generator's metadata, in the same
schema as an ONNX file's metadata_props, and the batch profile the engine was built for."""

from __future__ import annotations

import json
import os
import shlex
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
    low = profile.get("min_batch", 1)
    if not (isinstance(low, int) and 1 <= low <= profile["max_batch"]):
        raise GantoolError(f"{side}: its profile's min_batch {low!r} is not between 1 and max_batch "
                           f"{profile['max_batch']}.")
    return data


def cuda_device(index: int = 0) -> tuple[str, str | None]:
    """(name, compute capability "major.minor") of a CUDA device through cuda-python; the name from
    $GANTOOL_GPU_NAME (or "unknown") and no capability where cuda-python or the device is missing."""
    try:
        from cuda.bindings import runtime as cudart

        err, props = cudart.cudaGetDeviceProperties(index)
        if int(err) == 0:
            return props.name.decode(errors="replace").strip("\x00"), f"{props.major}.{props.minor}"
    except Exception:  # informative and a cache key only; the engine's own calls report real CUDA errors
        pass
    return os.environ.get("GANTOOL_GPU_NAME", "unknown"), None


def build_key(tensorrt_version: str, capability: str | None) -> str:
    """What a timing cache or an engine is only valid for: the TensorRT version and the GPU's compute
    capability, as a file-name part ("trt10.12.0.36-sm90")."""
    return f"trt{tensorrt_version}-sm{capability.replace('.', '') if capability else 'unknown'}"


def rebuild_command(sidecar: dict[str, Any], plan: str | Path, **profile: int) -> str:
    """The `gantool build` command that makes this plan again here, with profile overrides
    (min_batch=..., max_batch=...): from its source ONNX where it still exists, else its model's name."""
    src = sidecar.get("source_onnx")
    model = src if isinstance(src, str) and Path(src).is_file() else None
    if model is None:
        try:
            model = json.loads(sidecar["metadata"]["gantool.spec"])["arch"]
        except (KeyError, TypeError, ValueError):
            model = "MODEL"
    meta = sidecar.get("metadata")
    precision = meta.get("gantool.precision") if isinstance(meta, dict) else None
    prof = {**sidecar.get("profile", {}), **profile}
    parts = ["gantool", "build", "--model", str(model)]
    if precision in ("fp16", "fp32"):
        parts += ["--precision", precision]
    for key in ("min_batch", "opt_batch", "max_batch"):
        if isinstance(prof.get(key), int):
            parts += [f"--{key.replace('_', '-')}", str(prof[key])]
    return shlex.join([*parts, "-o", str(plan)])


def check_built_here(sidecar: dict[str, Any], plan: str | Path, tensorrt_version: str,
                     capability: str | None) -> None:
    """Refuse, in one line with the rebuild command, a plan built by another TensorRT version or for a
    GPU of another compute capability (engines are specific to both), before TensorRT deserialises it."""
    built, built_cc, gpu = sidecar.get("tensorrt_version"), sidecar.get("compute_capability"), sidecar.get("gpu")
    if isinstance(built, str) and built != tensorrt_version:
        raise GantoolError(f"{plan}: built with TensorRT {built}, and this is TensorRT {tensorrt_version}; an engine "
                           f"runs only on the TensorRT version that built it.",
                           note=f"rebuild it here: {rebuild_command(sidecar, plan)}")
    if isinstance(built_cc, str) and capability is not None and built_cc != capability:
        raise GantoolError(f"{plan}: built on {gpu} (compute capability {built_cc}), and this GPU's is {capability}; "
                           f"an engine runs only on the GPU kind it was built for.",
                           note=f"rebuild it here: {rebuild_command(sidecar, plan)}")


def _check(result: Any) -> Any:
    """cuda-python returns (err, *values); raise on a non-zero error."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise GantoolError(f"CUDA call failed with error {int(err)} ({err}).")
    return rest[0] if len(rest) == 1 else rest


class TrtBackend(Backend):
    """One engine, one execution context, one stream; calls are serialised by a lock because a
    context is not re-entrant. As trtexec does: device buffers and pinned (page-locked) host buffers
    sized for the profile's largest batch are allocated once at activation, so the copies are truly
    asynchronous and the tensor addresses never change; with cuda_graphs=True the enqueue of each batch
    size is captured as a CUDA graph on its first call and launched from then on; two CUDA events
    around the enqueue give each call's GPU time (last_gpu_ms) beside the host latency."""

    engine = "trt"
    suffixes = (".plan",)

    def __init__(self, model: str | Path, threads: int | None = None, name: str | None = None,
                 cuda_graphs: bool = False) -> None:
        super().__init__(model, threads, name)
        self.sidecar: dict[str, Any] = {}
        self.cuda_graphs = cuda_graphs
        self.last_gpu_ms = None  # GPU time of the last call's enqueue (CUDA events)
        self._lock = threading.Lock()
        self._device: dict[str, int] = {}  # tensor name -> device pointer, for the profile's max batch
        self._host: dict[str, np.ndarray] = {}  # tensor name -> pinned host array, (max batch, ...)
        self._graphs: dict[int, Any] = {}  # batch size -> instantiated CUDA graph (cudaGraphExec_t)
        self._events: tuple[Any, Any] | None = None
        self._batch: int | None = None  # the batch the context's input shapes are set to

    def _activate(self) -> None:
        self.sidecar = read_sidecar(self.path)
        self.max_batch = max_batch = int(self.sidecar["profile"]["max_batch"])
        self.min_batch = int(self.sidecar["profile"].get("min_batch", 1))
        trt = import_tensorrt()
        check_built_here(self.sidecar, self.path, trt.__version__, None)  # the version first: no CUDA call
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            raise GantoolError("running a TensorRT engine needs cuda-python 12.6.1 or later (cuda.bindings.runtime), "
                               "which is not installed.",
                               note='pip install "gantool[trt]" installs it with tensorrt.') from None
        check_built_here(self.sidecar, self.path, trt.__version__, cuda_device()[1])
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
        self._allocate(max_batch)

    def _allocate(self, max_batch: int) -> None:
        """Device and pinned host buffers for the profile's largest batch, bound to the context once."""
        cudart = self.cudart
        for name in self.names:
            per_sample = tuple(int(d) for d in self.cuda_engine.get_tensor_shape(name)[1:])  # (batch, ...) -> (...)
            shape = (max_batch, *per_sample)
            nbytes = int(np.prod(shape)) * self.dtypes[name].itemsize
            self._device[name] = _check(cudart.cudaMalloc(nbytes))
            self._host[name] = pinned_array(_check(cudart.cudaMallocHost(nbytes)), shape, self.dtypes[name])
            self.context.set_tensor_address(name, self._device[name])
        self._events = (_check(cudart.cudaEventCreate()), _check(cudart.cudaEventCreate()))

    def _metadata_props(self) -> Mapping[str, Any]:
        meta = self.sidecar.get("metadata")
        return meta if isinstance(meta, dict) else {}

    def graph_io(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        def spec(n: str) -> TensorSpec:
            shape = tuple(d if d >= 0 else None for d in self.cuda_engine.get_tensor_shape(n))
            return TensorSpec(n, self.dtypes[n].name, shape)

        return [spec(n) for n in self.inputs], [spec(n) for n in self.outputs]

    def below_min(self, n: int) -> GantoolError:
        return GantoolError(f"{self.path.name}: batch {n} is outside its TensorRT profile (batch {self.min_batch}.."
                            f"{self.max_batch}); allowed: {self.min_batch} or more (larger batches are split).",
                            note=f"rebuild it for smaller batches: "
                                 f"{rebuild_command(self.sidecar, self.path, min_batch=n)}")

    def _set_batch(self, batch: int) -> None:
        if batch == self._batch:
            return
        for name in self.inputs:
            shape = (batch, *self._host[name].shape[1:])
            if not self.context.set_input_shape(name, shape):
                raise GantoolError(f"{self.path.name}: TensorRT refused input {name!r} of shape {shape}; "
                                   f"its profile takes batch {self.min_batch}..{self.max_batch}.")
        self._batch = batch

    def _execute(self) -> bool:
        # the native stream handle: newer cuda-bindings deprecate the implicit cudaStream_t conversion
        return bool(self.context.execute_async_v3(int(self.stream)))

    def _enqueue(self, batch: int) -> None:
        """The engine's work for `batch` on the stream: its CUDA graph where graphs are on (captured on
        the first call at this batch size), else execute_async_v3."""
        cudart = self.cudart
        failed = GantoolError(f"TensorRT failed to run {self.path} at batch {batch}.")
        if not self.cuda_graphs:
            if not self._execute():
                raise failed
            return
        graph = self._graphs.get(batch)
        if graph is None:
            # TensorRT applies deferred shape updates in the first enqueue after a change: run it once
            # outside the capture, then record the enqueue (TensorRT developer guide, CUDA graphs)
            if not self._execute():
                raise failed
            _check(cudart.cudaStreamSynchronize(self.stream))
            _check(cudart.cudaStreamBeginCapture(self.stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal))
            ok = self._execute()
            captured = _check(cudart.cudaStreamEndCapture(self.stream))
            if not ok:
                _check(cudart.cudaGraphDestroy(captured))
                raise GantoolError(f"TensorRT could not be captured as a CUDA graph for {self.path} at batch {batch}.",
                                   note="run it without CUDA graphs (the default).")
            graph = self._graphs[batch] = _check(cudart.cudaGraphInstantiate(captured, 0))
            _check(cudart.cudaGraphDestroy(captured))
        _check(cudart.cudaGraphLaunch(graph, self.stream))

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        self.require_active()
        cudart = self.cudart
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        batch = len(next(iter(feeds.values())))
        if batch < (self.min_batch or 1):
            raise self.below_min(batch)
        if batch > (self.max_batch or batch):
            raise GantoolError(f"{self.path.name}: batch {batch} is above its TensorRT profile's maximum "
                               f"{self.max_batch}; allowed: up to {self.max_batch} per call (Generator splits larger "
                               f"batches).")
        assert self._events is not None
        start, end = self._events
        with self._lock:
            self._set_batch(batch)
            for name in self.inputs:  # into the pinned buffers, then one asynchronous copy each
                staged = self._host[name][:batch]
                np.copyto(staged, feeds[name], casting="same_kind")
                _check(cudart.cudaMemcpyAsync(self._device[name], staged.ctypes.data, staged.nbytes, h2d,
                                              self.stream))
            _check(cudart.cudaEventRecord(start, self.stream))
            self._enqueue(batch)
            _check(cudart.cudaEventRecord(end, self.stream))
            for name in self.outputs:
                out = self._host[name][:batch]
                _check(cudart.cudaMemcpyAsync(out.ctypes.data, self._device[name], out.nbytes, d2h, self.stream))
            _check(cudart.cudaStreamSynchronize(self.stream))
            self.last_gpu_ms = float(_check(cudart.cudaEventElapsedTime(start, end)))
            # a copy: the pinned buffer is the next call's
            return self._host[IMAGES][:batch].astype(np.float32, copy=True)

    def _deactivate(self) -> None:
        with self._lock:
            cudart = self.cudart
            for graph in self._graphs.values():
                cudart.cudaGraphExecDestroy(graph)
            for ptr in self._device.values():
                cudart.cudaFree(ptr)
            for host in self._host.values():  # each array is a view of its cudaMallocHost block
                cudart.cudaFreeHost(host.ctypes.data)
            for event in self._events or ():
                cudart.cudaEventDestroy(event)
            self._graphs.clear()
            self._device.clear()
            self._host.clear()
            self._events, self._batch = None, None
            cudart.cudaStreamDestroy(self.stream)
            self.context = self.cuda_engine = None


def pinned_array(ptr: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A numpy view of `prod(shape)` elements of page-locked host memory at ptr (cudaMallocHost)."""
    import ctypes

    nbytes = int(np.prod(shape)) * dtype.itemsize
    return np.frombuffer(memoryview((ctypes.c_uint8 * nbytes).from_address(ptr)), dtype=dtype).reshape(shape)
