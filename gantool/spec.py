"""The torch-free model spec: one config that rides in checkpoints, ONNX metadata and the runtime.

Everything that decides a generator's inputs and outputs lives here, so no shape or label
count is hard-coded twice. A checkpoint rebuilds its model from this spec alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gantool.errors import CheckpointError
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
        if self.noise not in DISTRIBUTIONS:
            raise ValueError(f"noise must be one of {DISTRIBUTIONS}, got {self.noise!r}")
        if self.num_classes < 1 or self.latent_dim < 1 or self.image_size < 1:
            raise ValueError(f"invalid spec: {self}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["output_range"] = list(self.output_range)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
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
        kw = dict(d)
        kw["output_range"] = tuple(kw.get("output_range", (-1.0, 1.0)))
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
