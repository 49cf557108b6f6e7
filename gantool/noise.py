"""The one noise source of gantool.

Training grids, evaluation, export checks and the runtime all call `make_noise`, so the same
seed gives the same z, and hence the same images, everywhere. numpy documents that a
`Generator(PCG64(seed))` stream is stable within a numpy version; across numpy releases the
normal/uniform samplers may change, so cross-version equality is not promised.
A caller with no seed (the runtime's `sample()` without one) gets `fresh_noise`: the same
distributions from a per-thread generator, without the cost of seeding one per call.
"""

from __future__ import annotations

import os
import threading

import numpy as np

NOISE_FUNCTION = "gantool.noise.make_noise/pcg64-v1"
DISTRIBUTIONS = ("normal", "uniform")
# The seeds every command takes: numpy's PCG64 takes any int >= 0 and torch.manual_seed any int < 2**64;
# training derives seed + 1 and seed * 1_000_003 + epoch from it, so 32 bits keep every derived seed in both.
MAX_SEED = 2**32 - 1


def _check(n: int, latent_dim: int, distribution: str) -> None:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown noise distribution {distribution!r}; allowed: {', '.join(DISTRIBUTIONS)}")
    if n < 1 or latent_dim < 1:
        raise ValueError(f"n and latent_dim must be >= 1, got n={n}, latent_dim={latent_dim}")


def _draw(rng: np.random.Generator, n: int, latent_dim: int, distribution: str) -> np.ndarray:
    if distribution == "normal":
        return rng.standard_normal((n, latent_dim), dtype=np.float32)
    u = rng.random((n, latent_dim), dtype=np.float32)
    u *= np.float32(2.0)  # in place, in float32: the values of (u * 2.0 - 1.0), without two copies
    u -= np.float32(1.0)
    return u


def make_noise(seed: int, n: int, latent_dim: int, distribution: str = "normal") -> np.ndarray:
    """Return z of shape (n, latent_dim), float32, drawn from PCG64(seed).

    normal: N(0, 1). uniform: U[-1, 1) (the cdcgan seed notebook's choice).
    """
    _check(n, latent_dim, distribution)
    return _draw(np.random.Generator(np.random.PCG64(seed)), n, latent_dim, distribution)


_fresh = threading.local()  # each thread's own generator: numpy's Generator is not safe to share


def _reset_after_fork() -> None:
    global _fresh
    _fresh = threading.local()  # a forked child must not replay its parent's stream


os.register_at_fork(after_in_child=_reset_after_fork)


def fresh_noise(n: int, latent_dim: int, distribution: str = "normal") -> np.ndarray:
    """z for a caller that gave no seed, from this thread's generator, seeded once by the OS.

    Building a PCG64 from a seed costs ~5 us (numpy's SeedSequence), as much as the runtime's checks
    and uint8 conversion of a 28x28 sample together; a call without a seed cannot be replayed anyway,
    so it need not pay for one. Same distributions as make_noise.
    """
    _check(n, latent_dim, distribution)
    rng = getattr(_fresh, "rng", None)
    if rng is None:
        rng = _fresh.rng = np.random.default_rng()  # OS entropy
    return _draw(rng, n, latent_dim, distribution)
