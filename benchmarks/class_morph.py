"""Class interpolation, measured: along a path of class weights from class a to class b (z fixed), how
the judges' probabilities of a and b move, and where their decision flips, per conditional model.

    python benchmarks/class_morph.py --models cgan cdcgan cwgan cgan-in --pairs 3:8 1:7 4:9 0:6 \
        --n 300 --steps 21 --data-dir ../shared/data/mnist --out benchmarks/results/quality/class_morph

Writes OUT.json, OUT.txt (the table) and OUT.png (a panel per model and pair: the primary judge's mean
P(a), P(b) and P(any other class) against the weight of b). The images come from the shipped weights
in torch, conditioned on each mixture exactly as the exported mix graph is (parity-checked at export).
The flip is where the mean P(b) first exceeds the mean P(a) (linear between steps); "decided" is the
share of z whose judged class is a at the start, b at the end and changes exactly once on the way.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from gantool.fileio import atomic_write_bytes, atomic_write_figure, atomic_write_json


def parse_pair(text: str) -> tuple[int, int]:
    a, _, b = text.partition(":")
    return int(a), int(b)


def morph_probs(g: Any, spec: Any, judge: Any, a: int, b: int, n: int, steps: int, seed: int) -> np.ndarray:
    """(steps, n, K) judge probabilities of n z's images along the a -> b path."""
    import torch

    from gantool.contract import class_path
    from gantool.noise import make_noise

    z = torch.from_numpy(make_noise(seed, n, spec.latent_dim, spec.noise))
    weights = torch.from_numpy(class_path(a, b, steps, spec.num_classes))
    out = []
    with torch.no_grad():
        for w in weights:
            x = g(z, w.expand(n, -1).contiguous()).float().clamp(-1, 1)
            out.append(torch.softmax(judge(x), dim=1).numpy())
    return np.stack(out)


def flip_point(pa: np.ndarray, pb: np.ndarray, t: np.ndarray) -> float | None:
    """The weight of b where the mean P(b) first exceeds the mean P(a), linear between steps."""
    d = pb - pa
    for i in range(1, len(d)):
        if d[i - 1] <= 0 < d[i]:
            return float(t[i - 1] + (t[i] - t[i - 1]) * (-d[i - 1]) / (d[i] - d[i - 1]))
    return None if d[0] <= 0 else 0.0


def decided_share(probs: np.ndarray, a: int, b: int) -> float:
    """Share of z whose judged class goes a ... a, b ... b along the path (one clean switch)."""
    cls = probs.argmax(2)  # (steps, n)
    ok = 0
    for path in cls.T:
        switches = np.flatnonzero(path[1:] != path[:-1])
        ok += int(path[0] == a and path[-1] == b and len(switches) == 1)
    return ok / cls.shape[1]


def measure(models: list[str], pairs: list[tuple[int, int]], n: int, steps: int, seed: int) -> list[dict[str, Any]]:
    from gantool.train.checkpoint import load_generator
    from gantool.train.judge import load_judges

    judges = load_judges(())
    rows = []
    t = np.linspace(0, 1, steps)
    for model in models:
        spec, g = load_generator(model)
        g = g.eval()
        for a, b in pairs:
            row: dict[str, Any] = {"model": model, "a": a, "b": b, "n": n, "steps": steps, "t": t.tolist()}
            for j in judges:
                probs = morph_probs(g, spec, j.judge.eval(), a, b, n, steps, seed)
                pa, pb = probs[:, :, a].mean(1), probs[:, :, b].mean(1)
                row[f"judge {j.judge.cfg.arch}"] = {"p_a": pa.tolist(), "p_b": pb.tolist(), "p_other": (1 - pa - pb).tolist(),
                               "flip": flip_point(pa, pb, t), "decided": decided_share(probs, a, b)}
            rows.append(row)
            print(table([row], [f"judge {j.judge.cfg.arch}" for j in judges], header=len(rows) == 1), flush=True)
    return rows


def table(rows: list[dict[str, Any]], judges: list[str], header: bool = True) -> str:
    head = "model     pair  " + "  ".join(f"{j:>12}: flip  decided  P(other) max" for j in judges)
    lines = [head] if header else []
    for r in rows:
        cells = []
        for j in judges:
            v = r[j]
            flip = "-" if v["flip"] is None else f"{v['flip']:.2f}"
            cells.append(f"{flip:>19}  {v['decided']:7.1%}  {max(v['p_other']):12.1%}")
        lines.append(f"{r['model']:<8}  {r['a']}->{r['b']}  " + "  ".join(cells))
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], judge: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    pairs = list(dict.fromkeys((r["a"], r["b"]) for r in rows))
    fig, axes = plt.subplots(len(models), len(pairs), figsize=(3.2 * len(pairs), 2.4 * len(models)),
                             squeeze=False, sharex=True, sharey=True)
    for r in rows:
        ax = axes[models.index(r["model"])][pairs.index((r["a"], r["b"]))]
        v = r[judge]
        ax.plot(r["t"], v["p_a"], label=f"P({r['a']})")
        ax.plot(r["t"], v["p_b"], label=f"P({r['b']})")
        ax.plot(r["t"], v["p_other"], color="gray", linestyle=":", label="P(other)")
        if v["flip"] is not None:
            ax.axvline(v["flip"], color="black", linewidth=0.8, linestyle="--")
        ax.set_title(f"{r['model']} {r['a']}->{r['b']}" + ("" if v["flip"] is None else f", flip {v['flip']:.2f}"),
                     fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left")
    for ax in axes[-1]:
        ax.set_xlabel("weight of class b")
    fig.suptitle(f"the {judge}'s class probabilities along a class-weight path (z fixed; mean over z)", fontsize=10)
    fig.tight_layout()
    atomic_write_figure(path, fig, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["cgan", "cdcgan", "cwgan", "cgan-in"])
    p.add_argument("--pairs", nargs="+", default=["3:8", "1:7", "4:9", "0:6"])
    p.add_argument("--n", type=int, default=300, help="z per pair")
    p.add_argument("--steps", type=int, default=21)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="unused beyond the judges' check (they know MNIST)")
    p.add_argument("--out", default="benchmarks/results/quality/class_morph")
    args = p.parse_args()
    rows = measure(args.models, [parse_pair(x) for x in args.pairs], args.n, args.steps, args.seed)
    judges = [k for k in rows[0] if k.startswith("judge ")]
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), {"rows": rows})
    atomic_write_bytes(out.with_suffix(".txt"), (table(rows, judges) + "\n").encode())
    plot(rows, judges[0], out.with_suffix(".png"))
    print(f"wrote {out}.json, .txt and .png")


if __name__ == "__main__":
    main()
