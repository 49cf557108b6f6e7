"""The exported web folder in a real browser: Debian's Chromium, headless, driven by Playwright, the
folder served from 127.0.0.1. Seeds and labels are drawn at test time; the page's pixels must equal
the Python runtime's within one gray level, for a uniform-noise (cdcgan) and a Gaussian-noise (cgan)
model, and the judge must read the requested digits. cdcgan's folder runs onnxruntime-web from
node_modules (npm ci), cgan's from a vendored ./ort/ copy with no node_modules (npm run vendor)."""

from __future__ import annotations

import base64
import importlib.util
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gantool.export.browser import static_server
from gantool.runtime import Generator
from gantool.runtime.generator import SampleError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NPM = shutil.which("npm")
_missing = [what for what, ok in (("Debian's chromium (apt-get install chromium)", CHROMIUM),
                                  ("node and npm", NPM and shutil.which("node")),
                                  ("the playwright package (the dev extra)", importlib.util.find_spec("playwright")))
            if not ok]
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"needs {', '.join(_missing)}")

# sample() in the page, its pixels back as base64 (a JSON list of 50,000 numbers is slower)
SAMPLE_JS = """async (opts) => {
  try {
    const s = await window.gantoolDemo.generator.sample(opts);
    let bytes = "";
    for (let i = 0; i < s.pixels.length; i += 8192) bytes += String.fromCharCode(...s.pixels.subarray(i, i + 8192));
    return { pixels: btoa(bytes), n: s.n, seed: s.seed, labels: s.labels, shape: [s.height, s.width, s.channels] };
  } catch (e) {
    return { error: e.message, kind: e.name };
  }
}"""
READY = "document.body.dataset.ready === '1' || document.body.dataset.error !== undefined"
PAGE_ERRORS: dict[int, list[str]] = {}  # id(page) -> uncaught errors in it


@pytest.fixture(scope="module")
def served(web_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """cdcgan with node_modules, cgan with a vendored ./ort/ only, served on a free port of 127.0.0.1
    (copies: the exported folders stay as the exporter left them)."""
    assert NPM is not None
    root = tmp_path_factory.mktemp("served")
    node_folder, vendored = (Path(shutil.copytree(web_root / n, root / n)) for n in ("cdcgan", "cgan"))
    for cmd in ([NPM, "ci", "--no-audit", "--no-fund"], [NPM, "run", "vendor"]):
        done = subprocess.run(cmd, cwd=node_folder, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"{' '.join(cmd)} failed: {done.stderr[-2000:]}"
    shutil.move(node_folder / "ort", vendored / "ort")
    bare = root / "bare"  # a model folder with no onnxruntime-web at all
    shutil.copytree(vendored, bare, ignore=shutil.ignore_patterns("ort"))
    with static_server(root) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser: Any, url: str) -> Any:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function(READY, timeout=120_000)
    PAGE_ERRORS[id(page)] = errors
    return page


@pytest.fixture(scope="module")
def pages(browser: Any, served: str) -> Iterator[dict[str, Any]]:
    opened = {name: _open(browser, f"{served}/{name}/") for name in ("cdcgan", "cgan")}
    yield opened
    for p in opened.values():
        p.close()


@pytest.fixture(scope="module")
def python(web_root: Path) -> Iterator[dict[str, Generator]]:
    gens = {name: Generator.load(web_root / name / f"{name}.onnx", tune=False) for name in ("cdcgan", "cgan")}
    yield gens
    for g in gens.values():
        g.close()


def _sample(page: Any, **opts: Any) -> dict[str, Any]:
    out = page.evaluate(SAMPLE_JS, opts)
    if "pixels" in out:
        h, w, c = out["shape"]
        px = np.frombuffer(base64.b64decode(out["pixels"]), np.uint8)
        out["images"] = px.reshape(out["n"], h, w) if c == 1 else px.reshape(out["n"], h, w, c)
    return out


def _assert_close(js: np.ndarray, py: np.ndarray, what: str) -> None:
    assert js.shape == py.shape, what
    diff = np.abs(js.astype(np.int16) - py.astype(np.int16))
    assert diff.max() <= 1, f"{what}: {int((diff > 1).sum())} pixels differ by more than 1 (max {diff.max()})"


@pytest.mark.parametrize("name", ["cdcgan", "cgan"])
def test_page_loads_and_draws(pages: dict[str, Any], name: str) -> None:
    page = pages[name]
    assert page.evaluate("document.body.dataset.error") is None and not PAGE_ERRORS[id(page)], PAGE_ERRORS[id(page)]
    assert page.evaluate("window.gantoolDemo.last.n") == 20  # every digit, twice
    status = page.inner_text("#status")
    assert "20 images in" in status and "WebAssembly" in status
    assert page.evaluate("document.getElementById('grid').width") > 0


@pytest.mark.parametrize("name", ["cdcgan", "cgan"])
def test_same_seed_same_images_as_python(pages: dict[str, Any], python: dict[str, Generator], name: str) -> None:
    """Labels and seeds drawn now; plain, truncated, and labels left to cycle; 100 images past one chunk."""
    g, rng = python[name], np.random.default_rng(secrets.randbits(64))
    for truncation in (1.0, 0.7):
        seed = secrets.randbelow(2**32)
        labels = rng.integers(0, 10, 100).tolist()
        got = _sample(pages[name], labels=labels, seed=seed, truncation=truncation)
        assert got.get("seed") == seed and got["labels"] == labels, got.get("error")
        _assert_close(got["images"], g.sample(labels=labels, seed=seed, truncation=truncation),
                      f"{name} seed {seed} truncation {truncation}")
    seed = secrets.randbelow(2**32)
    _assert_close(_sample(pages[name], n=13, seed=seed)["images"], g.sample(n=13, seed=seed), f"{name} n=13 seed {seed}")


def test_class_weights_match_python(pages: dict[str, Any], python: dict[str, Generator]) -> None:
    seed = secrets.randbelow(2**32)
    w = np.random.default_rng(seed).dirichlet(np.ones(10), 12).round(6)
    w[:, 0] += 1 - w.sum(axis=1)  # rows summing to 1 exactly after rounding
    got = _sample(pages["cdcgan"], classWeights=w.tolist(), seed=seed)
    _assert_close(got["images"], python["cdcgan"].sample(class_weights=w, seed=seed), f"class weights seed {seed}")


def test_seeds_past_32_bits_match_python(pages: dict[str, Any], python: dict[str, Generator]) -> None:
    """The server hands out 63-bit seeds (x-gantool-seed): a page replays them, as a Number up to 2**53 - 1
    or as a BigInt beyond."""
    for seed in (2**32, secrets.randbelow(2**53 - 2**32) + 2**32, 2**53 - 1):
        _assert_close(_sample(pages["cgan"], labels=[1, 7, 9], seed=seed)["images"],
                      python["cgan"].sample(labels=[1, 7, 9], seed=seed), f"seed {seed}")
    big = secrets.randbelow(2**63 - 2**53) + 2**53
    got = pages["cdcgan"].evaluate(SAMPLE_JS.replace("sample(opts)", "sample({...opts, seed: BigInt(opts.seed)})"),
                                   {"labels": [2, 5], "seed": str(big), "truncation": 0.6})
    px = np.frombuffer(base64.b64decode(got["pixels"]), np.uint8).reshape(2, 28, 28)
    _assert_close(px, python["cdcgan"].sample(labels=[2, 5], seed=big, truncation=0.6), f"BigInt seed {big}")


def test_concurrent_calls_each_get_their_own_images(pages: dict[str, Any], python: dict[str, Generator]) -> None:
    """Calls made at once (a user clicking quickly) run one after another: none fails, none mixes."""
    got = pages["cdcgan"].evaluate("""async () => {
      const g = window.gantoolDemo.generator;
      const runs = await Promise.all([0, 1, 2, 3].map((i) => g.sample({ labels: [i, i + 1, i + 2], seed: 100 + i })));
      return runs.map((s) => Array.from(s.pixels));
    }""")
    for i, px in enumerate(got):
        want = python["cdcgan"].sample(labels=[i, i + 1, i + 2], seed=100 + i)
        _assert_close(np.array(px, np.uint8).reshape(want.shape), want, f"concurrent call {i}")


def test_no_seed_draws_one_and_reports_it(pages: dict[str, Any], python: dict[str, Generator]) -> None:
    got = _sample(pages["cgan"], labels=[4, 2])
    assert 0 <= got["seed"] < 2**32
    _assert_close(got["images"], python["cgan"].sample(labels=[4, 2], seed=got["seed"]), f"seed {got['seed']}")


@pytest.mark.parametrize("name", ["cdcgan", "cgan"])
def test_judge_reads_the_requested_digits(pages: dict[str, Any], name: str) -> None:
    import torch

    from gantool.train.judge import load_judge, predict

    labels = [k for k in range(10) for _ in range(20)]
    got = _sample(pages[name], labels=labels, seed=secrets.randbelow(2**32))
    x = torch.from_numpy(got["images"].astype(np.float32) / 127.5 - 1).unsqueeze(1)
    judge, _ = load_judge()
    acc = float((predict(judge, x).numpy() == np.array(labels)).mean())
    assert acc >= 0.9, f"{name} seed {got['seed']}: the judge read {acc:.1%} of the requested digits"


def test_clicking_a_digit_draws_it(pages: dict[str, Any]) -> None:
    page = pages["cdcgan"]
    page.check("input[value=digit]")
    page.click("#digits button:nth-child(8)")  # the digit 7
    page.wait_for_function("window.gantoolDemo.last.labels && window.gantoolDemo.last.labels.every(y => y === 7)")
    assert page.evaluate("document.body.dataset.error") is None


@pytest.mark.parametrize(("count", "message"), [("2.5", "n must be an integer, got 2.5."),
                                                ("0", "n must be in 1..1024, got 0."),
                                                ("5000", "n must be in 1..1024, got 5000.")])
@pytest.mark.parametrize("mode", ["digit", "mix"])
def test_a_bad_image_count_on_the_page_says_so(pages: dict[str, Any], mode: str, count: str, message: str) -> None:
    page = pages["cgan"]
    page.check(f"input[value={mode}]")
    page.fill("#count", count)
    page.click("#sample")
    page.wait_for_function("document.body.dataset.error !== undefined")
    assert page.inner_text("#error") == message and page.inner_text("#status") == ""
    page.fill("#count", "20")
    page.check("input[value=every]")
    page.wait_for_function("document.body.dataset.error === undefined")


# (options, the message): each as Python's SampleError words it, where Python has the same check
BAD = [
    ({"labels": [3, 10]}, "label 10 is out of range; allowed: 0..9."),
    ({"labels": [-1]}, "label -1 is out of range; allowed: 0..9."),
    ({"labels": [2.5]}, "labels must be integers in 0..9, got 2.5."),
    ({"labels": "3"}, "labels must be a 1-D sequence of integers, got '3'."),
    ({"n": 0}, "n must be in 1..1024, got 0."),
    ({"n": 1025}, "n must be in 1..1024, got 1025."),
    ({"n": 2.5}, "n must be an integer, got 2.5."),
    ({"n": 3, "labels": [1, 2]}, "n=3 but 2 labels were given; give one label per image."),
    ({"labels": [1], "classWeights": [[1] + [0] * 9]}, "give labels or classWeights, not both (a one-hot row is its label)."),
    ({"classWeights": [[0.5] * 10]}, "each row of class weights must sum to 1 (within 0.001); row 0 sums to 5."),
    ({"classWeights": [[1, -1] + [1] + [0] * 7]}, "class weights must be non-negative; row 0 has -1."),
    ({"classWeights": [[1, 0]]}, "class weights must have shape (n, 10), one row per image; row 0 is [1, 0]."),
    ({"seed": -1}, "seed must be a non-negative integer, got -1."),
    ({"seed": 2.5}, "seed must be a non-negative integer, got 2.5."),
    ({"seed": "5"}, "seed must be a non-negative integer, got '5'."),
    ({"seed": 2**53}, "seed 9007199254740992 is above 2**53 - 1, where Numbers stop being exact integers; pass it "
                      "as a BigInt."),
    ({"labels": [[1, 2]]}, "labels must be a 1-D sequence of integers, got shape (1, 2)."),
    ({"label": [3]}, "unknown option 'label'; allowed: n, labels, seed, truncation, classWeights."),
    ({"truncation": 0}, "truncation must be a number in (0, 1], got 0 (1: no truncation)."),
]


@pytest.mark.parametrize(("opts", "message"), BAD, ids=[m.split(";")[0][:40] for _, m in BAD])
def test_bad_inputs_fail_in_one_line(pages: dict[str, Any], opts: dict[str, Any], message: str) -> None:
    got = _sample(pages["cdcgan"], **opts)
    assert got == {"error": message, "kind": "GantoolError"}


@pytest.mark.parametrize(("opts", "python_kw"), [
    ({"labels": [3, 10]}, {"labels": [3, 10]}), ({"n": 3, "labels": [1, 2]}, {"n": 3, "labels": [1, 2]}),
    ({"truncation": 0}, {"truncation": 0}), ({"classWeights": [[0.5] * 10]}, {"class_weights": [[0.5] * 10]}),
    ({"seed": -1}, {"seed": -1}), ({"seed": 2.5}, {"seed": 2.5}), ({"seed": "5"}, {"seed": "5"}),
    ({"labels": [[1, 2]]}, {"labels": [[1, 2]]})])
def test_shared_checks_word_like_python(pages: dict[str, Any], python: dict[str, Generator], opts: dict[str, Any],
                                        python_kw: dict[str, Any]) -> None:
    with pytest.raises(SampleError) as e:
        python["cdcgan"].sample(**{"seed": 0, **python_kw})
    assert _sample(pages["cdcgan"], **{"seed": 0, **opts})["error"] == str(e.value)


def test_without_onnxruntime_web_the_page_says_what_to_run(browser: Any, served: str) -> None:
    page = _open(browser, f"{served}/bare/")
    try:
        error = page.evaluate("document.body.dataset.error")
        assert error.startswith("onnxruntime-web was not found beside gantool.js") and "npm ci" in error
    finally:
        page.close()
