"""The shipped-weights quality bars: one definition for the model cards and the README's table."""

from __future__ import annotations

from typing import Any

LABEL_ACCURACY_BAR = 0.97  # overall label accuracy of a conditional generator
WORST_DIGIT_BAR = 0.90  # label accuracy of its worst digit
RECALL_FLOOR = 0.05  # below this, samples collapsed onto a few modes
WORST_CLASS_SHARE_BAR = 0.05  # every class must be at least this share of the samples


def quality_bars(ev: dict[str, Any]) -> list[str]:
    """The bars that an evaluation (`gantool eval`'s report) misses; empty when it meets them all."""
    missed = []
    if "label_accuracy" in ev:
        la = ev["label_accuracy"]
        if la["overall"] < LABEL_ACCURACY_BAR:
            missed.append(f"label accuracy {la['overall']:.2%} < {LABEL_ACCURACY_BAR:.0%}")
        if min(la["per_class"]) < WORST_DIGIT_BAR:
            missed.append(f"worst digit's label accuracy {min(la['per_class']):.2%} < {WORST_DIGIT_BAR:.0%}")
    if ev["recall"] < RECALL_FLOOR:  # not one of the bars, but a collapsed generator must not read as "met"
        missed.append(f"recall {ev['recall']:.3f}: samples collapsed onto a few modes")
    if ev["mode_coverage"]["worst_class_share"] < WORST_CLASS_SHARE_BAR:
        missed.append(f"worst class share {ev['mode_coverage']['worst_class_share']:.2%} < "
                      f"{WORST_CLASS_SHARE_BAR:.0%}")
    return missed
