"""Training throughput (real images/s through D, with the G steps they imply) of every zoo model.

    python benchmarks/train_throughput.py --data-dir ../shared/data/mnist [--steps 20] [--json out.json]

Each model runs its own recipe (batch size, n_critic) on real MNIST batches. Models are measured
round-robin in several rounds so that machine noise hits them alike; the median round is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gantool.benchmarks.roofline import machine_info
from gantool.fileio import atomic_write_json
from gantool.train.data import load_split
from gantool.train.loop import Trainer
from gantool.train.zoo import ZOO, build_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--models", default=",".join(ZOO))
    ap.add_argument("--steps", type=int, default=10, help="G steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    split = load_split(args.data_dir, "train")
    trainers = {}
    for name in args.models.split(","):
        t = Trainer(build_spec(name, split.info), ZOO[name].recipe, split, seed=0)
        t.step()  # warm-up
        trainers[name] = t
    rates: dict[str, list[float]] = {n: [] for n in trainers}
    for _ in range(args.rounds):
        for name, t in trainers.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                t.step()
            rates[name].append(args.steps * t.per_step / (time.perf_counter() - t0))
    results = []
    print(f"{'model':8} {'batch':>5} {'n_critic':>8} {'median img/s':>12} {'min':>8} {'max':>8}")
    for name, r in rates.items():
        t = trainers[name]
        row = {"model": name, "batch_size": t.recipe.batch_size, "n_critic": t.recipe.n_critic,
               "images_per_s_median": round(statistics.median(r), 1), "images_per_s_all": [round(x, 1) for x in r],
               "seconds_per_epoch": round(len(t.images) / statistics.median(r), 1)}
        results.append(row)
        print(f"{name:8} {row['batch_size']:>5} {row['n_critic']:>8} {row['images_per_s_median']:>12.1f} "
              f"{min(r):>8.1f} {max(r):>8.1f}")
    meta = {"torch": torch.__version__, "threads": args.threads, "machine": machine_info(),
            "steps_per_round": args.steps, "rounds": args.rounds}
    if args.json:
        atomic_write_json(args.json, {"meta": meta, "results": results})


if __name__ == "__main__":
    main()
