"""The Moving MNIST benchmark files (experiments/moving_mnist.toml, moving_fashion.toml): they
load with their profiles, plan with --dry-run, carry OpenSTL's published rows, and a missing
dataset leaves every stage that needs it "cannot run here" before any work."""

from __future__ import annotations

import tomllib

import pytest
from click.testing import CliRunner

from latentdyn import datasets as ds
from latentdyn.cli.main import cli
from latentdyn.core.config import dumps_toml, from_dict, to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.dynamics.config import PublishedFigure, RolloutConfig
from latentdyn.pipeline import plan as X
from latentdyn.pipeline.report.sections import _published_rows

STAGES = ["scenes", "vae", "encode", "dynamics", "rollout", "report"]


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def plan_lines(output: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in output.splitlines())


@pytest.mark.parametrize("name, scene", [("moving_mnist", "moving_mnist"), ("moving_fashion", "moving_fashion")])
@pytest.mark.parametrize("profile", [None, "quick"])
def test_benchmark_files_load_with_openstl_protocol(name, scene, profile):
    exp = X.load_experiment(name, profile=profile)
    # the decoder trained on predictions (tune) after the predictor, then the same-budget ConvLSTM
    assert [s.name for s in exp.stages] == STAGES[:4] + ["tune", "convlstm", "states", "oracle"] + STAGES[4:]
    assert exp.info.name == name
    conv = exp.stage("convlstm")  # the same sequences, the budget of the VAE, the predictor and its fine-tune
    assert conv.refs == {"data": ["scenes"], "budget_from": ["vae", "dynamics", "tune"]}
    t, d = exp.stage("tune"), exp.stage("dynamics")  # fine-tunes the predictor (the same size), the rollout reads it
    assert t.refs == {"latents": ["encode"], "init": ["dynamics"], "vae": ["vae"]}
    assert t.settings.decoder_finetune and t.settings.frame_loss_weight > 0
    assert [getattr(t.settings, k) for k in ("cell", "hidden", "kernel", "layers", "context", "horizon")] == \
        [getattr(d.settings, k) for k in ("cell", "hidden", "kernel", "layers", "context", "horizon")]
    assert exp.stage("rollout").refs["dynamics"] == ["tune"]
    assert (conv.settings.context, conv.settings.horizon) == (10, 10)
    assert exp.stage("rollout").refs["pixel_baseline"] == ["convlstm"]
    o = exp.stage("oracle")  # the state oracle: the interaction predictor on the true states, in the rollout
    assert exp.stage("rollout").refs["oracle"] == ["oracle"] and o.refs == {"latents": ["states"]}
    assert o.settings.cell == "interaction" and (o.settings.context, o.settings.horizon) == (10, 10)
    assert exp.stage("states").refs == {"data": ["scenes"]}
    v, d = exp.stage("vae").settings, exp.stage("dynamics").settings  # the spatial latent and its convolutional GRU
    assert v.latent_channels > 0 and v.likelihood == "gaussian" and d.cell == "convgru" and d.latents == "encode"
    assert exp.stage("scenes").settings.scene == scene
    ro = exp.stage("rollout").settings
    assert (ro.context, ro.horizon) == (10, 10) and ro.split == "test"  # OpenSTL: 10 frames observed, 10 predicted
    assert d.context + d.horizon <= 20  # a training window fits a 20-frame sequence
    assert ro.published and all(isinstance(f, PublishedFigure) and f.epochs and f.mse for f in ro.published.values())
    assert "OpenSTL" in ro.published_source and "video_benchmarks.md" in ro.published_source
    flat = X.load_experiment(name, ["vae.latent_channels=0", "vae.latent_dim=64", "dynamics.cell=gru",
                                    "dynamics.hidden=256"], profile)  # the flat study, as the file's comment says
    assert flat.stage("vae").settings.latent_channels == 0 and flat.stage("dynamics").settings.cell == "gru"


def test_openstl_figures_as_published():
    """Spot checks against OpenSTL's docs/en/model_zoos/video_benchmarks.md (commit c74deb5)."""
    mm = X.load_experiment("moving_mnist").stage("rollout").settings.published
    c = mm["ConvLSTM-S"]
    assert (c.epochs, c.mse, c.mae, c.ssim, c.psnr) == (200, 29.80, 90.64, 0.9288, 22.10)
    assert mm["PredRNN++"].mse == 22.06 and mm["PredRNN++, 2000 epochs"].mse == 14.07
    assert mm["SimVP+gSTA-S"].psnr is None and "PSNR left out" in mm["SimVP+gSTA-S"].note
    mf = X.load_experiment("moving_fashion").stage("rollout").settings.published
    assert (mf["ConvLSTM-S"].mse, mf["ConvLSTM-S"].mae) == (28.87, 113.20)


def test_published_rows_round_trip_and_show_under_our_columns():
    cfg = X.load_experiment("moving_mnist").stage("rollout").settings
    again = from_dict(RolloutConfig, tomllib.loads(dumps_toml(to_dict(cfg))))  # the stage's config.toml reloads
    assert again == cfg
    rows = _published_rows(to_dict(cfg)["published"], ["se_per_frame", "ae_per_frame", "psnr", "ssim", "all_present"])
    assert rows[0] == ["ConvLSTM-S, 200 epochs (published, not run here)", 29.80, 90.64, 22.10, 0.9288, None]
    assert rows[-1][0] == "PredRNN++, 2000 epochs (published, not run here)"  # the epochs are not said twice
    with pytest.raises(LatentdynError, match=r"published.ConvLSTM-S.mse = 'x': expected float"):
        from_dict(RolloutConfig, {"published": {"ConvLSTM-S": {"mse": "x"}}})
    with pytest.raises(LatentdynError, match="unknown key published.ConvLSTM-S.mean_se"):
        from_dict(RolloutConfig, {"published": {"ConvLSTM-S": {"mean_se": 1.0}}})


def test_missing_mnist_leaves_its_branch_unavailable(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "SYSTEM_DIRS", [])
    monkeypatch.setenv("LATENTDYN_DATA", str(tmp_path / "empty_cache"))
    r = run("run", "moving_mnist", "--out", tmp_path / "r", "--dry-run", "--profile", "quick")
    assert r.exit_code == 0, r.output
    lines = plan_lines(r.output)
    for name in STAGES[:-1] + ["tune", "convlstm", "states", "oracle"]:  # every stage but the report reads the scenes
        assert "(cannot run here: mnist is not available offline" in lines[name], lines[name]
    assert "cannot run here" not in lines["report"]
    r = run("run", "moving_mnist", "--out", tmp_path / "r", "--profile", "quick")
    assert r.exit_code == 2 and r.output.startswith("Error: stage 'scenes': mnist is not available offline")
    assert not (tmp_path / "r").exists()  # refused before any work


@pytest.mark.skipif(ds.source_files("fashion-mnist") is None, reason="Fashion-MNIST is not on this machine")
def test_moving_fashion_plans_every_stage(tmp_path):
    for profile in ("quick", None):
        r = run("run", "moving_fashion", "--out", tmp_path / "r", "--dry-run", *(["--profile", profile] if profile else []))
        assert r.exit_code == 0, r.output
        kinds = ["generate", "train-vae", "encode", "train-dynamics", "train-dynamics", "train-convlstm", "encode-states",
                 "train-dynamics", "rollout", "report"]
        lines = list(plan_lines(r.output).values())
        assert len(lines) == len(kinds) and all(v.split() == [k, "run"] for v, k in zip(lines, kinds))
