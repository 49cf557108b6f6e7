"""`cdcgan`: a conditional DCGAN at 28x28, z=128 (Mirza & Osindero 2014 with Radford et al. 2015)."""

from __future__ import annotations

import torch
from torch import nn

from gantool.spec import ModelSpec
from gantool.train.recipe import Recipe
from gantool.train.zoo.base import ZooEntry, class_condition, dcgan_init, label_plane


class Generator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        z, w = spec.latent_dim, spec.width  # 128, 64
        self.label_embedding = nn.Embedding(spec.num_classes, z)  # (B,) -> (B, 128)
        self.initial = nn.Sequential(
            nn.ConvTranspose2d(z, 4 * w, 4, 1, 0, bias=False),  # (B, 128, 1, 1) -> (B, 256, 4, 4)
            nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2, True),
        )
        # The seed's "noise injection": a 1x1 conv of the same z, broadcast-added to the 4x4 map.
        # No fresh noise is drawn in forward, so the output is a pure function of (z, label).
        self.noise_injection = nn.Sequential(nn.Conv2d(z, 4 * w, 1), nn.Tanh())  # -> (B, 256, 1, 1)
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 3, 2, 1, bias=False),  # -> (B, 128, 7, 7)
            nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2, True),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False),  # -> (B, 64, 14, 14)
            nn.BatchNorm2d(w), nn.LeakyReLU(0.2, True),
            nn.ConvTranspose2d(w, spec.channels, 4, 2, 1, bias=False), nn.Tanh(),  # -> (B, 1, 28, 28)
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """labels: (B,) int, or (B, 10) class weights: z times their weighted sum of embeddings."""
        z = z.view(z.shape[0], -1, 1, 1)  # (B, 128, 1, 1)
        h = self.initial(z * class_condition(self.label_embedding, labels).view_as(z))  # label multiplied into z
        return self.upsample(h + self.noise_injection(z))


class Discriminator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        w = spec.width
        self.label_embedding = nn.Embedding(spec.num_classes, spec.image_size ** 2)  # (B,) -> (B, 784)
        self.net = nn.Sequential(
            nn.Conv2d(spec.channels + 1, w, 4, 2, 1, bias=False),  # (B, 2, 28, 28) -> (B, 64, 14, 14)
            nn.LeakyReLU(0.2, True), nn.Dropout2d(0.3),
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False),  # -> (B, 128, 7, 7)
            nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2, True), nn.Dropout2d(0.3),
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1, bias=False),  # -> (B, 256, 4, 4)
            nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * w, 1, 4, 1, 0, bias=False),  # -> (B, 1, 1, 1) logit
        )
        dcgan_init(self)

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The activations just before the last layer: feature matching's f(x), (B, 256, 4, 4)."""
        return self.net[:-1](torch.cat([x, label_plane(self.label_embedding, labels, self.spec)], 1))

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer on features(x, labels): (B,) logits."""
        return self.net[-1](h).view(-1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, labels), labels)


ENTRY = ZooEntry(
    name="cdcgan", summary="conditional DCGAN 28x28: label embedding x z, 1x1-conv noise injection",
    paper="Mirza & Osindero 2014 (conditional GAN) with Radford et al. 2015 (DCGAN)",
    generator=Generator, discriminator=Discriminator,
    conditional=True, latent_dim=128, width=64, native_size=28, noise="uniform",
    recipe=Recipe(loss="bce", lr_g=3e-4, lr_d=2e-4, beta1=0.5, batch_size=128, epochs=20),
    seed_recipe=Recipe(loss="bce", lr_g=3e-4, lr_d=2e-4, beta1=0.9, beta2=0.999, batch_size=128, ema_decay=0.0,
                       fake_labels="uniform", epochs=50),
    notes="z ~ U[-1,1] and Adam 3e-4/2e-4 as in the notebook, with beta1=0.5; D outputs a logit.",
)
