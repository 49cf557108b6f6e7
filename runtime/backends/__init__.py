"""Engines behind one small interface (Polygraphy-style runners), by name.

Each backend opens itself from a file and reads its own metadata through the contract; the modules
import their engine (onnxruntime, openvino, tensorrt) only when a backend activates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gantool.errors import GantoolError
from gantool.runtime.backends.base import Backend, infer_split
from gantool.runtime.backends.openvino import OpenVinoBackend
from gantool.runtime.backends.ort import OrtBackend, OrtCudaBackend, OrtTrtBackend, available_providers
from gantool.runtime.backends.trt import TrtBackend

BACKENDS: dict[str, type[Backend]] = {b.engine: b for b in (OrtBackend, OrtCudaBackend, OrtTrtBackend,
                                                             OpenVinoBackend, TrtBackend)}
ENGINES = ("auto", *BACKENDS)  # what `engine=` accepts everywhere (Generator.load, sample, serve)


class EngineError(GantoolError, ValueError):
    """An engine name or engine/file pairing that cannot work."""


def choose_engine(path: Path, engine: str = "auto") -> str:
    """auto: a .plan runs on TensorRT; an .onnx on ORT's CUDA provider when onnxruntime offers one, else
    the CPU. The ort-cuda backend then labels itself from the providers its session got: `ort` (with CPU
    chunking) where ONNX Runtime fell back to the CPU."""
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}.")
    if engine == "auto":
        if path.suffix == ".plan":
            return "trt"
        if path.suffix == ".ort":  # the ORT format: ONNX Runtime Mobile's, run on the CPU
            return "ort"
        return "ort-cuda" if "CUDAExecutionProvider" in available_providers() else "ort"
    return engine


def open_backend(path: str | Path, engine: str = "auto", threads: int | None = None,
                 compute: str | None = None, cuda_graphs: bool = False) -> Backend:
    """The backend for a generator file, activated, its metadata read and checked against its graph;
    compute: a precision the engine computes an fp32 file in (OpenVINO: bf16), None for the file's own;
    cuda_graphs: the trt engine launches a CUDA graph per batch size (TrtBackend)."""
    path = Path(path)
    suffixes = sorted({s for b in BACKENDS.values() for s in b.suffixes})
    if path.suffix not in suffixes:
        raise EngineError(f"{path} is not a gantool generator file; allowed: {', '.join(suffixes)} (.onnx from "
                          f"gantool export, .ort from export --format ort, .plan from gantool build).")
    name = choose_engine(path, engine)
    cls = BACKENDS[name]
    if path.suffix not in cls.suffixes:
        fitting = ", ".join(n for n, b in BACKENDS.items() if path.suffix in b.suffixes)
        raise EngineError(f"engine {name} does not run {path.suffix} files; {path.name} runs with: {fitting}.",
                          note="build a TensorRT engine with gantool build --model FILE.onnx" if name == "trt" else None)
    if compute is not None and compute not in cls.compute_precisions:
        able = ", ".join(n for n, b in BACKENDS.items() if compute in b.compute_precisions) or "none"
        raise EngineError(f"engine {name} cannot compute {path.name} in {compute}; engines that can: {able}.")
    if cuda_graphs and name != "trt":
        raise EngineError(f"CUDA graphs are captured by the trt engine, not {name}.")
    options: dict[str, Any] = {} if compute is None else {"compute": compute}
    if cuda_graphs:
        options["cuda_graphs"] = True
    backend = cls(path, threads=threads, **options)
    try:
        backend.generator_metadata()
    except BaseException:
        backend.deactivate()
        raise
    return backend


__all__ = ["BACKENDS", "ENGINES", "Backend", "EngineError", "choose_engine", "infer_split", "open_backend"]
