"""The arithmetic a training run uses: fp32, or bf16 autocast with channels_last where that is faster.

What stays fp32 under bf16: the weights (so the optimizer state, the EMA and the checkpoint), the
losses, the gradient penalty's norm and BatchNorm's running statistics. Autocast only runs the
matrix products (conv, linear) in bf16. The choice is made once per run, stored in the checkpoint
and kept on --resume, because the same seed gives the same run only at the same precision.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gantool.cpu import cpu_info
from gantool.errors import CheckpointError, GantoolError

if TYPE_CHECKING:
    from torch import nn

TRAIN_PRECISIONS = ("auto", "fp32", "bf16")  # torch is imported only where used: the CLI reads this tuple
CHOSEN = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainPrecision:
    name: str  # fp32 or bf16
    channels_last: bool  # conv models: NHWC is what oneDNN's bf16 kernels (and NVIDIA's tensor cores) want
    reason: str  # one line: why this precision, for the log and the model card
    requested: str = "auto"

    def autocast(self, device: str) -> contextlib.AbstractContextManager[Any]:
        """The context every forward pass of the run goes through."""
        if self.name == "bf16":
            import torch

            return torch.autocast(device_type=device, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, module: nn.Module) -> nn.Module:
        import torch

        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    @property
    def label(self) -> str:
        return self.name + (" channels_last" if self.channels_last else "")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "channels_last": self.channels_last, "reason": self.reason,
                "requested": self.requested}

    @classmethod
    def from_dict(cls, d: Any, source: str = "the checkpoint") -> TrainPrecision:
        """A checkpoint's precision (untrusted); checkpoints from before it was recorded trained in fp32."""
        if d is None:
            return cls("fp32", False, "the checkpoint predates recorded precision: its run trained in fp32", "fp32")
        ok = (isinstance(d, dict) and d.get("name") in CHOSEN and isinstance(d.get("channels_last"), bool)
              and isinstance(d.get("reason"), str) and d.get("requested") in TRAIN_PRECISIONS)
        if not ok:
            raise CheckpointError(f"{source}: its training precision {d!r} is malformed; expected name one of "
                                  f"{', '.join(CHOSEN)}, channels_last a bool, reason a string.")
        return cls(d["name"], d["channels_last"], d["reason"], d["requested"])


def check_precision(requested: str) -> str:
    """--precision, refused in one line before any work when it is not a training precision."""
    if requested not in TRAIN_PRECISIONS:
        raise GantoolError(f"--precision {requested!r} is not known; allowed: {', '.join(TRAIN_PRECISIONS)}.")
    return requested


def choose_precision(requested: str, device: str, conv: bool) -> TrainPrecision:
    """auto: bf16 wherever this device has bf16 units, channels_last for conv models (docs/training.md
    has the measurements behind the rule); fp32 or bf16 exactly when asked for."""
    check_precision(requested)
    units = _bf16_units(device)
    if requested == "fp32":
        return TrainPrecision("fp32", False, "asked for with --precision fp32", requested)
    if requested == "bf16":
        if units is None and device == "cuda":
            raise GantoolError("--precision bf16 needs a GPU with bf16 support (compute capability 8.0 or later); "
                               "allowed on this one: auto, fp32.")
        where = f"this {_device_name(device)} has {units} units" if units else \
            f"this {_device_name(device)} has no bf16 units: it is emulated and slow here"
        return TrainPrecision("bf16", conv, f"asked for with --precision bf16; {where}", requested)
    if units is None:
        return TrainPrecision("fp32", False, f"auto: this {_device_name(device)} has no bf16 units", requested)
    return TrainPrecision("bf16", conv, f"auto: this {_device_name(device)} has {units} units", requested)


def describe(p: TrainPrecision, device: str, conv: bool, resumed: bool) -> str:
    """The one line a run prints about its precision. On --resume the run's own precision is kept
    (the same seed gives the same run only at one precision); where the run let auto choose and auto
    would choose otherwise on this machine, the same line says so."""
    if not resumed:
        return f"{p.label} ({p.reason})"
    text = f"{p.label}, the run's own, kept on --resume (first chosen: {p.reason})"
    if p.requested == "auto":
        fresh = choose_precision("auto", device, conv)
        if (fresh.name, fresh.channels_last) != (p.name, p.channels_last):
            text += f"; auto would choose {fresh.label} here ({fresh.reason.removeprefix('auto: ')})"
    return text


def _bf16_units(device: str) -> str | None:
    if device == "cuda":
        import torch

        return "tensor-core" if torch.cuda.is_bf16_supported(including_emulation=False) else None
    return {"amx": "AMX-BF16", "avx512": "AVX512-BF16"}.get(cpu_info().bf16_units or "")


def _device_name(device: str) -> str:
    return "GPU" if device == "cuda" else f"CPU ({cpu_info().model})"
