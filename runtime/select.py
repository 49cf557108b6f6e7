"""Which backend serves which batch size: pinned by the caller, read from the tuning cache, or tuned now.

Generator.load calls `select`. On the CPU with engine="auto" and no thread count, the tuner chooses
among the model's validated variants (runtime/tune.py) once per machine; a pinned engine, thread count
or reduced precision skips tuning and takes the first fitting candidate. A .plan, or an .onnx on a
machine with ORT's CUDA provider, runs on its one engine as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantool.contract import GeneratorMetadata
from gantool.runtime.backends import Backend, choose_engine, open_backend
from gantool.runtime.tune import (
    Progress,
    TuneResult,
    bucket,
    cache_key,
    read_cached,
    tune,
    tuning_enabled,
)
from gantool.runtime.variants import (
    CPU_ENGINES,
    VARIANT_TAGS,
    Candidate,
    PrecisionError,
    candidates,
    check_precision,
    family_files,
)


@dataclass
class Selection:
    routes: dict[int, Backend]  # tuned batch size -> its backend (one backend may serve several)
    how: str  # tuned | cached | pinned | default | single
    precision: str  # what the caller allowed
    tuning: TuneResult | None = None
    chosen: dict[int, Candidate] = field(default_factory=dict)

    @property
    def primary(self) -> Backend:
        return self.routes[min(self.routes)]

    def backend_for(self, n: int) -> Backend:
        if len(self.routes) == 1:
            return self.primary
        return self.routes[bucket(n, tuple(self.routes))]

    def backends(self) -> list[Backend]:
        return list({id(b): b for b in self.routes.values()}.values())

    def describe(self) -> dict[str, Any]:
        """What was chosen and why: for bench, inspect and serve's /v1/model."""
        d: dict[str, Any] = {"how": self.how, "precision_allowed": self.precision,
                             "routes": {str(b): c.to_dict() for b, c in self.chosen.items()}}
        if self.tuning is not None:
            d.update(why={str(c.batch): c.why for c in self.tuning.choices}, tuning_seconds=self.tuning.seconds,
                     cache_file=None if self.tuning.path is None else str(self.tuning.path),
                     skipped=self.tuning.skipped)
        return d

    def close(self) -> None:
        for b in self.backends():
            b.deactivate()


def siblings(path: Path) -> list[Path]:
    """path and the variant files beside it (their family is checked when their metadata is read)."""
    found = [path.with_name(f"{path.stem}.{t}.onnx") for t in VARIANT_TAGS] if path.suffix == ".onnx" else []
    return [path, *(p for p in found if p.is_file())]


def _read(path: Path) -> GeneratorMetadata:
    from gantool.runtime.backends.ort import OrtBackend

    with OrtBackend(path) as b:
        return b.generator_metadata()


def _open_all(chosen: dict[int, Candidate]) -> dict[int, Backend]:
    opened: dict[Candidate, Backend] = {}
    try:
        for c in chosen.values():
            if c not in opened:
                opened[c] = c.open()
    except BaseException:
        for b in opened.values():
            b.deactivate()
        raise
    return {batch: opened[c] for batch, c in chosen.items()}


def select(path: Path, engine: str = "auto", threads: int | None = None, precision: str = "fp32",
           allow_tune: bool | None = None, progress: Progress | None = None, retune: bool = False) -> Selection:
    precision = check_precision(precision)
    name = choose_engine(path, engine)
    if name not in CPU_ENGINES:  # a .plan, a GPU provider: one engine, the file's own precision
        backend = open_backend(path, name, threads)
        own = backend.generator_metadata().precision
        if precision not in ("auto", own) and not (precision == "fp32" and own == "fp32"):
            backend.deactivate()
            raise PrecisionError(f"{path.name} runs in {own} on {name}; precision={precision!r} cannot apply there; "
                                 f"allowed: auto or {own}.")
        return Selection({1: backend}, "pinned" if engine != "auto" else "single", precision)
    if precision == "fp32" and (engine != "auto" or threads is not None or not _tuning(allow_tune)) and not retune:
        backend = open_backend(path, name, threads)  # today's default: no sibling is read
        how = "pinned" if engine != "auto" or threads is not None else "default"
        return Selection({1: backend}, how, precision)
    pinned = engine != "auto" or threads is not None or precision in ("bf16", "int8")
    tuning = _tuning(allow_tune) and not pinned
    key = cache_key(siblings(path), precision, threads) if tuning or retune else None
    result = read_cached(key) if key is not None and not retune else None
    if result is not None:  # the files are the ones tuned (by digest): no metadata to re-read
        chosen = {c.batch: c.candidate for c in result.choices}
        return Selection(_open_all(chosen), "cached", precision, result, chosen)
    meta = _read(path)
    files = family_files(path, meta, _read)
    cands, skipped = candidates(files, precision, threads, (name,) if engine != "auto" else None)
    if key is None or len(cands) == 1:
        first = cands[0]
        how = "pinned" if pinned else "single" if len(cands) == 1 else "default"
        return Selection(_open_all({1: first}), how, precision, chosen={1: first})
    result = tune(cands, meta.spec, key, progress=progress, skipped=skipped)
    chosen = {c.batch: c.candidate for c in result.choices}
    return Selection(_open_all(chosen), "tuned", precision, result, chosen)


def _tuning(allow: bool | None) -> bool:
    return tuning_enabled() if allow is None else allow
