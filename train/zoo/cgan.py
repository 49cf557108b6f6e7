"""`cgan`: the conditional MLP GAN of Mirza & Osindero 2014, label Embedding(10, 10) concatenated with z."""

from __future__ import annotations

import torch
from torch import nn

from gantool.spec import ModelSpec
from gantool.train.recipe import Recipe
from gantool.train.zoo.base import ZooEntry, class_condition


def block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU()]


class Generator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        k, w = spec.num_classes, spec.width  # 10, 128
        self.label_embedding = nn.Embedding(k, k)  # (B,) -> (B, 10)
        self.net = nn.Sequential(
            *block(spec.latent_dim + k, w),  # (B, 110) -> (B, 128)
            *block(w, 2 * w),  # -> (B, 256)
            *block(2 * w, 4 * w),  # -> (B, 512)
            *block(4 * w, 8 * w),  # -> (B, 1024)
            nn.Linear(8 * w, spec.channels * spec.image_size ** 2), nn.Tanh(),  # -> (B, H*W)
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """labels: (B,) int, or (B, 10) class weights (base.class_condition)."""
        h = torch.cat([z, class_condition(self.label_embedding, labels)], dim=1)  # (B, 110)
        return self.net(h).view(z.shape[0], *self.spec.image_shape)


class Discriminator(nn.Module):
    """The seed's D concatenates a label embedding to the image; with projection=True the label
    instead enters as <embed(y), features(x)> (Miyato & Koyama 2018), which D cannot ignore."""

    def __init__(self, spec: ModelSpec, projection: bool = False) -> None:
        super().__init__()
        k = spec.num_classes
        self.projection = projection
        self.label_embedding = nn.Embedding(k, 256 if projection else k)
        self.net = nn.Sequential(
            nn.Linear(spec.channels * spec.image_size ** 2 + (0 if projection else k), 1024),
            nn.LeakyReLU(0.2, True), nn.Dropout(0.4),
            nn.Linear(1024, 512), nn.LeakyReLU(0.2, True), nn.Dropout(0.4),
            nn.Linear(512, 256), nn.LeakyReLU(0.2, True), nn.Dropout(0.4),
            nn.Linear(256, 1),  # (B, 1) logit
        )

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The activations just before the last layer: feature matching's f(x), (B, 256)."""
        if self.projection:
            return self.net[:-1](x.flatten(1))
        return self.net[:-1](torch.cat([x.flatten(1), self.label_embedding(labels)], dim=1))  # from (B, H*W + 10)

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer on features(x, labels), plus <embed(y), h> for projection: (B,) logits."""
        out = self.net[-1](h).view(-1)
        return out + (self.label_embedding(labels) * h).sum(1) if self.projection else out

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, labels), labels)


ENTRY = ZooEntry(
    name="cgan", summary="conditional MLP GAN: Embedding(10,10)+z, 110-128-256-512-1024-H*W with BatchNorm1d",
    paper="Mirza & Osindero 2014, Conditional Generative Adversarial Nets",
    generator=Generator, discriminator=Discriminator,
    conditional=True, latent_dim=100, width=128, native_size=None, noise="normal",
    recipe=Recipe(loss="bce", lr_g=2e-4, lr_d=2e-4, beta1=0.5, batch_size=64, epochs=30, projection=True),
    seed_recipe=Recipe(loss="bce", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, batch_size=32, ema_decay=0.0,
                       fake_labels="uniform", epochs=85),
    projection=True,
    notes="Default 28x28 (the notebook resized to 64x64; --image-size 64 restores it). D outputs a logit.",
)
