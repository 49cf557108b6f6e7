"""A safetensors file's header, read without torch: what `gantool models` can say in a base install.

The format is an 8-byte little-endian header length, then a JSON header mapping each tensor name to
its dtype, shape and byte offsets, plus an optional "__metadata__" dict of strings (gantool keeps the
spec and the model card there).
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

from gantool.contract import SPEC_KEY
from gantool.errors import CheckpointError, GantoolError
from gantool.spec import ModelSpec

LEGACY_SPEC_KEY = "gantool_spec"  # how gantool 0.1 spelled SPEC_KEY in shipped generator files
MAX_HEADER_BYTES = 100 << 20  # safetensors' own bound on the JSON header
# Buffers that ride in a state dict beside the parameters; they are not counted as parameters.
BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")


def read_header(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, tuple[str, tuple[int, ...]]]]:
    """(metadata, {tensor name: (dtype, shape)}) of a safetensors file; CheckpointError when it is not one."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(8)
            size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 0 < size <= MAX_HEADER_BYTES:
                raise ValueError(f"header length {size}")
            raw = f.read(size)
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise TypeError("the header is not a JSON object")
        meta = header.pop("__metadata__", None) or {}
        tensors = {name: (str(t["dtype"]), tuple(int(d) for d in t["shape"])) for name, t in header.items()}
    except (OSError, ValueError, KeyError, TypeError, struct.error) as e:
        raise CheckpointError(f"{path}: not a safetensors file ({type(e).__name__}: {str(e)[:120]}).") from None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(f"{path}: its safetensors metadata must map strings to strings.")
    return meta, tensors


def header_spec(meta: dict[str, str], path: str | os.PathLike) -> ModelSpec:
    """The spec in a generator file's metadata, under SPEC_KEY or gantool 0.1's spelling of it."""
    text = meta.get(SPEC_KEY, meta.get(LEGACY_SPEC_KEY))
    if text is None:
        raise CheckpointError(f"{path}: not a gantool generator file: its metadata has no {SPEC_KEY}.")
    try:
        d: Any = json.loads(text)
    except (ValueError, RecursionError):
        raise CheckpointError(f"{path}: its {SPEC_KEY} is not valid JSON.") from None
    try:
        return ModelSpec.from_dict(d)
    except GantoolError as e:
        raise CheckpointError(f"{path}: {e}") from None


def parameter_count(tensors: dict[str, tuple[str, tuple[int, ...]]]) -> int:
    """Parameters in a state dict's tensors, norm statistics left out (what count_params gives)."""
    return sum(math.prod(shape) for name, (_, shape) in tensors.items() if not name.endswith(BUFFER_SUFFIXES))
