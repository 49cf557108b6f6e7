import numpy as np
import pytest

from gantool.noise import grid_labels, make_noise


def test_same_seed_same_noise_and_prefix_stable():
    a = make_noise(7, 16, 100)
    assert a.dtype == np.float32 and a.shape == (16, 100)
    np.testing.assert_array_equal(a, make_noise(7, 16, 100))
    assert not np.array_equal(a, make_noise(8, 16, 100))


def test_normal_and_uniform_have_their_distributions():
    z = make_noise(0, 4000, 100)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    u = make_noise(0, 4000, 128, "uniform")
    assert u.min() >= -1 and u.max() < 1 and abs(u.mean()) < 0.01


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="allowed: normal, uniform"):
        make_noise(0, 2, 3, "laplace")
    with pytest.raises(ValueError, match="n and latent_dim"):
        make_noise(0, 0, 3)


def test_grid_labels_rows_per_class():
    assert grid_labels(3, 2).tolist() == [0, 0, 1, 1, 2, 2]
