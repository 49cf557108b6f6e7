"""Class interpolation in the runtime: the shipped mix graphs (NAME.mix.onnx), Generator.sample(class_weights=)
and Generator.interpolate, the checks on class weights, and the refusals of a missing or foreign mix graph."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from gantool.contract import CLASS_WEIGHTS, LABELS, Z, class_path, one_hot
from gantool.paths import WEIGHTS_DIR
from gantool.runtime import Generator
from gantool.runtime.generator import SampleError

CONDITIONAL_SHIPPED = ("cgan", "cdcgan", "cwgan")


@pytest.fixture(scope="module")
def cdcgan():
    with Generator.load("cdcgan", tune=False, threads=1) as g:
        yield g


@pytest.mark.parametrize("name", CONDITIONAL_SHIPPED)
def test_a_label_and_its_one_hot_row_give_the_same_images(name):
    """The label graph fed labels and the mix graph fed their one-hot rows, at fp32 tolerance."""
    with Generator.load(name, tune=False, threads=1) as g:
        labels = np.arange(20) % 10
        by_label = g.inputs(labels=labels, seed=3)
        by_weights = g.inputs(class_weights=one_hot(labels, 10), seed=3)
        assert set(by_label) == {Z, LABELS} and set(by_weights) == {Z, CLASS_WEIGHTS}
        assert np.array_equal(by_label[Z], by_weights[Z])  # the same noise for the same seed
        assert np.abs(g.run(by_label) - g.run(by_weights)).max() <= 1e-4
        assert g.mix_backend().generator_metadata().family == g.metadata.family


def test_mixtures_differ_from_both_ends_and_distinct_rows_stay_distinct(cdcgan):
    z = np.repeat(cdcgan.inputs(n=1, labels=[0], seed=1)[Z], 3, axis=0)
    weights = np.array([one_hot(np.array([3]), 10)[0], class_path(3, 8, 3, 10)[1], one_hot(np.array([8]), 10)[0]])
    three, half, eight = cdcgan.run(cdcgan.inputs(z=z, class_weights=weights))
    assert np.abs(half - three).mean() > 0.01 and np.abs(half - eight).mean() > 0.01
    mixed = cdcgan.sample(class_weights=np.random.default_rng(0).dirichlet(np.ones(10), 16), seed=2)
    assert mixed.shape == (16, 28, 28) and len({m.tobytes() for m in mixed}) == 16


def test_interpolate_runs_from_one_class_to_the_other_with_one_z_per_row(cdcgan):
    rows, steps = 3, 5
    morph = cdcgan.interpolate(3, 8, steps=steps, seed=7, rows=rows)
    assert morph.shape == (rows * steps, 28, 28)
    z = cdcgan.inputs(n=rows, labels=[0] * rows, seed=7)[Z]
    grid = morph.reshape(rows, steps, 28, 28)
    for r in range(rows):  # the ends are the labels' own images from the same z (label graph: within 1 level)
        ends = cdcgan.sample(z=z[[r, r]], labels=[3, 8])
        assert np.abs(grid[r, 0].astype(int) - ends[0]).max() <= 1
        assert np.abs(grid[r, -1].astype(int) - ends[1]).max() <= 1
    assert len({grid[r, 2].tobytes() for r in range(rows)}) == rows


@pytest.mark.parametrize("weights, message", [
    ([[0.5, 0.5]], "shape (n, 10)"),
    ([[0.2] * 10], "sum to 1"),
    ([[-0.5, 1.5] + [0.0] * 8], "non-negative"),
    ([[float("nan")] + [0.1] * 9], "finite"),
    ([[float("inf")] + [0.0] * 9], "finite"),
    ([["a"] * 10], "must be numbers"),
    ([["0.5"] + ["0"] * 9], "must be numbers"),
    ([[True] + [False] * 9], "must be numbers"),
    ([], "no rows"),
    (np.zeros((0, 10)), "no rows"),
    (np.full((2, 2, 10), 0.1), "shape (n, 10)"),
])
def test_bad_class_weights_are_refused_in_one_line(cdcgan, weights, message):
    with pytest.raises(SampleError) as e:
        cdcgan.sample(class_weights=weights)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_other_refusals(cdcgan):
    with pytest.raises(SampleError, match="labels or class_weights, not both"):
        cdcgan.sample(labels=[3], class_weights=[one_hot(np.array([3]), 10)[0]])
    with pytest.raises(SampleError, match="n=3 but 1 rows of class weights"):
        cdcgan.sample(n=3, class_weights=[[0.1] * 10])
    with pytest.raises(SampleError, match="out of range"):
        cdcgan.interpolate(3, 10)
    with pytest.raises(SampleError, match="steps must be an integer >= 2"):
        cdcgan.interpolate(3, 8, steps=1)
    with pytest.raises(SampleError, match="both 3: nothing would change"):
        cdcgan.interpolate(3, 3)
    with pytest.raises(SampleError, match="rows x steps = 300 x 300 = 90,000 images; allowed: at most 65,536"):
        cdcgan.interpolate(3, 8, steps=300, rows=300)
    with Generator.load("gan", tune=False) as gan:
        with pytest.raises(SampleError, match="unconditional; it takes no class weights"):
            gan.sample(class_weights=[[1.0]])
        with pytest.raises(SampleError, match="unconditional: class interpolation needs a conditional model"):
            gan.interpolate(0, 1)


def test_a_missing_or_foreign_mix_graph_is_refused_with_the_export_command(tmp_path):
    shutil.copy(WEIGHTS_DIR / "cdcgan.onnx", tmp_path / "cdcgan.onnx")
    with Generator.load(tmp_path / "cdcgan.onnx", tune=False) as g:
        with pytest.raises(SampleError) as e:
            g.sample(class_weights=[[0.1] * 10])
        assert "cdcgan.mix.onnx, which is not beside cdcgan.onnx" in str(e.value)
        assert "gantool export --model cdcgan --mix" in str(e.value)
        assert g.sample(labels=[1]).shape == (1, 28, 28)  # labels still work
    shutil.copy(WEIGHTS_DIR / "cwgan.mix.onnx", tmp_path / "cdcgan.mix.onnx")  # another model's mix graph
    with Generator.load(tmp_path / "cdcgan.onnx", tune=False) as g:
        with pytest.raises(SampleError, match="is another model"):
            g.sample(class_weights=[[0.1] * 10])


def test_a_mix_file_loaded_itself_takes_labels_and_class_weights(cdcgan):
    with Generator.load(WEIGHTS_DIR / "cdcgan.mix.onnx", tune=False, threads=1) as mix:
        assert mix.contract.condition == CLASS_WEIGHTS and mix.mix_path() == WEIGHTS_DIR / "cdcgan.mix.onnx"
        by_label = mix.sample(labels=[2, 5], seed=4)
        assert np.abs(by_label.astype(int) - cdcgan.sample(labels=[2, 5], seed=4)).max() <= 1
        assert np.array_equal(mix.sample(class_weights=one_hot(np.array([2, 5]), 10), seed=4), by_label)
        assert mix.interpolate(0, 9, steps=3, seed=0).shape == (3, 28, 28)


def test_the_ort_tensorrt_profile_covers_class_weights():
    from gantool.contract import GeneratorContract
    from gantool.runtime.backends.ort import trt_provider_options

    meta = Generator.load(WEIGHTS_DIR / "cdcgan.mix.onnx", tune=False).metadata
    options = trt_provider_options("/tmp/x", meta.contract.input_dims(), 64)
    assert options["trt_profile_max_shapes"] == "z:64x128,class_weights:64x10"
    assert GeneratorContract(meta.spec).input_dims() == {"z": 128, "labels": 0}
