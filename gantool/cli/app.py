"""The click group and what every command shares: one-line errors, JSON output, extras checks."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

import gantool
from gantool.errors import GantoolError
from gantool.noise import MAX_SEED

DEVICE = click.Choice(["auto", "cpu", "cuda"])
SEED = click.IntRange(0, MAX_SEED)  # every command alike (gantool/noise.py says why 32 bits)


def write_json(path: str | None, obj: Any) -> None:
    if path:
        from gantool.fileio import atomic_write_json

        atomic_write_json(path, obj)


def need_torch(command: str) -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise GantoolError(f"`gantool {command}` needs PyTorch, which is not installed.",
                           note='install the training extra: pip install "gantool[train]".') from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(gantool.__version__, prog_name="gantool")
def cli() -> None:
    """Train classic GANs on MNIST, export them, and sample fast."""
    show_progress_log()


def show_progress_log() -> None:
    """Library code logs through `logging.getLogger(__name__)`; the CLI shows gantool's INFO lines on
    stderr, one plain line each (progress and notes), and nothing from other libraries' loggers."""
    log = logging.getLogger("gantool")
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    root = logging.getLogger()  # other libraries (onnxruntime.quantization logs advice to the root logger)
    if not any(isinstance(h, _Stderr) for h in root.handlers):
        quiet = _Stderr()
        quiet.setLevel(logging.ERROR)
        root.addHandler(quiet)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (tests and callers may swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


