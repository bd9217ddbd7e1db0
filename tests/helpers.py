"""Helpers shared by several test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FMNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def fails_cleanly(result, *needles):
    """A CliRunner result that failed with one ``Error: ...`` line (exit 2, no traceback) naming ``needles``."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for n in needles:
        assert n in lines[0]


def need_fashion_mnist():
    """Skip (fail in CI) unless Debian's Fashion-MNIST is installed."""
    if not (FMNIST / "train-images-idx3-ubyte.gz").exists():
        if os.environ.get("LATENTDYN_REQUIRE_TEST_DATA"):
            pytest.fail("Debian's dataset-fashion-mnist is required here (apt-get install dataset-fashion-mnist)")
        pytest.skip("needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)")
