"""Does reduced precision change what the images show? The judge's verdict on fp32 images against
the same (z, label) through a reduced-precision runner, and the FD-judge between the two sets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from gantool.contract import GeneratorContract
from gantool.noise import make_noise
from gantool.runtime.backends.base import Backend
from gantool.spec import ModelSpec

# Minimum share of samples whose judged class is unchanged, per precision (named, like TOLERANCES).
AGREEMENT_BARS = {"fp16": 0.99, "int8": 0.98}
SEMANTIC_SAMPLES = 5000


@dataclass
class JudgeAgreement:
    runner: str
    precision: str
    n: int
    agreement: float  # share of samples the judge puts in the same class for both
    bar: float
    fd_between: float  # FD-judge between the fp32 and the reduced-precision image sets (same z)
    label_accuracy_fp32: float | None  # conditional models: judged class == requested label
    label_accuracy_low: float | None

    @property
    def passed(self) -> bool:
        return self.agreement >= self.bar

    def text(self) -> str:
        acc = ("" if self.label_accuracy_fp32 is None else
               f"; label accuracy {self.label_accuracy_fp32:.2%} -> {self.label_accuracy_low:.2%}")
        return (f"judge agreement: {self.runner} against torch fp32 on {self.n} samples: {self.agreement:.2%} "
                f"(bar {self.bar:.0%}), FD-judge between the sets {self.fd_between:.3g}{acc} "
                f"{'PASSED' if self.passed else 'FAILED'}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


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
                          bar=AGREEMENT_BARS[precision], fd_between=frechet_distance(f_ref, f_low),
                          label_accuracy_fp32=acc[0], label_accuracy_low=acc[1])
