"""`gantool train --tensorboard`: log.csv's rows and the fixed-noise grids, as TensorBoard events.

A view of what the loop has already computed, never a training input: it reads the logged losses,
the optimizers' learning rates and the grid array the loop saved as PNG, and draws nothing from the
run's RNG streams, so a run logs the same losses and ends in the same weights with it or without.
Rank 0 alone writes (RunOutputs holds one only there). On --resume the writer hides the steps after
the checkpoint, which a killed run may have written and the resumed run redoes, so each step shows once.
TensorBoard is part of the `train` extra but imported only here, and only for --tensorboard.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gantool.errors import GantoolError

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

DEFAULT_DIR = "tensorboard"  # under the run folder when --tensorboard names no folder
EVENTS_GLOB = "events.out.tfevents.*"  # the event files TensorBoard's writers name
# log.csv column -> scalar tag; one event of each per log.csv row, at the row's step
SCALAR_TAGS = {"d_loss": "loss/D", "g_loss": "loss/G", "d_real": "D/real", "d_fake": "D/fake",
               "images_per_s": "speed/images_per_s"}
LR_TAGS = {"G": "lr/G", "D": "lr/D"}  # Adam's learning rate of each network, as the optimizer holds it
IMAGE_TAG = "samples"  # the fixed-noise grid, at every step that writes samples/*.png


def _summary_writer() -> type[SummaryWriter]:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch.utils.tensorboard raises ImportError when the tensorboard package is absent
        raise GantoolError("--tensorboard needs TensorBoard, which is not installed.",
                           note='install the training extra: pip install "gantool[train]".') from None
    return SummaryWriter


def check_tensorboard() -> None:
    """Refuse --tensorboard before any data is read or any file written (on every rank alike)."""
    _summary_writer()


def refuse_other_events(directory: Path) -> None:
    """A new run writing beside another run's events would show two runs' steps as one curve."""
    if directory.is_dir() and any(directory.glob(EVENTS_GLOB)):
        raise GantoolError(f"--tensorboard {directory} already holds TensorBoard events from another run; a new run "
                           f"would mix its steps with them.",
                           note="choose another --tensorboard folder or move them aside; --resume continues a run's own.")


class TensorBoardLog:
    """One SummaryWriter for one invocation of a run. resume_step: the checkpoint's step on --resume."""

    def __init__(self, directory: Path, resume_step: int | None) -> None:
        writer = _summary_writer()
        # TensorBoard hides every event of this folder at steps >= purge_step: those after the checkpoint,
        # which the resumed run writes again. The checkpoint's own step is kept (its row and grid stand).
        purge = None if resume_step is None else resume_step + 1
        self.directory = directory
        self.writer: SummaryWriter = writer(log_dir=str(directory), purge_step=purge)

    def scalars(self, step: int, row: Mapping[str, Any], lrs: Mapping[str, float]) -> None:
        """One log.csv row (its float columns) and the learning rates, at the row's step."""
        for column, tag in SCALAR_TAGS.items():
            self.writer.add_scalar(tag, float(row[column]), step)
        for net, tag in LR_TAGS.items():
            self.writer.add_scalar(tag, float(lrs[net]), step)

    def image(self, step: int, grid: np.ndarray) -> None:
        """The uint8 grid as saved to samples/ (unscaled): (H, W) gray or (H, W, C)."""
        self.writer.add_image(IMAGE_TAG, grid, step, dataformats="HW" if grid.ndim == 2 else "HWC")

    def flush(self) -> None:
        """At every checkpoint, as log.csv: a kill then loses no event up to the checkpoint."""
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
