"""The browser runtime against the Python runtime, side by side in one run: time to first image (page
load to pixels) and per-call latency at batch 1 and 64 in onnxruntime-web's WebAssembly backend
(headless Debian Chromium), for the lowered and the plain graph, one thread and, with the page
cross-origin isolated, every core.

    python benchmarks/web_latency.py --models cdcgan cgan --rounds 30 --out benchmarks/results/web_latency \
        --screenshot docs/images/web-demo.png

Rounds interleave the candidates (browser configurations and the Python runtime), so a slow spell of
this shared machine lands on all of them; medians are reported. Writes OUT.json and OUT.md, recording
the CPU model and flags, Chromium, onnxruntime-web and onnxruntime versions. Needs chromium, npm and
the playwright package (the dev extra).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from gantool.fileio import atomic_write_bytes, atomic_write_json

BATCHES = (1, 64)
FIRST_IMAGE_LOADS = 5
# one timed call in the page: the whole sample() (noise, feeds, run, uint8), and the noise alone
TIME_JS = """async ({n, seed}) => {
  const g = window.gantoolDemo.generator, noise = await import("./noise.js");
  const labels = g.conditional ? Array.from({length: n}, (_, i) => i % g.numClasses) : undefined;
  let t = performance.now();
  await g.sample({n, labels, seed});
  const total = performance.now() - t;
  t = performance.now();
  noise.makeNoise(seed, n, g.spec.latent_dim, g.spec.noise);
  return {total, noise: performance.now() - t};
}"""


def export_sites(models: list[str], root: Path) -> dict[str, Path]:
    """One web folder per model and graph form, sharing one vendored onnxruntime-web."""
    from gantool.export.browser import run_web_export

    sites: dict[str, Path] = {}
    for model in models:
        for graph, lower in (("lowered", True), ("plain", False)):
            sites[f"{model}/{graph}"] = run_web_export(model, str(root / model / graph), lower=lower).folder
    first = next(iter(sites.values()))
    npm = shutil.which("npm") or "npm"
    for cmd in ([npm, "ci", "--no-audit", "--no-fund"], [npm, "run", "vendor"]):
        subprocess.run(cmd, cwd=first, check=True, capture_output=True)
    for site in sites.values():
        if site != first:
            shutil.copytree(first / "ort", site / "ort")
    return sites


def first_image_ms(browser: Any, url: str) -> float:
    """A fresh context (no cache): navigation start to the first grid drawn, in ms."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("document.body.dataset.ready === '1' || document.body.dataset.error !== undefined",
                           timeout=120_000)
    error = page.evaluate("document.body.dataset.error")
    if error:
        raise RuntimeError(f"{url}: {error}")
    ms = float(page.evaluate("window.gantoolDemo.firstImageMs"))
    context.close()
    return ms


def measure(models: list[str], rounds: int, screenshot: str | None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from gantool.export.browser import static_server
    from gantool.runtime import Generator

    chromium = shutil.which("chromium") or "chromium"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gantool-web-bench-") as tmp, sync_playwright() as p:
        sites = export_sites(models, Path(tmp))
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        with static_server(tmp) as plain_url, static_server(tmp, isolate=True) as isolated_url:
            for key, site in sites.items():
                model, graph = key.split("/")
                configs = {f"wasm x1, {graph}": plain_url, f"wasm x2 (isolated), {graph}": isolated_url}
                pages, times = {}, {}
                for name, base in configs.items():
                    url = f"{base}/{model}/{graph}/"
                    loads = [first_image_ms(browser, url) for _ in range(FIRST_IMAGE_LOADS)]
                    page = browser.new_page()
                    page.goto(url)
                    page.wait_for_function("document.body.dataset.ready === '1'", timeout=120_000)
                    pages[name] = page
                    times[name] = {"first_image_ms": statistics.median(loads), "threads":
                                   page.evaluate("window.gantoolDemo.generator.threads"),
                                   **{f"b{b}": [] for b in BATCHES}, **{f"noise_b{b}": [] for b in BATCHES}}
                python = {f"python x{t}, {graph}": Generator.load(site / f"{model}.onnx", threads=t, tune=False)
                          for t in (1, 2)}
                for name in python:
                    times[name] = {"first_image_ms": None, "threads": python[name].backend.threads,
                                   **{f"b{b}": [] for b in BATCHES}}
                for r in range(rounds):  # interleaved: each round times every candidate at every batch
                    for b in BATCHES:
                        for name, page in pages.items():
                            t = page.evaluate(TIME_JS, {"n": b, "seed": r})
                            times[name][f"b{b}"].append(t["total"])
                            times[name][f"noise_b{b}"].append(t["noise"])
                        for name, g in python.items():
                            start = time.perf_counter()
                            g.sample(n=b, seed=r)
                            times[name][f"b{b}"].append((time.perf_counter() - start) * 1e3)
                if screenshot and graph == "lowered" and model == models[0]:
                    pages[next(iter(pages))].screenshot(path=screenshot, full_page=True)
                for name, t in times.items():
                    rows.append({"model": model, "candidate": name, "threads": t["threads"],
                                 "first_image_ms": t["first_image_ms"],
                                 **{f"p50_b{b}_ms": statistics.median(t[f"b{b}"]) for b in BATCHES},
                                 **{f"noise_p50_b{b}_ms": statistics.median(t[f"noise_b{b}"]) for b in BATCHES
                                    if t.get(f"noise_b{b}")}})
                    print(line(rows[-1]), flush=True)
                for page in pages.values():
                    page.close()
                for g in python.values():
                    g.close()
        version = browser.version
        browser.close()
    return {"rows": rows, "chromium": version}


def line(r: dict[str, Any]) -> str:
    first = "-" if r["first_image_ms"] is None else f"{r['first_image_ms']:.0f}"
    noise = " / ".join(f"{r[f'noise_p50_b{b}_ms']:.2f}" for b in BATCHES if f"noise_p50_b{b}_ms" in r) or "-"
    return (f"| {r['model']} | {r['candidate']} | {first} | {r['p50_b1_ms']:.2f} | {r['p50_b64_ms']:.2f} | "
            f"{noise} |")


def main() -> None:
    import json

    import onnxruntime

    from gantool.cpu import cpu_info
    from gantool.export.browser import ort_web_version

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["cdcgan", "cgan"])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--out", default="benchmarks/results/web_latency")
    ap.add_argument("--screenshot", default=None, help="save the first model's demo page here (PNG)")
    args = ap.parse_args()
    result = measure(args.models, args.rounds, args.screenshot)
    cpu = cpu_info()
    result.update({"cpu": cpu.model, "flags": cpu.notable_flags, "onnxruntime_web": ort_web_version(),
                   "onnxruntime": onnxruntime.__version__, "rounds": args.rounds})
    atomic_write_json(f"{args.out}.json", result)
    header = (f"{cpu.model} ({', '.join(cpu.notable_flags)}); Chromium {result['chromium']}, onnxruntime-web "
              f"{result['onnxruntime_web']}, onnxruntime {result['onnxruntime']}; medians of {args.rounds} "
              f"interleaved rounds\n\n| model | candidate | first image ms | batch 1 ms | batch 64 ms | "
              f"of which noise (JS) b1 / b64 ms |\n|---|---|---|---|---|---|\n")
    atomic_write_bytes(f"{args.out}.md", (header + "\n".join(line(r) for r in result["rows"]) + "\n").encode())
    print(json.dumps({"cpu": cpu.model}))


if __name__ == "__main__":
    main()
