"""The one noise source of gantool.

Training grids, evaluation, export checks and the runtime all call `make_noise`, so the same
seed gives the same z, and hence the same images, everywhere. numpy documents that a
`Generator(PCG64(seed))` stream is stable within a numpy version; across numpy releases the
normal/uniform samplers may change, so cross-version equality is not promised.
A caller with no seed (the runtime's `sample()` without one) gets `fresh_noise`: the same
distributions from a per-thread generator, without the cost of seeding one per call.

Truncation (`truncation=t`, 0 < t <= 1) keeps the central share t of each coordinate's distribution:
uniform z is scaled by t (U[-t, t)); Gaussian z outside the central t of N(0, 1) (|z| > Phi^-1((1+t)/2),
1.0 sd at t = 0.683) is resampled, not clipped (clipping piles mass on the bound). Resampling is per
row, in row order, from a second stream PCG64([seed, 1]), so row i depends on rows <= i alone and a
seed's first n rows stay the first n of a larger request; t = 1 draws nothing more and is bit-identical.
"""

from __future__ import annotations

import math
import os
import threading
from statistics import NormalDist

import numpy as np

NOISE_FUNCTION = "gantool.noise.make_noise/pcg64-v1"
DISTRIBUTIONS = ("normal", "uniform")
# The seeds every command takes: numpy's PCG64 takes any int >= 0 and torch.manual_seed any int < 2**64;
# training derives seed + 1 and seed * 1_000_003 + epoch from it, so 32 bits keep every derived seed in both.
MAX_SEED = 2**32 - 1
TRUNCATION_STREAM = 1  # the resampling stream of a seeded draw is PCG64([seed, TRUNCATION_STREAM])


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


def check_truncation(t: float) -> float:
    """t as a float, or ValueError saying what is allowed (callers turn it into their own error)."""
    if type(t) is float and t == 1.0:  # the default, in one comparison: every sample() call checks it
        return t
    if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not 0 < t <= 1:
        raise ValueError(f"truncation must be a number in (0, 1], got {t!r} (1: no truncation)")
    return float(t)


def gaussian_bound(t: float) -> float:
    """The |z| beyond which a truncated Gaussian coordinate is redrawn: the central share t of N(0, 1)."""
    return math.inf if t >= 1 else NormalDist().inv_cdf((1 + t) / 2)


def truncate(z: np.ndarray, t: float, distribution: str, resample: np.random.Generator | None = None) -> np.ndarray:
    """z truncated in place (see the module docstring); `resample` is the stream Gaussian rows are
    redrawn from, in row order (None: a fresh one, for unseeded callers)."""
    t = check_truncation(t)
    if t == 1:
        return z
    if distribution == "uniform":
        z *= np.float32(t)
        return z
    bound = np.float32(gaussian_bound(t))
    outside = np.abs(z) > bound
    rows = np.flatnonzero(outside.any(axis=1))
    if rows.size == 0:
        return z
    rng = resample if resample is not None else np.random.default_rng()
    for i in rows:  # in order: row i consumes the stream after rows < i only
        where = np.flatnonzero(outside[i])
        while where.size:  # blocks sized so one draw usually suffices: the stream use is the row's alone
            block = rng.standard_normal(int(where.size / t * 1.5) + 8, dtype=np.float32)
            keep = block[np.abs(block) <= bound][:where.size]
            z[i, where[:keep.size]] = keep
            where = where[keep.size:]
    return z


def make_noise(seed: int, n: int, latent_dim: int, distribution: str = "normal",
               truncation: float = 1.0) -> np.ndarray:
    """Return z of shape (n, latent_dim), float32, drawn from PCG64(seed).

    normal: N(0, 1). uniform: U[-1, 1) (the cdcgan seed notebook's choice). truncation < 1: see the
    module docstring.
    """
    _check(n, latent_dim, distribution)
    truncation = check_truncation(truncation)
    z = _draw(np.random.Generator(np.random.PCG64(seed)), n, latent_dim, distribution)
    if truncation == 1:
        return z
    resample = np.random.Generator(np.random.PCG64([seed, TRUNCATION_STREAM]))
    return truncate(z, truncation, distribution, resample)


_fresh = threading.local()  # each thread's own generator: numpy's Generator is not safe to share
# Seedless requests of a few rows are cut from a per-thread pool of this many rows: a sampler call costs
# ~3 us right after an engine call has evicted the caches, 6% of an MLP model's batch-1 call.
FRESH_POOL_ROWS = 256
FRESH_POOL_MAX_LATENT = 1024  # wider z draws per request: a pool stays under 1 MiB per thread


class _Pool:
    """Rows drawn ahead for one (latent_dim, distribution); `used` of them handed out."""

    def __init__(self, key: tuple[int, str], rows: np.ndarray) -> None:
        self.key, self.rows, self.used = key, rows, 0


def _reset_after_fork() -> None:
    global _fresh
    _fresh = threading.local()  # a forked child must not replay its parent's stream


os.register_at_fork(after_in_child=_reset_after_fork)


def fresh_noise(n: int, latent_dim: int, distribution: str = "normal", truncation: float = 1.0) -> np.ndarray:
    """z for a caller that gave no seed, from this thread's generator, seeded once by the OS.

    Building a PCG64 from a seed costs ~5 us (numpy's SeedSequence), as much as the runtime's checks
    and uint8 conversion of a 28x28 sample together; a call without a seed cannot be replayed anyway,
    so it need not pay for one. Same distributions as make_noise.
    """
    _check(n, latent_dim, distribution)
    truncation = check_truncation(truncation)
    state = _fresh
    rng = getattr(state, "rng", None)
    if rng is None:
        rng = state.rng = np.random.default_rng()  # OS entropy
    if truncation != 1 or n > FRESH_POOL_ROWS // 4 or latent_dim > FRESH_POOL_MAX_LATENT:
        z = _draw(rng, n, latent_dim, distribution)
        return z if truncation == 1 else truncate(z, truncation, distribution, rng)
    # a few rows: cut from this thread's pool, drawn FRESH_POOL_ROWS at a time (rows are independent
    # draws either way; one sampler call per pool instead of one per request)
    pool = getattr(state, "pool", None)
    if pool is None or pool.key != (latent_dim, distribution) or pool.used + n > FRESH_POOL_ROWS:
        pool = state.pool = _Pool((latent_dim, distribution), _draw(rng, FRESH_POOL_ROWS, latent_dim, distribution))
    z = pool.rows[pool.used:pool.used + n]
    pool.used += n
    return z


def latent_path(a: np.ndarray, b: np.ndarray, steps: int, distribution: str = "normal") -> np.ndarray:
    """(steps, latent_dim) z from a to b, both ends included. Gaussian z moves on the great circle
    (slerp): a straight line's middle has a smaller norm than any likely draw, and draws greyer digits.
    Uniform z moves on the straight line, which stays inside the cube."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (both ends), got {steps}")
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    s = np.linspace(0.0, 1.0, steps)[:, None]
    if distribution == "normal":
        cos = np.dot(a64, b64) / max(np.linalg.norm(a64) * np.linalg.norm(b64), 1e-12)
        omega = math.acos(min(1.0, max(-1.0, cos)))
        if math.sin(omega) > 1e-6:
            path = (np.sin((1 - s) * omega) * a64 + np.sin(s * omega) * b64) / math.sin(omega)
            return path.astype(np.float32)
    return ((1 - s) * a64 + s * b64).astype(np.float32)
