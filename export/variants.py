"""`gantool export --variants`: the family of files the runtime chooses among on a CPU.

NAME.onnx (the lowered fp32 graph, also judged computed in bf16 by OpenVINO), NAME.plain.onnx (the
unlowered fp32 graph: faster at batch 1 on some machines), NAME.interleaved.onnx (lowered with the
phase interleave kept: OpenVINO's fastest fp32 form at large batches), NAME.phases.onnx (every ConvTranspose as
phase Convs, the last one too: what OpenVINO's bf16 and int8 kernels need, also judged in bf16),
NAME.int8.onnx (Q/DQ on the phases graph, judged on ONNX Runtime and OpenVINO; s8 activations, the form
TensorRT takes), NAME.int8u.onnx (the same with u8 activations: ONNX Runtime's fast x86 form) and, for conditional
models, NAME.mix.onnx (the lowered fp32 graph taking class weights instead of labels: class interpolation). Every file carries the family digest and its checks'
verdicts in its metadata (contract.Validation); a variant that fails its checks is not written, nor a plain graph identical to the lowered one (MLPs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantool.contract import CLASS_WEIGHTS, LABELS
from gantool.errors import GantoolError
from gantool.export.onnx import DEFAULT_OPSET
from gantool.export.run import ExportResult, run_export, weights_digest
from gantool.runtime.variants import MIX_TAG, U8_TAG, variant_name

log = logging.getLogger(__name__)

# (tag in the file name, precision, graph form): the order they are made in; the base comes first.
# int8 is quantized on the phases graph: every ConvTranspose there is a Conv with an int8 kernel.
# The interleaved graph (phase interleave kept) is what OpenVINO's fp32 kernels ran fastest at large batches.
VARIANTS = (("", "fp32", "lowered"), ("plain", "fp32", "plain"), ("interleaved", "fp32", "interleaved"),
            ("phases", "fp32", "phases"), ("int8", "int8", "phases"), (U8_TAG, "int8", "phases"),
            (MIX_TAG, "fp32", "lowered"))


def family_digest(model: str) -> str:
    """A digest of the weights and spec every variant is made from: files with equal digests are one model."""
    from gantool.train.checkpoint import load_generator

    return weights_digest(*load_generator(model))


@dataclass
class VariantsResult:
    folder: Path
    family: str
    written: list[ExportResult] = field(default_factory=list)
    not_written: dict[str, str] = field(default_factory=dict)  # file name -> why it was not written

    def text(self) -> str:
        lines = []
        for r in self.written:
            lines.append(f"{r.path.name}: {r.precision}, {r.metadata.graph} graph, "
                         f"{r.path.stat().st_size / 2 ** 20:.2f} MiB")
            lines += [f"  {line}" for line in r.text().splitlines()]
        lines += [f"{name}: not written: {why}" for name, why in self.not_written.items()]
        lines.append(f"family {self.family}: {len(self.written)} files in {self.folder}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "family": self.family, "files": [r.to_dict() for r in self.written],
                "not_written": self.not_written}


def run_variants(model: str, folder: str | None = None, opset: int = DEFAULT_OPSET,
                 semantic_samples: int | None = None, seed: int = 0, stem: str | None = None,
                 tags: tuple[str, ...] | None = None) -> VariantsResult:
    """Write every variant into folder (default: the current one), each validated before it lands;
    stem names the files (default: the model's arch); tags: only these variants (file tags, "" the
    base), for a family shipped before a variant existed: the same weights give the same family digest."""
    from gantool.export.parity import ParityError
    from gantool.export.run import SemanticError
    from gantool.train.checkpoint import load_generator

    out = Path(folder or ".")
    if out.exists() and not out.is_dir():
        raise GantoolError(f"-o {out} is a file; --variants writes a family of files into a folder.")
    out.mkdir(parents=True, exist_ok=True)
    from torch import nn

    spec, g = load_generator(model)
    result = VariantsResult(out, family_digest(model))
    convolutional = any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in g.modules())
    unknown = sorted(set(tags or ()) - {t for t, _, _ in VARIANTS})
    if unknown:
        raise GantoolError(f"unknown variant tags {unknown}; allowed: {', '.join(repr(t) for t, _, _ in VARIANTS)}.")
    for tag, precision, graph in VARIANTS:
        if tags is not None and tag not in tags:
            continue
        path = out / variant_name(stem or spec.arch, tag)
        if graph != "lowered" and precision == "fp32" and not convolutional:  # lowering rewrites convolutions only
            result.not_written[path.name] = f"{spec.arch} has no convolution: its {graph} graph is the lowered one"
            continue
        if tag == MIX_TAG and not spec.conditional:
            result.not_written[path.name] = f"{spec.arch} is unconditional: it has no classes to mix"
            continue
        log.info("variant %s ...", path.name)
        try:
            written = run_export(model, str(path), precision, opset, semantic_samples, lower=graph != "plain",
                                 fold=graph != "interleaved", seed=seed, family=result.family,
                                 check_bf16=graph in ("lowered", "phases") and tag != MIX_TAG,
                                 phases=graph == "phases", condition=CLASS_WEIGHTS if tag == MIX_TAG else LABELS,
                                 int8_activations="u8" if tag == U8_TAG else "s8")
        except (ParityError, SemanticError) as e:
            if not tag and tags is None:
                raise  # without its base the family is nothing
            result.not_written[path.name] = str(e).splitlines()[0]
            continue
        base = out / variant_name(stem or spec.arch, "")
        if graph == "interleaved" and base.is_file() and _same_ops(path, base):
            path.unlink()  # no interleave to keep: the lowered graph again, one more candidate to time for nothing
            result.not_written[path.name] = f"{spec.arch}'s lowered graph keeps no phase interleave: it is the same graph"
            continue
        result.written.append(written)
    return result


def run_mix(model: str, folder: str | None = None, stem: str | None = None, opset: int = DEFAULT_OPSET,
            seed: int = 0) -> ExportResult:
    """NAME.mix.onnx alone, for a family exported before mix graphs existed: the same weights give the
    same family digest as the files already beside it."""
    from gantool.train.checkpoint import load_generator

    spec, _ = load_generator(model)
    path = Path(folder or ".") / variant_name(stem or spec.arch, MIX_TAG)
    return run_export(model, str(path), "fp32", opset, seed=seed, condition=CLASS_WEIGHTS)


def _same_ops(a: Path, b: Path) -> bool:
    import onnx

    return [n.op_type for n in onnx.load(str(a)).graph.node] == [n.op_type for n in onnx.load(str(b)).graph.node]
