"""`cgan-in`: a 64x64 conditional DCGAN with InstanceNorm (Mirza & Osindero 2014 with Radford et al. 2015)."""

from __future__ import annotations

import torch
from torch import nn

from gantool.spec import ModelSpec
from gantool.train.recipe import Recipe
from gantool.train.zoo.base import ZooEntry, class_condition, dcgan_init, label_plane


def up(cin: int, cout: int, k: int = 4, s: int = 2, p: int = 1) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, k, s, p, bias=False), nn.InstanceNorm2d(cout, affine=True), nn.ReLU(True)]


def down(cin: int, cout: int, norm: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)]
    if norm:
        layers.append(nn.InstanceNorm2d(cout, affine=True))
    return layers + [nn.LeakyReLU(0.2, True)]


class Generator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        z, w = spec.latent_dim, spec.width  # 100, 64
        self.label_embedding = nn.Embedding(spec.num_classes, z)  # (B,) -> (B, 100)
        self.net = nn.Sequential(
            *up(2 * z, 8 * w, 4, 1, 0),  # (B, 200, 1, 1) -> (B, 512, 4, 4)
            *up(8 * w, 4 * w),  # -> (B, 256, 8, 8)
            *up(4 * w, 2 * w),  # -> (B, 128, 16, 16)
            *up(2 * w, w),  # -> (B, 64, 32, 32)
            nn.ConvTranspose2d(w, spec.channels, 4, 2, 1, bias=False), nn.Tanh(),  # -> (B, 1, 64, 64)
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """labels: (B,) int, or (B, 10) class weights (base.class_condition)."""
        h = torch.cat([z, class_condition(self.label_embedding, labels)], dim=1)  # (B, 200)
        return self.net(h.view(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        w = spec.width
        self.label_embedding = nn.Embedding(spec.num_classes, spec.image_size ** 2)  # (B,) -> (B, 4096)
        self.net = nn.Sequential(
            *down(spec.channels + 1, w, norm=False),  # (B, 2, 64, 64) -> (B, 64, 32, 32)
            *down(w, 2 * w),  # -> (B, 128, 16, 16)
            *down(2 * w, 4 * w),  # -> (B, 256, 8, 8)
            *down(4 * w, 8 * w),  # -> (B, 512, 4, 4)
            nn.Conv2d(8 * w, 1, 4, 1, 0, bias=False),  # -> (B, 1, 1, 1) logit
        )
        dcgan_init(self)

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The activations just before the last layer: feature matching's f(x), (B, 512, 4, 4)."""
        return self.net[:-1](torch.cat([x, label_plane(self.label_embedding, labels, self.spec)], 1))

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer on features(x, labels): (B,) logits."""
        return self.net[-1](h).view(-1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, labels), labels)


ENTRY = ZooEntry(
    name="cgan-in", summary="conditional DCGAN 64x64 with InstanceNorm: labels embedded to 100-d",
    paper="Mirza & Osindero 2014 (conditional GAN) with Radford et al. 2015 (DCGAN), instance norm",
    generator=Generator, discriminator=Discriminator,
    conditional=True, latent_dim=100, width=64, native_size=64, noise="normal",
    recipe=Recipe(loss="bce", lr_g=2e-4, lr_d=2e-4, beta1=0.5, batch_size=64, epochs=8, mode_seeking=1.0),
    notes="Widths 512-256-128-64 follow DCGAN (the project page it follows names no widths); InstanceNorm is affine. "
          "MSGAN's mode-seeking term: without it (BCE, or hinge + spectral norm) G drew one image per label.",
)
