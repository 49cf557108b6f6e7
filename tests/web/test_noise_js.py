"""export/web/noise.js against gantool.noise.make_noise, bit for bit: numpy's SeedSequence and PCG64
stream, the float32 uniform and ziggurat normal (its tail and wedge branches included), truncation's
second stream, the float32 truncation bound, and the error messages. Seeds are drawn at test time;
a failure names its seed. One node process answers every case (tests/web/noise_driver.mjs)."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest

from gantool.noise import MAX_SEED, NOISE_FUNCTION, make_noise

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs node (Node.js) on PATH to run export/web/noise.js")

DRIVER = Path(__file__).with_name("noise_driver.mjs")
SEEDS = [0, MAX_SEED, *(secrets.randbelow(2**32) for _ in range(4))]
SHAPES = [(1, 100), (7, 128), (64, 100), (3, 1)]
TRUNCATIONS = [1.0, 0.9, 0.5, 0.3]
LONG = (5000, 100)  # 500,000 normals: ~130 tail draws (|z| > r) and thousands of wedge tests
ZIGGURAT_R = np.float32(3.6541528853610087963519472518)


# seeds past 32 bits: numpy splits them into 32-bit words (the server hands out 63-bit seeds); up to
# 2**53 - 1 as JS Numbers, beyond as BigInts ("big:" in the request)
BIG_SEEDS = [2**32, 2**40 + secrets.randbelow(2**40), 2**53 - 1]
BIGINT_SEEDS = [2**53, 2**63 - 1, 2**64 + secrets.randbelow(2**64)]


def _js_seed(seed: int) -> int | str:
    return f"big:{seed}" if seed > 2**53 - 1 else seed


def _cases() -> list[list]:
    cases = [[s, n, d, dist, t] for s in SEEDS for n, d in SHAPES for dist in ("normal", "uniform")
             for t in TRUNCATIONS]
    cases += [[s, 7, 128, dist, t] for s in BIG_SEEDS + BIGINT_SEEDS for dist in ("normal", "uniform")
              for t in (1.0, 0.5)]
    cases += [[s, 7, 128, "normal", 0.05] for s in SEEDS[:3]]  # most of z redrawn, several blocks a row
    cases += [[s, 2, 10] for s in SEEDS[:2]]  # the defaults: normal, no truncation
    return cases


BOUND_TS = [1e-12, 1e-6, 1e-3, 0.3, 0.5, 0.683, 0.85, 0.8500000000000001, 0.9, 0.99, 0.999999,
            float(1 - 2 * np.exp(-25)), 1 - 1e-11, 1 - 1e-15,  # 0.85 and 1 - 2e^-25: AS241's branch edges
            *(t for t in np.random.default_rng(secrets.randbelow(2**32)).uniform(0, 1, 3000).tolist() if t > 0)]


PYTHON_ERRORS: list[tuple[list[Any], str]] = [  # gantool.noise's ValueErrors, which makeNoise words alike
    ([1, 2, 10, "gauss", 1.0], "unknown noise distribution 'gauss'; allowed: normal, uniform"),
    ([1, 0, 10, "normal", 1.0], "n and latent_dim must be >= 1, got n=0, latent_dim=10"),
    ([1, 2, -3, "uniform", 1.0], "n and latent_dim must be >= 1, got n=2, latent_dim=-3"),
    ([1, 2, 10, "normal", 0], "truncation must be a number in (0, 1], got 0 (1: no truncation)"),
    ([1, 2, 10, "uniform", 1.5], "truncation must be a number in (0, 1], got 1.5 (1: no truncation)"),
    ([1, 2, 10, "normal", -0.5], "truncation must be a number in (0, 1], got -0.5 (1: no truncation)"),
    ([1, 2, 10, "normal", "0.5"], "truncation must be a number in (0, 1], got '0.5' (1: no truncation)"),
    ([1, 2, 10, "normal", True], "truncation must be a number in (0, 1], got True (1: no truncation)"),
    ([1, 2, 10, "normal", None], "truncation must be a number in (0, 1], got None (1: no truncation)"),
]
_BAD_SEED = "seed must be a non-negative integer, got {}."  # Python's Generator's words
# makeNoise's own checks, where numpy would take the input or fail less clearly
JS_ERRORS: list[tuple[list[Any], str]] = [
    ([-1, 2, 10], _BAD_SEED.format(-1)),
    ([1.5, 2, 10], _BAD_SEED.format(1.5)),
    (["3", 2, 10], _BAD_SEED.format("'3'")),
    ([2**53, 2, 10], "seed 9007199254740992 is above 2**53 - 1, where Numbers stop being exact integers; pass it as "
                     "a BigInt."),
    ([1, 1.5, 10], "n and latent_dim must be integers, got n=1.5, latent_dim=10"),
    ([1, 2, "10"], "n and latent_dim must be integers, got n=2, latent_dim='10'"),
]


def _node(request: dict) -> dict:
    assert NODE is not None
    done = subprocess.run([NODE, str(DRIVER)], input=json.dumps(request), capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _f32(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), "<f4")


@pytest.fixture(scope="module")
def js() -> dict:
    long_seed = secrets.randbelow(2**32)
    answer = _node({
        "cases": [*([_js_seed(c[0]), *c[1:]] for c in _cases()), [long_seed, *LONG, "normal", 1.0],
                  *(args for args, _ in PYTHON_ERRORS + JS_ERRORS)],
        "raw": [[e, 1000] for s in SEEDS + BIG_SEEDS + BIGINT_SEEDS for e in (_js_seed(s), [_js_seed(s), 1])],
        "bounds": BOUND_TS,
    })
    answer["long_seed"] = long_seed
    return answer


def test_noise_function_is_pythons(js: dict) -> None:
    assert js["noise_function"] == NOISE_FUNCTION


def test_pcg64_streams_bit_exact(js: dict) -> None:
    """SeedSequence + PCG64 for an int seed and for [seed, 1], the truncation stream."""
    entropies = [e for s in SEEDS + BIG_SEEDS + BIGINT_SEEDS for e in (s, [s, 1])]
    for entropy, got in zip(entropies, js["raw"], strict=True):
        want = np.random.PCG64(entropy).random_raw(1000).astype("<u8")
        assert np.frombuffer(base64.b64decode(got), "<u8").tobytes() == want.tobytes(), f"PCG64({entropy})"


def test_make_noise_bit_exact(js: dict) -> None:
    """Both distributions, every shape, truncation 1, 0.9, 0.5, 0.3 (and 0.05), seeds drawn now."""
    failed = []
    for case, got in zip(_cases(), js["cases"], strict=False):
        assert isinstance(got, str), f"makeNoise{tuple(case)} threw {got}"
        want = make_noise(*case).astype("<f4")
        if _f32(got).tobytes() != want.tobytes():
            failed.append(f"makeNoise{tuple(case)}: {int((_f32(got) != want.ravel()).sum())} of {want.size} differ")
    assert not failed, "\n".join(failed)


def test_truncated_cases_use_the_second_stream() -> None:
    """The truncation cases above do redraw: a Gaussian row with |z| > bound is rewritten."""
    seed = SEEDS[2]
    plain, cut = make_noise(seed, 64, 100), make_noise(seed, 64, 100, truncation=0.5)
    assert (plain != cut).any() and np.abs(cut).max() <= np.float32(NormalDist().inv_cdf(0.75))


def test_long_normal_draw_with_tail(js: dict) -> None:
    """500,000 normals: bit exact, through the ziggurat's tail (log1pf) and wedge branches."""
    seed = js["long_seed"]
    got, want = _f32(js["cases"][len(_cases())]), make_noise(seed, *LONG).ravel()
    assert got.tobytes() == want.astype("<f4").tobytes(), f"seed {seed}: {int((got != want).sum())} differ"
    assert (np.abs(want) > ZIGGURAT_R).sum() > 20  # each of these came from the tail branch


def test_gaussian_bound_float32(js: dict) -> None:
    """The truncation bound: JS's AS241 rounded to float32 equals Python's NormalDist().inv_cdf's."""
    ts = BOUND_TS
    want = np.array([NormalDist().inv_cdf((1 + t) / 2) for t in ts])
    got32 = _f32(js["bounds32"])
    bad = [t for t, g, w in zip(ts, got32, want.astype(np.float32), strict=True) if g != w]
    assert not bad, f"float32 bound differs for t in {bad[:10]}"
    got64 = np.frombuffer(base64.b64decode(js["bounds64"]), "<f8")
    # the same algorithm: equal but for Math.log against libm's log (an ulp or two past t = 0.85)
    assert np.allclose(got64, want, rtol=2e-15, atol=0)


def _js_error(js: dict, i: int) -> object:
    return js["cases"][len(_cases()) + 1 + i]


@pytest.mark.parametrize(("i", "message"), list(enumerate(m for _, m in PYTHON_ERRORS)))
def test_errors_read_as_pythons(js: dict, i: int, message: str) -> None:
    with pytest.raises(ValueError) as python:
        make_noise(*PYTHON_ERRORS[i][0])
    assert str(python.value) == message
    assert _js_error(js, i) == {"error": message}


@pytest.mark.parametrize(("i", "message"), list(enumerate(m for _, m in JS_ERRORS)))
def test_js_only_errors(js: dict, i: int, message: str) -> None:
    assert _js_error(js, len(PYTHON_ERRORS) + i) == {"error": message}
