"""`dcgan`: the 64x64 DCGAN of Radford et al. 2015."""

from __future__ import annotations

import torch
from torch import nn

from gantool.spec import ModelSpec
from gantool.train.recipe import Recipe
from gantool.train.zoo.base import ZooEntry, dcgan_init


def up(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


def down(cin: int, cout: int, norm: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return layers + [nn.LeakyReLU(0.2, True)]


class Generator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        w = spec.width  # 64
        self.net = nn.Sequential(
            nn.ConvTranspose2d(spec.latent_dim, 8 * w, 4, 1, 0, bias=False),  # (B, 100, 1, 1) -> (B, 512, 4, 4)
            nn.BatchNorm2d(8 * w), nn.ReLU(True),
            *up(8 * w, 4 * w),  # -> (B, 256, 8, 8)
            *up(4 * w, 2 * w),  # -> (B, 128, 16, 16)
            *up(2 * w, w),  # -> (B, 64, 32, 32)
            nn.ConvTranspose2d(w, spec.channels, 4, 2, 1, bias=False), nn.Tanh(),  # -> (B, 1, 64, 64)
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        w = spec.width
        self.net = nn.Sequential(
            *down(spec.channels, w, norm=False),  # (B, 1, 64, 64) -> (B, 64, 32, 32)
            *down(w, 2 * w),  # -> (B, 128, 16, 16)
            *down(2 * w, 4 * w),  # -> (B, 256, 8, 8)
            *down(4 * w, 8 * w),  # -> (B, 512, 4, 4)
            nn.Conv2d(8 * w, 1, 4, 1, 0, bias=False),  # -> (B, 1, 1, 1) logit
        )
        dcgan_init(self)

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The activations just before the last layer: feature matching's f(x), (B, 512, 4, 4)."""
        return self.net[:-1](x)

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer on features(x, labels): (B,) logits."""
        return self.net[-1](h).view(-1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, labels), labels)


ENTRY = ZooEntry(
    name="dcgan", summary="64x64 DCGAN: ConvT 100-512-256-128-64-1, BatchNorm+ReLU; D mirrors it",
    paper="Radford et al. 2015, Unsupervised Representation Learning with Deep Convolutional GANs (DCGAN)",
    generator=Generator, discriminator=Discriminator,
    conditional=False, latent_dim=100, width=64, native_size=64, noise="normal",
    recipe=Recipe(loss="bce", lr_g=2e-4, lr_d=2e-4, beta1=0.5, batch_size=64, label_smoothing=0.1, epochs=5),
    notes="Adam beta1=0.5 and one-sided label smoothing 0.1 against the notebook's D collapse (D loss 0.0006).",
)
