"""Feature matching (Salimans et al. 2016): the term, each discriminator's feature layer, and how the loop adds it."""

from __future__ import annotations

import pytest
import torch

from gantool.cli import main
from gantool.errors import GantoolError
from gantool.train import losses
from gantool.train.data import load_split
from gantool.train.loop import Trainer
from gantool.train.precision import choose_precision
from gantool.train.recipe import Recipe
from gantool.train.zoo import MNIST_INFO, ZOO, build_models, build_spec


def test_the_term_and_its_gradient_are_the_hand_computed_ones():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)  # batch mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]], requires_grad=True)  # batch mean (1, 1)
    loss = losses.feature_matching(real, fake)
    assert float(loss.detach()) == 5.0  # (2 - 1)^2 + (3 - 1)^2
    loss.backward()
    # d/d fake[i, j] = -2 (mean_real[j] - mean_fake[j]) / B = -(1, 2) for both rows (B = 2)
    assert torch.equal(fake.grad, torch.tensor([[-1.0, -2.0], [-1.0, -2.0]]))
    assert real.grad is None  # the real features are a fixed target
    # conv features are flattened per sample: (B, C, H, W) gives the same as (B, C*H*W)
    assert float(losses.feature_matching(real.detach().view(2, 2, 1, 1), fake.detach().view(2, 1, 1, 2))) == 5.0
    assert float(losses.feature_matching(real.detach(), real.detach())) == 0.0


def _variants() -> list[tuple[str, dict[str, bool]]]:
    out = []
    for name, e in ZOO.items():
        out += [(name, {}), (name, {"spectral_norm": True})]
        if e.projection:
            out += [(name, {"projection": True}), (name, {"projection": True, "spectral_norm": True})]
    return out


@pytest.mark.parametrize("name, change", _variants(), ids=lambda v: v if isinstance(v, str) else "-".join(v) or "plain")
def test_each_discriminators_features_feed_its_last_layer(name, change):
    spec = build_spec(name, MNIST_INFO)
    torch.manual_seed(0)
    d = build_models(spec, Recipe(**change)).discriminator.eval()  # eval: no dropout, fixed spectral norms
    x = torch.rand(6, spec.channels, spec.image_size, spec.image_size) * 2 - 1
    y = torch.arange(6) % spec.num_classes if spec.conditional else None
    seen = []
    d.net[-1].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        h, out = d.features(x, y), d(x, y)
    assert torch.equal(seen[-1], h)  # features() is exactly what the last layer sees in forward
    expected = d.net[-1](h).view(-1)
    if change.get("projection"):  # the projection term <embed(y), features> (cwgan's sum-pooled)
        pooled = h.sum((2, 3)) if h.dim() == 4 else h
        expected = expected + (d.label_embedding(y) * pooled).sum(1)
    assert torch.equal(out, expected) and out.shape == (6,)
    assert torch.equal(d.head(h, y), out)


def _trainer(split, name="cdcgan", **change):
    return Trainer(build_spec(name, split.info), ZOO[name].recipe.replace(batch_size=16, **change), split, seed=0)


def test_the_g_step_adds_the_term_on_the_d_steps_real_batch_and_draws_nothing_new(small_mnist, monkeypatch):
    split = load_split(small_mnist)
    plain = _trainer(split)
    a = plain.step()  # before the other Trainer is built: each starts torch's RNG (dropout) from the seed
    fm = _trainer(split, feature_matching=0.5)
    seen = []
    term = losses.feature_matching

    def spy(real, fake):
        seen.append((real.clone(), fake.detach().clone()))
        return term(real, fake)

    monkeypatch.setattr(losses, "feature_matching", spy)
    looked_at = []
    features = fm.d.features

    def features_spy(x, labels=None):  # forward goes through features() too
        looked_at.append((x.detach().clone(), labels))
        return features(x, labels)

    fm.d.features = features_spy
    b = fm.step()
    assert len(seen) == 1  # once per step, and never with W = 0
    real, fake = seen[0]
    assert real.dtype == fake.dtype == torch.float32 and real.shape == (16, 256, 4, 4)
    assert a["d_loss"] == b["d_loss"]  # the D step does not depend on W
    assert torch.equal(plain.rng.get_state(), fm.rng.get_state())  # no extra noise drawn
    # D step: real, fake; G step: the D step's real batch again (through the updated D), then the fakes once
    assert len(looked_at) == 4
    x, y = fm._batch(0)
    assert torch.equal(looked_at[0][0], x) and torch.equal(looked_at[2][0], x) and torch.equal(looked_at[2][1], y)
    assert torch.equal(looked_at[1][0], looked_at[3][0])  # the same fakes in D's step and G's
    assert b["g_loss"] > a["g_loss"]  # adversarial + W * term; the term is > 0 at the first step


def test_feature_matching_only_drops_the_adversarial_term(small_mnist, monkeypatch):
    split = load_split(small_mnist)
    trainer = _trainer(split, feature_matching=2.0, feature_matching_only=True)
    values, adversarial = [], []
    term, g_loss = losses.feature_matching, losses.g_loss
    monkeypatch.setattr(losses, "feature_matching", lambda r, f: values.append(term(r, f)) or values[-1])
    monkeypatch.setattr(losses, "g_loss", lambda *a: adversarial.append(1) or g_loss(*a))
    out = trainer.step()
    assert not adversarial and out["g_loss"] == pytest.approx(2.0 * float(values[0].detach()), rel=1e-6)


def test_the_term_is_fp32_under_bf16_autocast(small_mnist, monkeypatch):
    split = load_split(small_mnist)
    t = Trainer(build_spec("cdcgan", split.info), ZOO["cdcgan"].recipe.replace(batch_size=16, feature_matching=1.0),
                split, seed=0, precision=choose_precision("bf16", "cpu", True))
    dtypes = []
    term = losses.feature_matching
    monkeypatch.setattr(losses, "feature_matching", lambda r, f: dtypes.append((r.dtype, f.dtype)) or term(r, f))
    out = t.step()
    assert dtypes == [(torch.float32, torch.float32)] and torch.isfinite(torch.tensor(out["g_loss"]))


def test_a_run_with_feature_matching_resumes_exactly(small_mnist):
    split = load_split(small_mnist)
    change = {"feature_matching": 0.5, "name": "cgan"}  # dropout in D: the features' second look draws from torch's RNG
    straight = _trainer(split, **change)
    want = [straight.step() for _ in range(4)]
    first = _trainer(split, **change)
    first.step(), first.step()
    state = first.state_dict()
    resumed = _trainer(split, **change)
    resumed.load_state_dict(state)
    assert [resumed.step() for _ in range(2)] == want[2:]


def test_feature_matching_only_without_a_weight_is_refused(capsys, small_mnist, tmp_path):
    with pytest.raises(GantoolError, match=r"feature matching only \(--feature-matching-only\) needs a "
                                           r"feature-matching weight"):
        Recipe(feature_matching_only=True)
    for bad in (-1.0, float("inf"), float("nan")):  # inf would train into an inf loss at step 1
        with pytest.raises(GantoolError, match="feature-matching weight must be a finite number >= 0"):
            Recipe(feature_matching=bad)
    Recipe(feature_matching=0.1, feature_matching_only=True)  # fine
    code = main(["train", "--model", "cdcgan", "--feature-matching-only", "--data-dir", str(small_mnist),
                 "-o", str(tmp_path / "run"), "--max-steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "--feature-matching W" in err[0] and not (tmp_path / "run").exists()
