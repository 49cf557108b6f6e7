"""`gantool eval -o report.png`: the samples beside what the judges say of them.

One picture a person reads at a glance: the fixed-noise grid, per-digit label accuracy under every
judge (conditional models) against the bar, and each judge's class histogram against the even share.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gantool.fileio import atomic_write_figure
from gantool.train.quality import WORST_CLASS_SHARE_BAR, WORST_DIGIT_BAR

JUDGE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")


def _line(ax: Any, y: float, text: str, colour: str, style: str) -> None:
    """A reference line, named at its right end (a legend would cover the bars)."""
    ax.axhline(y, color=colour, lw=0.8, ls=style)
    ax.annotate(text, (1.0, y), xycoords=("axes fraction", "data"), xytext=(3, 0), textcoords="offset points",
                va="center", fontsize=7, color=colour)


def save_report(path: str | os.PathLike[str], report: dict[str, Any], grid: np.ndarray) -> None:
    """grid: uint8 (H, W) sample grid; report: evaluate()'s dict (its "judges" views)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    views = report["judges"]
    conditional = "label_accuracy" in views[0]
    panels = 2 if conditional else 1
    fig = plt.figure(figsize=(11, 5), dpi=110)
    grid_ax = fig.add_axes((0.01, 0.04, 0.42, 0.84))
    grid_ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    grid_ax.set_axis_off()
    fd = report["fd_judge"]
    grid_ax.set_title(f"{report['model']}: FD-judge {fd['value']:.1f} (floor {fd['real_floor_train10k_vs_test']:.1f}),"
                      f" precision {report['precision']:.2f}, recall {report['recall']:.2f}", fontsize=9)
    classes = np.arange(len(views[0]["mode_coverage"]["class_share"]))
    width = 0.8 / len(views)
    axes = [fig.add_axes((0.5, 0.08 + i * 0.44, 0.42, 0.33 if panels == 2 else 0.75)) for i in range(panels)]
    hist_ax = axes[0]
    handles = []
    for i, v in enumerate(views):
        offset = (i - (len(views) - 1) / 2) * width
        colour = JUDGE_COLOURS[i % len(JUDGE_COLOURS)]
        label = f"{v['arch']} judge" + (f": label accuracy {v['label_accuracy']['overall']:.2%}" if conditional else "")
        handles.append(hist_ax.bar(classes + offset, 100 * np.asarray(v["mode_coverage"]["class_share"]), width,
                                   color=colour, label=label))
        if conditional:
            axes[1].bar(classes + offset, 100 * np.asarray(v["label_accuracy"]["per_class"]), width, color=colour)
    _line(hist_ax, 100 / len(classes), "even share", "gray", ":")
    _line(hist_ax, 100 * WORST_CLASS_SHARE_BAR, f"bar {WORST_CLASS_SHARE_BAR:.0%}", "red", "--")
    hist_ax.set_ylabel("share of samples (%)")
    hist_ax.set_title(f"class histogram of {report['n']:,} samples", fontsize=9)
    if conditional:
        acc_ax = axes[1]
        _line(acc_ax, 100 * WORST_DIGIT_BAR, f"bar {WORST_DIGIT_BAR:.0%}", "red", "--")
        low = min(min(v["label_accuracy"]["per_class"]) for v in views)
        acc_ax.set_ylim(max(0.0, min(100 * low, 100 * WORST_DIGIT_BAR) - 3), 100.5)
        acc_ax.set_ylabel("label accuracy (%)")
        acc_ax.set_title("label accuracy per digit", fontsize=9)
    for ax in axes:
        ax.set_xticks(classes)
        ax.set_xlim(-0.6, len(classes) - 0.4)
        ax.grid(axis="y", alpha=0.3)
    fig.legend(handles=handles, loc="upper right", ncol=len(views), fontsize=8, frameon=False)
    atomic_write_figure(path, fig)
