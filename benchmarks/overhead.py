"""The runtime's own cost over a bare InferenceSession.run, for each way an app asks for images.

    python benchmarks/overhead.py --model cdcgan --threads 2 --json benchmarks/results/overhead.json

Interleaved by gantool.benchmarks.bench.measure, so every path sees the same machine states:
- `ort`: the Generator's own backend called on fixed feeds (the call gantool bench's `ort` engine makes:
  ORT's native run), on the Generator's own session: two sessions of one file differ by more than the
  runtime's own cost;
- `ort public run`: InferenceSession.run, which re-checks the feeds in Python before the native run;
- `uint8 only`: the bare call plus the uint8 conversion and nothing else (no checks, no noise): the
  least any numpy caller pays for images; after an engine call has evicted the caches each numpy call
  costs several times its hot-loop time, which bounds the overhead of the small (MLP) models;
- `runtime z=`: Generator.sample(labels, z=z): z and label checks, the run, uint8 (gantool bench's
  `runtime` engine, which must feed every engine the same z);
- `runtime seed=None`: sample(labels): fresh noise from the thread's generator (gantool.noise);
- `runtime seed=k`: sample(labels, seed=k), a new seed each call: numpy builds a PCG64 per call.
The overhead of a path is its p50 over `ort`'s in the same round (as a ratio, and in microseconds),
median over rounds.
Needs only the runtime (numpy, onnxruntime).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import click
import numpy as np

from gantool.benchmarks.bench import measure, resolve_sources, script_options
from gantool.benchmarks.engines import Engine
from gantool.benchmarks.roofline import machine_info
from gantool.contract import IMAGES, LABELS, Z
from gantool.fileio import atomic_write_bytes
from gantool.runtime import Generator


def runtime_paths(g: Generator) -> dict[str, Engine]:
    seeds = itertools.count(1)

    def ask(feeds: dict[str, np.ndarray]) -> dict[str, Any]:  # labels, or n for unconditional models
        return {"labels": feeds[LABELS]} if LABELS in feeds else {"n": len(feeds[Z])}

    def uint8_only(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return g.to_uint8.images(g.backend.infer(feeds), consume=True)

    return {"uint8 only": Engine("uint8 only", uint8_only),
            "runtime z=": Engine("runtime z=", lambda f: g.sample(z=f[Z], **ask(f))),
            "runtime seed=None": Engine("runtime seed=None", lambda f: g.sample(**ask(f))),
            "runtime seed=k": Engine("runtime seed=k", lambda f: g.sample(seed=next(seeds), **ask(f)))}


@click.command()
@script_options(["cdcgan"], "1,64")
def main(models: tuple[str, ...], batches: list[int], threads: int, rounds: int, json_path: str | None) -> None:
    report = {}
    for model in models:
        src, meta = resolve_sources(model)
        spec = meta.spec
        g = Generator.load(src.onnx["fp32"], threads=threads)
        session = g.backend.session  # type: ignore[attr-defined]
        public = Engine("ort public run", lambda f: session.run([IMAGES], f)[0])  # what the native call saves
        # the Generator's own session, called bare: two sessions of one file differ by more than the runtime costs
        bare = Engine("ort", g.backend.infer)
        engines = {"ort": bare, "ort public run": public, **runtime_paths(g)}
        stats = measure(engines, spec, batches, rounds)
        for e in engines.values():
            e.close()
        g.close()
        rows: list[dict[str, Any]] = []
        click.echo(f"{model} ({threads} threads): p50 ms, and overhead over bare ORT (median of per-round ratios)")
        for b in batches:
            base = next(np.array(s.round_p50_ms) for s in stats if s.engine == "ort" and s.batch == b)
            for s in (s for s in stats if s.batch == b):
                mine = np.array(s.round_p50_ms)
                rows.append({"engine": s.engine, "batch": b, "p50_ms": s.p50_ms,
                             "overhead": float(np.median(mine / base - 1)),
                             "overhead_us": float(np.median(mine - base)) * 1e3})
                click.echo(f"  batch {b:>4}  {s.engine:<18}{s.p50_ms:>9.4f} ms  {100 * rows[-1]['overhead']:+6.1f}%"
                           f"  ({rows[-1]['overhead_us']:+.1f} us)")
        report[model] = {"rows": rows, "stats": [s.__dict__ for s in stats]}
    if json_path:
        atomic_write_bytes(json_path, json.dumps({"threads": threads, "rounds": rounds, "machine": machine_info(), "models": report},
                                                 indent=1).encode())


if __name__ == "__main__":
    main()
