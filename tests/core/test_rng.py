import numpy as np
import pytest

from latentdyn.core import rng as rng


def test_uniform_range_and_moments():
    u = rng.uniform(5, np.arange(20000), 3, 8)
    assert u.shape == (20000, 8)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005
    assert abs(u.var() - 1 / 12) < 0.002


def test_counter_rng_is_pure_function_of_coordinates():
    a = rng.uniform(1, np.arange(100), 0, 4)
    b = rng.uniform(1, np.arange(40, 60), 0, 4)
    np.testing.assert_array_equal(a[40:60], b)  # item i does not depend on what else was drawn
    assert not np.array_equal(rng.uniform(2, np.arange(100), 0, 4), a)  # seed matters
    assert not np.array_equal(rng.uniform(1, np.arange(100), 1, 4), a)  # stream matters
    assert len(np.unique(a)) == a.size


def test_normal_moments():
    z = rng.normal(0, np.arange(50000), 9, 4)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert np.isfinite(z).all()


def test_bad_seed():
    with pytest.raises(ValueError):
        rng.uniform(-1, np.arange(3), 0, 1)
