"""The documentation keeps up with the code: every CLI option is in docs/cli.md, every doc link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import click

from gantool.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((prefix + name, cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, prefix + name + " ")
    return out


def test_every_cli_option_is_in_the_cli_reference():
    text = (ROOT / "docs" / "cli.md").read_text()
    missing = [f"{name} {opt}" for name, cmd in _commands(cli) for p in cmd.params if isinstance(p, click.Option)
               for opt in p.opts if opt.startswith("--") and opt != "--help" and opt not in text]
    assert not missing, f"docs/cli.md lacks: {missing}"


def test_links_between_docs_resolve():
    broken = []
    for md in [ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", md.read_text()):
            if not target.startswith(("http://", "https://", "mailto:")) and not (md.parent / target).exists():
                broken.append(f"{md.relative_to(ROOT)} -> {target}")
    assert not broken, broken
