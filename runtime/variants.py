"""The ways one model can run on this CPU: its validated variant files x engines x thread counts.

`gantool export --variants` writes a family of files beside each other (NAME.onnx, the lowered fp32
graph; NAME.plain.onnx; NAME.interleaved.onnx; NAME.phases.onnx; NAME.int8.onnx; NAME.int8u.onnx), each carrying the family digest and the checks it passed
(contract.Validation). The runtime only ever chooses among files of the same family whose checks passed
for the precision and engine in question, and only precisions the caller allowed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gantool.contract import GeneratorMetadata
from gantool.cpu import cpu_info
from gantool.errors import GantoolError
from gantool.extras import installed

# What Generator.load(precision=...) accepts: fp32 numerics (the default), every validated variant, or one.
RUNTIME_PRECISIONS = ("fp32", "auto", "bf16", "int8")
TUNABLE_PRECISIONS = ("fp32", "auto")  # bf16 and int8 pin the precision: the first fitting candidate runs
VARIANT_TAGS = ("plain", "interleaved", "phases", "int8", "int8u")  # NAME.TAG.onnx beside NAME.onnx
U8_TAG = "int8u"  # int8 with u8 activations (contract.INT8_ACTIVATIONS): ONNX Runtime's fast x86 form
# NAME.mix.onnx: the class-weight graph (contract.CLASS_WEIGHTS) of a conditional family. Not a candidate
# for sampling labels: the runtime opens it when class weights are asked for.
MIX_TAG = "mix"


def variant_name(stem: str, tag: str) -> str:
    """NAME.onnx for the base (tag ""), NAME.TAG.onnx for a variant: the one naming rule of a family."""
    return f"{stem}.onnx" if not tag else f"{stem}.{tag}.onnx"
CPU_ENGINES = ("ort", "openvino")


class PrecisionError(GantoolError, ValueError):
    """A precision that is unknown, or that no validated variant of this model offers here."""


@dataclass(frozen=True)
class Candidate:
    """One way to run the model: a file, an engine, the precision it computes in, a thread count."""

    path: Path
    engine: str
    precision: str  # what it computes in: the file's own, or bf16 for OpenVINO on an fp32 file
    threads: int
    graph: str
    activations: str = "s8"  # an int8 file's activations (contract.INT8_ACTIVATIONS); s8 for the others

    @property
    def compute(self) -> str | None:
        """The engine-side precision to ask for (None: the file's own)."""
        return "bf16" if self.precision == "bf16" else None

    @property
    def label(self) -> str:
        u8 = " u8" if self.activations == "u8" else ""  # two int8 files of one graph form differ here
        return f"{self.engine} {self.precision}{u8} {self.graph} x{self.threads}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "engine": self.engine, "precision": self.precision,
                "threads": self.threads, "graph": self.graph, "activations": self.activations}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        return cls(Path(d["file"]), str(d["engine"]), str(d["precision"]), int(d["threads"]), str(d["graph"]),
                   str(d.get("activations", "s8")))

    def open(self) -> Any:
        from gantool.runtime.backends import open_backend

        return open_backend(self.path, self.engine, self.threads, self.compute)


def check_precision(precision: Any) -> str:
    if precision not in RUNTIME_PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}; allowed: {', '.join(RUNTIME_PRECISIONS)} "
                             f"(fp32: exact, the default; auto: any variant validated at export).")
    return str(precision)


def family_files(path: Path, meta: GeneratorMetadata, read: Any) -> tuple[list[tuple[Path, GeneratorMetadata]],
                                                                         list[str]]:
    """path and its siblings NAME.TAG.onnx of the same family (read(path) -> their metadata), and why
    the other files beside it were left out (another model, unreadable)."""
    files: list[tuple[Path, GeneratorMetadata]] = [(path, meta)]
    left_out: list[str] = []
    if path.suffix != ".onnx":
        return files, left_out
    for tag in VARIANT_TAGS:
        sibling = path.with_name(variant_name(path.stem, tag))
        if not sibling.is_file():
            continue
        if meta.family is None:
            left_out.append(f"{sibling.name}: {path.name} has no family digest (not made by --variants)")
            continue
        try:
            other = read(sibling)
        except GantoolError as e:  # a damaged or foreign file beside the model must not stop it loading
            left_out.append(f"{sibling.name}: unreadable ({str(e).split(' Note:')[0][:120]})")
            continue
        if other.family != meta.family or other.spec != meta.spec:
            left_out.append(f"{sibling.name}: another model (family {other.family}, not {meta.family})")
            continue
        files.append((sibling, other))
    return files, left_out


def _suffixes(engine: str) -> tuple[str, ...]:
    from gantool.runtime.backends import BACKENDS

    return BACKENDS[engine].suffixes


def thread_counts(threads: int | None) -> list[int]:
    """A pinned count, else one thread and every core: batch 1 often runs best on one."""
    if threads is not None:
        return [threads]
    return sorted({1, max(1, os.cpu_count() or 1)})


def _allowed(precision: str, wanted: str) -> bool:
    return precision == wanted or (wanted == "auto")


def candidates(files: list[tuple[Path, GeneratorMetadata]], precision: str, threads: int | None = None,
               engines: tuple[str, ...] | None = None, left_out: list[str] | None = None
               ) -> tuple[list[Candidate], list[str]]:
    """Every validated way to run the family in the allowed precisions, the default first (ONNX Runtime
    on the given file, all cores), and the reasons others were left out."""
    pinned_engine = engines is not None
    engines = engines or tuple(e for e in CPU_ENGINES if e == "ort" or installed(e))
    bf16_here = cpu_info().bf16_units is not None
    out: list[Candidate] = []
    skipped: list[str] = list(left_out or [])
    counts = thread_counts(threads)
    for i, (path, meta) in enumerate(files):
        for engine in engines:
            if path.suffix not in _suffixes(engine):  # OpenVINO reads .onnx, not the ORT format
                skipped.append(f"{path.name}: {engine} does not open {path.suffix} files")
                continue
            runs = [meta.precision]
            if meta.precision == "fp32" and engine == "openvino":
                runs.append("bf16")
            for p in runs:
                # the file asked for runs as it is, unless a reduced precision was asked for
                given = i == 0 and engine == "ort" and p == meta.precision and precision in TUNABLE_PRECISIONS
                if not given and not _allowed(p, precision):
                    continue
                if p == "bf16" and not bf16_here:
                    skipped.append(f"{path.name} bf16: this CPU has no bf16 units")
                    continue
                if not given and not meta.validated(p, engine):
                    skipped.append(f"{path.name} {p} on {engine}: not validated at export")
                    continue
                out.extend(Candidate(path, engine, p, t, meta.graph, meta.int8_activations)
                           for t in sorted(counts, reverse=True))
    if not out:
        raise PrecisionError(_none_here(files, precision, engines if pinned_engine else None, skipped),
                             note="gantool inspect shows which checks a file passed; gantool export --variants makes "
                                  "the variants that pass theirs; fp32 always runs (--precision fp32).")
    return out, skipped


def _none_here(files: list[tuple[Path, GeneratorMetadata]], precision: str, pinned: tuple[str, ...] | None,
               skipped: list[str]) -> str:
    """Why no candidate is left: the engine pin, the files that are not there, the checks not passed."""
    base = files[0][0]
    offered = sorted({(v.precision, v.engine) for _, m in files for v in m.validations if v.passed})
    elsewhere = [e for p, e in offered if p == precision and pinned is not None and e not in pinned]
    if elsewhere:
        return (f"{precision} runs only on {', '.join(sorted(set(elsewhere)))} for {base.name}, but engine "
                f"{pinned[0] if pinned else ''} was pinned; allowed: engine='auto' or {elsewhere[0]}.")
    missing = [n for n in (variant_name(base.stem, t) for t in VARIANT_TAGS) if not base.with_name(n).is_file()]
    parts = [f"no validated {precision} variant of {base.name} runs here"]
    if skipped:
        parts.append("; ".join(skipped))
    if missing and precision == "int8" and not any(m.precision == "int8" for _, m in files):
        parts.append(f"not beside it: {', '.join(missing)}")
    have = sorted({p for p, _ in offered} | {"fp32"})
    return f"{': '.join(parts[:2])}{'; ' + parts[2] if len(parts) > 2 else ''}; its family offers: {', '.join(have)}."
