"""`gantool compare A B`, in the style of Polygraphy's `run`: any two generator artifacts, each on any
engine, on the same seeded inputs, with a per-output error report.

An artifact is a zoo name or checkpoint (PyTorch, fp32), an .onnx, a .plan, or a golden file (.npz)
written by `--save-golden`: the seeded inputs and the outputs of A, with the metadata as JSON, read
back with allow_pickle=False. A is the reference. The verdict uses the named tolerance of the lower
precision of the two (contract.TOLERANCES) or, where given, the user's --atol/--rtol (|b - a| <=
atol + rtol * |a| on every pixel, Polygraphy's rule), the other reported beside it; where PyTorch is
installed, the judge's class agreement between A's and B's images is reported too, and counts where
that precision has a bar (contract.SEMANTIC_BARS). torch is imported only for a checkpoint or the judge.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

import gantool
from gantool.contract import (
    IMAGES,
    LABELS,
    PRECISIONS,
    SEMANTIC_BARS,
    TOLERANCES,
    Tolerance,
    write_metadata,
)
from gantool.errors import GantoolError
from gantool.export.parity import Comparison, compare, parity_cases
from gantool.extras import installed
from gantool.spec import ZOO_NAMES, ModelSpec

GOLDEN_SCHEMA = 1
TORCH_ENGINES = ("torch", "torch-cuda")
Case = tuple[str, np.ndarray, "np.ndarray | None"]


def engines() -> tuple[str, ...]:
    """What --engine-a/--engine-b accept: auto, the runtime's engines, and PyTorch's (checkpoints)."""
    from gantool.runtime.backends import ENGINES

    return (*ENGINES, *TORCH_ENGINES)


class CompareFailed(GantoolError):
    """B does not match A within the bound (exit 1, after the report)."""


@dataclass
class Golden:
    info: dict[str, Any]
    cases: list[Case]
    outputs: list[np.ndarray]


@dataclass
class Runner:
    """One side of a comparison: what it is, and its outputs for (z, labels)."""

    target: str
    kind: str  # torch, onnx, plan, golden
    engine: str
    precision: str
    spec: ModelSpec
    condition: str
    infer: Callable[[np.ndarray, np.ndarray | None], np.ndarray] | None = None
    close: Callable[[], None] = lambda: None
    golden: Golden | None = None
    metadata: dict[str, str] | None = None  # the file's gantool metadata (ONNX, plan), for a golden file

    def describe(self) -> str:
        return f"{self.target} ({self.kind}, {self.engine}, {self.precision})"

    def outputs(self, cases: list[Case]) -> list[np.ndarray]:
        if self.golden is not None:
            if not _same_cases(self.golden.cases, cases):
                raise GantoolError(f"{self.target}: its stored inputs are not the inputs of this comparison (seed "
                                   f"{self.golden.info.get('seed')}); allowed: one golden file, or two made alike.")
            return self.golden.outputs
        assert self.infer is not None
        return [self.infer(z, labels) for _, z, labels in cases]


def _same_cases(a: list[Case], b: list[Case]) -> bool:
    return len(a) == len(b) and all(
        da == db and np.array_equal(za, zb) and ((la is None and lb is None) or
                                                 (la is not None and lb is not None and np.array_equal(la, lb)))
        for (da, za, la), (db, zb, lb) in zip(a, b))


def open_runner(target: str, engine: str = "auto") -> Runner:
    """A zoo name, checkpoint, .onnx, .plan or golden .npz, on an engine (auto: torch on the CPU for
    weights, the runtime's choice for a file); a wrong pairing or an unknown file is one line."""
    if engine not in engines():
        raise GantoolError(f"unknown engine {engine!r}; allowed: {', '.join(engines())}.")
    path = Path(target)
    if path.suffix == ".npz":
        if engine != "auto":
            raise GantoolError(f"{target} is a golden file: it holds outputs, not a model; allowed: engine auto.")
        return read_golden(path)
    if path.suffix in (".onnx", ".plan"):
        if engine in TORCH_ENGINES:
            raise GantoolError(f"engine {engine} runs PyTorch weights; {path.name} runs with the runtime's engines.")
        if not path.is_file():
            raise GantoolError(f"{target}: no such file.")
        return _backend_runner(path, engine)
    if path.suffix in (".pt", ".safetensors") or (target in ZOO_NAMES and not path.is_file()):
        return _torch_runner(target, "torch" if engine == "auto" else engine)
    raise GantoolError(f"{target}: not a file gantool compares; allowed: a zoo name ({', '.join(ZOO_NAMES)}), a "
                       f"checkpoint (.pt, .safetensors), an .onnx, a .plan or a golden .npz.")


def _backend_runner(path: Path, engine: str) -> Runner:
    from gantool.runtime.backends import open_backend
    from gantool.runtime.backends.base import infer_split

    if engine in TORCH_ENGINES:
        raise GantoolError(f"engine {engine} runs PyTorch weights, not {path.name}.")
    backend = open_backend(path, engine)
    meta = backend.generator_metadata()
    backend.pad_small_batches = True  # a plan built with --min-batch above 1 still runs batch 1 here
    contract = meta.contract

    def run(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        return infer_split(backend, contract.feeds(z, labels))

    return Runner(str(path), path.suffix[1:], backend.name, meta.precision, meta.spec, meta.condition, run,
                  backend.deactivate, metadata=dict(write_metadata(meta)))


def _torch_runner(target: str, engine: str) -> Runner:
    if engine not in TORCH_ENGINES:
        raise GantoolError(f"{target} is PyTorch weights; allowed engines: auto, {', '.join(TORCH_ENGINES)}.",
                           note="export it first (gantool export) to run it on the runtime's engines.")
    if not installed("torch"):
        raise GantoolError(f"comparing {target} runs its PyTorch weights, and PyTorch is not installed.",
                           note='pip install "gantool[train]", or compare its exported .onnx.')
    import torch

    from gantool.train.checkpoint import load_generator

    device = "cuda" if engine == "torch-cuda" else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise GantoolError("engine torch-cuda needs a CUDA GPU, and torch sees none here.")
    spec, g = load_generator(target)
    g = g.eval().to(device)

    def run(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        with torch.inference_mode():
            y = None if labels is None else torch.from_numpy(labels).to(device)
            return g(torch.from_numpy(z).to(device), y).float().cpu().numpy()

    return Runner(target, "torch", engine, "fp32", spec, LABELS, run)


def write_golden(path: str | Path, runner: Runner, cases: list[Case], outputs: list[np.ndarray], seed: int) -> Path:
    """The seeded inputs and A's outputs (np.savez, no pickled objects) and the metadata as JSON."""
    from gantool.fileio import atomic_write_bytes

    info = {"golden_schema": GOLDEN_SCHEMA, "gantool_version": gantool.__version__, "source": runner.target,
            "kind": runner.kind, "engine": runner.engine, "precision": runner.precision,
            "spec": runner.spec.to_dict(), "condition": runner.condition, "seed": seed,
            "cases": [d for d, _, _ in cases], "metadata": runner.metadata}
    arrays: dict[str, np.ndarray] = {"metadata.json": np.array(json.dumps(info, sort_keys=True))}
    for i, ((_, z, labels), out) in enumerate(zip(cases, outputs)):
        arrays[f"z.{i}"] = z
        if labels is not None:
            arrays[f"labels.{i}"] = labels
        arrays[f"{IMAGES}.{i}"] = np.asarray(out, np.float32)
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def read_golden(path: Path) -> Runner:
    if not path.is_file():
        raise GantoolError(f"{path}: no such golden file.")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        info = json.loads(str(arrays["metadata.json"]))
        if info.get("golden_schema") != GOLDEN_SCHEMA:
            raise GantoolError(f"{path}: golden schema {info.get('golden_schema')!r}; this gantool reads schema "
                               f"{GOLDEN_SCHEMA}.")
        spec = ModelSpec.from_dict(info["spec"])
        cases: list[Case] = []
        outputs = []
        for i, desc in enumerate(info["cases"]):
            cases.append((str(desc), arrays[f"z.{i}"], arrays.get(f"labels.{i}")))
            outputs.append(arrays[f"{IMAGES}.{i}"])
    except GantoolError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GantoolError(f"{path}: not a readable gantool golden file ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:120] if str(e) else ''}).") from None
    return Runner(str(path), "golden", f"golden of {info.get('engine')}", str(info.get("precision", "fp32")), spec,
                  str(info.get("condition", LABELS)), golden=Golden(info, cases, outputs), metadata=info.get("metadata"))


def named_tolerance(a: str, b: str) -> str:
    """The lower precision of the two (the looser bound): fp32 > fp16 > bf16 > int8; bf16 has no
    element-wise bound of its own (contract.py) and takes int8's."""
    low = max((a, b), key=lambda p: PRECISIONS.index(p) if p in PRECISIONS else len(PRECISIONS))
    return low if low in TOLERANCES else "int8"


@dataclass
class UserBound:
    atol: float
    rtol: float

    def text(self) -> str:
        return f"|b - a| <= {self.atol:g} + {self.rtol:g} * |a|"

    def holds(self, got: np.ndarray, ref: np.ndarray) -> bool:
        g, r = got.astype(np.float64), ref.astype(np.float64)
        return bool(np.isfinite(g).all() and (np.abs(g - r) <= self.atol + self.rtol * np.abs(r)).all())


@dataclass
class CompareReport:
    a: str
    b: str
    tolerance: str  # the named tolerance's precision
    bound: str
    user_bound: str | None
    comparisons: list[Comparison] = field(default_factory=list)
    user_passed: list[bool] = field(default_factory=list)
    judge: dict[str, Any] | None = None
    judge_note: str | None = None
    golden: str | None = None

    @property
    def named_passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    @property
    def passed(self) -> bool:
        values = self.user_passed if self.user_bound is not None else [self.named_passed]
        judged = self.judge is None or self.judge.get("passed") is not False
        return all(values) and judged

    def text(self) -> str:
        lines = [f"compare: A {self.a}", f"     against B {self.b}",
                 f"  bound: {self.tolerance} tolerance ({self.bound})"
                 + (f"; user bound {self.user_bound} (decides)" if self.user_bound else " (decides)")]
        for i, c in enumerate(self.comparisons):
            verdicts = f"{self.tolerance}: {'PASSED' if c.passed else 'FAILED'}"
            if self.user_bound is not None:
                verdicts += f", user: {'PASSED' if self.user_passed[i] else 'FAILED'}"
            lines.append(f"  {c.output} batch={c.batch:<5} labels={c.labels:<12} | abs max={c.max_abs:.2e} "
                         f"mean={c.mean_abs:.2e} median={c.median_abs:.2e} p99={c.p99_abs:.2e} | rel max="
                         f"{c.max_rel:.2e} mean={c.mean_rel:.2e} median={c.median_rel:.2e} p99={c.p99_rel:.2e} | "
                         f"{verdicts}")
        if self.judge is not None:
            j = self.judge
            acc = ("" if j["label_accuracy_a"] is None else
                   f"; label accuracy {j['label_accuracy_a']:.2%} (A) and {j['label_accuracy_b']:.2%} (B)")
            bar = (f" (bar: {j['bar']}) {'PASSED' if j['passed'] else 'FAILED'}" if j["bar"] else
                   " (no bar at fp32: informative)")
            lines.append(f"  judge agreement on {j['n']} samples: {j['agreement']:.2%}, FD-judge between the sets "
                         f"{j['fd_between']:.3g}{acc}{bar}")
        elif self.judge_note:
            lines.append(f"  judge agreement: {self.judge_note}")
        if self.golden:
            lines.append(f"  wrote golden file {self.golden}")
        lines.append(f"  {'PASSED' if self.passed else 'FAILED'}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "tolerance": self.tolerance, "bound": self.bound,
                "user_bound": self.user_bound, "passed": self.passed, "named_passed": self.named_passed,
                "comparisons": [{**asdict(c), **({"user_passed": self.user_passed[i]} if self.user_bound else {})}
                                for i, c in enumerate(self.comparisons)],
                "judge": self.judge, "judge_note": self.judge_note, "golden": self.golden}


def _check_same_model(a: Runner, b: Runner) -> str:
    """The condition both take; refuses two different models, or a label graph against a mix graph."""
    if a.spec != b.spec:
        raise GantoolError(f"A {a.target} is {a.spec.arch} and B {b.target} is {b.spec.arch} with another spec; "
                           f"allowed: two artifacts of one model (the same spec).")
    if a.kind == "torch":
        return b.condition
    if b.kind != "torch" and a.condition != b.condition:
        raise GantoolError(f"A {a.target} takes {a.condition} and B {b.target} takes {b.condition}; allowed: two "
                           f"graphs with the same inputs.")
    return a.condition


def _judge(spec: ModelSpec, cases: list[Case], a: list[np.ndarray], b: list[np.ndarray],
           precision: str) -> dict[str, Any]:
    """The judge's class agreement and the FD-judge between A's and B's images (export/semantic.py's check,
    between two artifacts instead of against torch)."""
    import torch

    from gantool.train.evaluate import frechet_distance, judge_outputs
    from gantool.train.judge import load_judge

    judge, _ = load_judge()
    xa = torch.from_numpy(np.concatenate(a)).float().clamp(-1, 1)
    xb = torch.from_numpy(np.concatenate(b)).float().clamp(-1, 1)
    fa, pa = judge_outputs(judge, xa)
    fb, pb = judge_outputs(judge, xb)
    labels = None
    if spec.conditional and all(lab is not None and lab.ndim == 1 for _, _, lab in cases):
        labels = np.concatenate([lab for _, _, lab in cases if lab is not None])
    bar = SEMANTIC_BARS.get(precision)
    agreement, fd = float((pa == pb).mean()), frechet_distance(fa, fb)
    acc_a = None if labels is None else float((pa == labels).mean())
    acc_b = None if labels is None else float((pb == labels).mean())
    passed = None
    if bar is not None:
        drift = None if acc_a is None or acc_b is None else abs(acc_a - acc_b)
        passed = agreement >= bar.agreement and fd <= bar.fd_between and (drift is None or
                                                                           drift <= bar.label_drift + 1e-12)
    return {"n": len(pa), "agreement": agreement, "fd_between": fd, "label_accuracy_a": acc_a,
            "label_accuracy_b": acc_b, "bar": None if bar is None else bar.text(), "passed": passed}


def run_compare(a: str, b: str | None, engine_a: str = "auto", engine_b: str = "auto", atol: float | None = None,
                rtol: float | None = None, tolerance: str | None = None, seed: int = 0, save_golden: str | None = None,
                judge: bool = True) -> CompareReport:
    """Compare B with A on A's seeded inputs (a golden file's stored ones); b None: only --save-golden."""
    from gantool.fileio import refuse_overwrite

    if b is None and save_golden is None:
        raise GantoolError("give B to compare with A, or --save-golden FILE.npz to write A's outputs.")
    if save_golden is not None and not save_golden.endswith(".npz"):
        raise GantoolError(f"--save-golden {save_golden}: allowed: a .npz file name.")
    if tolerance is not None and tolerance not in TOLERANCES:
        raise GantoolError(f"--tolerance {tolerance!r}; allowed: {', '.join(TOLERANCES)}.")
    refuse_overwrite({"--save-golden": save_golden}, {"A": a, "B": b})
    ra = open_runner(a, engine_a)
    try:
        rb = open_runner(b, engine_b) if b is not None else None
    except BaseException:
        ra.close()
        raise
    try:
        condition = _check_same_model(ra, rb) if rb is not None else ra.condition
        golden = ra.golden or (rb.golden if rb is not None else None)
        cases = golden.cases if golden is not None else parity_cases(ra.spec, seed, condition)
        out_a = ra.outputs(cases)
        golden_path = None
        if save_golden is not None:
            golden_path = str(write_golden(save_golden, ra, cases, out_a,
                                           int(golden.info.get("seed", seed)) if golden else seed))
        if rb is None:
            return CompareReport(ra.describe(), "-", "-", "-", None, golden=golden_path)
        out_b = rb.outputs(cases)
        name = tolerance or named_tolerance(ra.precision, rb.precision)
        tol: Tolerance = TOLERANCES[name]
        user = None if atol is None and rtol is None else UserBound(atol or 0.0, rtol or 0.0)
        report = CompareReport(ra.describe(), rb.describe(), name, tol.text(), None if user is None else user.text(),
                               golden=golden_path)
        for (desc, z, _), got, ref in zip(cases, out_b, out_a):
            if got.shape != ref.shape:
                raise GantoolError(f"B's {IMAGES} at batch {len(z)} has shape {got.shape}, A's {ref.shape}.")
            report.comparisons.append(compare(IMAGES, len(z), desc, got, ref, tol))
            if user is not None:
                report.user_passed.append(user.holds(got, ref))
        if not judge:
            report.judge_note = "not asked for (--no-judge)"
        elif not installed("torch"):
            report.judge_note = 'skipped: PyTorch is not installed (pip install "gantool[train]")'
        else:
            report.judge = _judge(ra.spec, cases, out_a, out_b, name)
        return report
    finally:
        ra.close()
        if rb is not None:
            rb.close()


def failure(report: CompareReport) -> CompareFailed:
    """The one-line error of a failed comparison: the worst case and the bound that decided."""
    bad = [c for i, c in enumerate(report.comparisons)
           if not (report.user_passed[i] if report.user_bound else c.passed)]
    worst = max(bad or report.comparisons, key=lambda c: c.max_abs)
    bound = report.user_bound or f"{report.tolerance}: {report.bound}"
    judged = "" if not report.judge or report.judge.get("passed") is not False else "; the judge's agreement failed"
    return CompareFailed(f"compare FAILED: {len(bad)} of {len(report.comparisons)} cases outside the bound "
                         f"({bound}); worst abs max {worst.max_abs:.3e} at batch {worst.batch}{judged}.",
                         note="--json writes every figure; --atol/--rtol set your own bound.")


__all__ = ["GOLDEN_SCHEMA", "CompareFailed", "CompareReport", "Runner", "engines", "failure", "named_tolerance",
           "open_runner", "read_golden", "run_compare", "write_golden"]
