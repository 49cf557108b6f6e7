"""`gantool eval -o report.png`: the samples beside what the judges say of them.

One picture a person reads at a glance: the fixed-noise grid, per-digit label accuracy under every
judge (conditional models) against the bar, and each judge's class histogram against the even share.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from gantool.fileio import atomic_write_bytes
from gantool.train.quality import WORST_CLASS_SHARE_BAR, WORST_DIGIT_BAR

JUDGE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")


def save_report(path: str | os.PathLike[str], report: dict[str, Any], grid: np.ndarray) -> None:
    """grid: uint8 (H, W) sample grid; report: evaluate()'s dict (its "judges" views)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    views = report["judges"]
    conditional = "label_accuracy" in views[0]
    panels = 2 if conditional else 1
    fig = plt.figure(figsize=(11, 5), dpi=110)
    grid_ax = fig.add_axes((0.01, 0.04, 0.42, 0.86))
    grid_ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    grid_ax.set_axis_off()
    fd = report["fd_judge"]
    grid_ax.set_title(f"{report['model']}: FD-judge {fd['value']:.1f} (floor {fd['real_floor_train10k_vs_test']:.1f}),"
                      f" precision {report['precision']:.2f}, recall {report['recall']:.2f}", fontsize=9)
    classes = np.arange(len(views[0]["mode_coverage"]["class_share"]))
    width = 0.8 / len(views)
    axes = [fig.add_axes((0.5, 0.1 + i * 0.45, 0.47, 0.33 if panels == 2 else 0.75)) for i in range(panels)]
    hist_ax = axes[0]
    for i, v in enumerate(views):
        offset = (i - (len(views) - 1) / 2) * width
        colour = JUDGE_COLOURS[i % len(JUDGE_COLOURS)]
        hist_ax.bar(classes + offset, 100 * np.asarray(v["mode_coverage"]["class_share"]), width, color=colour,
                    label=f"{v['name']} ({v['arch']})")
        if conditional:
            acc = v["label_accuracy"]
            axes[1].bar(classes + offset, 100 * np.asarray(acc["per_class"]), width, color=colour,
                        label=f"{v['arch']}: {acc['overall']:.2%}")
    hist_ax.axhline(100 / len(classes), color="gray", lw=0.8, ls=":", label="even share")
    hist_ax.axhline(100 * WORST_CLASS_SHARE_BAR, color="red", lw=0.8, ls="--", label="bar")
    hist_ax.set_ylabel("share of samples (%)")
    hist_ax.set_title(f"class histogram of {report['n']:,} samples", fontsize=9)
    if conditional:
        acc_ax = axes[1]
        acc_ax.axhline(100 * WORST_DIGIT_BAR, color="red", lw=0.8, ls="--", label="bar per digit")
        low = min(min(v["label_accuracy"]["per_class"]) for v in views)
        acc_ax.set_ylim(max(0.0, 100 * low - 5), 100.5)
        acc_ax.set_ylabel("label accuracy (%)")
        acc_ax.set_title("label accuracy per digit, by judge", fontsize=9)
        acc_ax.legend(fontsize=7, loc="lower left", ncol=3)
    for ax in axes:
        ax.set_xticks(classes)
        ax.grid(axis="y", alpha=0.3)
    hist_ax.legend(fontsize=7, loc="lower left", ncol=2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
