"""One process against a torchrun job on the same cores: `gantool train` images/s, interleaved rounds.

    python benchmarks/train_scaleout.py --data-dir ../shared/data/mnist [--models cdcgan,dcgan]
        [--processes 2] [--steps 40] [--rounds 3] [--json out.json]

The single process gets every core as torch threads; the job gets one process per core with one
thread each (torchrun's default), gloo over loopback. On one machine the two should be about equal:
the job's point is the path to many machines, which this measures the cost of.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from gantool.benchmarks.roofline import machine_info
from gantool.fileio import atomic_write_json


def run(model: str, processes: int, steps: int, data_dir: str | None, precision: str, cores: int) -> float:
    """images/s (all processes together) of one fresh run, as `gantool train --json` reports it."""
    with tempfile.TemporaryDirectory() as tmp:
        out, result = Path(tmp) / "run", Path(tmp) / "result.json"
        args = ["--model", model, "--max-steps", str(steps), "--ckpt-every", str(10 * steps), "-o", str(out),
                "--json", str(result), "--precision", precision, *(["--data-dir", data_dir] if data_dir else [])]
        if processes == 1:
            cmd, threads = [sys.executable, "-m", "gantool.train", *args], cores
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
                   "-m", "gantool.train", *args]
            threads = max(1, cores // processes)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip().splitlines()[-1:]}")
        return float(json.loads(result.read_text())["images_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--models", default="cdcgan,dcgan")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40, help="G steps per run (the rate is over the whole run)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for model in args.models.split(","):
            for n in (1, args.processes):
                steps = args.steps if model not in ("dcgan", "cgan-in") else max(4, args.steps // 4)
                rates.setdefault((model, n), []).append(run(model, n, steps, args.data_dir, args.precision,
                                                            args.cores))
    results = []
    print(f"{'model':8} {'processes':>9} {'img/s median':>12} {'x 1 process':>11}")
    for (model, n), r in rates.items():
        one = statistics.median(rates[(model, 1)])
        row = {"model": model, "processes": n, "images_per_s_median": round(statistics.median(r), 1),
               "images_per_s_all": [round(x, 1) for x in r], "ratio_to_one_process": round(statistics.median(r) / one, 3)}
        results.append(row)
        print(f"{model:8} {n:>9} {row['images_per_s_median']:>12.1f} {row['ratio_to_one_process']:>11.2f}")
    if args.json:
        atomic_write_json(args.json, {"meta": {"machine": machine_info(), "cores": args.cores, "steps": args.steps,
                                               "rounds": args.rounds, "precision": args.precision},
                                      "results": results})


if __name__ == "__main__":
    main()
