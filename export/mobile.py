"""`gantool export --format ort`: ORT-format models for ONNX Runtime Mobile, and the operator list a
reduced-size ONNX Runtime build needs (build.py --include_ops_by_config required_operators.config).

Each precision variant is exported and validated as usual, converted by onnxruntime.tools (optimised
once, for ARM, at ORT's "extended" level: no layout rewrites for one CPU), and checked against the .onnx it came from on every
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
from typing import Any, Iterator

from gantool.contract import CLASS_WEIGHTS, FORMAT_TOLERANCES
from gantool.errors import GantoolError
from gantool.export.onnx import DEFAULT_OPSET
from gantool.export.parity import ParityError, ParityReport, compare_backend
from gantool.export.precision import EXPORT_PRECISIONS
from gantool.export.run import ExportResult, SemanticError, run_export
from gantool.fileio import atomic_write_bytes, check_own_folder
from gantool.runtime.backends import infer_split
from gantool.runtime.backends.ort import OrtBackend

log = logging.getLogger(__name__)

CONFIG = "required_operators.config"
TARGET_PLATFORM = "arm"  # phones: keeps int8 as Q/DQ pairs, which ORT Mobile's kernels fuse
LEVEL, LEVEL_ENV = "extended", "ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL"


@dataclass
class OrtModel:
    path: Path
    onnx: ExportResult
    parity: ParityReport
    operators: list[str]  # the ops it needs, from its own required_operators config (com.microsoft.X: ORT's own)
    onnx_bytes: int  # the .onnx it was converted from

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "bytes": self.path.stat().st_size, "onnx_bytes": self.onnx_bytes,
                "precision": self.onnx.precision, "condition": self.onnx.metadata.condition,
                "operators": self.operators, "parity": self.parity.to_dict(),
                "export": {**self.onnx.to_dict(), "path": None}}  # the .onnx was a step: only the .ort is kept


@dataclass
class OrtExport:
    folder: Path
    models: list[OrtModel] = field(default_factory=list)
    not_written: dict[str, str] = field(default_factory=dict)  # precision -> why (a default one failed its checks)

    def text(self) -> str:
        lines = []
        for m in self.models:
            lines.append(f"{m.path.name}: {m.onnx.precision}, {m.path.stat().st_size / 2 ** 20:.2f} MiB "
                         f"(.onnx {m.onnx_bytes / 2 ** 20:.2f} MiB), {len(m.operators)} operators")
            lines += [f"  {line}" for line in (m.onnx.text() + "\n" + m.parity.text()).splitlines()]
        lines += [f"{p}: not written: {why}" for p, why in self.not_written.items()]
        lines.append(f"wrote {len(self.models)} ORT-format models and {CONFIG} to {self.folder}/")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "config": str(self.folder / CONFIG),
                "models": [m.to_dict() for m in self.models], "not_written": self.not_written}


def ort_name(onnx_name: str) -> str:
    return onnx_name.removesuffix(".onnx") + ".ort"


@contextlib.contextmanager
def _quiet_tool() -> Iterator[None]:
    """The tool's logger says "Created config in <temp folder>" at INFO: true, but not the user's folder."""
    tool_log = logging.getLogger("ort_format_model.utils")
    level = tool_log.level
    tool_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        tool_log.setLevel(level)


def _convert(folder: Path) -> None:
    """Every .onnx in folder -> NAME.ort beside it, and folder/required_operators.config for all of them.

    Optimised at ORT's "extended" level: "all" adds rewrites that, on an fp16 graph, fold the casts the
    x86 CPU provider needs into fp32 weights (cdcgan.fp16.ort: 4.05 MB at "all", 2.06 MB here)."""
    import os

    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    out, previous = io.StringIO(), os.environ.get(LEVEL_ENV)
    os.environ[LEVEL_ENV] = LEVEL  # the tool's own setting for its level (read on each call)
    try:
        with contextlib.redirect_stdout(out), _quiet_tool():  # it prints its progress: kept for debug logs
            convert_onnx_models_to_ort(folder, folder, [OptimizationStyle.Fixed], target_platform=TARGET_PLATFORM)
    finally:
        if previous is None:
            os.environ.pop(LEVEL_ENV, None)
        else:
            os.environ[LEVEL_ENV] = previous
    log.debug("%s", out.getvalue())
    for made in folder.glob(f"*.{LEVEL}.ort"):  # the tool names files after a level other than "all"
        made.replace(made.with_name(made.name.removesuffix(f".{LEVEL}.ort") + ".ort"))
    (folder / f"required_operators.{LEVEL}.config").replace(folder / CONFIG)


def operators(ort_file: Path) -> list[str]:
    """The ops one .ort file needs, sorted: ONNX ops by name, others as DOMAIN.Op."""
    from onnxruntime.tools.convert_onnx_models_to_ort import create_config_from_models

    with tempfile.TemporaryDirectory(prefix="gantool-ops-") as tmp, _quiet_tool():
        config = Path(tmp) / CONFIG
        create_config_from_models([ort_file], config, enable_type_reduction=False)
        ops: set[str] = set()
        for line in config.read_text().splitlines():
            if line and not line.startswith("#"):  # "domain;opset;Op,Op"
                domain, _, names = line.split(";", 2)
                ops.update(n if domain == "ai.onnx" else f"{domain}.{n}" for n in names.split(","))
        return sorted(ops, key=lambda op: ("." in op, op))


def config_text(config: Path, models: list[Path]) -> str:
    """The tool's config with its header naming the files as written, not the temp folder they were made in."""
    body = [line for line in config.read_text().splitlines() if line and not line.startswith("#")]
    return "\n".join(["# Generated by gantool export --format ort from:", *(f"# - {p.name}" for p in models),
                      *body]) + "\n"


def format_parity(onnx: ExportResult, ort_file: Path, seed: int) -> ParityReport:
    """The .ort model against the .onnx it was converted from, on every parity case."""
    spec, condition = onnx.spec, onnx.metadata.condition
    source = OrtBackend(onnx.path, name=f"{onnx.path.name} (onnxruntime)")
    contract = onnx.metadata.contract
    with source:
        return compare_backend(spec, OrtBackend(ort_file, name=f"{ort_file.name} (onnxruntime)"),
                               lambda z, labels: infer_split(source, contract.feeds(z, labels)),
                               onnx.precision, seed, reference_name=onnx.path.name, condition=condition,
                               tolerance=FORMAT_TOLERANCES[onnx.precision])


def run_ort_export(model: str, output: str | None = None, precisions: tuple[str, ...] = EXPORT_PRECISIONS,
                   opset: int = DEFAULT_OPSET, semantic_samples: int | None = None, lower: bool = True,
                   seed: int = 0, required: bool = True) -> OrtExport:
    """Export each precision (and a conditional model's mix graph), convert, check, then write.
    required=False (every precision, none named): a reduced precision that fails its export checks is
    left out and reported, as --variants does; fp32 and a named precision must pass."""
    bad = [p for p in precisions if p not in EXPORT_PRECISIONS]
    if bad or not precisions:
        raise GantoolError(f"--format ort precisions {', '.join(bad) or 'none'}; allowed: {', '.join(EXPORT_PRECISIONS)}.")
    folder = Path(output or "mobile")
    check_own_folder(folder, CONFIG, "--format ort", f"NAME.ort, NAME.fp16.ort, ..., {CONFIG}")
    result = OrtExport(folder)
    with tempfile.TemporaryDirectory(prefix="gantool-ort-") as tmp:
        exports = []
        for p in precisions:
            try:
                exports.append(run_export(model, f"{tmp}/", p, opset, semantic_samples, lower, seed=seed))
            except (ParityError, SemanticError) as e:
                if required or p == "fp32":
                    raise
                result.not_written[p] = str(e).split(" Note:")[0]
                log.info("%s: not written: %s", p, result.not_written[p])
        if not exports:
            raise GantoolError(f"no precision of {model} passed its export checks: "
                               f"{'; '.join(f'{p}: {why}' for p, why in result.not_written.items())}.")
        if exports[0].spec.conditional and "fp32" in precisions:
            exports.append(run_export(model, f"{tmp}/", "fp32", opset, lower=lower, seed=seed,
                                      condition=CLASS_WEIGHTS))
        log.info("converting %d models to the ORT format ...", len(exports))
        _convert(Path(tmp))
        for made in exports:
            ort_file = made.path.with_name(ort_name(made.path.name))
            log.info("parity of %s against %s ...", ort_file.name, made.path.name)
            result.models.append(OrtModel(ort_file, made, format_parity(made, ort_file, seed), operators(ort_file),
                                          made.path.stat().st_size))
        failed = [m.parity for m in result.models if not m.parity.passed]
        if failed:
            raise ParityError(failed)
        for m in result.models:  # every file checked: now they land, each by an atomic write
            atomic_write_bytes(folder / m.path.name, m.path.read_bytes())
            m.path = folder / m.path.name
        atomic_write_bytes(folder / CONFIG, config_text(Path(tmp) / CONFIG, [m.path for m in result.models]).encode())
    return result
