"""Numeric parity of an exported generator against PyTorch, in Polygraphy's style.

Every (output, batch) pair is compared and reported with max/mean/median/p99 of the absolute and
relative error against a named tolerance; all mismatches are gathered before a typed error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gantool.errors import GantoolError
from gantool.noise import make_noise
from gantool.runtime.backends.base import Backend, infer_split
from gantool.runtime.backends.ort import OrtBackend
from gantool.spec import ModelSpec


@dataclass(frozen=True)
class Tolerance:
    max_abs: float
    mean_abs: float | None = None  # also bound the mean where single pixels may legitimately jump (int8)


# Outputs are in [-1, 1] (Tanh), so absolute bounds are the meaningful ones. Named per precision:
# fp32 is the exporter's own error; fp16 is judged on the emulation (every tensor rounded to fp16);
# int8 moves single pixels by up to ~0.75 here, so it is bounded by its mean and judged semantically.
TOLERANCES = {
    "fp32": Tolerance(max_abs=1e-4),
    "fp16": Tolerance(max_abs=3e-2),
    "int8": Tolerance(max_abs=1.0, mean_abs=3e-2),
}
PARITY_BATCHES = (1, 2, 7, 64, 1024)


@dataclass
class Comparison:
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
    tolerance: float
    passed: bool
    mean_tolerance: float | None = None

    def line(self) -> str:
        return (f"{self.output} batch={self.batch:<5} labels={self.labels:<12} | abs max={self.max_abs:.3e} "
                f"mean={self.mean_abs:.3e} median={self.median_abs:.3e} p99={self.p99_abs:.3e} | rel max="
                f"{self.max_rel:.3e} p99={self.p99_rel:.3e} | tol {self.tolerance:.0e}"
                f"{'' if self.mean_tolerance is None else f' mean tol {self.mean_tolerance:.0e}'} "
                f"{'PASSED' if self.passed else 'FAILED'}")


@dataclass
class ParityReport:
    runner: str
    precision: str
    reference: str = "torch"
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    def text(self) -> str:
        head = f"parity: {self.runner} vs {self.reference} ({self.precision})"
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
        worst = max(failed, key=lambda c: c.max_abs)
        per_runner = "; ".join(
            f"{r.runner}: {sum(not c.passed for c in r.comparisons)} of {len(r.comparisons)} failed (batches "
            f"{', '.join(sorted({str(c.batch) for c in r.comparisons if not c.passed}, key=int))})"
            for r in reports if not r.passed)
        super().__init__(f"parity FAILED: {per_runner}; worst max abs {worst.max_abs:.3e} (tolerance "
                         f"{worst.tolerance:.0e}, mean abs {worst.mean_abs:.3e}).",
                         note="run with --json to get every figure; a custom layer may not export faithfully.")


def compare(output: str, batch: int, labels: str, got: np.ndarray, ref: np.ndarray, tol: Tolerance) -> Comparison:
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64)).ravel()
    rel = diff / np.maximum(np.abs(ref.astype(np.float64)).ravel(), 1e-6)
    return Comparison(output=output, batch=batch, labels=labels, max_abs=float(diff.max()), mean_abs=float(diff.mean()),
                      median_abs=float(np.median(diff)), p99_abs=float(np.percentile(diff, 99)),
                      max_rel=float(rel.max()), mean_rel=float(rel.mean()), median_rel=float(np.median(rel)),
                      p99_rel=float(np.percentile(rel, 99)), tolerance=tol.max_abs, mean_tolerance=tol.mean_abs,
                      passed=bool(diff.max() <= tol.max_abs and np.isfinite(got).all()
                                  and (tol.mean_abs is None or diff.mean() <= tol.mean_abs)))


def parity_cases(spec: ModelSpec, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(label description, z, labels): the batch sizes above, distinct labels in one batch, and every
    label alone at batch 1 (cf. NVIDIA/TensorRT#3004, where only a batch's first sample got its label)."""
    cases = []
    for b in PARITY_BATCHES:
        z = make_noise(seed + b, b, spec.latent_dim, spec.noise)
        labels = (np.arange(b, dtype=np.int64) % spec.num_classes) if spec.conditional else None
        cases.append(("0..K-1 cycled" if spec.conditional else "-", z, labels))
    if spec.conditional:
        z = make_noise(seed, 1, spec.latent_dim, spec.noise)
        cases += [(f"={k}", z, np.array([k], np.int64)) for k in range(spec.num_classes)]
        b = 2 * spec.num_classes
        cases.append(("reversed", make_noise(seed + 1, b, spec.latent_dim, spec.noise),
                      (np.arange(b, dtype=np.int64)[::-1] % spec.num_classes).copy()))
    return cases


Reference = Callable[[np.ndarray, np.ndarray | None], np.ndarray]


def torch_reference(g: torch.nn.Module) -> Reference:
    g = g.eval()

    def run(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        with torch.no_grad():
            return g(torch.from_numpy(z), None if labels is None else torch.from_numpy(labels)).numpy()

    return run


def compare_backend(spec: ModelSpec, backend: Backend, reference: Reference, precision: str, seed: int = 0,
                    reference_name: str = "torch") -> ParityReport:
    """One runner against a reference on every parity case; the caller decides whether to raise."""
    tol = TOLERANCES[precision]
    report = ParityReport(runner=backend.name, precision=precision, reference=reference_name)
    with backend:
        for desc, z, labels in parity_cases(spec, seed):
            feeds = {"z": z} if labels is None else {"z": z, "labels": labels}
            report.comparisons.append(compare("images", len(z), desc, infer_split(backend, feeds), reference(z, labels), tol))
    return report


def check_onnx_parity(spec: ModelSpec, g: torch.nn.Module, onnx_path: str | Path, precision: str = "fp32",
                      seed: int = 0) -> ParityReport:
    """ONNX Runtime (CPU) against the PyTorch generator; raises ParityError listing every failure."""
    report = compare_backend(spec, OrtBackend(onnx_path, name="onnxruntime-cpu"), torch_reference(g), precision, seed)
    if not report.passed:
        raise ParityError([report])
    return report
