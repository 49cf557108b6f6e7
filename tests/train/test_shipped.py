"""Shipped generators: fp16 storage, self-describing files, and the quality their cards claim."""

import numpy as np
import pytest
import torch

from gantool.train.checkpoint import load_generator
from gantool.train.evaluate import generate, judge_outputs
from gantool.train.judge import load_judge
from gantool.train.shipped import WEIGHTS_DIR, read_shipped, write_shipped
from gantool.train.zoo import MNIST_INFO, ZOO, build_models, build_spec, example_inputs

SHIPPED = sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors") if p.stem in ZOO)


def test_fp16_round_trip_is_the_model_everyone_sees(tmp_path):
    spec = build_spec("cdcgan", MNIST_INFO)
    g = build_models(spec).generator.eval()
    write_shipped(tmp_path / "g.safetensors", spec, g.state_dict(), {"note": "test"})
    spec2, g2, card = read_shipped(tmp_path / "g.safetensors")
    assert spec2 == spec and card == {"note": "test"}
    for (name, a), b in zip(g.state_dict().items(), g2.state_dict().values()):
        expected = a.half().float() if a.is_floating_point() else a
        assert torch.equal(b, expected), name
    x = example_inputs(spec, 4)
    with torch.no_grad():
        assert (g2(*x) - g(*x)).abs().max() < 2e-2  # fp16 weight rounding only
    assert load_generator(tmp_path / "g.safetensors")[0] == spec


def test_shipped_weights_fit_the_size_budget():
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.safetensors") if p.stem in ZOO)
    assert total <= 40e6


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_generator_still_meets_its_card(name):
    """A quick 2000-sample recheck of the card's label accuracy and class coverage."""
    spec, g, card = read_shipped(WEIGHTS_DIR / f"{name}.safetensors")
    assert card["eval"]["model"] == name and "attribution" in card
    judge, _ = load_judge()
    x, labels = generate(g, spec, 2000, seed=123)
    _, preds = judge_outputs(judge, x)
    share = np.bincount(preds, minlength=10) / len(preds)
    assert share.min() >= card["eval"]["mode_coverage"]["worst_class_share"] - 0.03
    if spec.conditional:
        assert (preds == labels).mean() >= card["eval"]["label_accuracy"]["overall"] - 0.02
