"""How a model is trained, kept apart from what it is (ModelSpec).

Loss, label smoothing, TTUR learning rates, EMA and spectral norm are recipe choices that a CLI
option can swap for any zoo model, not code forked per model. Each field's metadata carries its
help text and allowed values, from which `gantool train` makes its options (--batch-size for
batch_size, ...), so a new recipe field is a new option with no second list to keep in step.
Torch-free: the CLI imports it to build its options.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gantool.errors import CheckpointError, GantoolError

RECIPE_SCHEMA_VERSION = 1
LOSSES = ("bce", "lsgan", "hinge", "wgan-gp")
FAKE_LABELS = ("data", "uniform")
SMOOTHED_LOSSES = ("bce", "lsgan")  # the losses that have a real target to smooth


def _opt(default: Any, help: str, *, choices: tuple[str, ...] | None = None,
         range: tuple[float | None, float | None, bool, bool] | None = None, cli: bool = True) -> Any:
    """A recipe field with its CLI description: help text, and choices or a range
    (low, high, low_open, high_open; None: unbounded). cli=False keeps it off the command line."""
    meta: dict[str, Any] = {"help": help, "cli": cli}
    if choices is not None:
        meta["choices"] = choices
    if range is not None:
        meta["range"] = range
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Recipe:
    loss: str = _opt("bce", "GAN loss: bce (non-saturating, with logits), lsgan, hinge, or wgan-gp (Wasserstein "
                            "with gradient penalty)", choices=LOSSES)
    lr_g: float = _opt(2e-4, "Adam learning rate of G", range=(0, None, True, False))
    lr_d: float = _opt(2e-4, "Adam learning rate of D (TTUR: a larger D rate is a common quality-per-step win)",
                       range=(0, None, True, False))
    # the notebooks' plain Adam (beta1=0.9) lets D win: one DCGAN notebook's D loss ends at 0.0006
    beta1: float = _opt(0.5, "Adam beta1 of both optimizers", range=(0, 1, False, True))
    beta2: float = _opt(0.999, "Adam beta2 of both optimizers", range=(0, 1, False, True))
    batch_size: int = _opt(64, "real images per D step (>= 2: BatchNorm needs two)", range=(2, None, False, False))
    n_critic: int = _opt(1, "D updates per G update, each on a fresh real batch", range=(1, None, False, False))
    gp_weight: float = _opt(10.0, "weight (lambda) of WGAN-GP's gradient penalty; --loss wgan-gp only",
                            range=(0, None, False, False))
    label_smoothing: float = _opt(0.0, "one-sided label smoothing: D's real target is 1 - this; --loss bce or "
                                       "lsgan only", range=(0, 0.5, False, True))
    ema_decay: float = _opt(0.999, "decay of the EMA of G's weights that samples are drawn from; 0 disables it",
                            range=(0, 1, False, True))
    spectral_norm: bool = _opt(False, "spectral norm on every D conv/linear layer")
    projection: bool = _opt(False, "projection discriminator (Miyato & Koyama 2018) instead of label concat; "
                                   "cgan and cwgan only")
    fake_labels: str = _opt("data", "labels of the fakes in D's step: data (the real batch's) or uniform (drawn at "
                                    "random, as in the seeds); conditional models only", choices=FAKE_LABELS)
    mode_seeking: float = _opt(0.0, "weight of MSGAN's mode-seeking term on G's loss (1.0 is the paper's), against "
                                    "one image per label; 0 disables it", range=(0, None, False, False))
    feature_matching: float = _opt(0.0, "weight W of feature matching (Salimans et al. 2016) on G's loss: W * "
                                        "||mean f(x) - mean f(G(z))||^2, f the features D's last layer sees; 0 "
                                        "disables it", range=(0, None, False, False))
    feature_matching_only: bool = _opt(False, "G's loss is feature matching alone, with no adversarial term, as in "
                                              "the paper; needs --feature-matching W > 0")
    epochs: int = _opt(20, "passes over the training data (the only recipe option --resume may change)",
                       range=(1, None, False, False))
    schema_version: int = _opt(RECIPE_SCHEMA_VERSION, "the recipe's schema version", cli=False)

    def __post_init__(self) -> None:
        problems = _type_problems(self)
        if problems:  # the range checks below would fail on a value of the wrong type
            raise GantoolError("invalid training recipe: " + "; ".join(problems) + ".")
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
        if not self.gp_weight >= 0:
            problems.append(f"the gradient penalty weight must be >= 0, got {self.gp_weight}")
        if not 0 <= self.label_smoothing < 0.5:
            problems.append(f"label smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"EMA decay must be in [0, 1), got {self.ema_decay}")
        if not self.mode_seeking >= 0:
            problems.append(f"the mode-seeking weight must be >= 0, got {self.mode_seeking}")
        if not 0 <= self.feature_matching < float("inf"):
            problems.append(f"the feature-matching weight must be a finite number >= 0, got {self.feature_matching}")
        elif self.feature_matching_only and self.feature_matching == 0:
            problems.append("feature matching only (--feature-matching-only) needs a feature-matching weight "
                            "(--feature-matching W with W > 0); with W = 0 G would have no loss to learn from")
        if self.fake_labels not in FAKE_LABELS:
            problems.append(f"fake labels {self.fake_labels!r} is not one of {', '.join(FAKE_LABELS)}")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if problems:
            raise GantoolError("invalid training recipe: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> Recipe:
        """A recipe from a checkpoint (untrusted): schema, field names and types checked."""
        if not isinstance(d, dict):
            raise CheckpointError(f"the checkpoint's recipe must be a dict, got {type(d).__name__}.")
        if d.get("schema_version") != RECIPE_SCHEMA_VERSION:
            raise CheckpointError(f"recipe has schema version {d.get('schema_version')!r}; "
                                  f"this gantool reads version {RECIPE_SCHEMA_VERSION}.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in d if k not in names)
        if unknown:
            raise CheckpointError(f"recipe has unknown fields {unknown}; allowed: {sorted(names)}.")
        try:
            return cls(**d)
        except GantoolError as e:
            raise CheckpointError(f"the checkpoint's {e}") from None

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)

    def ineffective(self, given: set[str] | dict[str, Any], conditional: bool) -> list[str]:
        """Which of the explicitly given fields would change nothing in this recipe, and why (by their
        `gantool train` option): an option that silently does nothing is refused rather than ignored."""
        out = []
        if "gp_weight" in given and self.loss != "wgan-gp":
            out.append(f"--gp-weight applies to --loss wgan-gp only, not {self.loss}")
        if "label_smoothing" in given and self.label_smoothing > 0 and self.loss not in SMOOTHED_LOSSES:
            out.append(f"--label-smoothing applies to --loss {' or '.join(SMOOTHED_LOSSES)} only, not {self.loss}")
        if "fake_labels" in given and self.fake_labels != "data" and not conditional:
            out.append(f"--fake-labels {self.fake_labels} applies to conditional models only")
        return out


_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def _type_problems(r: Recipe) -> list[str]:
    """Fields whose value is not of the field's type (bool is not an int here, but an int is a float)."""
    out = []
    for f in dataclasses.fields(r):
        v, kinds = getattr(r, f.name), _TYPES[str(f.type)]
        if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
            out.append(f"{f.name} must be of type {f.type}, got {v!r}")
    return out

