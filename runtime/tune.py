"""Choose, once per machine, how each batch size of a model runs fastest; cache the choice.

The candidates (runtime/variants.py) are timed interleaved: every round times each one in turn, so a
burst of load on this shared machine (its speed swings by up to ~50% for seconds) hits all of them
alike. The default (ONNX Runtime, the given file, all cores) is kept unless a candidate beats it by
more than SWITCH_MARGIN in most rounds. The choice is cached in the user's cache folder under a key of
the model's files, the CPU model and flags, and the engine versions; a later load reads it and opens
only the chosen backends. GANTOOL_TUNE=off (or Generator.load(tune=False)) keeps the default.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import gantool
from gantool.contract import PRECISIONS
from gantool.cpu import cpu_info
from gantool.extras import installed
from gantool.fileio import atomic_write_json
from gantool.noise import make_noise
from gantool.paths import cache_dir
from gantool.runtime.variants import CPU_ENGINES, Candidate
from gantool.spec import ModelSpec

TUNE_BATCHES = (1, 16, 256)  # the buckets; a request goes to the nearest one (in log2)
TUNE_ROUNDS = 7
SWITCH_MARGIN = 0.05  # a candidate must be this much faster than the default ...
ROUND_SECONDS = 0.02  # ... in most rounds, each timing at least this long (several calls when fast)
FAST_QUANTILE = 25  # among the eligible, the lowest 25th percentile of a candidate's rounds wins (decide)
SETTLE_SECONDS = 0.02  # idle before each timing, as the bench's settle (benchmarks/bench.py)
TUNE_ENV = "GANTOOL_TUNE"  # "off" (or 0/false/no) keeps the default choice everywhere
CACHE_SCHEMA = 1
Progress = Callable[[str, int, int], None]  # (what, done, total)
log = logging.getLogger(__name__)


def tuning_enabled() -> bool:
    return os.environ.get(TUNE_ENV, "").strip().lower() not in ("off", "0", "false", "no")


def bucket(n: int, batches: tuple[int, ...] = TUNE_BATCHES) -> int:
    """The tuned batch size nearest to n, in log2 (n=3 -> 1, n=5 -> 16, n=100 -> 256 with the defaults; a tie goes to the smaller)."""
    return min(batches, key=lambda b: (abs(np.log2(max(n, 1)) - np.log2(b)), b))


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def engine_versions() -> dict[str, str]:
    """Read from the installed distributions, not by importing them (OpenVINO's import alone is 0.16 s)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"gantool": gantool.__version__}
    for module, dists in (("onnxruntime", ("onnxruntime", "onnxruntime-gpu")), ("openvino", ("openvino",))):
        if installed(module):
            for dist in dists:
                try:
                    versions[module] = version(dist)
                    break
                except PackageNotFoundError:
                    continue
    return versions


def cache_key(files: list[Path], precision: str, threads: int | None) -> dict[str, Any]:
    """What a cached choice is valid for: the same files (by place and digest), CPU, engine versions and
    request. The place counts: a cached choice names its files by path."""
    cpu = cpu_info()
    return {"schema": CACHE_SCHEMA, "folder": str(files[0].resolve().parent),
            "files": {p.name: file_digest(p) for p in files}, "cpu_model": cpu.model,
            "cpu_flags": cpu.notable_flags, "cpus": cpu.cpus, "versions": engine_versions(),
            "precision": precision, "threads": threads, "batches": list(TUNE_BATCHES)}


def cache_path(key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir() / "tune" / f"{digest}.json"


@dataclass
class Choice:
    """The tuner's verdict for one batch size: the winner, the default, and their round medians."""

    batch: int
    candidate: Candidate
    default: Candidate
    ms: float  # median over rounds of the winner's per-call time
    default_ms: float
    wins: int  # rounds in which the winner beat the default by more than SWITCH_MARGIN
    rounds: int

    @property
    def why(self) -> str:
        if self.candidate == self.default:
            return f"the default: nothing beat it by > {SWITCH_MARGIN:.0%} in most of {self.rounds} rounds"
        return (f"beat the default ({self.default.label}) by > {SWITCH_MARGIN:.0%} in {self.wins} of {self.rounds} "
                f"rounds; medians {self.ms:.3g} against {self.default_ms:.3g} ms")

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "candidate": self.candidate.to_dict(), "default": self.default.to_dict(),
                "ms": self.ms, "default_ms": self.default_ms, "wins": self.wins, "rounds": self.rounds,
                "why": self.why}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Choice:
        return cls(int(d["batch"]), Candidate.from_dict(d["candidate"]), Candidate.from_dict(d["default"]),
                   float(d["ms"]), float(d["default_ms"]), int(d["wins"]), int(d["rounds"]))


@dataclass
class TuneResult:
    choices: list[Choice]
    timings: dict[str, dict[str, float]] = field(default_factory=dict)  # batch -> candidate label -> median ms
    skipped: list[str] = field(default_factory=list)  # candidates left out, and why
    seconds: float = 0.0  # what tuning cost
    cached: bool = False  # read from the cache rather than measured now
    path: Path | None = None
    cache_error: str | None = None  # why the verdict could not be cached (it is used all the same)

    def choice(self, n: int) -> Choice:
        b = bucket(n, tuple(c.batch for c in self.choices))
        return next(c for c in self.choices if c.batch == b)

    def to_dict(self) -> dict[str, Any]:
        return {"choices": [c.to_dict() for c in self.choices], "timings": self.timings, "skipped": self.skipped,
                "seconds": self.seconds, "cached": self.cached, "cache_file": None if self.path is None else str(self.path)}

    def text(self) -> str:
        head = (f"tuned in {self.seconds:.1f} s" + (" (cached)" if self.cached else "")
                + (f": {self.path}" if self.path else "") + (f"; not cached: {self.cache_error}" if self.cache_error else ""))
        lines = [head]
        for c in self.choices:
            lines.append(f"  batch {c.batch:>4}: {c.candidate.label}  {c.ms:.3g} ms  ({c.why})")
        lines += [f"  left out: {s}" for s in self.skipped]
        return "\n".join(lines)


def _time_calls(run: Callable[[], Any], calls: int) -> float:
    """The median ms of `calls` calls, after an idle settle and one untimed call. The settle lets the
    previous candidate's worker threads stop spinning (measured: cdcgan at batch 1 on 2 threads read
    0.34 ms right after a 1-thread session's turn, 0.13 ms settled); the untimed call wakes this one's."""
    time.sleep(SETTLE_SECONDS)
    run()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def decide(per_round: list[list[float]]) -> tuple[int, list[float], list[int]]:
    """The rule: per_round[i][r] is candidate i's time in round r, candidate 0 the default. A candidate
    is eligible when it beat the default by more than SWITCH_MARGIN in most rounds; the eligible one
    with the lowest fast quartile wins: a shared machine's noise only ever slows a timing, so a round
    that caught a slow spell says less than one that did not (a median let dcgan's 1-thread graph beat
    its 2-thread one while a neighbour held a core). Returns (winner, medians, wins)."""
    default = np.asarray(per_round[0])
    rounds = len(default)
    medians = [float(np.median(p)) for p in per_round]
    fast = [float(np.percentile(p, FAST_QUANTILE)) for p in per_round]
    wins = [int(np.sum(np.asarray(p) < default * (1 - SWITCH_MARGIN))) for p in per_round]
    eligible = [i for i in range(len(per_round)) if i == 0 or wins[i] > rounds / 2]
    return min(eligible, key=lambda i: fast[i]), medians, wins


def measure(candidates: list[Candidate], spec: ModelSpec, batches: tuple[int, ...] = TUNE_BATCHES,
            rounds: int = TUNE_ROUNDS, progress: Progress | None = None) -> tuple[list[Choice], dict, list[str]]:
    """Open every candidate, time them interleaved per batch, pick per batch (default first in the list)."""
    from gantool.errors import GantoolError
    from gantool.runtime.backends import infer_split

    opened: list[tuple[Candidate, Any]] = []
    skipped: list[str] = []
    total = len(candidates) + len(batches) * rounds
    done = 0
    try:
        for c in candidates:
            try:
                opened.append((c, c.open()))
            except GantoolError as e:  # an engine that cannot start here is left out, with the reason
                if c == candidates[0]:
                    raise
                skipped.append(f"{c.label}: {str(e).split(' Note:')[0]}")
            done += 1
            if progress:
                progress("opening", done, total)
        choices: list[Choice] = []
        timings: dict[str, dict[str, float]] = {}
        contract = opened[0][1].generator_metadata().contract  # a family's files share one signature
        for b in batches:
            feeds = contract.feeds(make_noise(b, b, spec.latent_dim, spec.noise), contract.default_labels(b))
            calls = []
            for _, be in opened:
                infer_split(be, feeds)  # warm-up
                t = time.perf_counter()
                infer_split(be, feeds)
                calls.append(max(1, int(ROUND_SECONDS / max(time.perf_counter() - t, 1e-6))))
            per: list[list[float]] = [[] for _ in opened]
            for r in range(rounds):
                order = list(range(len(opened)))
                order = order[r % len(order):] + order[:r % len(order)]  # rotate who goes first
                for i in order:
                    be = opened[i][1]
                    per[i].append(_time_calls(partial(infer_split, be, feeds), calls[i]))
                done += 1
                if progress:
                    progress(f"timing batch {b}", done, total)
            best, medians, wins = decide(per)
            choices.append(Choice(b, opened[best][0], opened[0][0], medians[best], medians[0], wins[best], rounds))
            timings[str(b)] = {c.label: m for (c, _), m in zip(opened, medians)}
        return choices, timings, skipped
    finally:
        for _, be in opened:
            be.deactivate()


def read_cached(key: dict[str, Any]) -> TuneResult | None:
    """The cached verdict for key, or None when there is none or it is unusable (damaged, from another
    layout, naming a file that is gone): the caller tunes again and the new verdict replaces it."""
    path = cache_path(key)
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    try:
        if not isinstance(d, dict) or d.get("key") != key or not isinstance(d.get("choices"), list):
            return None
        result = TuneResult([Choice.from_dict(c) for c in d["choices"]], dict(d.get("timings", {})),
                            [str(x) for x in d.get("skipped", [])], float(d.get("seconds", 0.0)), cached=True,
                            path=path)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if sorted(c.batch for c in result.choices) != sorted(key["batches"]):
        return None
    for c in result.choices:
        k = c.candidate
        if k.engine not in CPU_ENGINES or k.precision not in PRECISIONS or k.threads < 1 or not k.path.is_file():
            return None
    return result


def tune(candidates: list[Candidate], spec: ModelSpec, key: dict[str, Any], rounds: int = TUNE_ROUNDS,
         progress: Progress | None = None, skipped: list[str] | None = None) -> TuneResult:
    """Measure now and cache the verdict (replacing any earlier one for the same key)."""
    start = time.perf_counter()
    choices, timings, left_out = measure(candidates, spec, tuple(key["batches"]), rounds, progress)
    result = TuneResult(choices, timings, [*(skipped or []), *left_out], time.perf_counter() - start)
    path = cache_path(key)
    try:
        atomic_write_json(path, {"key": key, **result.to_dict(), "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        result.path = path
    except OSError as e:  # a read-only or misplaced cache: use the verdict now, say it was not kept
        result.cache_error = (f"cannot write {path} ({e.strerror or e}); set {TUNE_ENV}=off or GANTOOL_CACHE to a "
                              f"writable folder")
        log.warning("gantool: tuned, but %s", result.cache_error)
    return result


def cached_entries(precision: str | None = None) -> list[dict[str, Any]]:
    """The cached choices on this machine (for gantool tune --show), all or one precision setting's."""
    out = []
    for p in sorted((cache_dir() / "tune").glob("*.json")):
        try:
            d = json.loads(p.read_text())
            entry = {"file": str(p), "folder": d["key"].get("folder"), "models": sorted(d["key"]["files"]),
                     "precision": d["key"]["precision"], "cpu_model": d["key"]["cpu_model"],
                     "tuned_at": d.get("tuned_at"), "choices": {c["batch"]: c["candidate"] for c in d["choices"]}}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            entry = {"file": str(p), "unreadable": True, "precision": None}
        if precision is None or entry["precision"] in (precision, None):
            out.append(entry)
    return out


def clear_cache(precision: str | None = None) -> int:
    """Delete the cached choices (all, or one precision setting's); returns how many."""
    files = [Path(e["file"]) for e in cached_entries(precision)]
    for p in files:
        p.unlink(missing_ok=True)
    return len(files)
