"""Training throughput (real images/s through D, with the G steps they imply) of every zoo model, by
precision: fp32 against bf16 autocast (and torch.compile, channels_last on its own), interleaved.

    python benchmarks/train_throughput.py --data-dir ../shared/data/mnist \
        [--variants fp32,bf16,auto] [--steps 10] [--rounds 3] [--json out.json]

A variant is a precision (fp32, bf16 or auto, as `gantool train --precision`), optionally with
`+cl` / `-cl` (channels_last forced on / off) and `+compile` (torch.compile of G and D). Each model
runs its own recipe (batch size, n_critic) on real MNIST batches. All (model, variant) pairs are
measured round-robin in several rounds so that machine noise hits them alike; the median round is
reported, with the share of wall time spent outside the step's compute (fetching batches).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from typing import Any

import torch

from gantool.benchmarks.roofline import machine_info
from gantool.fileio import atomic_write_json
from gantool.train.data import load_split
from gantool.train.loop import Trainer
from gantool.train.precision import choose_precision
from gantool.train.zoo import ZOO, build_spec, convolutional


def parse_variant(text: str) -> tuple[str, bool | None, bool]:
    """'bf16-cl+compile' -> ('bf16', False, True): precision, channels_last override, compile."""
    base, cl, compiled = text, None, False
    for suffix, setting in (("+compile", "compile"), ("+cl", True), ("-cl", False)):
        if suffix in base:
            base = base.replace(suffix, "")
            if setting == "compile":
                compiled = True
            else:
                cl = bool(setting)
    if base not in ("fp32", "bf16", "auto"):
        raise SystemExit(f"variant {text!r}: expected fp32, bf16 or auto, optionally with +cl, -cl, +compile")
    return base, cl, compiled


def make_trainer(name: str, variant: str, split: Any) -> Trainer:
    base, cl, compiled = parse_variant(variant)
    spec = build_spec(name, split.info)
    precision = choose_precision(base, "cpu", convolutional(name))
    if cl is not None:
        precision = replace(precision, channels_last=cl and convolutional(name))
    t = Trainer(spec, ZOO[name].recipe, split, seed=0, precision=precision)
    if compiled:
        t.g.compile()
        t.d.compile()
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--models", default=",".join(ZOO))
    ap.add_argument("--variants", default="fp32,bf16,auto")
    ap.add_argument("--steps", type=int, default=10, help="G steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    split = load_split(args.data_dir, "train")
    variants = args.variants.split(",")
    trainers: dict[tuple[str, str], Trainer] = {}
    errors: dict[tuple[str, str], str] = {}
    for name in args.models.split(","):
        for v in variants:
            try:
                t = make_trainer(name, v, split)
                t.step()  # warm-up (and compilation)
                t.step()
            except Exception as e:  # noqa: BLE001  (a variant that cannot run is reported, not fatal)
                errors[(name, v)] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                print(f"{name} {v}: failed: {errors[(name, v)]}", file=sys.stderr)
                continue
            trainers[(name, v)] = t
    rates: dict[tuple[str, str], list[float]] = {k: [] for k in trainers}
    outside: dict[tuple[str, str], list[float]] = {k: [] for k in trainers}
    for _ in range(args.rounds):
        for key, t in trainers.items():
            t.data_seconds = 0.0  # the Trainer's own count of time spent fetching batches
            t0 = time.perf_counter()
            for _ in range(args.steps):
                t.step()
            wall = time.perf_counter() - t0
            rates[key].append(args.steps * t.per_step / wall)
            outside[key].append(t.data_seconds / wall)
    results = []
    print(f"{'model':8} {'variant':16} {'runs as':28} {'batch':>5} {'img/s':>8} {'x fp32':>7} {'data %':>6}")
    for (name, v), r in rates.items():
        t = trainers[(name, v)]
        med = statistics.median(r)
        fp32 = rates.get((name, "fp32"))
        ratio = med / statistics.median(fp32) if fp32 else None
        row: dict[str, Any] = {"model": name, "variant": v, "runs_as": t.precision.label + (" compiled" if parse_variant(v)[2] else ""),
               "reason": t.precision.reason, "batch_size": t.recipe.batch_size, "n_critic": t.recipe.n_critic,
               "images_per_s_median": round(med, 1), "images_per_s_all": [round(x, 1) for x in r],
               "ratio_to_fp32": round(ratio, 3) if ratio else None,
               "data_share_median": round(statistics.median(outside[(name, v)]), 4),
               "seconds_per_epoch": round(len(t.images) / med, 1)}
        results.append(row)
        print(f"{name:8} {v:16} {row['runs_as']:28} {row['batch_size']:>5} {med:>8.1f} "
              f"{(f'{ratio:.2f}' if ratio else '-'):>7} {100 * row['data_share_median']:>6.2f}")
    meta = {"torch": torch.__version__, "threads": args.threads, "machine": machine_info(),
            "steps_per_round": args.steps, "rounds": args.rounds, "variants": variants,
            "failed": {f"{n} {v}": e for (n, v), e in errors.items()}}
    if args.json:
        atomic_write_json(args.json, {"meta": meta, "results": results})


if __name__ == "__main__":
    main()
