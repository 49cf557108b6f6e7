"""Trace a generator to ONNX with a dynamic batch on every input and output.

The file describes itself in metadata_props (the ModelSpec plus names, dtypes and the noise
function), so the runtime needs nothing else. BatchNorm is folded by the exporter's optimizer and
the graph is simplified with onnxslim. ConvTranspose layers are then rewritten into exact equivalents
that ONNX Runtime's CPU kernels run faster (export/lower.py), after the FLOPs are counted. onnx's
full checker and shape inference run before the file is written (atomically).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

import gantool
from gantool.errors import GantoolError
from gantool.fileio import atomic_write_bytes
from gantool.noise import NOISE_FUNCTION
from gantool.spec import ModelSpec

ONNX_METADATA_SCHEMA = 1
Z, LABELS, IMAGES = "z", "labels", "images"
DEFAULT_OPSET = 18


class _Unconditional(nn.Module):
    def __init__(self, g: nn.Module) -> None:
        super().__init__()
        self.g = g

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.g(z)


class _Conditional(_Unconditional):
    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.g(z, labels)


def onnx_metadata(spec: ModelSpec) -> dict[str, str]:
    """What the runtime reads: every shape, dtype and range comes from here, never from constants."""
    return {
        "gantool.schema_version": str(ONNX_METADATA_SCHEMA),
        "gantool.model": spec.arch,
        "gantool.latent_dim": str(spec.latent_dim),
        "gantool.num_classes": str(spec.num_classes),
        "gantool.conditional": str(spec.conditional).lower(),
        "gantool.label_dtype": "int64",
        "gantool.image_shape": json.dumps(list(spec.image_shape)),
        "gantool.output_range": json.dumps(list(spec.output_range)),
        "gantool.layout": spec.layout,
        "gantool.noise_function": NOISE_FUNCTION,
        "gantool.noise_distribution": spec.noise,
        "gantool.training_data": spec.dataset,
        "gantool.version": gantool.__version__,
        "gantool.spec": json.dumps(spec.to_dict()),
        "gantool.inputs": json.dumps([Z, LABELS] if spec.conditional else [Z]),
        "gantool.output": IMAGES,
    }


def export_onnx(spec: ModelSpec, g: nn.Module, path: str | Path, opset: int = DEFAULT_OPSET,
                example_batch: int = 4, lower: bool = True, fold: bool = True) -> Path:
    """Export, fold, simplify, lower, check and write; returns the path written.

    lower=False keeps every ConvTranspose as torch exported it (the plain graph is easier to read);
    fold=False keeps the phase interleave (export/lower.py), the form OpenVINO runs fastest.
    """
    import onnx
    import onnxslim

    from gantool.export.flops import FLOPS_KEY, graph_flops_per_sample, peak_activation_values
    from gantool.export.lower import lower_conv_transpose
    from gantool.runtime.backends.ort import ACTIVATION_KEY

    from gantool.train.zoo import example_inputs

    if example_batch < 2:
        raise GantoolError(f"the example batch must be >= 2 (a batch of 1 can be specialised away), got {example_batch}.")
    if not 17 <= opset <= 23:
        raise GantoolError(f"--opset {opset} is not supported; allowed: 17 to 23.")
    g = g.eval()
    wrapper = _Conditional(g) if spec.conditional else _Unconditional(g)
    names = [Z, LABELS] if spec.conditional else [Z]
    batch = torch.export.Dim("batch", min=1, max=65536)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(wrapper, example_inputs(spec, example_batch), dynamo=True, opset_version=opset,
                                    input_names=names, output_names=[IMAGES], optimize=True, verbose=False,
                                    dynamic_shapes={n: {0: batch} for n in names})
    model = onnxslim.slim(program.model_proto)
    if model.ir_version > 10:  # keep the file loadable by current ONNX Runtime releases
        model.ir_version = 10
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    meta = onnx_metadata(spec) | {FLOPS_KEY: str(graph_flops_per_sample(model))}
    if lower:
        model, _ = lower_conv_transpose(model, fold)
    meta[ACTIVATION_KEY] = str(peak_activation_values(model))
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    model.producer_name, model.producer_version = "gantool", gantool.__version__
    model.doc_string = f"gantool {spec.arch} generator"
    onnx.checker.check_model(model, full_check=True)
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    path = Path(path)
    atomic_write_bytes(path, model.SerializeToString())
    return path
