"""A Triton Inference Server model repository for a generator: REPO/NAME/config.pbtxt + 1/model.onnx
(or 1/model.plan from a built engine), so users who outgrow one machine can serve it on Triton.

Input/output names, dtypes and dims are read from the ONNX graph itself, never restated.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from gantool.errors import GantoolError
from gantool.fileio import atomic_write_bytes

# ONNX TensorProto elem_type -> Triton DataType name
TRITON_TYPES = {1: "TYPE_FP32", 10: "TYPE_FP16", 7: "TYPE_INT64", 6: "TYPE_INT32", 2: "TYPE_UINT8"}
DEFAULT_MAX_BATCH = 256
DEFAULT_QUEUE_DELAY_US = 500


@dataclass(frozen=True)
class TensorDesc:
    name: str
    dtype: str  # Triton type name
    dims: tuple[int, ...]  # without the batch dimension


def onnx_io(model_path: str | Path) -> tuple[list[TensorDesc], list[TensorDesc]]:
    import onnx

    m = onnx.load(str(model_path), load_external_data=False)
    init = {i.name for i in m.graph.initializer}

    def desc(v: object) -> TensorDesc:
        t = v.type.tensor_type  # type: ignore[attr-defined]
        if t.elem_type not in TRITON_TYPES:
            raise GantoolError(f"tensor {v.name!r} has ONNX type {t.elem_type}, which this exporter does not map "  # type: ignore[attr-defined]
                               f"to Triton; allowed: float32, float16, int64, int32, uint8.")
        dims = tuple(d.dim_value for d in t.shape.dim[1:])  # dim 0 is the dynamic batch
        return TensorDesc(v.name, TRITON_TYPES[t.elem_type], dims)  # type: ignore[attr-defined]

    return [desc(v) for v in m.graph.input if v.name not in init], [desc(v) for v in m.graph.output]


def _tensor_block(t: TensorDesc) -> str:
    if t.dims:
        return f'  {{\n    name: "{t.name}"\n    data_type: {t.dtype}\n    dims: [ {", ".join(map(str, t.dims))} ]\n  }}'
    # a per-sample scalar (the label): Triton needs dims [1], reshaped to the model's [batch]
    return f'  {{\n    name: "{t.name}"\n    data_type: {t.dtype}\n    dims: [ 1 ]\n    reshape: {{ shape: [ ] }}\n  }}'


def config_pbtxt(name: str, platform: str, inputs: list[TensorDesc], outputs: list[TensorDesc], max_batch: int,
                 spec_json: str, queue_delay_us: int = DEFAULT_QUEUE_DELAY_US) -> str:
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
        f'parameters {{\n  key: "gantool.spec"\n  value: {{ string_value: {json.dumps(spec_json)} }}\n}}',
        "",
    ])


def write_repository(repo: str | Path, name: str, onnx_path: str | Path, spec_json: str,
                     max_batch: int = DEFAULT_MAX_BATCH, plan: str | Path | None = None) -> Path:
    """Write REPO/NAME/{config.pbtxt, 1/model.onnx|model.plan}; returns the model folder."""
    if max_batch < 1:
        raise GantoolError(f"--max-batch must be >= 1, got {max_batch}.")
    repo = Path(repo)
    if repo.exists() and not repo.is_dir():
        raise GantoolError(f"-o {repo} is a file; a Triton model repository is a folder.")
    inputs, outputs = onnx_io(onnx_path)
    folder = repo / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    if plan is None:
        atomic_write_bytes(folder / "1" / "model.onnx", Path(onnx_path).read_bytes())
        platform = "onnxruntime_onnx"
    else:
        tmp = folder / "1" / ".model.plan.tmp"
        shutil.copyfile(plan, tmp)
        tmp.replace(folder / "1" / "model.plan")
        platform = "tensorrt_plan"
    atomic_write_bytes(folder / "config.pbtxt",
                       config_pbtxt(name, platform, inputs, outputs, max_batch, spec_json).encode())
    return folder
