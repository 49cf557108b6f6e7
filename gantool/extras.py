"""Which optional extras are installed, asked without importing them (torch alone takes seconds)."""

from __future__ import annotations

import importlib.util


def installed(module: str) -> bool:
    """Whether `import module` would find it. An import blocker or a None in sys.modules counts as absent."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
