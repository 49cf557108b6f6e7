import numpy as np
import pytest

from gantool.noise import fresh_noise, gaussian_bound, latent_path, make_noise


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
    x = np.random.Generator(np.random.PCG64(0)).random((4000, 128), dtype=np.float32)
    assert np.array_equal(u, (x * 2.0 - 1.0).astype(np.float32))  # the pcg64-v1 contract: U[-1, 1) this way


def test_bad_arguments_are_value_errors():
    for draw in (lambda *a: make_noise(0, *a), fresh_noise):
        with pytest.raises(ValueError, match="allowed: normal, uniform"):
            draw(2, 3, "laplace")
        with pytest.raises(ValueError, match="n and latent_dim"):
            draw(0, 3)


def test_fresh_noise_has_the_same_distributions_and_never_repeats():
    z, u = fresh_noise(4000, 100), fresh_noise(4000, 128, "uniform")
    assert z.dtype == u.dtype == np.float32 and abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert u.min() >= -1 and u.max() < 1 and abs(u.mean()) < 0.01
    assert not np.array_equal(fresh_noise(2, 8), fresh_noise(2, 8))


def test_small_seedless_draws_are_cut_from_a_pool_of_independent_rows():
    from gantool.noise import FRESH_POOL_ROWS

    rows = np.concatenate([fresh_noise(3, 16) for _ in range(FRESH_POOL_ROWS)])  # several refills
    assert rows.shape == (3 * FRESH_POOL_ROWS, 16) and rows.dtype == np.float32
    assert len(np.unique(rows, axis=0)) == len(rows)  # no row handed out twice
    assert abs(rows.mean()) < 0.05 and abs(rows.std() - 1) < 0.05
    u = fresh_noise(2, 16, "uniform")  # another distribution (or size) is never cut from the normal pool
    assert u.min() >= -1 and u.max() < 1 and fresh_noise(1, 7).shape == (1, 7)
    a = fresh_noise(1, 16)
    a[:] = 0  # a caller writing into its rows cannot touch the rows handed out later
    assert np.all(fresh_noise(1, 16) != 0)


def test_threads_and_forked_children_draw_their_own_fresh_noise():
    import os
    import threading

    fresh_noise(1, 8)  # this thread's generator exists before the fork and the other thread
    got = {}
    t = threading.Thread(target=lambda: got.update(other=fresh_noise(1, 8)))
    t.start()
    t.join()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one draw, sent back as bytes
        os.write(write, fresh_noise(1, 8).tobytes())
        os._exit(0)
    os.waitpid(pid, 0)
    child = np.frombuffer(os.read(read, 32), np.float32)
    mine = fresh_noise(1, 8)[0]
    assert not np.array_equal(child, mine)  # without the reset at fork, both would draw the same values
    assert not np.array_equal(got["other"][0], mine)



def test_truncation_one_is_todays_noise_and_below_one_keeps_the_central_share():
    for dist in ("normal", "uniform"):
        np.testing.assert_array_equal(make_noise(3, 64, 100, dist, truncation=1.0), make_noise(3, 64, 100, dist))
    z = make_noise(3, 2000, 100, truncation=0.5)
    bound = gaussian_bound(0.5)
    assert abs(bound - 0.6745) < 1e-3 and np.abs(z).max() <= bound
    # resampled, not clipped: no pile of mass on the bound, and the truncated normal's spread (0.3755 at t=0.5)
    assert np.mean(np.abs(z) > 0.99 * bound) < 0.01 and abs(z.std() - 0.3755) < 0.01
    kept = make_noise(3, 2000, 100)
    inside = np.abs(kept) <= bound
    np.testing.assert_array_equal(z[inside], kept[inside])  # in-bound values stay; only the others are redrawn
    u = make_noise(3, 500, 64, "uniform", truncation=0.25)
    np.testing.assert_allclose(u, make_noise(3, 500, 64, "uniform") * np.float32(0.25))  # scaled towards the centre


def test_truncated_rows_are_prefix_stable_and_every_t_is_checked():
    for dist in ("normal", "uniform"):
        big, small = make_noise(9, 300, 100, dist, truncation=0.3), make_noise(9, 7, 100, dist, truncation=0.3)
        np.testing.assert_array_equal(big[:7], small)  # a seed's first n rows stay its first n
    assert not np.array_equal(make_noise(9, 4, 100, truncation=0.3), make_noise(10, 4, 100, truncation=0.3))
    assert np.abs(fresh_noise(50, 100, truncation=0.2)).max() <= gaussian_bound(0.2)
    for bad in (0, -0.1, 1.01, float("nan"), True, "0.5"):
        with pytest.raises(ValueError, match=r"truncation must be a number in \(0, 1\]"):
            make_noise(0, 2, 3, truncation=bad)


def test_latent_path_ends_at_both_points_on_the_great_circle_or_the_line():
    a, b = make_noise(1, 2, 100)
    p = latent_path(a, b, 7)
    np.testing.assert_allclose(p[0], a, atol=1e-5) and np.testing.assert_allclose(p[-1], b, atol=1e-5)
    norms = np.linalg.norm(p, axis=1)
    lerp_mid = np.linalg.norm((a + b) / 2)
    assert norms[3] > lerp_mid * 1.2  # slerp keeps the norm a likely draw has; the straight line's middle shrinks
    u, v = make_noise(1, 2, 64, "uniform")
    q = latent_path(u, v, 5, "uniform")
    np.testing.assert_allclose(q[2], (u + v) / 2, atol=1e-6) and np.abs(q).max() < 1
    with pytest.raises(ValueError, match="steps must be >= 2"):
        latent_path(a, b, 1)
