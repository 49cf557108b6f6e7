"""The generators that ship inside the package: fp16 safetensors plus a model card.

Weights are stored in fp16 and loaded into fp32 modules, so the fp16-rounded model is the one that
every later check (eval, export, runtime) sees. The spec rides in the safetensors header, so a
shipped file rebuilds its generator with no other input and loading runs no code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from gantool.contract import SPEC_KEY
from gantool.errors import GantoolError
from gantool.fileio import atomic_write_bytes
from gantool.paths import WEIGHTS_DIR
from gantool.spec import ModelSpec
from gantool.train.header import header_spec

MNIST_ATTRIBUTION = ("MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, "
                     "Creative Commons Attribution-Share Alike 3.0 (CC BY-SA 3.0).")


def shipped_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.safetensors"


def write_shipped(path: Path, spec: ModelSpec, generator_state: dict[str, torch.Tensor], card: dict[str, Any]) -> None:
    from safetensors.torch import save

    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in generator_state.items()}
    meta = {SPEC_KEY: json.dumps(spec.to_dict(), sort_keys=True), "card": json.dumps(card)}
    atomic_write_bytes(path, save(tensors, metadata=meta))


def read_shipped(path: Path) -> tuple[ModelSpec, torch.nn.Module, dict[str, Any]]:
    from gantool.train.checkpoint import load_safetensors, load_weights
    from gantool.train.zoo import build_generator

    meta, state = load_safetensors(path, "generator file")
    spec = header_spec(meta, path)  # SPEC_KEY, or gantool 0.1's "gantool_spec"
    g = build_generator(spec)
    load_weights(g, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, path, spec.arch)
    return spec, g.eval(), _card(meta.get("card"))


def _card(text: str | None) -> dict[str, Any]:
    """The model card in a header; an unreadable one is no card rather than a failed load."""
    try:
        card = json.loads(text or "{}")
    except (ValueError, RecursionError):
        return {}
    return card if isinstance(card, dict) else {}


def load_shipped(name: str) -> tuple[ModelSpec, torch.nn.Module, dict[str, Any]]:
    path = shipped_path(name)
    if not path.is_file():
        raise GantoolError(f"no shipped weights for {name!r} in this gantool; "
                           f"shipped: {', '.join(sorted(p.stem for p in WEIGHTS_DIR.glob('*.safetensors') if not p.stem.startswith('judge'))) or 'none'}.",
                           note=f"train one (gantool train --model {name}) and pass its checkpoint.")
    return read_shipped(path)
