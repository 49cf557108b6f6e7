"""The fidelity/diversity trade-off of truncation: FD-judge, precision, recall and label accuracy
against t, per model, from the shipped weights and the shipped judges.

    python benchmarks/truncation.py --models cdcgan cwgan --n 5000 --data-dir ../shared/data/mnist \
        --out benchmarks/results/quality/truncation

Writes OUT.json, OUT.txt (the table) and OUT.png (one panel per metric, a line per model). The real
data and the judges are loaded once; every t measures the same seed's samples (gantool.noise keeps
in-bound coordinates and redraws the rest, so the sets differ only where truncation acts).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from gantool.fileio import atomic_write_bytes, atomic_write_figure, atomic_write_json

T_VALUES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
METRICS = (("fd", "FD-judge (fair reference)"), ("precision", "precision"), ("recall", "recall"),
           ("label_accuracy", "label accuracy (primary judge)"))


def measure(models: list[str], ts: list[float], n: int, data_dir: str | None, seed: int) -> list[dict[str, Any]]:
    from gantool.train.checkpoint import load_generator
    from gantool.train.data import load_split
    from gantool.train.evaluate import evaluate, prepare_real
    from gantool.train.judge import load_judges

    primary = load_judges(())[0]
    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    rows = []
    for model in models:
        spec, g = load_generator(model)
        real = prepare_real(primary.judge, train, test, size=spec.image_size)
        for t in ts:
            start = time.perf_counter()
            r = evaluate(g, spec, primary.judge, real, n=n, seed=seed, judge_name=primary.name, truncation=t)
            la = r.get("label_accuracy", {}).get("overall")
            rows.append({"model": model, "t": t, "n": n, "fd": r["fd_judge"]["value"], "fd_ci95": r["fd_judge"]["ci95"],
                         "precision": r["precision"], "recall": r["recall"], "label_accuracy": la,
                         "worst_class_share": r["mode_coverage"]["worst_class_share"],
                         "seconds": time.perf_counter() - start})
            print(table(rows[-1:], header=not rows[:-1]), flush=True)
    return rows


def table(rows: list[dict[str, Any]], header: bool = True) -> str:
    lines = ["model     t     FD-judge (95% CI)        precision  recall  label acc  worst class"] if header else []
    for r in rows:
        la = "-" if r["label_accuracy"] is None else f"{r['label_accuracy']:.2%}"
        lines.append(f"{r['model']:<8} {r['t']:.2f}  {r['fd']:7.2f} ({r['fd_ci95'][0]:.2f}-{r['fd_ci95'][1]:.2f})"
                     f"  {r['precision']:9.3f}  {r['recall']:6.3f}  {la:>9}  {r['worst_class_share']:.2%}")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.4))
    for ax, (key, title) in zip(axes, METRICS):
        for model in dict.fromkeys(r["model"] for r in rows):
            pts = [(r["t"], r[key]) for r in rows if r["model"] == model and r[key] is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=model)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("truncation t (1: none)")
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    atomic_write_figure(path, fig, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["cdcgan", "cwgan"])
    ap.add_argument("--t", nargs="+", type=float, default=list(T_VALUES))
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/quality/truncation"))
    args = ap.parse_args()
    rows = measure(args.models, args.t, args.n, args.data_dir, args.seed)
    atomic_write_json(args.out.with_suffix(".json"), {"rows": rows})
    atomic_write_bytes(args.out.with_suffix(".txt"), (table(rows) + "\n").encode())
    plot(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out}.json, .txt and .png")


if __name__ == "__main__":
    main()
