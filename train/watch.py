"""`gantool train --eval-every N`: FD-judge and label accuracy during training, and the best checkpoint.

A GAN's last checkpoint is not its best (dcgan's FD rose again with more epochs), so every N steps
the EMA generator is measured on a small sample against the fair reference of `gantool eval`, the
row goes to eval.csv, the curve to eval.png, and the checkpoint of the lowest FD is kept as best.pt
beside checkpoint.pt. The judge is a measurement only: nothing here feeds back into training, and
nothing draws from the training RNG streams, so a run with --eval-every trains the same steps as
one without.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gantool.errors import GantoolError
from gantool.fileio import atomic_write_bytes, atomic_write_figure
from gantool.spec import ModelSpec
from gantool.train.checkpoint import (
    BEST_NAME,
    EVALS_DIR,
    load_checkpoint,
    save_checkpoint,
)
from gantool.train.data import Split

EVAL_LOG = "eval.csv"
EVAL_PLOT = "eval.png"
EVAL_FIELDS = ["step", "epoch", "fd_judge", "label_accuracy", "worst_class_share", "n", "best"]
EVAL_SEED = 0  # the same z (and cycled labels) at every evaluation, so the curve moves with G alone


@dataclass
class WatchOptions:
    every: int  # steps between evaluations (and the last step)
    samples: int = 2000
    judge_path: str | None = None  # None: the shipped primary judge, which must know the run's data
    keep: bool = False  # --keep-evals: every measured checkpoint kept in evals/, to choose among after the run


class TrainingWatch:
    """Rank 0's evaluator: the judge and the real-data reference are computed once, at the start."""

    def __init__(self, spec: ModelSpec, train: Split, test: Split, opts: WatchOptions, out_dir: Path,
                 device: str = "cpu", where: str = "DIR") -> None:
        """where: the data folder, for the command that a refusal suggests."""
        from gantool.train.evaluate import check_fits, prepare_real
        from gantool.train.judge import check_judge_data, load_judge

        self.spec, self.opts, self.out_dir = spec, opts, out_dir
        self.judge, _ = load_judge(opts.judge_path)
        self.judge_name = Path(opts.judge_path).name if opts.judge_path else "the shipped primary judge"
        if opts.judge_path is None:
            check_judge_data(self.judge, (train, test), "--eval-every", where)
        check_fits(self.judge, spec, (train, test))
        self.judge = self.judge.to(device)
        few = Split(train.images[:opts.samples], train.labels[:opts.samples], train.info)  # FD needs no more
        self.real = prepare_real(self.judge, few, test, n_floor=len(few.images), size=spec.image_size)
        self.rows: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None

    def start(self, resume_step: int | None, seed: int) -> None:
        """A new run starts an empty curve (the loop refuses a folder with another run's best.pt); a
        resumed one keeps its rows up to the checkpoint, and its best, once that proves to be this run's."""
        self.rows = _kept_rows(self.out_dir / EVAL_LOG, resume_step)
        self.best = None
        if resume_step is None or not (self.out_dir / BEST_NAME).is_file():
            return
        path = self.out_dir / BEST_NAME
        kept = load_checkpoint(path)
        best = kept.get("best_eval")
        if not isinstance(best, dict) or not isinstance(best.get("fd_judge"), float):
            raise GantoolError(f"{path}: holds no best_eval record; it was not written by --eval-every.",
                               note="move it aside to start a new best from this run.")
        if kept.get("spec") != self.spec.to_dict() or kept.get("seed") != seed or not best.get("step", 0) <= resume_step:
            raise GantoolError(f"{path} is not from the run being resumed (another model, seed or a later step).",
                               note="move it aside to start a new best from this run.")
        if best.get("n") != self.opts.samples or best.get("judge", self.judge_name) != self.judge_name:
            raise GantoolError(f"the run's best.pt was measured on {best.get('n')} samples by "
                               f"{best.get('judge')}; this resume measures {self.opts.samples} by "
                               f"{self.judge_name}, and their FDs do not compare.",
                               note=f"resume with --eval-samples {best.get('n')} and the same --judge, or move "
                                    f"{BEST_NAME} aside to start a new best.")
        self.best = best

    def measure(self, sampler: torch.nn.Module) -> dict[str, float]:
        """FD-judge (fair reference), label accuracy and the worst class share of opts.samples images."""
        from gantool.train.evaluate import frechet_distance, generate, judge_outputs
        from gantool.train.judge import class_counts

        was_training = sampler.training
        sampler.eval()
        try:
            x, labels = generate(sampler, self.spec, self.opts.samples, EVAL_SEED)
        finally:
            sampler.train(was_training)
        if not bool(torch.isfinite(x).all()):
            return {"fd_judge": float("nan"), "label_accuracy": float("nan"), "worst_class_share": 0.0}
        feats, preds = judge_outputs(self.judge, x)
        counts = class_counts(preds, labels, self.judge.cfg.num_classes)
        return {"fd_judge": frechet_distance(feats, self.real.test_feats),
                "label_accuracy": counts["label_accuracy"]["overall"] if labels is not None else float("nan"),
                "worst_class_share": counts["mode_coverage"]["worst_class_share"]}

    def record(self, step: int, epoch: float, sampler: torch.nn.Module, state: dict[str, Any]) -> dict[str, Any]:
        """Measure, keep the checkpoint as best.pt if its FD is the lowest so far, log the row and plot.

        best.pt holds its own measurement ("best_eval"), written in the same atomic file, so a resumed
        run knows the FD to beat without trusting the log."""
        ev = self.measure(sampler)
        fd = ev["fd_judge"]
        is_best = not math.isnan(fd) and (self.best is None or fd < self.best["fd_judge"])
        row = {"step": step, "epoch": round(epoch, 4), **ev, "n": self.opts.samples, "best": int(is_best)}
        if is_best:
            self.best = {**row, "judge": self.judge_name}
            save_checkpoint(self.out_dir / BEST_NAME, {**state, "best_eval": self.best})
        if self.opts.keep:  # FD alone is not the choice: a later step may hold the better label accuracy
            (self.out_dir / EVALS_DIR).mkdir(exist_ok=True)
            save_checkpoint(kept_eval_path(self.out_dir, step), {**state, "eval": {**row, "judge": self.judge_name}})
        self.rows.append(row)
        _write_rows(self.out_dir / EVAL_LOG, self.rows)
        plot_curve(self.rows, self.out_dir / EVAL_PLOT, self.spec.arch, self.real.reference)
        return row


def kept_eval_path(out_dir: Path, step: int) -> Path:
    return out_dir / EVALS_DIR / f"step-{step:07d}.pt"


def _kept_rows(path: Path, resume_step: int | None) -> list[dict[str, Any]]:
    """eval.csv's rows up to the checkpoint a resumed run starts from (later ones will be redone)."""
    if resume_step is None or not path.is_file():
        return []
    rows = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            try:
                row = {"step": int(r["step"]), "epoch": float(r["epoch"]), "fd_judge": float(r["fd_judge"]),
                       "label_accuracy": float(r["label_accuracy"]),
                       "worst_class_share": float(r["worst_class_share"]), "n": int(r["n"]), "best": int(r["best"])}
            except (KeyError, TypeError, ValueError):
                break  # a row cut short by a kill
            if row["step"] <= resume_step:
                rows.append(row)
    return rows


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, EVAL_FIELDS)
    writer.writeheader()
    writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def plot_curve(rows: list[dict[str, Any]], path: Path, model: str, reference: str) -> None:
    """FD-judge against steps (log scale), the best marked, label accuracy (0-100%) on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    lines = ax.plot(steps, [r["fd_judge"] for r in rows], "o-", color="tab:blue", ms=3, label="FD-judge")
    best = [r for r in rows if r["best"]]
    if best:
        lines += ax.plot(best[-1]["step"], best[-1]["fd_judge"], "*", color="tab:red", ms=12,
                         label=f"best: FD {best[-1]['fd_judge']:.1f} at step {best[-1]['step']} (best.pt)")
    if all(r["fd_judge"] > 0 for r in rows):
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")  # 60, not 6x10^1
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generator step")
    ax.set_ylabel(f"FD-judge on {rows[-1]['n'] if rows else 0:,} samples (lower is better)")
    ax.grid(alpha=0.3, which="both")
    if any(not math.isnan(r["label_accuracy"]) for r in rows):  # conditional models only
        ax2 = ax.twinx()
        lines += ax2.plot(steps, [100 * r["label_accuracy"] for r in rows], "s--", color="tab:green", ms=3,
                          label="label accuracy (primary judge)")
        ax2.set_ylim(0, 100)
        ax2.set_ylabel("label accuracy (%)")
    fig.legend(handles=lines, loc="upper center", ncol=len(lines), fontsize=8, frameon=False)
    ax.set_title(f"{model} during training, FD against {reference}", fontsize=9, pad=4)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    atomic_write_figure(path, fig)
