"""The engines `gantool bench` compares. Each is prepared once and then called with the same feeds;
an engine that cannot run here is reported as skipped with the reason, never as an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gantool.contract import LABELS, GeneratorContract, Z, read_metadata
from gantool.errors import GantoolError
from gantool.extras import installed
from gantool.runtime.backends import Backend, open_backend
from gantool.runtime.variants import U8_TAG, variant_name

ENGINES = ("runtime", "ort", "ort-plain", "ort-fp16", "ort-int8", "ort-int8u", "openvino", "openvino-bf16", "torch",
           "torch-bf16", "torch-compile", "trt", "ort-cuda", "ort-trt")
# GPU engines run the graph form --graph names (plain by default, export/trt.py GPU_GRAPHS); a form other
# than plain is reported as ENGINE-FORM (trt-lowered). CPU engines keep their own graphs.
GPU_ENGINES = ("trt", "ort-cuda", "ort-trt")
# What each engine computes in, for its share of that precision's peak (the runtime's: what it chose)
ENGINE_PRECISION = {"ort-fp16": "fp16", "ort-int8": "int8", "ort-int8u": "int8", "openvino-bf16": "bf16",
                    "torch-bf16": "bf16"}


class Skip(Exception):
    """This engine is unavailable here; the message says why."""


@dataclass
class Engine:
    name: str
    run: Callable[[dict[str, np.ndarray]], Any]  # feeds -> output (synchronised)
    close: Callable[[], None] = lambda: None
    choice: dict[str, Any] | None = None  # the runtime's: which backend serves which batch, and why
    gpu_ms: Callable[[], float | None] | None = None  # the last run's GPU time (CUDA events), GPU engines


def backend_engine(backend: Backend, name: str | None = None) -> Engine:
    """An activated backend as a bench engine: its own infer(), the call the runtime makes, and its GPU
    time where it measures one (trt: CUDA events around the enqueue; read after the timed call)."""
    return Engine(name or backend.engine, backend.infer, backend.deactivate, gpu_ms=lambda: backend.last_gpu_ms)


@dataclass
class Sources:
    """Where each engine's model comes from: a zoo name or checkpoint (torch weights), ONNX variants."""

    model: str
    onnx: dict[str, Path] = field(default_factory=dict)  # precision -> file
    plan: Path | None = None
    form: str | None = None  # the graph form of onnx["fp32"] (its metadata's gantool.graph)
    no_fp32: str = "no fp32 ONNX"  # why onnx has no "fp32" (a .plan whose source is gone, changed or fp16)

    def fp32(self) -> Path:
        """The fp32 graph the ONNX engines run; a Skip with the reason where there is none."""
        if "fp32" not in self.onnx:
            raise Skip(self.no_fp32)
        return self.onnx["fp32"]

    def graph(self, form: str) -> Path:
        """The fp32 graph of this form (a GPU engine's source): the given one where it is that form, else
        re-exported from the weights; a Skip with the reason where there are none."""
        if self.form == form:
            return self.fp32()
        from gantool.export.trt import export_options

        path = _reexport(self, form, **export_options(form))
        if path is None:
            given = f"{self.model} is a {self.form} graph (bench it with --graph {self.form})" if self.form \
                else self.no_fp32
            raise Skip(f"needs PyTorch weights (a zoo name or checkpoint, and the train extra) to export the {form} "
                       f"graph; {given}")
        return path

    def variant(self, precision: str, form: str | None = None) -> Path:
        """onnx[precision], derived from the fp32 graph (of `form` where given) on first use."""
        key = precision if form is None or form == self.form else f"{form}.{precision}"
        if key not in self.onnx:
            self.onnx[key] = _make_variant(self, precision, None if key == precision else self.graph(str(form)))
        return self.onnx[key]


def split_label(label: str) -> tuple[str, str | None]:
    """A bench row's label -> (engine, graph form): "trt-lowered" -> ("trt", "lowered"), "trt" -> ("trt",
    "plain"); CPU engines -> (name, None), their own graphs."""
    from gantool.export.trt import DEFAULT_GPU_GRAPH, GPU_GRAPHS

    for engine in GPU_ENGINES:
        if label == engine:
            return engine, DEFAULT_GPU_GRAPH
        for form in GPU_GRAPHS:
            if label == f"{engine}-{form}" and form != DEFAULT_GPU_GRAPH:
                return engine, form
    return label, None


def bench_label(engine: str, form: str | None) -> str:
    """split_label's inverse: a GPU engine on a form other than plain is ENGINE-FORM."""
    from gantool.export.trt import DEFAULT_GPU_GRAPH

    return engine if engine not in GPU_ENGINES or form in (None, DEFAULT_GPU_GRAPH) else f"{engine}-{form}"


def bench_runs(engines: list[str], graphs: list[str]) -> list[str]:
    """The bench's rows: every CPU engine once, every GPU engine once per graph form asked for."""
    return list(dict.fromkeys(bench_label(e, g) for e in engines for g in (graphs if e in GPU_ENGINES else [None])))


def feeds_for(spec: Any, batch: int) -> dict[str, np.ndarray]:
    """The same inputs for every engine: the project's noise and labels cycling 0..K-1."""
    from gantool.noise import make_noise

    contract = GeneratorContract(spec)
    return contract.feeds(make_noise(batch, batch, spec.latent_dim, spec.noise), contract.default_labels(batch))


def _make_variant(src: Sources, precision: str, base: Path | None = None) -> Path:
    """The precision variant of base [default: the given fp32 graph], cached beside the bench's graphs."""
    from gantool.paths import cache_dir

    if not installed("onnx"):
        raise Skip(f"making the {precision} graph needs the export extra (onnx)")
    base = base or src.onnx.get("fp32")
    if base is None:
        raise Skip(f"no fp32 ONNX to derive the {precision} graph from: {src.no_fp32}")
    out = cache_dir() / "bench" / f"{base.stem}.{precision}.onnx"
    if out.is_file() and out.stat().st_mtime >= base.stat().st_mtime:
        return out
    import onnx  # derive from the given graph, without torch

    from gantool.export.onnx import set_metadata
    from gantool.export.precision import to_fp16, to_int8
    from gantool.fileio import atomic_write_bytes

    fp32 = onnx.load(str(base))
    meta = read_metadata({p.key: p.value for p in fp32.metadata_props}, str(base))
    if precision == "fp16":
        model = to_fp16(fp32)
    else:
        to_int8(base, out, meta.spec)
        model = onnx.load(str(out))
    set_metadata(model, meta.replace(precision=precision))
    atomic_write_bytes(out, model.SerializeToString())
    return out


def _open(path: Path, engine: str, threads: int, name: str | None = None, cuda_graphs: bool = False) -> Engine:
    """A runtime backend by registry name; an engine that cannot start here is a Skip with the reason."""
    try:
        return backend_engine(open_backend(path, engine, threads, cuda_graphs=cuda_graphs), name or engine)
    except GantoolError as e:
        raise Skip(str(e).split(" Note:")[0]) from None


def _torch(src: Sources, threads: int, compiled: bool, bf16: bool = False) -> Engine:
    """PyTorch eager (or compiled); bf16: autocast to bfloat16 with channels_last, the peer a user with
    torch on a bf16 CPU would pick."""
    if not installed("torch"):
        raise Skip("PyTorch is not installed (the train extra)")
    if src.model.endswith((".onnx", ".plan")):
        raise Skip("needs PyTorch weights: pass a zoo name or a checkpoint, not an exported file")
    import torch

    from gantool.train.checkpoint import load_generator

    torch.set_num_threads(threads)
    spec, g = load_generator(src.model)
    g = g.eval()
    if bf16:
        g = g.to(memory_format=torch.channels_last)
    if compiled:
        g = torch.compile(g, dynamic=False)

    def run(feeds: dict[str, np.ndarray]) -> Any:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = torch.from_numpy(feeds[LABELS]) if LABELS in feeds else None
            return g(torch.from_numpy(feeds[Z]), y).float().numpy()

    return Engine("torch-compile" if compiled else "torch-bf16" if bf16 else "torch", run)


def _reexport(src: Sources, tag: str, lower: bool = True, fold: bool = True, phases: bool = False) -> Path | None:
    """The model's weights exported again in another form (cached beside the bench's other graphs), or
    None when there are no weights here to export (an .onnx/.plan was given, or torch is missing)."""
    from gantool.paths import cache_dir

    if src.model.endswith((".onnx", ".plan")) or not installed("torch"):
        return None
    base = src.fp32()
    out = cache_dir() / "bench" / f"{Path(src.model).stem}.{tag}.onnx"
    if not (out.is_file() and out.stat().st_mtime >= base.stat().st_mtime):
        from gantool.export.run import run_export

        run_export(src.model, str(out), lower=lower, fold=fold, phases=phases)
    return out


def openvino_graph(src: Sources) -> Path:
    """OpenVINO's best file: the lowered graph with the phase interleave kept (export/lower.py), which it
    ran faster than the folded one (cdcgan at 256: 21.6 against 29.4 ms); the given graph when there
    are no weights to re-export."""
    return _reexport(src, "openvino", fold=False) or src.fp32()


def phases_graph(src: Sources) -> Path:
    """The graph OpenVINO's bf16 kernels need: every ConvTranspose as phase Convs (its deconvolution kernel
    stays fp32 under bf16; export/lower.py); the given graph when there are no weights to re-export."""
    return _reexport(src, "phases", phases=True) or src.fp32()


def plain_graph(src: Sources) -> Path:
    """What ONNX Runtime gets from a plain torch.onnx export: gantool export --no-lower."""
    path = _reexport(src, "plain", lower=False)
    if path is None:
        raise Skip("needs PyTorch weights (a zoo name or checkpoint, and the train extra) to export the "
                   "unlowered graph")
    return path


def _runtime(path: Path, threads: int | None, precision: str) -> Engine:
    """The embedded runtime as an app gets it (engine auto: its tuned choice per batch size unless the
    thread count is pinned) and its full path: z checks, inference, uint8."""
    from gantool.runtime import Generator

    g = Generator.load(path, engine="auto", threads=threads, precision=precision)

    def run(feeds: dict[str, np.ndarray]) -> Any:
        return g.sample(labels=feeds.get(LABELS), z=feeds[Z])

    return Engine("runtime", run, g.close, choice=g.choice)


def _trt(src: Sources, form: str, label: str = "trt", cuda_graphs: bool = False) -> Engine:
    """A given .plan as it is; otherwise an fp16 engine built (and cached) from the fp32 graph of `form`.
    cuda_graphs: capture each batch size's enqueue as a CUDA graph (trtexec's --useCudaGraph)."""
    if not installed("tensorrt"):
        raise Skip("TensorRT is not installed (the trt extra needs an NVIDIA GPU)")
    plan = src.plan
    if plan is not None and label != "trt":
        raise Skip(f"{src.model} is a built engine; its graph form is the one it was built from")
    if plan is None:
        base = src.graph(form)
        from gantool.export.trt import Profile, plan_cache_name, run_build, sha256_file
        from gantool.paths import cache_dir
        from gantool.runtime.backends.trt import cuda_device, import_tensorrt

        # keyed by TensorRT version, GPU kind and source graph: a cached engine never outlives any of them
        name = plan_cache_name(Path(src.model).stem, "fp16", import_tensorrt().__version__, cuda_device()[1],
                               sha256_file(base))
        plan = cache_dir() / "bench" / name
        if not plan.is_file():
            run_build(str(base), str(plan), "fp16", Profile(1, 64, 1024))
    return _open(plan, "trt", 1, label, cuda_graphs)  # infer() synchronises the stream


def make_engine(label: str, src: Sources, threads: int, precision: str = "fp32", pinned: bool = True,
                cuda_graphs: bool = False) -> Engine:
    """label: an engine name, or ENGINE-FORM for a GPU engine on another graph form (split_label);
    pinned: the thread count was given (the runtime then skips tuning); precision: the runtime's;
    cuda_graphs: the trt engine launches CUDA graphs."""
    name, form = split_label(label)
    if form is not None:  # a GPU engine, on the graph form asked for (plain by default)
        if name == "ort-cuda":
            return _open(src.graph(form), name, threads, label)
        if name == "ort-trt":  # TensorRT 11 takes the strongly typed fp16 graph; engines are cached
            return _open(src.variant("fp16", form), name, threads, label)
        return _trt(src, form, label, cuda_graphs)
    if name == "runtime":
        return _runtime(src.fp32(), threads if pinned else None, precision)
    if name == "ort":  # the runtime's own backend on its own file, without the Generator around it
        return _open(src.fp32(), name, threads)
    if name == "ort-plain":
        return _open(plain_graph(src), "ort", threads, name)
    if name == "ort-int8u":  # the family's u8-activation int8 file (export --variants), beside the fp32 one
        u8 = src.fp32().with_name(variant_name(src.fp32().stem, U8_TAG))
        if not u8.is_file():
            raise Skip(f"no {u8.name} beside {src.fp32().name} (gantool export --variants makes it where int8 passes)")
        return _open(u8, "ort", threads, name)
    if name in ("ort-fp16", "ort-int8"):
        return _open(src.variant(name[4:]), "ort", threads, name)
    if name == "openvino":
        return _open(openvino_graph(src), name, threads)
    if name == "openvino-bf16":  # bf16 inference precision, on the graph whose every layer it runs in bf16
        try:
            return backend_engine(open_backend(phases_graph(src), "openvino", threads, compute="bf16"), name)
        except GantoolError as e:
            raise Skip(str(e).split(" Note:")[0]) from None
    if name in ("torch", "torch-compile", "torch-bf16"):
        return _torch(src, threads, compiled=name == "torch-compile", bf16=name == "torch-bf16")
    raise GantoolError(f"unknown engine {name!r}; allowed: {', '.join(ENGINES)}.")
