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


def make_vae(arch: str = "resnet", latent_dim: int = 2, channels: int = 1, height: int = 28, width_px: int = 28, **kw):
    """A BetaVAE of the given architecture and input (C, H, W) = (channels, height, width_px)."""
    from latentdyn.vae.config import TrainVAEConfig
    from latentdyn.vae.model import BetaVAE

    kw.setdefault("likelihood", "bernoulli")
    return BetaVAE(TrainVAEConfig(arch=arch, latent_dim=latent_dim, **kw), (channels, height, width_px))


def vae_config(source, **kw):
    """A small, fast TrainVAEConfig on ``source`` (mlp, latent 2, static binarisation, CPU)."""
    from latentdyn.vae.config import TrainVAEConfig

    base = {"arch": "mlp", "latent_dim": 2, "binarize": "static", "epochs": 2, "batch_size": 64, "lr": 1e-3,
            "device": "cpu"}
    return TrainVAEConfig(data=str(source), **{**base, **kw})


def make_gru(latent_dim: int = 3, **kw):
    """A LatentGRU reading ``latent_dim`` latents."""
    from latentdyn.dynamics.config import TrainDynamicsConfig
    from latentdyn.dynamics.model import LatentGRU

    return LatentGRU(TrainDynamicsConfig(**kw), latent_dim)


def killed_in_epoch(epoch: int):
    """A context in which training is killed (KeyboardInterrupt) as epoch ``epoch`` ends, after
    epoch ``epoch - 1`` was saved: ``with killed_in_epoch(2): train(...)`` raises; afterwards the
    loop is as before."""
    import contextlib

    from latentdyn.engine import loop

    @contextlib.contextmanager
    def ctx():
        real = loop.check_finite

        def die(value, e, run_dir, what="loss"):
            if e == epoch:
                raise KeyboardInterrupt  # the process is killed
            return real(value, e, run_dir, what)

        loop.check_finite = die
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            loop.check_finite = real

    return ctx()
