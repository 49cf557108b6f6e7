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


def test_generator_files_are_written_with_the_contracts_spec_key_and_old_ones_still_load(tmp_path):
    from gantool.contract import SPEC_KEY
    from gantool.train.header import LEGACY_SPEC_KEY, header_spec, read_header

    spec = build_spec("cgan", MNIST_INFO)
    write_shipped(tmp_path / "g.safetensors", spec, build_models(spec).generator.state_dict(), {})
    meta, tensors = read_header(tmp_path / "g.safetensors")
    assert SPEC_KEY in meta and LEGACY_SPEC_KEY not in meta and header_spec(meta, "g") == spec
    assert all(dtype in ("F16", "I64") for dtype, _ in tensors.values())
    old = sorted(p for p in WEIGHTS_DIR.glob("*.safetensors") if LEGACY_SPEC_KEY in read_header(p)[0])
    for path in old[:1]:  # files made by gantool 0.1 keep their spelling and load as before
        assert read_shipped(path)[0].arch == path.stem


def test_the_model_card_counts_the_training_images_from_the_checkpoint(small_mnist):
    import importlib.util
    from pathlib import Path

    from gantool.train.data import load_split

    path = Path(__file__).resolve().parents[2] / "scripts" / "ship_weights.py"
    script = importlib.util.spec_from_file_location("ship_weights", path)
    ship = importlib.util.module_from_spec(script)
    script.loader.exec_module(ship)
    assert ship.training_images({"data": {"images": 1234, "files": {}}}, None) == 1234
    files = dict(load_split(small_mnist).info.files)
    assert ship.training_images({"data": {"files": files}}, str(small_mnist)) == 4096  # an old checkpoint
    with pytest.raises(SystemExit, match="not the ones it was trained on"):
        ship.training_images({"data": {"files": {"other": "0" * 64}}}, str(small_mnist))
    assert "AMD EPYC (avx512f, avx512_bf16)" in ship.recorded_machine(
        {"machine": {"cpus": 2, "cpu_model": "AMD EPYC", "cpu_flags": ["avx512f", "avx512_bf16"], "gpu": None}})
    assert "2 CPU cores" in ship.recorded_machine({})  # checkpoints from before the machine was recorded
