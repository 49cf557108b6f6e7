"""The torch-free model spec: one config that rides in checkpoints, ONNX metadata and the runtime.

Everything that decides a generator's inputs and outputs lives here, so no shape or label
count is hard-coded twice. A checkpoint rebuilds its model from this spec alone.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


from gantool.errors import CheckpointError, SpecError
from gantool.noise import DISTRIBUTIONS

SPEC_SCHEMA_VERSION = 1


# The zoo's names, torch-free, for the runtime and the CLI; a test checks them against train/zoo.
ZOO_NAMES = ("gan", "dcgan", "cgan", "cdcgan", "cgan-in", "cwgan")

@dataclass(frozen=True)
class ModelSpec:
    arch: str  # zoo family: gan, dcgan, cgan, cdcgan, cgan-in, cwgan
    latent_dim: int  # z is (batch, latent_dim) float32
    num_classes: int  # classes in the training data; labels are int64 in [0, num_classes)
    conditional: bool  # True: the generator takes (z, label)
    image_size: int  # square output side in pixels
    channels: int = 1
    width: int = 64  # base filter count (conv models) or first hidden width (MLPs)
    noise: str = "normal"  # distribution of z, drawn by gantool.noise.make_noise
    dataset: str = "mnist"  # what the model was trained on, for the model card and metadata
    output_range: tuple[float, float] = (-1.0, 1.0)  # generator output, Tanh
    layout: str = "NCHW"
    schema_version: int = SPEC_SCHEMA_VERSION

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise SpecError(f"invalid model spec: {'; '.join(problems)}.")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["output_range"] = list(self.output_range)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "ModelSpec":
        """A spec from untrusted JSON (a checkpoint, ONNX metadata, a sidecar): every field checked."""
        if not isinstance(d, dict):
            raise SpecError(f"model spec must be a JSON object, got {type(d).__name__}.")
        version = d.get("schema_version")
        if version != SPEC_SCHEMA_VERSION:
            raise CheckpointError(
                f"model spec has schema version {version!r}; this gantool reads version {SPEC_SCHEMA_VERSION}.",
                note="re-export or retrain it with this gantool version.",
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise CheckpointError(f"model spec has unknown fields {sorted(unknown)}; allowed: {sorted(names)}.")
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.name not in d and f.default is dataclasses.MISSING)
        if missing:
            raise SpecError(f"model spec lacks the fields {missing}.")
        kw = dict(d)
        if isinstance(kw.get("output_range"), list):
            kw["output_range"] = tuple(kw["output_range"])
        return cls(**kw)

    def replace(self, **changes: Any) -> "ModelSpec":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DataInfo:
    """What the data files say: used to fill a spec instead of hard-coding 28 or 10."""

    num_classes: int
    image_size: int
    channels: int = 1
    name: str = "mnist"
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256


# Bounds on what a spec may ask for: a file's metadata is untrusted, and these sizes decide allocations.
MAX_LATENT_DIM = 1 << 16
MAX_CLASSES = 1 << 16
MAX_IMAGE_SIZE = 4096
LAYOUTS = ("NCHW",)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _problems(s: ModelSpec) -> list[str]:
    """Every way a spec's fields are of the wrong type or out of range (empty: valid)."""
    out = []
    for name in ("arch", "noise", "dataset", "layout"):
        if not isinstance(getattr(s, name), str) or not getattr(s, name):
            out.append(f"{name} must be a non-empty string, got {getattr(s, name)!r}")
    for name, top in (("latent_dim", MAX_LATENT_DIM), ("num_classes", MAX_CLASSES), ("image_size", MAX_IMAGE_SIZE),
                      ("channels", 4), ("width", 1 << 16), ("schema_version", 1 << 16)):
        v = getattr(s, name)
        if not _is_int(v) or not 1 <= v <= top:
            out.append(f"{name} must be an integer in 1..{top}, got {v!r}")
    if not isinstance(s.conditional, bool):
        out.append(f"conditional must be true or false, got {s.conditional!r}")
    r = s.output_range
    if not (isinstance(r, tuple) and len(r) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                          and math.isfinite(x) for x in r) and r[0] < r[1]):
        out.append(f"output_range must be two finite numbers [low, high] with low < high, got {r!r}")
    if isinstance(s.noise, str) and s.noise not in DISTRIBUTIONS:
        out.append(f"noise must be one of {', '.join(DISTRIBUTIONS)}, got {s.noise!r}")
    if isinstance(s.layout, str) and s.layout not in LAYOUTS:
        out.append(f"layout must be one of {', '.join(LAYOUTS)}, got {s.layout!r}")
    return out
