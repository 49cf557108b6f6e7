"""Checkpoints: atomic writes, and loading without unpickling arbitrary code.

A checkpoint holds the ModelSpec and Recipe as plain dicts with schema versions, so it rebuilds
its models with no other input. `torch.load(weights_only=True)` only admits tensors and plain
containers, so a hostile file cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

import gantool
from gantool.errors import CheckpointError, GantoolError
from gantool.fileio import atomic_write_bytes
from gantool.spec import ModelSpec
from gantool.train.recipe import Recipe

CHECKPOINT_SCHEMA_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"  # --eval-every's lowest-FD checkpoint, beside the last (train/watch.py)
EVALS_DIR = "evals"  # --keep-evals: evals/step-NNNNNNN.pt, every measured step's checkpoint


def run_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a --resume continues from; a clear error when the run has none."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        raise CheckpointError(f"--resume: {path} does not exist; start a new run without --resume.")
    return path


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save({"schema_version": CHECKPOINT_SCHEMA_VERSION, "gantool_version": gantool.__version__, **payload}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found.")
    if not zipfile.is_zipfile(path):  # torch.save's format; text, pickles and other files stop here
        raise CheckpointError(f"{path}: not a readable gantool checkpoint (not a PyTorch zip archive).",
                              note="pass a checkpoint.pt written by gantool train, a shipped .safetensors or a zoo "
                                   "name.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # untrusted bytes: torch's weights-only unpickler raises many types (KeyError, ...)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if isinstance(e, pickle.UnpicklingError) or "weights_only" in first or "Weights only" in first:
            first = "it holds objects other than tensors and plain containers"
        raise CheckpointError(f"{path}: not a readable gantool checkpoint ({first[:160]}).",
                              note="checkpoints are loaded with weights_only=True; pickled code is refused.") from None
    if not isinstance(ckpt, dict) or ckpt.get("schema_version") != CHECKPOINT_SCHEMA_VERSION or "spec" not in ckpt:
        version = ckpt.get("schema_version") if isinstance(ckpt, dict) else None
        raise CheckpointError(f"{path}: not a gantool checkpoint of schema {CHECKPOINT_SCHEMA_VERSION} "
                              f"(found schema {version!r}).")
    return ckpt


def load_safetensors(path: Path, kind: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Header metadata and tensors of a gantool safetensors file (a judge, a shipped generator)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: {kind} not found.")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        return meta, load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a gantool {kind} ({type(e).__name__}: {str(e)[:120]}).") from None


def load_weights(module: torch.nn.Module, weights: Any, path: str | os.PathLike, arch: str,
                 part: str = "generator") -> None:
    """load_state_dict with one clear line when the weights belong to another model, or are not
    finite floating-point numbers where the model has floats (load_state_dict would cast integers
    silently, and NaN weights surface much later as NaN images or a failed eval)."""
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"{path}: it holds no {part} weights (a dict of tensors).",
                              note="it is not a complete gantool checkpoint.")
    own = module.state_dict()
    for name, value in weights.items():
        target = own.get(name)
        if target is None or not target.is_floating_point():
            continue  # unexpected keys and integer buffers: load_state_dict judges them below
        if not value.is_floating_point():
            raise CheckpointError(f"{path}: {part} tensor {name} is {str(value.dtype).replace('torch.', '')}; "
                                  f"weights must be floating point (float16, bfloat16, float32 or float64).")
        if not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: {part} tensor {name} holds NaN or infinite values; weights must be "
                                  f"finite.", note="the run it came from diverged; use an earlier checkpoint.")
    try:
        module.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        # torch's first line only says "Error(s) in loading state_dict for X:"; the next ones say what
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()] or [type(e).__name__]
        detail = " ".join(lines[1:] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines)
        first = detail if len(detail) <= 200 else detail[:197] + "..."
        raise CheckpointError(f"{path}: its {part} weights do not fit a {arch} {part} ({first}).",
                              note="the file's spec and weights disagree: it was made for another model "
                                   "or by an incompatible gantool.") from None


def spec_and_recipe(ckpt: dict[str, Any], source: str | os.PathLike = "the checkpoint") -> tuple[ModelSpec, Recipe]:
    """The checkpoint's spec and recipe, every field checked: a CheckpointError/SpecError line names the file."""
    if "recipe" not in ckpt:
        raise CheckpointError(f"{source}: it holds no training recipe; it is not a complete gantool checkpoint.")
    try:
        return ModelSpec.from_dict(ckpt["spec"]), Recipe.from_dict(ckpt["recipe"])
    except GantoolError as e:
        raise type(e)(f"{source}: {e}") from None


def load_generator(path: str | os.PathLike, ema: bool = True) -> tuple[ModelSpec, torch.nn.Module]:
    """A generator in eval mode from a zoo name (shipped weights), a shipped .safetensors file, or a
    training checkpoint (EMA weights when the run kept them)."""
    from gantool.train.shipped import load_shipped, read_shipped
    from gantool.train.zoo import ZOO, build_generator

    if str(path) in ZOO and not Path(path).is_file():
        return load_shipped(str(path))[:2]
    if not Path(path).exists() and not Path(path).suffix:
        raise CheckpointError(f"unknown model {str(path)!r}; allowed: {', '.join(ZOO)}, a training checkpoint "
                              f"(.pt) or a shipped generator (.safetensors).")
    if str(path).endswith((".onnx", ".plan")):
        raise CheckpointError(f"{path} is an exported engine, not PyTorch weights; allowed here: a zoo name, a "
                              f"training checkpoint (.pt) or a shipped generator (.safetensors).")
    if str(path).endswith(".safetensors"):
        return read_shipped(Path(path))[:2]
    ckpt = load_checkpoint(path)
    spec, _ = spec_and_recipe(ckpt, path)
    g = build_generator(spec)
    weights = ckpt.get("generator_ema") if ema and ckpt.get("generator_ema") is not None else ckpt.get("generator")
    load_weights(g, weights, path, spec.arch)
    return spec, g.eval()
