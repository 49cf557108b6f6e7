"""How a model is trained, kept apart from what it is (ModelSpec).

Loss, label smoothing, TTUR learning rates, EMA and spectral norm are recipe choices that a CLI
option can swap for any zoo model, not code forked per model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gantool.errors import CheckpointError, GantoolError

RECIPE_SCHEMA_VERSION = 1
LOSSES = ("bce", "lsgan", "hinge", "wgan-gp")
FAKE_LABELS = ("data", "uniform")


@dataclass(frozen=True)
class Recipe:
    loss: str = "bce"  # bce (with logits), lsgan, hinge, wgan-gp
    lr_g: float = 2e-4
    lr_d: float = 2e-4  # TTUR: a larger D rate is a common quality-per-step win
    beta1: float = 0.5  # the seeds' plain Adam (beta1=0.9) lets D win: HW5's D loss -> 0.0006
    beta2: float = 0.999
    batch_size: int = 64
    n_critic: int = 1  # D updates per G update, each on a fresh real batch
    gp_weight: float = 10.0  # WGAN-GP lambda, used only by loss=wgan-gp
    label_smoothing: float = 0.0  # one-sided: D's real target is 1 - smoothing (bce/lsgan)
    ema_decay: float = 0.999  # EMA of G's weights for sampling; 0 disables
    spectral_norm: bool = False  # spectral norm on every D conv/linear layer
    projection: bool = False  # projection discriminator (Miyato & Koyama 2018) instead of label concat
    fake_labels: str = "data"  # data: fakes take the real batch's labels; uniform: drawn at random (the seeds)
    mode_seeking: float = 0.0  # weight of MSGAN's mode-seeking term on G's loss (against one image per label)
    epochs: int = 20
    schema_version: int = RECIPE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        problems = []
        if self.loss not in LOSSES:
            problems.append(f"loss {self.loss!r} is not one of {', '.join(LOSSES)}")
        if not (self.lr_g > 0 and self.lr_d > 0):
            problems.append(f"learning rates must be > 0 (got lr_g={self.lr_g}, lr_d={self.lr_d})")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            problems.append(f"Adam betas must be in [0, 1) (got {self.beta1}, {self.beta2})")
        if self.batch_size < 2:
            problems.append(f"batch size must be >= 2 (BatchNorm needs it), got {self.batch_size}")
        if self.n_critic < 1:
            problems.append(f"n_critic must be >= 1, got {self.n_critic}")
        if not 0 <= self.label_smoothing < 0.5:
            problems.append(f"label smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"EMA decay must be in [0, 1), got {self.ema_decay}")
        if not self.mode_seeking >= 0:
            problems.append(f"the mode-seeking weight must be >= 0, got {self.mode_seeking}")
        if self.fake_labels not in FAKE_LABELS:
            problems.append(f"fake labels {self.fake_labels!r} is not one of {', '.join(FAKE_LABELS)}")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if problems:
            raise GantoolError("invalid training recipe: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Recipe":
        if d.get("schema_version") != RECIPE_SCHEMA_VERSION:
            raise CheckpointError(f"recipe has schema version {d.get('schema_version')!r}; "
                                  f"this gantool reads version {RECIPE_SCHEMA_VERSION}.")
        return cls(**d)

    def replace(self, **changes: Any) -> "Recipe":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
