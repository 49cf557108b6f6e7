"""Trace a generator to ONNX with a dynamic batch on every input and output.

Names, dtypes, shapes and the dynamic axis come from the generator contract (gantool/contract.py),
and the file describes itself in metadata_props written by the contract's write_metadata, so the
runtime needs nothing else. BatchNorm is folded by the exporter's optimizer and
the graph is simplified with onnxslim. ConvTranspose layers are then rewritten into exact equivalents
that ONNX Runtime's CPU kernels run faster (export/lower.py), after the FLOPs are counted. onnx's
full checker and shape inference run on the graph in memory; export/run.py writes and validates the file.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

import gantool
from gantool.contract import (
    BATCH,
    CLASS_WEIGHTS,
    CONDITIONS,
    LABELS,
    MAX_BATCH,
    GeneratorContract,
    GeneratorMetadata,
    one_hot,
    write_metadata,
)
from gantool.errors import GantoolError
from gantool.spec import ModelSpec

DEFAULT_OPSET = 18
OPSETS = range(17, 24)  # what torch's exporter and current ONNX Runtime releases both run


class _Unconditional(nn.Module):
    def __init__(self, g: nn.Module) -> None:
        super().__init__()
        self.g = g

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.g(z)


class _Conditional(_Unconditional):
    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.g(z, labels)


class _Mixed(_Unconditional):
    """The mix graph: (B, K) class weights in the label's place (zoo generators take either)."""

    def forward(self, z: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.g(z, class_weights)


def graph_form(lower: bool, fold: bool, phases: bool = False) -> str:
    """The contract's name for what export/lower.py did to the graph."""
    return "plain" if not lower else "phases" if phases else "lowered" if fold else "interleaved"


def _interrupted(e: BaseException) -> bool:
    """Whether a KeyboardInterrupt is anywhere in an exception's cause/context chain."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def set_metadata(model: Any, meta: GeneratorMetadata) -> None:
    """Replace a ModelProto's metadata_props with the contract's rendering of meta."""
    del model.metadata_props[:]
    for k, v in write_metadata(meta).items():
        model.metadata_props.add(key=k, value=v)


def export_onnx(spec: ModelSpec, g: nn.Module, opset: int = DEFAULT_OPSET, example_batch: int = 4,
                lower: bool = True, fold: bool = True, phases: bool = False,
                condition: str = LABELS) -> tuple[Any, GeneratorMetadata]:
    """Export, fold, simplify, lower and check in memory; returns the ModelProto and its metadata.

    lower=False keeps every ConvTranspose as torch exported it (the plain graph is easier to read);
    fold=False keeps the phase interleave (export/lower.py); phases=True lowers the last layer too;
    condition=class_weights traces the mix graph (contract.CONDITIONS), conditional models only.
    """
    import onnx
    import onnxslim

    from gantool.export.flops import graph_flops_per_sample, peak_activation_values
    from gantool.export.lower import lower_conv_transpose
    from gantool.train.zoo import example_inputs

    if example_batch < 2:
        raise GantoolError(f"the example batch must be >= 2 (a batch of 1 can be specialised away), got {example_batch}.")
    if opset not in OPSETS:
        raise GantoolError(f"--opset {opset} is not supported; allowed: {OPSETS.start} to {OPSETS.stop - 1}.")
    if condition not in CONDITIONS or (condition == CLASS_WEIGHTS and not spec.conditional):
        raise GantoolError(f"{spec.arch}: condition {condition!r}; allowed: {', '.join(CONDITIONS)} "
                           f"({CLASS_WEIGHTS} for conditional models only).")
    contract = GeneratorContract(spec, condition)
    g = g.eval()
    wrapper = _Unconditional(g) if not spec.conditional else _Mixed(g) if condition == CLASS_WEIGHTS \
        else _Conditional(g)
    example = example_inputs(spec, example_batch)
    if condition == CLASS_WEIGHTS:  # traced on mixtures: nothing can specialise on one-hot rows
        weights = 0.75 * one_hot(example[1].numpy(), spec.num_classes)
        weights[:, 0] += 0.25
        example = (example[0], torch.from_numpy(weights))
    batch = torch.export.Dim(BATCH, min=1, max=MAX_BATCH)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(wrapper, example, dynamo=True,
                                        opset_version=opset, input_names=contract.input_names,
                                        output_names=contract.output_names, optimize=True, verbose=False,
                                        dynamic_shapes={n: {0: batch} for n in contract.input_names})
        except Exception as e:
            if _interrupted(e):  # torch wraps a Ctrl-C during its lazy imports in its own export error
                raise KeyboardInterrupt from None
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise GantoolError(f"torch could not export {spec.arch} to ONNX ({type(e).__name__}: {first[:160]}).",
                               note="a custom layer may not be traceable by torch.export.") from None
    if program is None:
        raise GantoolError(f"torch.onnx.export returned no program for {spec.arch}.")
    model = onnxslim.slim(program.model_proto)
    if model.ir_version > 10:  # keep the file loadable by current ONNX Runtime releases
        model.ir_version = 10
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    flops = graph_flops_per_sample(model)  # before lowering: useful work only
    if lower:
        model, _ = lower_conv_transpose(model, fold, **({"min_channels": 1} if phases else {}))
    meta = GeneratorMetadata(spec=spec, precision="fp32", graph=graph_form(lower, fold, phases),
                             gantool_version=gantool.__version__, flops_per_sample=flops,
                             peak_activation_values=peak_activation_values(model), condition=condition)
    set_metadata(model, meta)
    model.producer_name, model.producer_version = "gantool", gantool.__version__
    model.doc_string = f"gantool {spec.arch} generator"
    onnx.checker.check_model(model, full_check=True)
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    return model, meta
