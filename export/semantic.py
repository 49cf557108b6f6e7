"""Does reduced precision change what the images show? The judge's verdict on fp32 images against
the same (z, label) through a reduced-precision runner, and the FD-judge between the two sets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from gantool.contract import (
    SEMANTIC_BARS,
    SEMANTIC_SAMPLES,
    GeneratorContract,
    SemanticBar,
    Validation,
)
from gantool.cpu import cpu_info
from gantool.noise import make_noise
from gantool.runtime.backends.base import Backend
from gantool.spec import ModelSpec


@dataclass
class JudgeAgreement:
    runner: str
    precision: str
    n: int
    agreement: float  # share of samples the judge puts in the same class for both
    bar: SemanticBar
    fd_between: float  # FD-judge between the fp32 and the reduced-precision image sets (same z)
    label_accuracy_fp32: float | None  # conditional models: judged class == requested label
    label_accuracy_low: float | None
    engine: str = "ort"  # the runtime engine the check ran on (its registry name)

    @property
    def label_drift(self) -> float | None:
        if self.label_accuracy_fp32 is None or self.label_accuracy_low is None:
            return None
        return abs(self.label_accuracy_low - self.label_accuracy_fp32)

    @property
    def passed(self) -> bool:
        drift = self.label_drift
        return (self.agreement >= self.bar.agreement and self.fd_between <= self.bar.fd_between
                and (drift is None or drift <= self.bar.label_drift + 1e-12))

    def text(self) -> str:
        acc = ("" if self.label_accuracy_fp32 is None else
               f"; label accuracy {self.label_accuracy_fp32:.2%} -> {self.label_accuracy_low:.2%}")
        return (f"judge agreement: {self.runner} against torch fp32 on {self.n} samples: {self.agreement:.2%}, "
                f"FD-judge between the sets {self.fd_between:.3g}{acc} (bars: {self.bar.text()}) "
                f"{'PASSED' if self.passed else 'FAILED'}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bar"] = asdict(self.bar)
        return {**d, "label_drift": self.label_drift, "passed": self.passed}

    def validation(self) -> Validation:
        """The record a file's metadata keeps of this check (contract.VALIDATION_KEY)."""
        checks = {"n": float(self.n), "agreement": self.agreement, "fd_between": self.fd_between}
        if self.label_drift is not None:
            checks["label_drift"] = self.label_drift
        return Validation(self.precision, self.engine, self.passed, cpu_info().model, checks)


def judge_agreement(spec: ModelSpec, g: torch.nn.Module, backend: Backend, precision: str,
                    n: int = SEMANTIC_SAMPLES, seed: int = 1) -> JudgeAgreement:
    from gantool.train.evaluate import frechet_distance, judge_outputs
    from gantool.train.judge import load_judge

    judge, _ = load_judge()
    contract = GeneratorContract(spec)
    z = make_noise(seed, n, spec.latent_dim, spec.noise)
    labels = contract.default_labels(n)
    ref, low = [], []
    with torch.no_grad(), backend:
        for i in range(0, n, 500):
            zi, yi = z[i:i + 500], None if labels is None else labels[i:i + 500]
            ref.append(g.eval()(torch.from_numpy(zi), None if yi is None else torch.from_numpy(yi)).float())
            low.append(torch.from_numpy(backend.infer(contract.feeds(zi, yi))).float())
    f_ref, p_ref = judge_outputs(judge, torch.cat(ref).clamp(-1, 1))
    f_low, p_low = judge_outputs(judge, torch.cat(low).clamp(-1, 1))
    acc = (None, None) if labels is None else (float((p_ref == labels).mean()), float((p_low == labels).mean()))
    return JudgeAgreement(runner=backend.name, precision=precision, n=n, agreement=float((p_ref == p_low).mean()),
                          bar=SEMANTIC_BARS[precision], fd_between=frechet_distance(f_ref, f_low),
                          label_accuracy_fp32=acc[0], label_accuracy_low=acc[1])
