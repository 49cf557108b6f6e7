"""The `gantool` command: a thin click group. Each command parses options, builds the config and
calls one library function; heavy imports (torch) stay inside the commands that need them."""

from __future__ import annotations

import os

import click

from gantool.cli import comparing, exporting, sampling, serving, training  # noqa: F401  (each registers its commands)
from gantool.cli.app import cli
from gantool.errors import GantoolError

__all__ = ["cli", "main"]


def _speaks() -> bool:
    """In a torchrun job the ranks of a node fail alike (same files, same options): the first rank of
    each node prints the error, the others only exit with it. torchrun's summary names every rank."""
    return os.environ.get("LOCAL_RANK", "0") == "0"


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="gantool", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:  # usage errors: bad option, missing argument, bad choice
        click.echo(f"gantool: error: {e.format_message()}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("gantool: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("gantool: interrupted", err=True)
        return 130
    except GantoolError as e:
        if _speaks():
            click.echo(f"gantool: error: {e}", err=True)
        return e.exit_code
    except OSError as e:  # disk full, permission denied: the user's environment, not a bug
        click.echo(f"gantool: error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}", err=True)
        return 1
    except Exception as e:  # a bug: one line, unless GANTOOL_DEBUG asks for the traceback
        if os.environ.get("GANTOOL_DEBUG"):
            raise
        first = (str(e).strip().splitlines() or [""])[0][:200]
        click.echo(f"gantool: internal error: {type(e).__name__}: {first} (a bug in gantool: please report it "
                   f"with the command; GANTOOL_DEBUG=1 shows the traceback)", err=True)
        return 70
