"""The engines `gantool bench` compares. Each is prepared once and then called with the same feeds;
an engine that cannot run here is reported as skipped with the reason, never as an error."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gantool.errors import GantoolError

ENGINES = ("runtime", "ort", "ort-plain", "ort-fp16", "ort-int8", "openvino", "torch", "torch-compile", "trt",
           "ort-cuda", "ort-trt")


class Skip(Exception):
    """This engine is unavailable here; the message says why."""


@dataclass
class Engine:
    name: str
    run: Callable[[dict[str, np.ndarray]], Any]  # feeds -> output (synchronised)
    close: Callable[[], None] = lambda: None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sources:
    """Where each engine's model comes from: a zoo name or checkpoint (torch weights), ONNX variants."""

    model: str
    onnx: dict[str, Path] = field(default_factory=dict)  # precision -> file
    plan: Path | None = None

    def input_dims(self) -> dict[str, int]:
        """Input name -> trailing dim (0 for the per-sample label), from the fp32 graph's metadata."""
        from gantool.runtime.generator import input_dims, onnx_spec

        return input_dims(onnx_spec(self.onnx["fp32"]))

    def variant(self, precision: str) -> Path:
        if precision not in self.onnx:
            self.onnx[precision] = _make_variant(self, precision)
        return self.onnx[precision]


def feeds_for(spec: Any, batch: int) -> dict[str, np.ndarray]:
    """The same inputs for every engine: the project's noise and labels cycling 0..K-1."""
    from gantool.noise import make_noise

    feeds = {"z": make_noise(batch, batch, spec.latent_dim, spec.noise)}
    if spec.conditional:
        feeds["labels"] = np.arange(batch, dtype=np.int64) % spec.num_classes
    return feeds


def _make_variant(src: Sources, precision: str) -> Path:
    from gantool.paths import cache_dir

    if importlib.util.find_spec("onnx") is None:
        raise Skip(f"making the {precision} graph needs the export extra (onnx)")
    base = src.onnx.get("fp32")
    out = cache_dir() / "bench" / f"{Path(str(base or src.model)).stem}.{precision}.onnx"
    if out.is_file() and base is not None and out.stat().st_mtime >= base.stat().st_mtime:
        return out
    if base is not None:  # derive from the given graph, without torch
        import onnx

        from gantool.export.precision import to_fp16, to_int8
        from gantool.fileio import atomic_write_bytes
        from gantool.runtime.generator import spec_from_metadata

        if precision == "fp16":
            atomic_write_bytes(out, to_fp16(onnx.load(str(base))).SerializeToString())
        else:
            meta = {p.key: p.value for p in onnx.load(str(base), load_external_data=False).metadata_props}
            to_int8(base, out, spec_from_metadata(meta, str(base)))
        return out
    raise Skip(f"no fp32 ONNX to derive the {precision} graph from")


def _ort(path: Path, threads: int, engine: str = "ort", options: dict[str, Any] | None = None) -> Engine:
    from gantool.runtime.backends.ort import OrtBackend

    try:
        b = OrtBackend(path, engine=engine, threads=threads, provider_options=options)
        b.activate()
    except GantoolError as e:
        raise Skip(str(e).split(" Note:")[0]) from None
    session, out = b.session, [b.output]
    return Engine(engine, lambda feeds: session.run(out, feeds), b.deactivate)


def _torch(src: Sources, threads: int, compiled: bool) -> Engine:
    if importlib.util.find_spec("torch") is None:
        raise Skip("PyTorch is not installed (the train extra)")
    if src.model.endswith((".onnx", ".plan")):
        raise Skip("needs PyTorch weights: pass a zoo name or a checkpoint, not an exported file")
    import torch

    from gantool.train.checkpoint import load_generator

    torch.set_num_threads(threads)
    spec, g = load_generator(src.model)
    g = g.eval()
    if compiled:
        g = torch.compile(g, dynamic=False)

    def run(feeds: dict[str, np.ndarray]) -> Any:
        with torch.inference_mode():
            y = torch.from_numpy(feeds["labels"]) if "labels" in feeds else None
            return g(torch.from_numpy(feeds["z"]), y).numpy()

    return Engine("torch-compile" if compiled else "torch", run)


def _reexport(src: Sources, tag: str, **export: bool) -> Path | None:
    """The model's weights exported again in another form (cached beside the bench's other graphs), or
    None when there are no weights here to export (an .onnx/.plan was given, or torch is missing)."""
    from gantool.paths import cache_dir

    if src.model.endswith((".onnx", ".plan")) or importlib.util.find_spec("torch") is None:
        return None
    base = src.onnx["fp32"]
    out = cache_dir() / "bench" / f"{Path(src.model).stem}.{tag}.onnx"
    if not (out.is_file() and out.stat().st_mtime >= base.stat().st_mtime):
        from gantool.export.run import run_export

        run_export(src.model, str(out), **export)
    return out


def openvino_graph(src: Sources) -> Path:
    """OpenVINO's best file: the lowered graph with the phase interleave kept (export/lower.py), which it
    ran faster than the folded one (cdcgan at 256: 21.6 against 29.4 ms); the given graph when there
    are no weights to re-export."""
    return _reexport(src, "openvino", fold=False) or src.onnx["fp32"]


def plain_graph(src: Sources) -> Path:
    """What ONNX Runtime gets from a plain torch.onnx export: gantool export --no-lower."""
    path = _reexport(src, "plain", lower=False)
    if path is None:
        raise Skip("needs PyTorch weights (a zoo name or checkpoint, and the train extra) to export the "
                   "unlowered graph")
    return path


def _openvino(path: Path, threads: int) -> Engine:
    if importlib.util.find_spec("openvino") is None:
        raise Skip("OpenVINO is not installed (pip install openvino)")
    import openvino as ov

    from gantool.runtime.backends.openvino import compile_config

    compiled = ov.Core().compile_model(str(path), "CPU", compile_config(threads))
    request = compiled.create_infer_request()
    out = compiled.outputs[0]

    def run(feeds: dict[str, np.ndarray]) -> Any:
        return request.infer(feeds)[out]

    return Engine("openvino", run)


def _runtime(path: Path, threads: int) -> Engine:
    """The embedded runtime's default (engine auto) and its full path: z checks, inference, uint8."""
    from gantool.runtime import Generator

    g = Generator.load(path, engine="auto", threads=threads)

    def run(feeds: dict[str, np.ndarray]) -> Any:
        return g.sample(labels=feeds.get("labels"), z=feeds["z"])

    return Engine("runtime", run, g.close)


def _trt(src: Sources) -> Engine:
    if importlib.util.find_spec("tensorrt") is None:
        raise Skip("TensorRT is not installed (the trt extra needs an NVIDIA GPU)")
    from gantool.runtime.backends.trt import TrtBackend

    plan = src.plan
    if plan is None:
        from gantool.export.trt import Profile, run_build
        from gantool.paths import cache_dir

        plan = cache_dir() / "bench" / f"{Path(src.model).stem}.fp16.plan"
        if not plan.is_file():
            run_build(str(src.variant("fp16")), str(plan), "fp16", Profile(1, 64, 1024))
    b = TrtBackend(plan)
    b.activate()
    return Engine("trt", b.infer, b.deactivate)  # infer() synchronises the stream


def make_engine(name: str, src: Sources, threads: int) -> Engine:
    if name == "runtime":
        return _runtime(src.onnx["fp32"], threads)
    if name == "ort":
        return _ort(src.onnx["fp32"], threads)
    if name == "ort-plain":
        return _ort(plain_graph(src), threads)
    if name in ("ort-fp16", "ort-int8"):
        return _ort(src.variant(name[4:]), threads)
    if name == "ort-cuda":
        return _ort(src.onnx["fp32"], threads, engine=name)
    if name == "ort-trt":  # TensorRT 11 takes the strongly typed fp16 graph; engines are cached
        from gantool.paths import cache_dir
        from gantool.runtime.backends.ort import available_providers, trt_provider_options

        if "TensorrtExecutionProvider" not in available_providers():
            raise Skip("this onnxruntime has no TensorrtExecutionProvider (needs onnxruntime-gpu and TensorRT)")
        names = src.input_dims()
        return _ort(src.variant("fp16"), threads, engine=name,
                    options=trt_provider_options(cache_dir() / "ort-trt", names, 1024))
    if name == "openvino":
        return _openvino(openvino_graph(src), threads)
    if name in ("torch", "torch-compile"):
        return _torch(src, threads, compiled=name == "torch-compile")
    if name == "trt":
        return _trt(src)
    raise GantoolError(f"unknown engine {name!r}; allowed: {', '.join(ENGINES)}.")
