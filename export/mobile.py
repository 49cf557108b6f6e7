"""`gantool export --format ort`: ORT-format models for ONNX Runtime Mobile, and the operator list a
reduced-size ONNX Runtime build needs (build.py --include_ops_by_config required_operators.config).

Each precision variant is exported and validated as usual, converted by onnxruntime.tools (optimised
once, for ARM, without the x86-only NCHWc layout), and checked against the .onnx it came from on every
parity case before it is written. The gantool metadata survives the conversion, so the Python runtime
opens NAME.ort like NAME.onnx.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantool.contract import CLASS_WEIGHTS
from gantool.errors import GantoolError
from gantool.export.onnx import DEFAULT_OPSET
from gantool.export.parity import ParityError, ParityReport, compare_backend
from gantool.export.precision import EXPORT_PRECISIONS
from gantool.export.run import ExportResult, run_export
from gantool.fileio import atomic_write_bytes
from gantool.runtime.backends import infer_split
from gantool.runtime.backends.ort import OrtBackend

log = logging.getLogger(__name__)

CONFIG = "required_operators.config"
TARGET_PLATFORM = "arm"  # phones: keeps int8 as Q/DQ pairs, which ORT Mobile's kernels fuse
# .ort against its .onnx: one engine, one precision, the same kernels after the same optimisations:
# held to the fp32 bound whatever the file's precision (observed: 0 on every zoo model)
FORMAT_TOLERANCE = "fp32"


@dataclass
class OrtModel:
    path: Path
    onnx: ExportResult
    parity: ParityReport
    operators: list[str]  # "domain;opset;Op" lines of its own required_operators config
    onnx_bytes: int  # the .onnx it was converted from

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "bytes": self.path.stat().st_size, "onnx_bytes": self.onnx_bytes,
                "precision": self.onnx.precision, "condition": self.onnx.metadata.condition,
                "operators": self.operators, "parity": self.parity.to_dict(), "export": self.onnx.to_dict()}


@dataclass
class OrtExport:
    folder: Path
    models: list[OrtModel] = field(default_factory=list)

    def text(self) -> str:
        lines = []
        for m in self.models:
            lines.append(f"{m.path.name}: {m.onnx.precision}, {m.path.stat().st_size / 2 ** 20:.2f} MiB "
                         f"(.onnx {m.onnx_bytes / 2 ** 20:.2f} MiB), {len(m.operators)} operators")
            lines += [f"  {line}" for line in (m.onnx.text() + "\n" + m.parity.text()).splitlines()]
        lines.append(f"wrote {len(self.models)} ORT-format models and {CONFIG} to {self.folder}/")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "config": str(self.folder / CONFIG),
                "models": [m.to_dict() for m in self.models]}


def ort_name(onnx_name: str) -> str:
    return onnx_name.removesuffix(".onnx") + ".ort"


def _convert(folder: Path) -> None:
    """Every .onnx in folder -> .ort beside it, and folder/required_operators.config for all of them."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # the tool prints its progress; keep it for --verbose logs
        convert_onnx_models_to_ort(folder, folder, [OptimizationStyle.Fixed], target_platform=TARGET_PLATFORM)
    log.debug("%s", out.getvalue())


def operators(ort_file: Path) -> list[str]:
    """The ops one .ort file needs, in the config's own "domain;opset;Op,Op" lines."""
    from onnxruntime.tools.convert_onnx_models_to_ort import create_config_from_models

    with tempfile.TemporaryDirectory(prefix="gantool-ops-") as tmp:
        config = Path(tmp) / CONFIG
        create_config_from_models([ort_file], config, enable_type_reduction=False)
        return [line for line in config.read_text().splitlines() if line and not line.startswith("#")]


def format_parity(onnx: ExportResult, ort_file: Path, seed: int) -> ParityReport:
    """The .ort model against the .onnx it was converted from, on every parity case."""
    spec, condition = onnx.spec, onnx.metadata.condition
    source = OrtBackend(onnx.path, name=f"{onnx.path.name} (onnxruntime)")
    contract = onnx.metadata.contract
    with source:
        return compare_backend(spec, OrtBackend(ort_file, name=f"{ort_file.name} (onnxruntime)"),
                               lambda z, labels: infer_split(source, contract.feeds(z, labels)),
                               FORMAT_TOLERANCE, seed, reference_name=onnx.path.name, condition=condition)


def run_ort_export(model: str, output: str | None = None, precisions: tuple[str, ...] = EXPORT_PRECISIONS,
                   opset: int = DEFAULT_OPSET, semantic_samples: int | None = None, lower: bool = True,
                   seed: int = 0) -> OrtExport:
    """Export each precision (and a conditional model's mix graph), convert, check, then write."""
    bad = [p for p in precisions if p not in EXPORT_PRECISIONS]
    if bad or not precisions:
        raise GantoolError(f"--format ort precisions {', '.join(bad) or 'none'}; allowed: {', '.join(EXPORT_PRECISIONS)}.")
    folder = Path(output or "mobile")
    if folder.exists() and not folder.is_dir():
        raise GantoolError(f"-o {folder} is a file; --format ort writes a folder (NAME.ort, NAME.fp16.ort, ..., "
                           f"{CONFIG}).")
    result = OrtExport(folder)
    with tempfile.TemporaryDirectory(prefix="gantool-ort-") as tmp:
        exports = [run_export(model, f"{tmp}/", p, opset, semantic_samples, lower, seed=seed) for p in precisions]
        if exports[0].spec.conditional and "fp32" in precisions:
            exports.append(run_export(model, f"{tmp}/", "fp32", opset, lower=lower, seed=seed,
                                      condition=CLASS_WEIGHTS))
        log.info("converting %d models to the ORT format ...", len(exports))
        _convert(Path(tmp))
        for e in exports:
            ort_file = e.path.with_name(ort_name(e.path.name))
            log.info("parity of %s against %s ...", ort_file.name, e.path.name)
            m = OrtModel(ort_file, e, format_parity(e, ort_file, seed), operators(ort_file), e.path.stat().st_size)
            result.models.append(m)
        failed = [m.parity for m in result.models if not m.parity.passed]
        if failed:
            raise ParityError(failed)
        for m in result.models:  # every file checked: now they land, each by an atomic write
            atomic_write_bytes(folder / m.path.name, m.path.read_bytes())
            m.path = folder / m.path.name
        atomic_write_bytes(folder / CONFIG, (Path(tmp) / CONFIG).read_bytes())
    return result
