"""The one noise source of gantool.

Training grids, evaluation, export checks and the runtime all call `make_noise`, so the same
seed gives the same z, and hence the same images, everywhere. numpy documents that a
`Generator(PCG64(seed))` stream is stable within a numpy version; across numpy releases the
normal/uniform samplers may change, so cross-version equality is not promised.
"""

from __future__ import annotations

import numpy as np

NOISE_FUNCTION = "gantool.noise.make_noise/pcg64-v1"
DISTRIBUTIONS = ("normal", "uniform")


def make_noise(seed: int, n: int, latent_dim: int, distribution: str = "normal") -> np.ndarray:
    """Return z of shape (n, latent_dim), float32, drawn from PCG64(seed).

    normal: N(0, 1). uniform: U[-1, 1) (the cdcgan seed notebook's choice).
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown noise distribution {distribution!r}; allowed: {', '.join(DISTRIBUTIONS)}")
    if n < 1 or latent_dim < 1:
        raise ValueError(f"n and latent_dim must be >= 1, got n={n}, latent_dim={latent_dim}")
    rng = np.random.Generator(np.random.PCG64(seed))
    if distribution == "normal":
        return rng.standard_normal((n, latent_dim), dtype=np.float32)
    return (rng.random((n, latent_dim), dtype=np.float32) * 2.0 - 1.0).astype(np.float32)


def grid_labels(num_classes: int, per_class: int) -> np.ndarray:
    """Labels for a conditional grid: one row per class, `per_class` columns."""
    return np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
