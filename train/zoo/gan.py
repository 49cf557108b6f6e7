"""`gan`: the MLP GAN of Goodfellow et al. 2014, 28x28."""

from __future__ import annotations

import torch
from torch import nn

from gantool.spec import ModelSpec
from gantool.train.recipe import Recipe
from gantool.train.zoo.base import ZooEntry


class Generator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        w = spec.width  # 256 in the seed
        out = spec.channels * spec.image_size ** 2
        self.net = nn.Sequential(
            nn.Linear(spec.latent_dim, w), nn.LeakyReLU(0.2),  # (B, 100) -> (B, 256)
            nn.Linear(w, 2 * w), nn.LeakyReLU(0.2),  # -> (B, 512)
            nn.Linear(2 * w, 4 * w), nn.LeakyReLU(0.2),  # -> (B, 1024)
            nn.Linear(4 * w, out), nn.Tanh(),  # -> (B, 784)
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.spec.image_shape)  # (B, 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        w = spec.width
        self.net = nn.Sequential(
            nn.Flatten(),  # (B, 1, 28, 28) -> (B, 784)
            nn.Linear(spec.channels * spec.image_size ** 2, 4 * w), nn.LeakyReLU(0.2), nn.Dropout(0.3),  # -> 1024
            nn.Linear(4 * w, 2 * w), nn.LeakyReLU(0.2), nn.Dropout(0.3),  # -> 512
            nn.Linear(2 * w, w), nn.LeakyReLU(0.2), nn.Dropout(0.3),  # -> 256
            nn.Linear(w, 1),  # -> (B, 1) logit; the seed's Sigmoid is folded into BCEWithLogits
        )

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The activations just before the last layer: feature matching's f(x), (B, 256)."""
        return self.net[:-1](x)

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer on features(x, labels): (B,) logits."""
        return self.net[-1](h).view(-1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, labels), labels)


ENTRY = ZooEntry(
    name="gan", summary="MLP GAN: G 100-256-512-1024-784, D 784-1024-512-256-1 with dropout",
    paper="Goodfellow et al. 2014, Generative Adversarial Nets",
    generator=Generator, discriminator=Discriminator,
    conditional=False, latent_dim=100, width=256, native_size=None, noise="normal",
    recipe=Recipe(loss="bce", lr_g=2e-4, lr_d=2e-4, beta1=0.5, batch_size=100, epochs=50),
    notes="D outputs a logit (Sigmoid folded into BCEWithLogits); Adam beta1=0.5 instead of the notebook's 0.9.",
)
