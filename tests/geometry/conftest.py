"""Shared by the geometry tests: double precision and the sphere chart."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def float64():
    """Double precision for a test module (`pytestmark = pytest.mark.usefixtures("float64")`); restored afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def sphere(z):
    """Spherical angles (theta, phi) -> the unit sphere in R^3: (sin t cos p, sin t sin p, cos t);
    its pull-back metric is diag(1, sin^2 theta)."""
    t, p = z[:, 0], z[:, 1]
    return torch.stack([t.sin() * p.cos(), t.sin() * p.sin(), t.cos()], -1)
