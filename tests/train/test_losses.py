"""The mode-seeking term (MSGAN) and how the loop pairs labels for it."""

from __future__ import annotations

import pytest
import torch

from gantool.errors import GantoolError
from gantool.train import losses
from gantool.train.data import load_split
from gantool.train.loop import Trainer
from gantool.train.recipe import Recipe
from gantool.train.zoo import ZOO, build_spec


def test_mode_seeking_punishes_a_generator_that_ignores_z():
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    one_image = torch.rand(1, 1, 4, 4).expand(16, 1, 4, 4)
    diverse = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    half = one_image + 0.5 * (diverse - one_image)
    collapsed, some, full = (float(losses.mode_seeking(x, z)) for x in (one_image, half, diverse))
    assert collapsed > 1e4 and collapsed > some > full


def test_a_negative_weight_is_refused():
    with pytest.raises(GantoolError, match="mode-seeking weight must be >= 0"):
        Recipe(mode_seeking=-1.0)


def test_the_loop_gives_paired_fakes_one_label_and_adds_the_term(mnist_dir):
    split = load_split(mnist_dir)
    recipe = ZOO["cgan"].recipe.replace(batch_size=16, mode_seeking=1.0)
    trainer = Trainer(build_spec("cgan", split.info), recipe, split, seed=0)
    seen = []
    forward = trainer.g.forward

    def spy(z, labels=None):
        seen.append(labels.clone())
        return forward(z, labels)

    trainer.g.forward = spy
    out = trainer.step()
    assert torch.equal(seen[0][:8], seen[0][8:]) and len(seen[0].unique()) > 1
    plain = Trainer(build_spec("cgan", split.info), recipe.replace(mode_seeking=0.0), split, seed=0).step()
    assert out["g_loss"] > plain["g_loss"] + 0.5  # 1 / ratio is added at the first step


@pytest.mark.parametrize("change", [{"fake_labels": "uniform"}, {"mode_seeking": 1.0}])
def test_the_gradient_penalty_mixes_real_images_with_fakes_of_their_own_labels(small_mnist, monkeypatch, change):
    """WGAN-GP's interpolate x_hat = a x + (1 - a) G(z, y') is scored with one label: y' must be x's label y."""
    split = load_split(small_mnist)
    recipe = ZOO["cwgan"].recipe.replace(batch_size=16, n_critic=1, **change)
    trainer = Trainer(build_spec("cwgan", split.info), recipe, split, seed=0)
    made, scored = [], []
    forward, penalty = trainer.g.forward, losses.gradient_penalty

    def g_spy(z, labels=None):
        out = forward(z, labels)
        made.append((out.detach().clone(), labels.clone()))
        return out

    def gp_spy(critic, real, fake, labels, generator, *forward):
        scored.append((fake.detach().clone(), labels.clone()))
        return penalty(critic, real, fake, labels, generator, *forward)

    trainer.g.forward = g_spy
    monkeypatch.setattr(losses, "gradient_penalty", gp_spy)
    trainer.step()
    ((gp_fake, gp_labels),) = scored
    assert any(not torch.equal(labels, gp_labels) for _, labels in made)  # D's fakes took other labels
    sources = [labels for out, labels in made if torch.equal(out, gp_fake)]
    assert sources, "the penalty's fakes should be generator output"
    assert torch.equal(sources[0], gp_labels)


def test_the_penaltys_extra_fakes_leave_gs_batchnorm_statistics_alone(small_mnist):
    split = load_split(small_mnist)
    trainer = Trainer(build_spec("cwgan", split.info), ZOO["cwgan"].recipe.replace(batch_size=16), split, seed=0)
    before = [b.clone() for b in trainer.g.buffers()]
    trainer._fakes_aside(torch.randn(16, 100), torch.arange(16) % 10)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.g.buffers()))
