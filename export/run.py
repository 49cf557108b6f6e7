"""`gantool export`: resolve the model, export, validate, report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gantool.export.onnx import DEFAULT_OPSET, export_onnx
from gantool.export.parity import ParityReport, check_onnx_parity


@dataclass
class ExportResult:
    path: Path
    parity: ParityReport

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "parity": self.parity.to_dict()}


def run_export(model: str, output: str | None = None, precision: str = "fp32", opset: int = DEFAULT_OPSET) -> ExportResult:
    from gantool.train.checkpoint import load_generator

    spec, g = load_generator(model)
    suffix = "" if precision == "fp32" else f".{precision}"
    path = Path(output) if output else Path(f"{spec.arch}{suffix}.onnx")
    export_onnx(spec, g, path, opset=opset)
    try:
        report = check_onnx_parity(spec, g, path, precision)
    except Exception:
        path.unlink(missing_ok=True)  # a file that failed validation is not left behind
        raise
    return ExportResult(path=path, parity=report)
