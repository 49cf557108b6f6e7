"""Where gantool keeps files: the weights shipped in the package and the user's cache (torch-free)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

WEIGHTS_DIR = Path(str(resources.files("gantool") / "weights"))


def cache_dir() -> Path:
    """$GANTOOL_CACHE, else $XDG_CACHE_HOME/gantool, else ~/.cache/gantool."""
    if os.environ.get("GANTOOL_CACHE"):
        return Path(os.environ["GANTOOL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gantool"


def shipped_onnx(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.onnx"


def cached_onnx(name: str) -> Path:
    """The cached export of a shipped model, named by the weights' digest and gantool's version, so that
    re-shipped weights or a new exporter never reuse a stale file."""
    import hashlib

    import gantool

    weights = WEIGHTS_DIR / f"{name}.safetensors"
    tag = hashlib.sha256(weights.read_bytes()).hexdigest()[:12] if weights.is_file() else "none"
    return cache_dir() / "onnx" / f"{name}-{gantool.__version__}-{tag}.onnx"

# The 28x28 generators ship as ONNX too, so the base install samples them without torch.
SHIPPED_ONNX = ("gan", "cgan", "cdcgan", "cwgan")
