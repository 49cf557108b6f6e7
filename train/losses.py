"""GAN losses on raw discriminator outputs (logits / critic scores)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Discriminator loss; `smoothing` is one-sided (real target 1 - smoothing)."""
    if kind == "bce":
        return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, 1.0 - smoothing))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if kind == "lsgan":
        return 0.5 * ((real - (1.0 - smoothing)) ** 2).mean() + 0.5 * (fake ** 2).mean()
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    if kind == "wgan-gp":
        return fake.mean() - real.mean()  # the gradient penalty is added by the caller
    raise ValueError(f"unknown loss {kind!r}")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "bce":  # the non-saturating loss
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "lsgan":
        return 0.5 * ((fake - 1.0) ** 2).mean()
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    raise ValueError(f"unknown loss {kind!r}")


def mode_seeking(fake: torch.Tensor, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """MSGAN's term (Mao et al. 2019): the first and second halves of the batch share labels, so a
    generator that maps different z to one image per label pays 1 / (image distance / z distance)."""
    h = fake.shape[0] // 2
    ratio = (fake[:h] - fake[h:2 * h]).abs().mean() / (z[:h] - z[h:2 * h]).abs().mean()
    return 1.0 / (ratio + eps)


def feature_matching(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Feature matching (Salimans et al. 2016): ||E[f(x)] - E[f(G(z))]||_2^2, the squared L2 distance between
    the batch means of D's features (conv features flattened per sample); the real side is a fixed target."""
    real_mean = real_features.detach().flatten(1).mean(0)
    return (real_mean - fake_features.flatten(1).mean(0)).square().sum()


def d_prob(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """What the progress bar shows as D(x) / D(G(z)): a probability for bce, the raw score otherwise
    (a 0-d tensor, so that ranks can average it before it becomes a number)."""
    logits = logits.detach()
    return torch.sigmoid(logits).mean() if kind == "bce" else logits.mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None,
                     generator: torch.Generator,
                     forward: Callable[[], AbstractContextManager[Any]] = nullcontext) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates (Gulrajani et al. 2017). `forward`: the
    context of the critic's forward pass (bf16 autocast); x_hat, its gradient and the norm stay fp32."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    with forward():
        score = critic(x_hat, labels).float()
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()
