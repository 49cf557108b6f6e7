"""`gantool export`: resolve the model, export fp32, derive the precision variant, validate, report.

Every file is built and validated in a temp file beside its target and renamed over the target only
after every check passed: a failed or interrupted export leaves whatever was at the target exactly
as it was, and no temp file behind (stale temps of a killed export are removed on the next run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantool.contract import GeneratorMetadata
from gantool.errors import GantoolError
from gantool.export.onnx import DEFAULT_OPSET, export_onnx, set_metadata
from gantool.export.parity import ParityError, ParityReport, compare_backend, torch_reference
from gantool.export.precision import EXPORT_PRECISIONS, fp16_emulation, to_fp16, to_int8
from gantool.export.semantic import JudgeAgreement, judge_agreement
from gantool.fileio import refuse_overwrite, remove_stale_temps, scratch, staged
from gantool.runtime.backends.ort import OrtBackend
from gantool.spec import ModelSpec

log = logging.getLogger(__name__)


class SemanticError(GantoolError):
    pass


@dataclass
class ExportResult:
    path: Path
    metadata: GeneratorMetadata
    parity: list[ParityReport] = field(default_factory=list)
    agreement: JudgeAgreement | None = None

    @property
    def spec(self) -> ModelSpec:
        return self.metadata.spec

    @property
    def precision(self) -> str:
        return self.metadata.precision

    def text(self) -> str:
        parts = [r.text() for r in self.parity]
        if self.agreement is not None:
            parts.append(self.agreement.text())
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "precision": self.precision, "graph": self.metadata.graph,
                "parity": [r.to_dict() for r in self.parity],
                "judge_agreement": None if self.agreement is None else self.agreement.to_dict()}


def default_name(arch: str, precision: str) -> str:
    return f"{arch}.onnx" if precision == "fp32" else f"{arch}.{precision}.onnx"


def output_path(output: str | None, arch: str, precision: str) -> Path:
    """-o FILE as is; -o DIR/ (a trailing slash) or an existing folder means "into this folder"."""
    if output is None:
        return Path(default_name(arch, precision))
    if output.endswith(("/", "\\")) or Path(output).is_dir():
        return Path(output) / default_name(arch, precision)
    return Path(output)


def run_export(model: str, output: str | None = None, precision: str = "fp32", opset: int = DEFAULT_OPSET,
               semantic_samples: int | None = None, lower: bool = True, fold: bool = True,
               seed: int = 0) -> ExportResult:
    """Export, validate and write one ONNX file; seed picks the validation inputs."""
    import onnx

    from gantool.train.checkpoint import load_generator

    if precision not in EXPORT_PRECISIONS:
        raise GantoolError(f"unknown precision {precision!r}; allowed: {', '.join(EXPORT_PRECISIONS)}.")
    spec, g = load_generator(model)
    path = output_path(output, spec.arch, precision)
    refuse_overwrite({"-o": path}, {"--model": model})
    if path.is_dir():
        raise GantoolError(f"-o {path} is a folder; allowed: a file path, or a folder with a trailing slash.")
    remove_stale_temps(path.parent if str(path.parent) else ".", path.name)
    log.info("exporting %s (opset %d, %s graph) ...", spec.arch, opset, "plain" if not lower else "lowered")
    fp32_model, meta = export_onnx(spec, g, opset=opset, lower=lower, fold=fold)
    ref = torch_reference(g)
    with staged(path) as tmp:
        result = ExportResult(path=path, metadata=meta.replace(precision=precision))
        log.info("parity of the fp32 graph against torch ...")
        fp32_bytes = fp32_model.SerializeToString()
        result.parity.append(compare_backend(spec, OrtBackend(fp32_bytes, name="onnxruntime-cpu fp32"), ref, "fp32",
                                             seed))
        low = None
        if precision == "fp32":
            tmp.write_bytes(fp32_bytes)
        elif precision == "fp16":
            fp16 = to_fp16(fp32_model)
            set_metadata(fp16, result.metadata)
            tmp.write_bytes(fp16.SerializeToString())
            log.info("parity of the fp16 graph and of its emulation against torch ...")
            low = OrtBackend(fp16_emulation(fp32_model).SerializeToString(), name="fp16-emulation")
            result.parity.append(compare_backend(spec, OrtBackend(tmp, name="onnxruntime-cpu fp16 graph"), ref,
                                                 "fp16", seed))
            result.parity.append(compare_backend(spec, low, ref, "fp16", seed))
        else:
            with scratch(path) as fp32_tmp:  # the quantizer reads a file
                fp32_tmp.write_bytes(fp32_bytes)
                log.info("calibrating int8 on %s ...", spec.arch)
                to_int8(fp32_tmp, tmp, spec)
            int8 = onnx.load(str(tmp))
            set_metadata(int8, result.metadata)
            tmp.write_bytes(int8.SerializeToString())
            low = OrtBackend(tmp, name="onnxruntime-cpu int8")
            log.info("parity of the int8 graph against torch ...")
            result.parity.append(compare_backend(spec, low, ref, "int8", seed))
        if low is not None:
            n = semantic_samples
            log.info("judge agreement of %s with fp32 ...", precision)
            result.agreement = judge_agreement(spec, g, low, precision, **({} if n is None else {"n": n}))
        if not all(r.passed for r in result.parity):
            raise ParityError([r for r in result.parity if not r.passed])
        if result.agreement is not None and not result.agreement.passed:
            raise SemanticError(f"{precision} changes what the images show: the judge agrees with fp32 on "
                                f"{result.agreement.agreement:.2%} of {result.agreement.n} samples, below the "
                                f"{result.agreement.bar:.0%} bar.",
                                note="keep more layers in fp32 (export/precision.py) or use a higher precision.")
    return result


def run_triton_export(model: str, repo: str, precision: str = "fp32", opset: int = DEFAULT_OPSET,
                      max_batch: int = 256, plan: str | None = None,
                      semantic_samples: int | None = None, lower: bool = True, seed: int = 0) -> ExportResult:
    """Export and validate as usual, then lay the file (or a built engine) out as a Triton model."""
    import tempfile

    from gantool.export.triton import write_repository

    if max_batch < 1:
        raise GantoolError(f"--max-batch must be >= 1, got {max_batch}.")
    if plan is not None and not Path(plan).is_file():
        raise GantoolError(f"--plan {plan}: no such engine file.")
    if Path(repo).exists() and not Path(repo).is_dir():
        raise GantoolError(f"-o {repo} is a file; a Triton model repository is a folder.")
    with tempfile.TemporaryDirectory(prefix="gantool-triton-") as tmp:
        result = run_export(model, str(Path(tmp) / "model.onnx"), precision, opset, semantic_samples, lower,
                            seed=seed)
        result.path = write_repository(repo, result.metadata, result.path, max_batch, plan)
    return result
