"""A Triton Inference Server model repository for a generator: REPO/NAME/config.pbtxt + 1/model.onnx
(or 1/model.plan from a built engine), so users who outgrow one machine can serve it on Triton.

Input/output names, dtypes and dims come from the generator contract, which the export checked
against the graph itself; the metadata rides in the config's parameters.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from gantool.contract import SPEC_KEY, GeneratorMetadata, TensorSpec, write_metadata
from gantool.errors import GantoolError
from gantool.fileio import atomic_write_bytes, staged

# contract dtype -> Triton DataType name
TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64", "int32": "TYPE_INT32",
                "uint8": "TYPE_UINT8"}
DEFAULT_MAX_BATCH = 256
DEFAULT_QUEUE_DELAY_US = 500


@dataclass(frozen=True)
class TensorDesc:
    name: str
    dtype: str  # Triton type name
    dims: tuple[int, ...]  # without the batch dimension


def tensor_desc(t: TensorSpec) -> TensorDesc:
    """A contract tensor as Triton sees it: dims without the batch axis."""
    if t.dtype not in TRITON_TYPES:
        raise GantoolError(f"tensor {t.name!r} has dtype {t.dtype}, which this exporter does not map to Triton; "
                           f"allowed: {', '.join(TRITON_TYPES)}.")
    return TensorDesc(t.name, TRITON_TYPES[t.dtype], tuple(int(d) for d in t.shape[1:]))  # type: ignore[arg-type]


def _tensor_block(t: TensorDesc) -> str:
    if t.dims:
        return f'  {{\n    name: "{t.name}"\n    data_type: {t.dtype}\n    dims: [ {", ".join(map(str, t.dims))} ]\n  }}'
    # a per-sample scalar (the label): Triton needs dims [1], reshaped to the model's [batch]
    return f'  {{\n    name: "{t.name}"\n    data_type: {t.dtype}\n    dims: [ 1 ]\n    reshape: {{ shape: [ ] }}\n  }}'


def config_pbtxt(name: str, platform: str, inputs: list[TensorDesc], outputs: list[TensorDesc], max_batch: int,
                 metadata: dict[str, str], queue_delay_us: int = DEFAULT_QUEUE_DELAY_US) -> str:
    preferred = sorted({b for b in (8, 32, 64, 128, 256, max_batch) if b <= max_batch})
    return "\n".join([
        f'name: "{name}"',
        f'platform: "{platform}"',
        f"max_batch_size: {max_batch}",
        "input [\n" + ",\n".join(_tensor_block(t) for t in inputs) + "\n]",
        "output [\n" + ",\n".join(_tensor_block(t) for t in outputs) + "\n]",
        "dynamic_batching {\n"
        f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]\n"
        f"  max_queue_delay_microseconds: {queue_delay_us}\n}}",
        *(f'parameters {{\n  key: "{k}"\n  value: {{ string_value: {json.dumps(v)} }}\n}}'
          for k, v in sorted(metadata.items())),
        "",
    ])


def plan_max_batch(plan: str | Path, max_batch: int | None) -> int:
    """The max_batch_size a Triton model serving this plan gets: --max-batch, which Triton can only load
    when the plan's profile covers every batch from 1 to it [default: 256, or the profile's maximum when
    smaller]. Refuses, in one line, a larger --max-batch or a profile that does not start at 1."""
    from gantool.runtime.backends.trt import read_sidecar

    profile = read_sidecar(plan)["profile"]
    low, high = int(profile.get("min_batch", 1)), int(profile["max_batch"])
    if low > 1:
        raise GantoolError(f"--plan {plan}: its profile starts at batch {low}, and Triton sends batches from 1; "
                           f"allowed: a plan built with --min-batch 1.")
    if max_batch is None:
        return min(DEFAULT_MAX_BATCH, high)
    if max_batch > high:
        raise GantoolError(f"--max-batch {max_batch} is larger than --plan {Path(plan).name}'s profile maximum "
                           f"{high}; allowed: 1 to {high}.", note=f"pass --max-batch {high}, or rebuild the plan with "
                                                                  f"--max-batch {max_batch}.")
    return max_batch


def write_repository(repo: str | Path, metadata: GeneratorMetadata, onnx_path: str | Path,
                     max_batch: int = DEFAULT_MAX_BATCH, plan: str | Path | None = None,
                     name: str | None = None) -> Path:
    """Write REPO/NAME/{config.pbtxt, 1/model.onnx|model.plan}; returns the model folder.
    name: the Triton model's name [default: the arch]."""
    if max_batch < 1:
        raise GantoolError(f"--max-batch must be >= 1, got {max_batch}.")
    repo = Path(repo)
    if repo.exists() and not repo.is_dir():
        raise GantoolError(f"-o {repo} is a file; a Triton model repository is a folder.")
    contract = metadata.contract
    inputs, outputs = [tensor_desc(t) for t in contract.inputs], [tensor_desc(t) for t in contract.outputs]
    name = name or metadata.spec.arch
    folder = repo / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    if plan is None:
        atomic_write_bytes(folder / "1" / "model.onnx", Path(onnx_path).read_bytes())
        platform = "onnxruntime_onnx"
    else:
        with staged(folder / "1" / "model.plan") as tmp:
            shutil.copyfile(plan, tmp)
        platform = "tensorrt_plan"
    atomic_write_bytes(folder / "config.pbtxt",
                       config_pbtxt(name, platform, inputs, outputs, max_batch, write_metadata(metadata)).encode())
    return folder


__all__ = ["SPEC_KEY", "config_pbtxt", "plan_max_batch", "tensor_desc", "write_repository"]
