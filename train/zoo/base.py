"""What every zoo family shares: the entry record and the DCGAN weight init."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from gantool.spec import ModelSpec
from gantool.train.recipe import Recipe


@dataclass(frozen=True)
class ZooEntry:
    name: str
    summary: str
    paper: str  # the paper the architecture comes from, as a citation
    generator: Callable[[ModelSpec], nn.Module]  # forward(z, labels=None) -> (B, C, H, W) in [-1, 1]
    discriminator: Callable[..., nn.Module]  # (spec[, projection]) -> forward(x, labels=None) -> (B,) logits
    conditional: bool
    latent_dim: int
    width: int
    native_size: int | None  # fixed output side of a conv architecture; None: MLP, any size
    noise: str
    recipe: Recipe
    notes: str = ""  # where and why the zoo departs from its seed
    seed_recipe: Recipe | None = None  # the seed notebook's own recipe, for `--recipe seed` comparisons
    projection: bool = False  # whether discriminator(spec, projection=True) is supported


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) conv weights and N(1, 0.02) norm scales, as in the DCGAN paper and the seeds."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _required(labels: torch.Tensor | None) -> torch.Tensor:
    if labels is None:
        raise ValueError("a conditional generator needs labels (B,) or class weights (B, K)")
    return labels


def class_condition(embedding: nn.Embedding, labels: torch.Tensor | None) -> torch.Tensor:
    """A generator's condition vector: (B,) int labels -> their embedding rows; (B, K) float class weights
    -> the weighted sum of the rows (class interpolation; a one-hot row gives its row exactly)."""
    labels = _required(labels)
    if labels.is_floating_point():
        return labels.to(embedding.weight.dtype) @ embedding.weight  # (B, K) @ (K, D) -> (B, D)
    return embedding(labels)


def one_hot_condition(eye: torch.Tensor, labels: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """A one-hot model's condition: (B,) int labels -> rows of eye (a gather, which exports cleanly);
    (B, K) class weights are the mix of one-hot rows themselves."""
    labels = _required(labels)
    return labels.to(dtype) if labels.is_floating_point() else eye[labels]


def label_plane(embedding: nn.Module, labels: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """Embed labels to one image-sized channel: (B,) -> (B, 1, H, W)."""
    return embedding(labels).view(labels.shape[0], 1, spec.image_size, spec.image_size)
