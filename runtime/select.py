"""Which backend serves which batch size: pinned by the caller, read from the tuning cache, or tuned now.

Generator.load calls `select`. On the CPU with engine="auto", no thread count and precision fp32 or
auto, the tuner chooses among the model's validated variants (runtime/tune.py) once per machine. A
pinned engine, thread count or reduced precision (bf16, int8) skips tuning and takes the first fitting
candidate. A .plan, or an .onnx on a machine with ORT's CUDA provider, runs on its one engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from gantool.contract import GeneratorMetadata
from gantool.errors import GantoolError
from gantool.runtime.backends import Backend, choose_engine, open_backend
from gantool.runtime.tune import (
    TUNE_ENV,
    Progress,
    TuneResult,
    cache_key,
    read_cached,
    tune,
    tuning_enabled,
)
from gantool.runtime.variants import (
    CPU_ENGINES,
    TUNABLE_PRECISIONS,
    VARIANT_TAGS,
    Candidate,
    PrecisionError,
    candidates,
    check_precision,
    family_files,
    variant_name,
)


@dataclass
class Selection:
    routes: dict[int, Backend]  # tuned batch size -> its backend (one backend may serve several)
    how: str  # tuned | cached | pinned | default | single
    precision: str  # what the caller allowed
    tuning: TuneResult | None = None
    chosen: dict[int, Candidate] = field(default_factory=dict)
    reason: str = ""  # why it was not tuned (pinned, tuning off, one candidate)

    def __post_init__(self) -> None:
        # the route of a request of n images: the first bucket whose upper bound (the geometric mean with
        # the next bucket, where tune.bucket's log2 distance ties) is >= n. A few comparisons per call: the
        # runtime's whole overhead at batch 1 is a few microseconds, so no log2 here.
        sizes = sorted(self.routes)
        self._bounds = [((a * b) ** 0.5, self.routes[a]) for a, b in pairwise(sizes)]
        self._last = self.routes[sizes[-1]]
        if all(be is self._last for _, be in self._bounds):
            self._bounds = []  # one backend serves every size

    @property
    def primary(self) -> Backend:
        return self.routes[min(self.routes)]

    def backend_for(self, n: int) -> Backend:
        for bound, backend in self._bounds:
            if n <= bound:
                return backend
        return self._last

    def backends(self) -> list[Backend]:
        return list({id(b): b for b in self.routes.values()}.values())

    def precisions(self) -> dict[int, str]:
        """What each route computes in (bf16 where OpenVINO runs an fp32 file in bf16)."""
        return {b: be.compute or be.generator_metadata().precision for b, be in self.routes.items()}

    def describe(self) -> dict[str, Any]:
        """What was chosen and why: for bench, inspect and serve's /v1/model."""
        d: dict[str, Any] = {"how": self.how, "precision_allowed": self.precision,
                             "routes": {str(b): c.to_dict() for b, c in self.chosen.items()}}
        if self.tuning is not None:
            d.update(why={str(c.batch): c.why for c in self.tuning.choices}, tuning_seconds=self.tuning.seconds,
                     cache_file=None if self.tuning.path is None else str(self.tuning.path),
                     cache_error=self.tuning.cache_error, skipped=self.tuning.skipped)
        else:
            d["why"] = {str(b): self.reason for b in self.chosen}
        return d

    def text(self, n: int | None = None) -> str:
        """One line per route (or only the route a request of n images takes): what sampling runs on."""
        d = self.describe()
        routes = d["routes"].items()
        if n is not None and len(routes) > 1:
            backend = self.backend_for(n)
            routes = [(b, c) for b, c in routes if self.routes[int(b)] is backend][:1]
        return "\n".join(f"batch {b}: {c['engine']} {c['precision']} {Path(c['file']).name} x{c['threads']} "
                         f"({self.how}: {d['why'].get(b, '')})" for b, c in routes)

    def close(self) -> None:
        for b in self.backends():
            b.deactivate()


def base_of(path: Path) -> Path:
    """The family's base file for any of its members (NAME.int8.onnx -> NAME.onnx)."""
    stem, _, tag = path.stem.rpartition(".")
    return path.with_name(variant_name(stem, "")) if stem and tag in VARIANT_TAGS else path


def siblings(path: Path) -> list[Path]:
    """path and the variant files beside it (their family is checked when their metadata is read)."""
    found = [path.with_name(variant_name(path.stem, t)) for t in VARIANT_TAGS] if path.suffix == ".onnx" else []
    return [path, *(p for p in found if p.is_file())]


def file_metadata(path: Path) -> GeneratorMetadata:
    """A generator file's metadata, validated against its graph (ONNX Runtime opens it)."""
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


def _as_candidate(path: Path, backend: Backend, threads: int | None) -> Candidate:
    import os

    meta = backend.generator_metadata()
    return Candidate(path, backend.engine, backend.compute or meta.precision, threads or os.cpu_count() or 1, meta.graph,
                     meta.int8_activations)


def _pins(engine: str, threads: int | None, precision: str) -> list[str]:
    return [p for p, on in ((f"engine={engine!r}", engine != "auto"), (f"threads={threads}", threads is not None),
                            (f"precision={precision!r}", precision not in TUNABLE_PRECISIONS)) if on]


def select(path: Path, engine: str = "auto", threads: int | None = None, precision: str = "fp32",
           allow_tune: bool | None = None, progress: Progress | None = None, retune: bool = False) -> Selection:
    precision = check_precision(precision)
    pins = _pins(engine, threads, precision)
    if (allow_tune or retune) and pins:
        raise PrecisionError(f"tuning was asked for, but {' and '.join(pins)} pin the choice it would make; "
                             f"allowed: tune with engine='auto', no threads and precision fp32 or auto.")
    name = choose_engine(path, engine)
    if name not in CPU_ENGINES:  # a .plan, a GPU provider: one engine, the file's own precision
        backend = open_backend(path, name, threads)
        own = backend.generator_metadata().precision
        if precision not in ("auto", own):
            backend.deactivate()
            raise PrecisionError(f"{path.name} runs in {own} on {name}; precision={precision!r} cannot apply there; "
                                 f"allowed: auto or {own}.")
        return Selection({1: backend}, "pinned" if pins else "single", precision,
                         chosen={1: _as_candidate(path, backend, threads)},
                         reason=f"{name} runs the file as it is (GPU engines are not tuned)")
    tuning = (_tuning(allow_tune) or retune) and not pins
    if precision == "fp32" and not tuning:  # the named file as it is: no sibling is read
        backend = open_backend(path, name, threads)
        return Selection({1: backend}, "pinned" if pins else "default", precision,
                         chosen={1: _as_candidate(path, backend, threads)}, reason=_untuned(pins, allow_tune))
    key = cache_key(siblings(path), precision, threads) if tuning else None
    if key is not None and not retune:
        cached = read_cached(key)
        if cached is not None:  # the files are the ones tuned (by digest): no metadata to re-read
            chosen = {c.batch: c.candidate for c in cached.choices}
            try:
                return Selection(_open_all(chosen), "cached", precision, cached, chosen)
            except GantoolError:
                pass  # a choice this install cannot open any more (an engine removed): tune again
    files, left_out = family_files(path, file_metadata(path), file_metadata)
    cands, skipped = candidates(files, precision, threads, (name,) if engine != "auto" else None, left_out)
    if key is None or len(cands) == 1:
        first = cands[0]
        single = len(cands) == 1 and not pins
        how = "pinned" if pins else "single" if single else "default"
        return Selection(_open_all({1: first}), how, precision, chosen={1: first},
                         reason="the only candidate" if single else _untuned(pins, allow_tune))
    result = tune(cands, files[0][1].spec, key, progress=progress, skipped=skipped)
    chosen = {c.batch: c.candidate for c in result.choices}
    return Selection(_open_all(chosen), "tuned", precision, result, chosen)


def _untuned(pins: list[str], allow_tune: bool | None) -> str:
    """Why a load kept its first candidate: a pin, GANTOOL_TUNE, or tune=False."""
    import os

    if pins:
        return f"pinned by {' and '.join(pins)}"
    return f"tuning is off ({TUNE_ENV}={os.environ.get(TUNE_ENV, '')})" if allow_tune is None else "tuning is off (tune=False)"


def _tuning(allow: bool | None) -> bool:
    return tuning_enabled() if allow is None else allow
