"""Side-by-side quality of runs trained at different precisions, from their `gantool eval --json` files.

    python benchmarks/precision_quality.py fp32=a.json bf16=b.json [fp32=c.json ...] [--json out.json]

For each file: FD-judge with its bootstrap 95% interval, and label accuracy with a binomial 95%
interval (normal approximation, n samples). Runs of one label are pooled into a mean and spread,
so that the difference between precisions can be read against the seed-to-seed spread.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

from gantool.fileio import atomic_write_json


def row(label: str, report: dict[str, Any]) -> dict[str, Any]:
    fd, n = report["fd_judge"], report["n"]
    out: dict[str, Any] = {"label": label, "seed_of_eval": report["seed"], "n": n, "fd": fd["value"],
                           "fd_ci95": fd["ci95"], "precision": report["precision"], "recall": report["recall"]}
    if "label_accuracy" in report:
        acc = report["label_accuracy"]["overall"]
        half = 1.96 * math.sqrt(acc * (1 - acc) / n)
        out.update(label_accuracy=acc, label_accuracy_ci95=[acc - half, acc + half],
                   worst_digit_accuracy=min(report["label_accuracy"]["per_class"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="LABEL=eval.json")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    for item in args.runs:
        label, _, path = item.partition("=")
        rows.append({**row(label, json.loads(Path(path).read_text())), "file": path})
    print("| run | FD-judge (95% CI) | label accuracy (95% CI) | worst digit | precision / recall |")
    print("|---|---|---|---|---|")
    for r in rows:
        acc = (f"{r['label_accuracy']:.2%} ({r['label_accuracy_ci95'][0]:.2%}-{r['label_accuracy_ci95'][1]:.2%})"
               if "label_accuracy" in r else "-")
        worst = f"{r['worst_digit_accuracy']:.2%}" if "worst_digit_accuracy" in r else "-"
        print(f"| {r['label']} ({Path(r['file']).stem}) | {r['fd']:.2f} ({r['fd_ci95'][0]:.2f}-{r['fd_ci95'][1]:.2f}) "
              f"| {acc} | {worst} | {r['precision']:.3f} / {r['recall']:.3f} |")
    pooled = {}
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        fds = [r["fd"] for r in mine]
        accs = [r["label_accuracy"] for r in mine if "label_accuracy" in r]
        pooled[label] = {"runs": len(mine), "fd_mean": statistics.mean(fds),
                         "fd_spread": max(fds) - min(fds), "label_accuracy_mean": statistics.mean(accs) if accs else None,
                         "label_accuracy_spread": (max(accs) - min(accs)) if accs else None}
        acc_text = (f"label accuracy {pooled[label]['label_accuracy_mean']:.2%} "
                    f"(spread {pooled[label]['label_accuracy_spread']:.2%})" if accs else "")
        print(f"{label}: {len(mine)} runs, FD mean {pooled[label]['fd_mean']:.2f} "
              f"(spread {pooled[label]['fd_spread']:.2f}) {acc_text}")
    if args.json:
        atomic_write_json(args.json, {"runs": rows, "pooled": pooled})


if __name__ == "__main__":
    main()
