import numpy as np
import pytest

from gantool.noise import fresh_noise, make_noise


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

