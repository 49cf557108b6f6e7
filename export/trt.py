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
from gantool.runtime.backends.trt import SIDECAR_SCHEMA, TensorRTMissing, import_tensorrt, sidecar_path

__all__ = ["Profile", "TensorRTMissing", "build_plan", "import_tensorrt", "run_build"]

log = logging.getLogger(__name__)
WORKSPACE_BYTES = 1 << 30
ENGINE_PRECISIONS = ("fp16", "fp32")


@dataclass(frozen=True)
class Profile:
    min_batch: int = 1
    opt_batch: int = 64
    max_batch: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise GantoolError(f"the batch profile needs 1 <= min <= opt <= max; got min {self.min_batch}, "
                               f"opt {self.opt_batch}, max {self.max_batch}.")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    opt_profile = builder.create_optimization_profile()
    for t in inputs:
        rest = tuple(t.shape)[1:]
        opt_profile.set_shape(t.name, (profile.min_batch, *rest), (profile.opt_batch, *rest),
                              (profile.max_batch, *rest))
    config.add_optimization_profile(opt_profile)
    cache_file = Path(timing_cache) if timing_cache else None
    cache = config.create_timing_cache(cache_file.read_bytes() if cache_file and cache_file.exists() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
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
        "gpu": _gpu_name(),
        "source_onnx": str(onnx_path),
        "source_onnx_sha256": sha256_file(onnx_path),
    }
    with staged(plan_path) as plan_tmp, staged(sidecar_path(plan_path)) as side_tmp:
        plan_tmp.write_bytes(bytes(serialized))
        side_tmp.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return sidecar


def _gpu_name() -> str:
    try:
        from cuda.bindings import runtime as cudart

        err, props = cudart.cudaGetDeviceProperties(0)
        return props.name.decode(errors="replace").strip("\x00") if int(err) == 0 else "unknown"
    except Exception:  # the name is informative only; never fail a build for it
        return os.environ.get("GANTOOL_GPU_NAME", "unknown")


def run_build(model: str, output: str | None, precision: str, profile: Profile,
              timing_cache: str | None = None, verbose: bool = False) -> tuple[Path, dict[str, Any], Any]:
    """`gantool build --engine trt`: export once (unless given an .onnx), build, then check the engine
    against ONNX Runtime on the fp32 graph. Returns (plan path, sidecar, parity report)."""
    import tempfile

    from gantool.export.parity import ParityError, compare_backend
    from gantool.runtime.backends.trt import TrtBackend

    import_tensorrt()  # fail fast, before any export work
    if precision not in ENGINE_PRECISIONS:
        raise GantoolError(f"unknown engine precision {precision!r}; allowed: {', '.join(ENGINE_PRECISIONS)}.")
    with tempfile.TemporaryDirectory(prefix="gantool-build-") as tmp:
        if model.endswith(".onnx"):
            if not Path(model).is_file():
                raise GantoolError(f"--model {model}: no such ONNX file.")
            reference = Path(model)
            with OrtBackend(reference) as probe:
                meta = probe.generator_metadata()
        else:
            from gantool.export.run import run_export

            fp32 = run_export(model, str(Path(tmp) / "model.onnx"), precision="fp32")  # one export, one parity run
            reference, meta = fp32.path, fp32.metadata
        if meta.precision == precision:
            source = reference
        elif meta.precision == "fp32" and precision == "fp16":
            source = _fp16_graph(reference, meta, Path(tmp) / "model.fp16.onnx")
        else:
            raise GantoolError(f"--model {model} is a {meta.precision} graph; a {precision} engine is built from an "
                               f"fp32 or {precision} graph.", note=f"pass the fp32 export, or --precision {meta.precision}.")
        meta = meta.replace(precision=precision)
        plan = Path(output) if output else Path(f"{meta.spec.arch}.{precision}.plan")
        refuse_overwrite({"-o": plan}, {"--model": model, "--timing-cache": timing_cache})
        with tempfile.TemporaryDirectory(prefix="gantool-plan-", dir=plan.parent if str(plan.parent) else ".") as stage:
            staged_plan = Path(stage) / plan.name  # checked before it replaces anything at -o
            sidecar = build_plan(source, staged_plan, profile, meta, timing_cache, verbose)
            report = compare_backend(meta.spec, TrtBackend(staged_plan), _ort_reference(reference), precision,
                                     reference_name="onnxruntime-cpu fp32", condition=meta.condition)
            if not report.passed:
                raise ParityError([report])
            os.replace(sidecar_path(staged_plan), sidecar_path(plan))
            os.replace(staged_plan, plan)
    return plan, sidecar, report


def _fp16_graph(fp32_path: Path, meta: GeneratorMetadata, out: Path) -> Path:
    """The strongly typed fp16 graph TensorRT builds an FP16 engine from, derived from the fp32 export."""
    import onnx

    from gantool.export.onnx import set_metadata
    from gantool.export.precision import to_fp16

    fp16 = to_fp16(onnx.load(str(fp32_path)))
    set_metadata(fp16, meta.replace(precision="fp16"))
    atomic_write_bytes(out, fp16.SerializeToString())
    return out


def _ort_reference(path: Path) -> Any:
    backend = OrtBackend(path.read_bytes(), name="onnxruntime-cpu fp32")
    backend.activate()
    contract = backend.generator_metadata().contract

    def run(z: Any, labels: Any) -> Any:
        return backend.infer(contract.feeds(z, labels))

    return run
