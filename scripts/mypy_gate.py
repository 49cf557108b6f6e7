"""CI's mypy gate: run `mypy` as configured in pyproject.toml ([tool.mypy], files = ["gantool"]) and fail
on any unresolved first-party import, or on more type errors than .ci/mypy-baseline allows.

    .venv/bin/python scripts/mypy_gate.py            # from anywhere; runs in the repo root

The baseline only goes down: when the count drops, lower .ci/mypy-baseline to the printed number.
The last line is the verdict, one line (stderr on failure).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".ci" / "mypy-baseline"
ERROR = re.compile(r"^(?P<where>[^:\n]+:\d+(?::\d+)?): error: (?P<msg>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$")
IMPORT_CODES = {"import-not-found", "import-untyped", "import"}
FIRST_PARTY = re.compile(r"""["'](gantool(?:\.[\w.]+)?)["']""")


def fail(message: str) -> int:
    print(f"mypy gate: FAILED: {message}", file=sys.stderr)
    return 1


def first_party_import_error(msg: str, code: str | None) -> bool:
    """A gantool.* module mypy cannot resolve: import-not-found/untyped, or `from gantool.x import y`
    where gantool.x has no y (attr-defined on a first-party module)."""
    named = FIRST_PARTY.search(msg)
    if named is None:
        return False
    if code in IMPORT_CODES or "Cannot find implementation" in msg or "Library stubs not installed" in msg:
        return True
    return code == "attr-defined" and msg.startswith("Module ")


def config_problems() -> list[str]:
    """ignore_missing_imports / per-line import ignores must never cover first-party modules."""
    problems = []
    text = (ROOT / "pyproject.toml").read_text()
    for block in re.split(r"^\[", text, flags=re.M):
        if block.startswith(("[tool.mypy.overrides]", "tool.mypy]")) \
                and re.search(r"^\s*ignore_missing_imports\s*=\s*true", block, flags=re.M) \
                and re.search(r"""["']gantool(?:\.\*|["'.])""", block):
            problems.append("pyproject.toml sets an ignore_missing_imports that covers gantool.*")
    sources = sorted(Path(d, f) for d, _, fs in os.walk(ROOT / "gantool", followlinks=True)  # into the links
                     for f in fs if f.endswith(".py"))
    for path in sources:
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if "type: ignore" in line and re.search(r"^\s*(from\s+(gantool|\.)|import\s+gantool)", line):
                problems.append(f"{path.relative_to(ROOT)}:{n}: a type: ignore on a first-party import")
    return problems


def main() -> int:
    baseline = int(BASELINE.read_text().split()[0])
    env = {**os.environ, "MYPY_FORCE_COLOR": "0", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-pretty", "--show-error-codes", "--no-color-output"],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    text = out.stdout + out.stderr
    errors = [m for m in map(ERROR.match, text.splitlines()) if m]
    for m in errors:
        print(m.group(0))
    if out.returncode not in (0, 1) or "prevented further checking" in text:
        print(text[-4000:], file=sys.stderr)
        return fail(f"mypy did not finish checking (exit {out.returncode}); see its output above.")
    if out.returncode == 1 and not errors:
        print(text[-4000:], file=sys.stderr)
        return fail("mypy failed but printed no error lines this gate can read.")
    unresolved = [m for m in errors if first_party_import_error(m.group("msg"), m.group("code"))]
    if unresolved:
        m = unresolved[0]
        more = f" (and {len(unresolved) - 1} more)" if len(unresolved) > 1 else ""
        return fail(f"unresolved first-party import at {m.group('where')}: {m.group('msg')}{more}")
    problems = config_problems()
    if problems:
        return fail(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    count = len(errors)
    print(f"mypy gate: {count} type errors (baseline {baseline}), 0 unresolved first-party imports")
    if count > baseline:
        return fail(f"{count} mypy errors, more than the baseline {baseline} in .ci/mypy-baseline; fix the new ones.")
    if count < baseline:
        print(f"mypy gate: fewer errors than the baseline: lower .ci/mypy-baseline to {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
