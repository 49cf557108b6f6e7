"""Build a TensorRT engine from an ONNX generator: a strongly typed network (always so on TensorRT
11; the STRONGLY_TYPED creation flag on 10.12+), one optimisation profile over the batch, a timing
cache reused between builds, and a JSON sidecar that makes the .plan as self-describing as the ONNX.

Building and inference are separate (runtime/backends/trt.py runs the plan). tensorrt is imported
only inside these functions, never at module import.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from gantool.errors import GantoolError
from gantool.fileio import atomic_write_bytes, atomic_write_json
from gantool.spec import ModelSpec

SIDECAR_SCHEMA = 1
WORKSPACE_BYTES = 1 << 30


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


@dataclass(frozen=True)
class Profile:
    min_batch: int = 1
    opt_batch: int = 64
    max_batch: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise GantoolError(f"the batch profile needs 1 <= min <= opt <= max; got min {self.min_batch}, "
                               f"opt {self.opt_batch}, max {self.max_batch}.")


def sidecar_path(plan: str | Path) -> Path:
    return Path(str(plan) + ".json")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def onnx_metadata_of(path: str | Path) -> dict[str, str]:
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise GantoolError(f"{path}: not a readable ONNX file ({type(e).__name__}).") from None
    meta = {p.key: p.value for p in m.metadata_props}
    if "gantool.spec" not in meta:
        raise GantoolError(f"{path}: not a gantool generator (no gantool.* metadata).",
                           note="export it with gantool export first.")
    return meta


def build_plan(onnx_path: str | Path, plan_path: str | Path, profile: Profile, precision: str = "fp16",
               timing_cache: str | Path | None = None, verbose: bool = False) -> dict[str, Any]:
    """Parse, build and serialise; writes the plan and its sidecar atomically and returns the sidecar."""
    trt = import_tensorrt()
    meta = onnx_metadata_of(onnx_path)
    spec = json.loads(meta["gantool.spec"])
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
    for t in inputs:
        print(f"[trt] input  {t.name}: {t.dtype} {tuple(t.shape)}")
    for t in outputs:
        print(f"[trt] output {t.name}: {t.dtype} {tuple(t.shape)}")
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
    if cache_file is not None:
        atomic_write_bytes(cache_file, bytes(config.get_timing_cache().serialize()))
    sidecar = {
        "gantool.sidecar_schema": SIDECAR_SCHEMA,
        "spec": spec,
        "metadata": meta,
        "profile": asdict(profile),
        "precision": precision,
        "tensorrt_version": trt.__version__,
        "gpu": _gpu_name(),
        "source_onnx": str(onnx_path),
        "source_onnx_sha256": sha256_file(onnx_path),
        "inputs": [{"name": t.name, "dtype": str(t.dtype)} for t in inputs],
        "outputs": [{"name": t.name, "dtype": str(t.dtype)} for t in outputs],
    }
    atomic_write_bytes(Path(plan_path), bytes(serialized))
    atomic_write_json(sidecar_path(plan_path), sidecar)
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
    """`gantool build --engine trt`: export (unless given an .onnx), build, then check the engine
    against ONNX Runtime on the fp32 graph. Returns (plan path, sidecar, parity report)."""
    import tempfile

    from gantool.export.parity import ParityError, compare_backend
    from gantool.runtime.backends.trt import TrtBackend

    import_tensorrt()  # fail fast, before any export work
    if precision not in ("fp16", "fp32"):
        raise GantoolError(f"unknown engine precision {precision!r}; allowed: fp16, fp32.")
    with tempfile.TemporaryDirectory(prefix="gantool-build-") as tmp:
        if model.endswith(".onnx"):
            if not Path(model).is_file():
                raise GantoolError(f"--model {model}: no such ONNX file.")
            source, reference = Path(model), Path(model)
        else:
            from gantool.export.run import run_export

            source = run_export(model, str(Path(tmp) / f"model.{precision}.onnx"), precision=precision).path
            reference = run_export(model, str(Path(tmp) / "model.onnx"), precision="fp32").path
        arch = json.loads(onnx_metadata_of(source)["gantool.spec"])["arch"]
        plan = Path(output) if output else Path(f"{arch}.{precision}.plan")
        sidecar = build_plan(source, plan, profile, precision, timing_cache, verbose)
        spec = ModelSpec.from_dict(sidecar["spec"])
        try:
            report = compare_backend(spec, TrtBackend(plan), _ort_reference(reference), precision,
                                     reference_name="onnxruntime-cpu fp32")
            if not report.passed:
                raise ParityError([report])
        except BaseException:
            plan.unlink(missing_ok=True)
            sidecar_path(plan).unlink(missing_ok=True)
            raise
    return plan, sidecar, report


def _ort_reference(path: Path) -> Any:
    from gantool.runtime.backends.ort import OrtBackend

    backend = OrtBackend(path.read_bytes(), name="onnxruntime-cpu fp32")
    backend.activate()

    def run(z: Any, labels: Any) -> Any:
        return backend.infer({"z": z} if labels is None else {"z": z, "labels": labels})

    return run
