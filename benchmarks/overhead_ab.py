"""The runtime's own cost on one session, in tight alternation: Generator.sample(z=...) against the same
backend's bare infer() on fixed feeds, 30 rounds of 100 calls each (10 at larger batches), median of
per-round ratios. On this shared VM the interleaved rounds of overhead.py (0.1 s per engine, 0.2 s settle)
swing by more than the runtime costs; alternating every 100 calls keeps both in one machine state.

    python benchmarks/overhead_ab.py cdcgan 1
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from gantool.benchmarks.roofline import machine_info
from gantool.export.cache import resolve_model
from gantool.runtime import Generator


def main(model: str, batch: int, threads: int = 2, rounds: int = 30) -> None:
    g = Generator.load(resolve_model(model), threads=threads)  # zoo names fill the 64x64 cache once
    z = np.random.default_rng(0).standard_normal((batch, g.spec.latent_dim)).astype(np.float32)
    kw: dict[str, Any] = {"labels": np.arange(batch) % g.num_classes} if g.conditional else {}
    feeds = g.inputs(z=z, **kw)
    paths = {"bare infer": lambda: g.backend.infer(feeds), "sample(z=)": lambda: g.sample(z=z, **kw),
             "sample()": lambda: g.sample(n=batch) if not g.conditional else g.sample(**kw)}
    per_round: dict[str, list[float]] = {k: [] for k in paths}
    calls = 100 if batch == 1 else 10
    for _ in range(rounds):
        for name, f in paths.items():
            times = []
            for _ in range(calls):
                t = time.perf_counter()
                f()
                times.append(time.perf_counter() - t)
            per_round[name].append(float(np.median(times)))
    base = np.array(per_round["bare infer"])
    m = machine_info()
    print(f"{model} batch {batch}, {threads} threads, {m['cpu_model']} ({' '.join(m['cpu_flags'])})")
    for name, v in per_round.items():
        a = np.array(v)
        print(f"  {name:12} {np.median(a) * 1e6:9.1f} us  {np.median(a / base - 1) * 100:+6.1f}%  "
              f"({np.median(a - base) * 1e6:+.1f} us)")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
