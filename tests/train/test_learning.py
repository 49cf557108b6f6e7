"""Learning, not just running: 200 real training steps on MNIST halve the L2 gap between the
generated images' mean image and the data's mean image. Finite, changing losses prove nothing."""

from __future__ import annotations

import pytest
import torch

from gantool.train.data import load_split
from gantool.train.loop import Trainer
from gantool.train.zoo import ZOO, build_spec, example_inputs

# Batch sizes are cut to keep the suite on 2 CPU cores (measured at these settings: dcgan 51.7 -> 18.6,
# cgan-in 57.8 -> 19.8); cwgan's rate is doubled because WGAN-GP's
# 1e-4 needs more than 200 steps to move the mean image that far (measured: 22.7 -> 11.1 at 1e-4).
SHORT = {"gan": {"batch_size": 64}, "cgan": {"batch_size": 64}, "cdcgan": {"batch_size": 32},
         "cwgan": {"batch_size": 16, "lr_g": 2e-4, "lr_d": 2e-4}, "dcgan": {"batch_size": 8},
         "cgan-in": {"batch_size": 8}}
# Feature matching (Salimans et al. 2016) on cdcgan, alone as in the paper: the G loss furthest from every other
# recipe's (measured: 22.7 -> 2.4; added to the adversarial term at W = 0.05, 22.7 -> 2.5, a case left out to keep
# the suite's time: its term and gradient are tested in test_feature_matching.py).
RECIPES = [pytest.param(name, {}, id=name) for name in ZOO] + [
    pytest.param("cdcgan", {"feature_matching": 1.0, "feature_matching_only": True}, id="cdcgan-feature-matching-only")]


def mean_image_gap(trainer: Trainer, data_mean: torch.Tensor) -> float:
    g = trainer.g.eval()
    with torch.no_grad():
        x = g(*example_inputs(trainer.spec, 256, seed=1))
    g.train()
    return float((x.mean(0) - data_mean).norm())


@pytest.mark.slow
@pytest.mark.parametrize("name, change", RECIPES)
def test_200_steps_halve_the_mean_image_gap(name, change, mnist_dir):
    split = load_split(mnist_dir)
    trainer = Trainer(build_spec(name, split.info), ZOO[name].recipe.replace(**SHORT[name], **change), split, seed=0)
    data_mean = trainer.images.float().div(127.5).sub(1).mean(0)
    before = mean_image_gap(trainer, data_mean)
    history = [trainer.step() for _ in range(200)]
    after = mean_image_gap(trainer, data_mean)
    assert after <= 0.5 * before, f"{name}: mean-image gap {before:.2f} -> {after:.2f}"
    assert all(torch.isfinite(torch.tensor([h["d_loss"], h["g_loss"]])).all() for h in history)
