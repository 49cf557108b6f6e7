"""The click group and what every command shares: one-line errors, JSON output, extras checks."""

from __future__ import annotations

from typing import Any

import click

import gantool
from gantool.errors import GantoolError

DEVICE = click.Choice(["auto", "cpu", "cuda"])


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


