"""Numeric parity of an exported generator against PyTorch, in Polygraphy's style.

Every (output, batch) pair is compared and reported with max/mean/median/p99 of the absolute and
relative error against a named tolerance; all mismatches are gathered before a typed error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from gantool.contract import (
    CLASS_WEIGHTS,
    IMAGES,
    LABELS,
    TOLERANCES,
    GeneratorContract,
    Tolerance,
    class_path,
    cycle_labels,
)
from gantool.errors import GantoolError
from gantool.noise import make_noise
from gantool.runtime.backends.base import Backend, infer_split
from gantool.spec import ModelSpec

if TYPE_CHECKING:  # torch only for torch_reference: compare() and the cases run without it (gantool compare)
    import torch


PARITY_BATCHES = (1, 2, 7, 64, 1024)


@dataclass
class Comparison:
    """One (output, batch, labels) case: statistics of |got - reference| over every pixel. The bound is
    on absolute error in output units (the range is 2.0 for Tanh); relative error is shown, not bounded."""

    output: str
    batch: int
    labels: str
    max_abs: float
    mean_abs: float
    median_abs: float
    p99_abs: float
    max_rel: float
    mean_rel: float
    median_rel: float
    p99_rel: float
    bound: str  # Tolerance.text(): what the tolerance bounds
    passed: bool

    def line(self) -> str:
        return (f"{self.output} batch={self.batch:<5} labels={self.labels:<12} | abs max={self.max_abs:.2e} "
                f"p99={self.p99_abs:.2e} mean={self.mean_abs:.2e} | rel max={self.max_rel:.2e} (not bounded) | "
                f"bound: {self.bound} {'PASSED' if self.passed else 'FAILED'}")


@dataclass
class ParityReport:
    runner: str
    precision: str
    reference: str = "torch fp32"
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    def text(self) -> str:
        head = f"parity: {self.runner} ({self.precision}) against {self.reference}"
        return "\n".join([head, *("  " + c.line() for c in self.comparisons),
                          f"  {'PASSED' if self.passed else 'FAILED'}"])

    def to_dict(self) -> dict[str, Any]:
        return {"runner": self.runner, "reference": self.reference, "precision": self.precision, "passed": self.passed,
                "comparisons": [asdict(c) for c in self.comparisons]}


class ParityError(GantoolError):
    """Every failing comparison of every runner, gathered before raising."""

    def __init__(self, reports: list[ParityReport]) -> None:
        self.reports = reports
        failed = [c for r in reports for c in r.comparisons if not c.passed]
        worst = max(failed, key=lambda c: c.p99_abs)
        per_runner = "; ".join(
            f"{r.runner}: {sum(not c.passed for c in r.comparisons)} of {len(r.comparisons)} failed (batches "
            f"{', '.join(sorted({str(c.batch) for c in r.comparisons if not c.passed}, key=int))})"
            for r in reports if not r.passed)
        super().__init__(f"parity FAILED: {per_runner}; worst case abs max {worst.max_abs:.3e}, p99 "
                         f"{worst.p99_abs:.3e}, mean {worst.mean_abs:.3e} (bound: {worst.bound}).",
                         note="run with --json to get every figure; a custom layer may not export faithfully.")


def compare(output: str, batch: int, labels: str, got: np.ndarray, ref: np.ndarray, tol: Tolerance) -> Comparison:
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64)).ravel()
    rel = diff / np.maximum(np.abs(ref.astype(np.float64)).ravel(), 1e-6)
    max_abs, p99_abs, mean_abs = float(diff.max()), float(np.percentile(diff, 99)), float(diff.mean())
    return Comparison(output=output, batch=batch, labels=labels, max_abs=max_abs, mean_abs=mean_abs,
                      median_abs=float(np.median(diff)), p99_abs=p99_abs, max_rel=float(rel.max()),
                      mean_rel=float(rel.mean()), median_rel=float(np.median(rel)),
                      p99_rel=float(np.percentile(rel, 99)), bound=tol.text(),
                      passed=bool(np.isfinite(got).all() and tol.holds(max_abs, p99_abs, mean_abs)))


def parity_cases(spec: ModelSpec, seed: int = 0, condition: str = LABELS
                 ) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(label description, z, labels): the batch sizes above, distinct labels in one batch, and every
    label alone at batch 1 (cf. NVIDIA/TensorRT#3004, where only a batch's first sample got its label).
    A mix graph gets the same integer cases as one-hot rows (contract.feeds), then mixtures: every pair
    of classes half and half, random mixtures in one batch, and a path from one class to another."""
    cases = []
    for b in PARITY_BATCHES:
        z = make_noise(seed + b, b, spec.latent_dim, spec.noise)
        labels = cycle_labels(b, spec.num_classes) if spec.conditional else None
        cases.append(("0..K-1 cycled" if spec.conditional else "-", z, labels))
    if spec.conditional:
        z = make_noise(seed, 1, spec.latent_dim, spec.noise)
        cases += [(f"={k}", z, np.array([k], np.int64)) for k in range(spec.num_classes)]
        b = 2 * spec.num_classes
        cases.append(("reversed", make_noise(seed + 1, b, spec.latent_dim, spec.noise),
                      cycle_labels(b, spec.num_classes)[::-1].copy()))
    if spec.conditional and condition == CLASS_WEIGHTS:
        k = spec.num_classes
        pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
        halves = np.zeros((len(pairs), k), np.float32)
        for i, (a, b) in enumerate(pairs):
            halves[i, [a, b]] = 0.5
        mixes = np.random.default_rng(seed).dirichlet(np.ones(k), 64).astype(np.float32)
        path = class_path(min(3, k - 2), min(8, k - 1), 11, k)
        for desc, w in (("pairs 50/50", halves), ("mixtures", mixes), ("path a->b", path)):
            cases.append((desc, make_noise(seed + len(w), len(w), spec.latent_dim, spec.noise), w))
    return cases


Reference = Callable[[np.ndarray, np.ndarray | None], np.ndarray]


def torch_reference(g: torch.nn.Module) -> Reference:
    import torch

    g = g.eval()

    def run(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        with torch.no_grad():
            return g(torch.from_numpy(z), None if labels is None else torch.from_numpy(labels)).numpy()

    return run


def compare_backend(spec: ModelSpec, backend: Backend, reference: Reference, precision: str, seed: int = 0,
                    reference_name: str = "torch fp32", condition: str = LABELS,
                    tolerance: Tolerance | None = None) -> ParityReport:
    """One runner against a reference on every parity case; the caller decides whether to raise.
    condition: what the runner's graph takes (a mix graph also gets the mixture cases); tolerance:
    another named bound than the precision's (contract.FORMAT_TOLERANCES)."""
    tol = tolerance or TOLERANCES[precision]
    contract = GeneratorContract(spec, condition)
    report = ParityReport(runner=backend.name, precision=precision, reference=reference_name)
    with backend:
        for desc, z, labels in parity_cases(spec, seed, condition):
            report.comparisons.append(compare(IMAGES, len(z), desc, infer_split(backend, contract.feeds(z, labels)),
                                              reference(z, labels), tol))
    return report
