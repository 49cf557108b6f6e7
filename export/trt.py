"""Build a TensorRT engine from an ONNX generator: a strongly typed network (always so on TensorRT
11; the STRONGLY_TYPED creation flag on 10.12+), one optimisation profile over the batch, a timing
cache reused between builds, and a JSON sidecar that makes the .plan as self-describing as the ONNX.

Building and inference are separate (runtime/backends/trt.py runs the plan). tensorrt is imported
only inside these functions, never at module import.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gantool.contract import GeneratorMetadata, write_metadata
from gantool.errors import GantoolError
from gantool.fileio import atomic_write_bytes, refuse_overwrite, staged
from gantool.runtime.backends.ort import OrtBackend
from gantool.runtime.backends.trt import (
    SIDECAR_SCHEMA,
    TensorRTMissing,
    build_key,
    cuda_device,
    import_tensorrt,
    sidecar_path,
)

__all__ = ["DEFAULT_GPU_GRAPH", "GPU_GRAPHS", "Profile", "TensorRTMissing", "build_plan", "builder_flags_cleared",
           "engine_precision", "export_options", "graph_precision", "import_tensorrt", "keyed_cache_path",
           "plan_cache_name", "run_build"]

log = logging.getLogger(__name__)
WORKSPACE_BYTES = 1 << 30
ENGINE_PRECISIONS = ("fp16", "fp32")
# The graph forms a GPU engine is built from (export/onnx.py graph_form). plain, the default: torch's own
# ConvTranspose, which TensorRT and cuDNN run natively; lowered: export/lower.py's Gemm + phase Convs +
# DepthToSpace rewrite, which is faster on ONNX Runtime's CPU kernels only.
GPU_GRAPHS = ("plain", "lowered")
DEFAULT_GPU_GRAPH = "plain"
QDQ_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "DynamicQuantizeLinear"}


@dataclass(frozen=True)
class Profile:
    min_batch: int = 1
    opt_batch: int = 64
    max_batch: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise GantoolError(f"the batch profile needs 1 <= min <= opt <= max; got min {self.min_batch}, "
                               f"opt {self.opt_batch}, max {self.max_batch}.")


def export_options(graph: str) -> dict[str, bool]:
    """run_export's options for a GPU engine's source graph form."""
    if graph not in GPU_GRAPHS:
        raise GantoolError(f"unknown graph form {graph!r} for a GPU engine; allowed: {', '.join(GPU_GRAPHS)}.")
    return {"lower": graph == "lowered"}


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def builder_flags_cleared(precision: str) -> frozenset[str]:
    """The BuilderFlag names a build clears. TensorRT enables TF32 by default, so on Ampere and later an
    fp32 engine's matmuls and convolutions would round to TF32 (~1e-3) and miss fp32's 1e-4 bar; an fp16
    engine keeps TF32 for the few layers its graph leaves in fp32."""
    if precision not in ENGINE_PRECISIONS:
        raise GantoolError(f"unknown engine precision {precision!r}; allowed: {', '.join(ENGINE_PRECISIONS)}.")
    return frozenset({"TF32"}) if precision == "fp32" else frozenset()


def graph_precision(model: Any) -> str:
    """What a strongly typed engine built from this onnx ModelProto computes in, from its own dtypes:
    int8 where it has Q/DQ nodes, fp16 (bf16) where any initializer, constant, cast or typed tensor is
    float16 (bfloat16), else fp32."""
    from onnx import TensorProto

    half, brain = TensorProto.FLOAT16, TensorProto.BFLOAT16
    found: set[int] = set()

    def walk(graph: Any) -> bool:
        found.update(t.data_type for t in graph.initializer)
        found.update(v.type.tensor_type.elem_type for v in [*graph.input, *graph.output, *graph.value_info])
        for node in graph.node:
            if node.op_type in QDQ_OPS:
                return True
            for a in node.attribute:
                if node.op_type == "Cast" and a.name == "to":
                    found.add(a.i)
                if a.HasField("t"):
                    found.add(a.t.data_type)
                if a.HasField("g") and walk(a.g):
                    return True
                if any(walk(g) for g in a.graphs):
                    return True
        return False

    if walk(model.graph):
        return "int8"
    return "fp16" if half in found else "bf16" if brain in found else "fp32"


def engine_precision(model: str, graph: str, metadata: str, requested: str | None) -> tuple[str, bool]:
    """The precision an .onnx --model builds in, and whether its graph is first converted (fp32 -> fp16).
    Under strong typing the graph's dtypes are the precision: no --precision takes the graph's own, an
    fp32 graph also builds fp16 (converted here), and anything else contradicting the graph is refused."""
    if graph != metadata:
        raise GantoolError(f"--model {model}: its metadata says {metadata}, but its graph computes in {graph}; "
                           f"allowed: a file whose metadata matches its graph.",
                           note="export it again with gantool export.")
    if graph not in ENGINE_PRECISIONS:
        raise GantoolError(f"--model {model} is a {graph} graph; TensorRT engines are built here from fp32 or fp16 "
                           f"graphs; allowed: {', '.join(ENGINE_PRECISIONS)}.", note="pass the fp32 export.")
    if requested is None or requested == graph:
        return graph, False
    if graph == "fp32" and requested == "fp16":
        return "fp16", True
    raise GantoolError(f"--model {model} is a {graph} graph, so its engine computes in {graph}; --precision "
                       f"{requested} contradicts it; allowed: --precision {graph} or none.",
                       note=f"for a {requested} engine pass the fp32 export (or --reference with it).")


def keyed_cache_path(path: str | Path, tensorrt_version: str, capability: str | None) -> Path:
    """The timing cache file for this TensorRT and GPU kind: PATH's name with the build key before its
    suffix (gantool.timing-cache -> gantool.trt10.12.0.36-sm90.timing-cache), so builds on other
    versions or GPUs sharing a folder never load, or overwrite, each other's cache."""
    p = Path(path)
    return p.with_name(f"{p.stem}.{build_key(tensorrt_version, capability)}{p.suffix}")


def plan_cache_name(stem: str, precision: str, tensorrt_version: str, capability: str | None,
                    onnx_sha256: str) -> str:
    """A cached engine's file name, valid only for its TensorRT, GPU kind and source graph."""
    return f"{stem}.{precision}.{build_key(tensorrt_version, capability)}.{onnx_sha256[:16]}.plan"


def build_plan(onnx_path: str | Path, plan_path: str | Path, profile: Profile, meta: GeneratorMetadata,
               timing_cache: str | Path | None = None, verbose: bool = False) -> dict[str, Any]:
    """Parse, build and serialise; writes the plan and its sidecar (the metadata in the contract's
    schema, the profile, the build's TensorRT and GPU) only once both are complete. Returns the sidecar."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    # TensorRT 11 networks are always strongly typed; 10.12+ asks for it with a creation flag.
    flags = 0 if major >= 11 else 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise GantoolError(f"TensorRT could not parse {onnx_path}: {errors[:400]}")
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    outputs = [network.get_output(i) for i in range(network.num_outputs)]
    for kind, tensors in (("input", inputs), ("output", outputs)):
        for t in tensors:
            log.info("[trt] %-6s %s: %s %s", kind, t.name, t.dtype, tuple(t.shape))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    for flag in builder_flags_cleared(meta.precision):
        config.clear_flag(getattr(trt.BuilderFlag, flag))
    gpu, capability = cuda_device()
    opt_profile = builder.create_optimization_profile()
    for t in inputs:
        rest = tuple(t.shape)[1:]
        opt_profile.set_shape(t.name, (profile.min_batch, *rest), (profile.opt_batch, *rest),
                              (profile.max_batch, *rest))
    config.add_optimization_profile(opt_profile)
    cache_file = keyed_cache_path(timing_cache, trt.__version__, capability) if timing_cache else None
    cache = config.create_timing_cache(cache_file.read_bytes() if cache_file and cache_file.exists() else b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("[trt] the timing cache %s does not match this TensorRT and GPU; starting an empty one", cache_file)
        if not config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False):
            raise GantoolError(f"TensorRT refused an empty timing cache for {onnx_path}.",
                               note="rerun with --verbose to see the builder log.")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise GantoolError(f"TensorRT failed to build an engine from {onnx_path}.",
                           note="rerun with --verbose to see the builder log.")
    if cache_file is not None:  # updated by design, atomically
        atomic_write_bytes(cache_file, bytes(config.get_timing_cache().serialize()))
    sidecar = {
        "sidecar_schema": SIDECAR_SCHEMA,
        "metadata": write_metadata(meta),
        "profile": asdict(profile),
        "tensorrt_version": trt.__version__,
        "gpu": gpu,
        "compute_capability": capability,
        "source_onnx": str(onnx_path),
        "source_onnx_sha256": sha256_file(onnx_path),
    }
    with staged(plan_path) as plan_tmp, staged(sidecar_path(plan_path)) as side_tmp:
        plan_tmp.write_bytes(bytes(serialized))
        side_tmp.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return sidecar


def run_build(model: str, output: str | None, precision: str | None, profile: Profile,
              timing_cache: str | None = None, verbose: bool = False,
              reference: str | None = None, graph: str | None = None) -> tuple[Path, dict[str, Any], Any]:
    """`gantool build --engine trt`: export once (unless given an .onnx), build, then check the engine
    against ONNX Runtime on an fp32 graph. precision None: fp16 for a zoo name or checkpoint, an .onnx's
    own. reference (an .onnx --model only): the fp32 ONNX, checkpoint or zoo name the engine is checked
    against [default: the .onnx itself, when it is fp32]. graph (a zoo name or checkpoint only): the form
    exported for the engine [default: plain, GPU_GRAPHS]. Returns (plan path, sidecar, parity report)."""
    import tempfile

    from gantool.export.parity import ParityError, compare_backend
    from gantool.runtime.backends import trt as trt_backend

    import_tensorrt()  # fail fast, before any export work
    if precision is not None and precision not in ENGINE_PRECISIONS:
        raise GantoolError(f"unknown engine precision {precision!r}; allowed: {', '.join(ENGINE_PRECISIONS)}.")
    with tempfile.TemporaryDirectory(prefix="gantool-build-") as tmp:
        if model.endswith(".onnx"):
            if graph is not None:
                raise GantoolError(f"--graph sets the form a zoo name or checkpoint is exported in; {model} is "
                                   f"already a graph; allowed: --graph only without an .onnx --model.")
            if not Path(model).is_file():
                raise GantoolError(f"--model {model}: no such ONNX file.")
            given = Path(model)
            meta, graph = _onnx_facts(given)
            precision, convert = engine_precision(model, graph, meta.precision, precision)
            ref_path, ref_name = _onnx_reference(model, graph, meta, reference, Path(tmp))
        else:
            if reference is not None:
                raise GantoolError(f"--reference is for an .onnx --model; {model} is checked against its own fp32 "
                                   f"export; allowed: --reference only with --model FILE.onnx.")
            from gantool.export.run import run_export

            # one export, one parity run; the unlowered graph by default (ConvTranspose runs natively on a GPU)
            fp32 = run_export(model, str(Path(tmp) / "model.onnx"), precision="fp32",
                              lower=export_options(graph or DEFAULT_GPU_GRAPH)["lower"])
            given, meta = fp32.path, fp32.metadata
            precision = precision or "fp16"
            convert = precision == "fp16"
            ref_path, ref_name = given, f"onnxruntime-cpu fp32 (the fp32 export of {model})"
        source = _fp16_graph(given, meta, Path(tmp) / "model.fp16.onnx") if convert else given
        meta = meta.replace(precision=precision)
        plan = Path(output) if output else Path(f"{meta.spec.arch}.{precision}.plan")
        refuse_overwrite({"-o": plan}, {"--model": model, "--timing-cache": timing_cache, "--reference": reference})
        with tempfile.TemporaryDirectory(prefix="gantool-plan-", dir=plan.parent if str(plan.parent) else ".") as stage:
            staged_plan = Path(stage) / plan.name  # checked before it replaces anything at -o
            sidecar = build_plan(source, staged_plan, profile, meta, timing_cache, verbose)
            engine = trt_backend.TrtBackend(staged_plan)
            engine.pad_small_batches = True  # parity runs batch 1 too: a --min-batch above it is padded
            report = compare_backend(meta.spec, engine, _ort_reference(ref_path, ref_name), precision,
                                     reference_name=ref_name, condition=meta.condition)
            if not report.passed:
                raise ParityError([report])
            os.replace(sidecar_path(staged_plan), sidecar_path(plan))
            os.replace(staged_plan, plan)
    return plan, sidecar, report


def _onnx_facts(path: Path) -> tuple[GeneratorMetadata, str]:
    """An .onnx's gantool metadata (checked against its graph) and the precision its dtypes say."""
    try:
        import onnx
    except ImportError:
        raise GantoolError(f"reading {path}'s precision from its graph needs the onnx package, which is not "
                           f"installed.", note='pip install "gantool[trt]" installs it.') from None
    with OrtBackend(path) as probe:
        meta = probe.generator_metadata()
    return meta, graph_precision(onnx.load(str(path), load_external_data=False))


def _onnx_reference(model: str, graph: str, meta: GeneratorMetadata, reference: str | None,
                    tmp: Path) -> tuple[Path, str]:
    """The fp32 graph an .onnx --model's engine is checked against, and how the report names it."""
    if reference is None:
        if graph != "fp32":
            raise GantoolError(f"--model {model} is a {graph} graph, so it cannot be its own fp32 parity reference; "
                               f"allowed: --reference with its fp32 ONNX, checkpoint or zoo name.")
        return Path(model), f"onnxruntime-cpu fp32 ({Path(model).name} itself)"
    if reference.endswith(".onnx"):
        if not Path(reference).is_file():
            raise GantoolError(f"--reference {reference}: no such ONNX file.")
        ref_meta, ref_graph = _onnx_facts(Path(reference))
        if ref_graph != "fp32" or ref_meta.precision != "fp32":
            raise GantoolError(f"--reference {reference} is a {ref_graph} graph (metadata: {ref_meta.precision}); "
                               f"allowed: an fp32 ONNX, a checkpoint or a zoo name.")
        ref_path, name = Path(reference), f"onnxruntime-cpu fp32 (--reference {Path(reference).name})"
    else:
        from gantool.export.run import run_export

        fp32 = run_export(reference, str(tmp / "reference.onnx"), precision="fp32", condition=meta.condition)
        ref_path, ref_meta = fp32.path, fp32.metadata
        name = f"onnxruntime-cpu fp32 (--reference {reference}, its fp32 export)"
    if ref_meta.spec != meta.spec or ref_meta.condition != meta.condition:
        raise GantoolError(f"--reference {reference} is another model ({ref_meta.spec.arch}, {ref_meta.condition}) "
                           f"than --model {model} ({meta.spec.arch}, {meta.condition}); allowed: the same model's "
                           f"fp32 ONNX, checkpoint or zoo name.")
    return ref_path, name


def _fp16_graph(fp32_path: Path, meta: GeneratorMetadata, out: Path) -> Path:
    """The strongly typed fp16 graph TensorRT builds an FP16 engine from, derived from the fp32 export."""
    import onnx

    from gantool.export.onnx import set_metadata
    from gantool.export.precision import to_fp16

    fp16 = to_fp16(onnx.load(str(fp32_path)))
    set_metadata(fp16, meta.replace(precision="fp16"))
    atomic_write_bytes(out, fp16.SerializeToString())
    return out


def _ort_reference(path: Path, name: str = "onnxruntime-cpu fp32") -> Any:
    backend = OrtBackend(path.read_bytes(), name=name)
    backend.activate()
    contract = backend.generator_metadata().contract

    def run(z: Any, labels: Any) -> Any:
        return backend.infer(contract.feeds(z, labels))

    return run
