"""The Python API: each stage from its config or keyword overrides, quiet, returning a Result."""

from __future__ import annotations

import pytest

import latentdyn as ld
from latentdyn.core.errors import LatentdynError


def test_the_readme_pipeline_in_python_is_quiet_and_returns_results(tmp_path, capsys):
    d = tmp_path
    scenes = ld.generate(scene="light_ball", sequences=24, length=12, out=d / "ball.h5")
    vae = ld.train_vae(data=scenes.out, arch="mlp", latent_dim=3, epochs=1, device="cpu", out=d / "vae")
    ev = ld.evaluate(vae=vae.out, split="test", iw_samples=4)
    lat = ld.encode(vae=vae.out, data=scenes.out, out=d / "lat.h5")
    dyn = ld.train_dynamics(latents=lat.out, epochs=1, context=3, horizon=4, device="cpu", out=d / "dyn")
    roll = ld.rollout(vae=vae.out, dynamics=dyn.out, data=scenes.out, context=4, horizon=4, sequences=2, out=d / "roll")
    lmap = ld.latent_map(vae=vae.out, out=d / "map")
    assert capsys.readouterr().out == ""  # nothing printed unless asked
    assert scenes.metrics["sequences"] == 24 and scenes.paths["scenes"].is_file()
    assert vae.metrics["epoch"] == 1 and vae.paths["best"].is_file() and vae.config.likelihood == "discretized-logistic"
    assert ev.metrics["split"] == "test" and ev.paths["eval"].is_file()
    assert lat.paths["latents"].is_file() and dyn.paths["best"].is_file()
    assert set(roll.metrics["open_loop"]) >= {"model", "copy_last"} and (roll.out / "config.toml").is_file()
    assert lmap.metrics["latent_dim"] == 3


def test_configs_and_overrides_combine_and_are_checked(tmp_path):
    cfg = ld.TrainVAEConfig(data="x.h5", epochs=3)
    from latentdyn.api import configure

    assert configure(ld.TrainVAEConfig, cfg, beta=2.0).beta == 2.0 and cfg.beta == 1.0  # a copy, not a change
    with pytest.raises(LatentdynError, match="no option 'latnt_dim'; did you mean latent_dim"):
        ld.train_vae(cfg, latnt_dim=3, out=tmp_path / "r")
    with pytest.raises(LatentdynError, match="--epochs 0: must be at least 1"):
        ld.train_vae(cfg, epochs=0, out=tmp_path / "r")
    with pytest.raises(LatentdynError, match="expected a TrainVAEConfig"):
        ld.train_vae(ld.RolloutConfig(), out=tmp_path / "r")
    assert not (tmp_path / "r").exists()
