"""`gantool export`: resolve the model, export fp32, derive the precision variant, validate, report.

Validation gathers every runner's report and the judge's verdict before deciding; a file that
fails is deleted, so a failed export never leaves an artifact that looks valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantool.errors import GantoolError
from gantool.export.onnx import DEFAULT_OPSET, export_onnx
from gantool.export.parity import ParityError, ParityReport, compare_backend, torch_reference
from gantool.export.precision import PRECISIONS, fp16_emulation, to_fp16, to_int8
from gantool.export.semantic import JudgeAgreement, judge_agreement
from gantool.fileio import atomic_write_bytes
from gantool.runtime.backends.ort import OrtBackend


class SemanticError(GantoolError):
    pass


@dataclass
class ExportResult:
    path: Path
    precision: str
    parity: list[ParityReport] = field(default_factory=list)
    agreement: JudgeAgreement | None = None

    def text(self) -> str:
        parts = [r.text() for r in self.parity]
        if self.agreement is not None:
            parts.append(self.agreement.text())
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "precision": self.precision, "parity": [r.to_dict() for r in self.parity],
                "judge_agreement": None if self.agreement is None else self.agreement.to_dict()}


def default_path(arch: str, precision: str) -> Path:
    return Path(f"{arch}.onnx" if precision == "fp32" else f"{arch}.{precision}.onnx")


def run_export(model: str, output: str | None = None, precision: str = "fp32", opset: int = DEFAULT_OPSET,
               semantic_samples: int | None = None, lower: bool = True, fold: bool = True) -> ExportResult:
    import onnx

    from gantool.train.checkpoint import load_generator

    if precision not in PRECISIONS:
        raise GantoolError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}.")
    spec, g = load_generator(model)
    path = Path(output) if output else default_path(spec.arch, precision)
    fp32_path = path if precision == "fp32" else path.with_name(path.name + ".fp32.tmp")
    result = ExportResult(path=path, precision=precision)
    ref = torch_reference(g)
    try:
        export_onnx(spec, g, fp32_path, opset=opset, lower=lower, fold=fold)
        result.parity.append(compare_backend(spec, OrtBackend(fp32_path, name="onnxruntime-cpu fp32"), ref, "fp32"))
        if precision == "fp16":
            fp32 = onnx.load(str(fp32_path))
            atomic_write_bytes(path, to_fp16(fp32).SerializeToString())
            emulation = OrtBackend(fp16_emulation(fp32).SerializeToString(), name="fp16-emulation")
            result.parity.append(compare_backend(spec, OrtBackend(path, name="onnxruntime-cpu fp16 graph"), ref, "fp16"))
            result.parity.append(compare_backend(spec, emulation, ref, "fp16"))
            low = emulation
        elif precision == "int8":
            to_int8(fp32_path, path, spec)
            low = OrtBackend(path, name="onnxruntime-cpu int8")
            result.parity.append(compare_backend(spec, low, ref, "int8"))
        if precision != "fp32":
            kw = {} if semantic_samples is None else {"n": semantic_samples}
            result.agreement = judge_agreement(spec, g, low, precision, **kw)
        if not all(r.passed for r in result.parity):
            raise ParityError([r for r in result.parity if not r.passed])
        if result.agreement is not None and not result.agreement.passed:
            raise SemanticError(f"{precision} changes what the images show: the judge agrees with fp32 on "
                                f"{result.agreement.agreement:.2%} of {result.agreement.n} samples, below the "
                                f"{result.agreement.bar:.0%} bar.",
                                note="keep more layers in fp32 (export/precision.py) or use a higher precision.")
    except BaseException:
        path.unlink(missing_ok=True)  # a file that failed validation is not left behind
        raise
    finally:
        if fp32_path != path:
            fp32_path.unlink(missing_ok=True)
    return result


def run_triton_export(model: str, repo: str, precision: str = "fp32", opset: int = DEFAULT_OPSET,
                      max_batch: int = 256, plan: str | None = None,
                      semantic_samples: int | None = None, lower: bool = True) -> tuple[ExportResult, Path]:
    """Export and validate as usual, then lay the file (or a built engine) out as a Triton model."""
    import json
    import tempfile

    from gantool.export.triton import write_repository

    if max_batch < 1:
        raise GantoolError(f"--max-batch must be >= 1, got {max_batch}.")
    if plan is not None and not Path(plan).is_file():
        raise GantoolError(f"--plan {plan}: no such engine file.")
    with tempfile.TemporaryDirectory(prefix="gantool-triton-") as tmp:
        result = run_export(model, str(Path(tmp) / "model.onnx"), precision, opset, semantic_samples, lower)
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(result.path), load_external_data=False).metadata_props}
        name = json.loads(meta["gantool.spec"])["arch"]
        folder = write_repository(repo, name, result.path, meta["gantool.spec"], max_batch, plan)
    result.path = folder
    return result, folder
