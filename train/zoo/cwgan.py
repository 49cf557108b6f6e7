"""`cwgan`: a conditional WGAN-GP (Gulrajani et al. 2017), 28x28, one-hot labels."""

from __future__ import annotations

import torch
from torch import nn

from gantool.spec import ModelSpec
from gantool.train.recipe import Recipe
from gantool.train.zoo.base import ZooEntry, dcgan_init, one_hot_condition


def up(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


def down(cin: int, cout: int) -> list[nn.Module]:
    # GroupNorm(1, C) (layer norm) replaces the seed's BatchNorm: BatchNorm mixes samples,
    # which breaks the per-sample gradient penalty of WGAN-GP.
    return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.GroupNorm(1, cout), nn.LeakyReLU(0.02, True)]


class Generator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        k, w = spec.num_classes, spec.width  # 10, 32
        self.register_buffer("one_hot", torch.eye(k), persistent=False)  # gather, not OneHot: exports cleanly
        self.net = nn.Sequential(
            *up(spec.latent_dim + k, 8 * w),  # (B, 110, 1, 1) -> (B, 256, 2, 2)
            *up(8 * w, 4 * w),  # -> (B, 128, 4, 4)
            *up(4 * w, 2 * w),  # -> (B, 64, 8, 8)
            *up(2 * w, w),  # -> (B, 32, 16, 16)
            nn.ConvTranspose2d(w, spec.channels, 2, 2, 2, bias=False), nn.Tanh(),  # -> (B, 1, 28, 28)
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """labels: (B,) int, or (B, 10) class weights, which are the one-hot input's mix itself."""
        h = torch.cat([z, one_hot_condition(self.one_hot, labels, z.dtype)], dim=1)  # (B, 110)
        return self.net(h.view(z.shape[0], -1, 1, 1))


class Critic(nn.Module):
    """The seed's critic sees 10 one-hot label planes; with projection=True the label instead
    enters as <embed(y), sum-pooled features(x)> (Miyato & Koyama 2018)."""

    def __init__(self, spec: ModelSpec, projection: bool = False) -> None:
        super().__init__()
        self.spec, self.projection = spec, projection
        k, w = spec.num_classes, spec.width
        self.register_buffer("one_hot", torch.eye(k), persistent=False)
        if projection:
            self.label_embedding = nn.Embedding(k, 8 * w)  # (B,) -> (B, 256)
            nn.init.normal_(self.label_embedding.weight, 0.0, 0.02)  # N(0, 1) would drown the unconditional score
        self.net = nn.Sequential(
            nn.Conv2d(spec.channels + (0 if projection else k), w, 2, 2, 2, bias=False),  # (B, 11, 28, 28) -> (B, 32, 16, 16)
            nn.LeakyReLU(0.02, True),
            *down(w, 2 * w),  # -> (B, 64, 8, 8)
            *down(2 * w, 4 * w),  # -> (B, 128, 4, 4)
            *down(4 * w, 8 * w),  # -> (B, 256, 2, 2)
            nn.Conv2d(8 * w, 1, 4, 2, 1),  # -> (B, 1, 1, 1) score, no Sigmoid
        )
        dcgan_init(self)

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The activations just before the last layer: feature matching's f(x), (B, 256, 2, 2)."""
        if self.projection:
            return self.net[:-1](x)
        planes = self.one_hot[labels][:, :, None, None].expand(-1, -1, *x.shape[2:])  # (B, 10, H, W)
        return self.net[:-1](torch.cat([x, planes], 1))

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer on features(x, labels), plus <embed(y), sum-pooled h> for projection: (B,) scores."""
        out = self.net[-1](h).view(-1)
        return out + (self.label_embedding(labels) * h.sum((2, 3))).sum(1) if self.projection else out

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, labels), labels)


ENTRY = ZooEntry(
    name="cwgan", summary="conditional WGAN-GP 28x28: one-hot+z, ConvT 256-128-64-32-1; critic with 10 label planes",
    paper="Gulrajani et al. 2017, Improved Training of Wasserstein GANs (WGAN-GP), conditional",
    generator=Generator, discriminator=Critic,
    conditional=True, latent_dim=100, width=32, native_size=28, noise="normal",
    recipe=Recipe(loss="wgan-gp", lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9, batch_size=64,
                  n_critic=5, gp_weight=10.0, epochs=20, projection=True),
    projection=True,
    notes="Critic uses GroupNorm(1, C) instead of BatchNorm (valid gradient penalty); Adam(0, 0.9) per Gulrajani et al.",
)
