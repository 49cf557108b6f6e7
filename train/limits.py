"""The bounds that training and evaluation inputs are checked against, before any work.

Torch-free, so that the CLI declares its options with the same numbers the library enforces.
"""

from __future__ import annotations

from typing import Any

from gantool.errors import GantoolError
from gantool.noise import MAX_SEED


# `gantool eval --n`: at least enough for a covariance, at most what fits beside the real data in memory
# (the Parzen window holds a 500 x n float64 block; 100k images at 64x64 are 1.6 GB in float32).
MIN_EVAL_SAMPLES, MAX_EVAL_SAMPLES = 100, 100_000
README_EVAL_SAMPLES = 10_000  # what the README's quality table and the model cards measure with (eval's default)

# An MLP's first and last layers hold (side^2 x 1024) weights: 256 gives ~67M per layer, the most that
# trains in a few GB with Adam; larger sides are refused before anything is allocated.
MAX_MLP_IMAGE_SIZE = 256

# `gantool judge train --arch`: the judge architectures (train/judge.py builds one body per name).
JUDGE_ARCHS = ("cnn", "resnet")
JUDGE_EPOCHS = {"cnn": 6, "resnet": 8}  # what each shipped judge trained for (the ResNet learns more slowly)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_seed(seed: Any, option: str = "--seed") -> int:
    """The seed, or one clear line before any work when numpy or torch would refuse it later."""
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise GantoolError(f"{option} {seed!r} is out of range; allowed: an integer in 0..{MAX_SEED}.")
    return seed


def check_eval_size(n: Any, option: str = "--n") -> int:
    """`--n`, refused before anything is allocated when it is outside what eval can hold."""
    if not _is_int(n) or not MIN_EVAL_SAMPLES <= n <= MAX_EVAL_SAMPLES:
        raise GantoolError(f"{option} {n!r} generated images is out of range; allowed: {MIN_EVAL_SAMPLES}.."
                           f"{MAX_EVAL_SAMPLES}.")
    return n
