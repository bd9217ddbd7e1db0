"""Commands of the model stages: train the VAE and the predictor, evaluate, encode, sample."""

from __future__ import annotations

import json

import click

from latentdyn.cli.derive import build_config, config_options
from latentdyn.cli.options import echo_row, out_option, progress_option, resume_option
from latentdyn.dynamics.config import TrainConvLSTMConfig, TrainDynamicsConfig
from latentdyn.vae.config import EncodeConfig, EvaluateConfig, SampleConfig, TrainVAEConfig


@click.group(cls=click.Group)
def train() -> None:
    """Train models: the beta-VAE, the GRU latent predictor, and the pixel-space ConvLSTM yardstick."""


@train.command(name="vae")
@out_option("Run folder (created; --resume continues it).", folder=True)
@config_options(TrainVAEConfig)
@resume_option
@progress_option
def train_vae_cmd(out, config_file, sets, resume, progress, **params) -> None:
    """Train a beta-VAE on a dataset or a scene file."""
    from latentdyn import api

    cfg = build_config(TrainVAEConfig, params, click.get_current_context(), config_file, sets)
    res = api.train_vae(cfg, out=out, resume=resume, progress=progress, verbose=True)
    row = res.metrics
    if row and "val_elbo" in row:
        from latentdyn.vae import likelihoods as lik

        honest = lik.is_log_probability(res.config.likelihood, lik.data_protocol(res.config.binarize))
        echo_row(out, row, f"validation ELBO {row['val_elbo']:.2f} nats" if honest else
                 f"validation objective {row['val_elbo']:.2f} ({res.config.likelihood} on {cfg.binarize} data: a training "
                 "loss, not a likelihood)")
    else:
        echo_row(out, row, "")


@train.command(name="dynamics")
@out_option("Run folder (created; --resume continues it).", folder=True)
@config_options(TrainDynamicsConfig)
@resume_option
@progress_option
def train_dynamics_cmd(out, config_file, sets, resume, progress, **params) -> None:
    """Train the GRU latent predictor on encoded scene sequences."""
    from latentdyn import api

    cfg = build_config(TrainDynamicsConfig, params, click.get_current_context(), config_file, sets)
    res = api.train_dynamics(cfg, out=out, resume=resume, progress=progress, verbose=True)
    row = res.metrics
    echo_row(out, row, f"validation loss {row['val_loss']:.3f}" if "val_loss" in row else "")


@train.command(name="convlstm")
@out_option("Run folder (created; --resume continues it).", folder=True)
@config_options(TrainConvLSTMConfig)
@resume_option
@progress_option
def train_convlstm_cmd(out, config_file, sets, resume, progress, **params) -> None:
    """Train the pixel-space ConvLSTM (Shi et al. 2015) on a scene file's frames, for a wall-time budget."""
    from latentdyn import api

    cfg = build_config(TrainConvLSTMConfig, params, click.get_current_context(), config_file, sets)
    res = api.train_convlstm(cfg, out=out, resume=resume, progress=progress, verbose=True)
    b = json.loads((res.out / "budget.json").read_text())
    row = res.metrics
    echo_row(out, row, (f"validation open-loop squared error per frame {row['val_se_per_frame']:.2f}; "
                        if "val_se_per_frame" in row else "")
             + f"trained {b['trained_seconds']:.0f} s in {b['epochs']} epochs (stopped by {b['stopped_by']})")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@out_option("JSON to write (default: RUN_DIR/eval_<split>.json).", required=False)
@config_options(EvaluateConfig)
@progress_option
def evaluate(run_dir, out, config_file, sets, progress, **params) -> None:
    """Evaluate a trained VAE (RUN_DIR, or --vae): ELBO, IWAE log p(x), active units, KL per dimension."""
    from latentdyn import api

    cfg = build_config(EvaluateConfig, params, click.get_current_context(), config_file, sets)
    if run_dir is not None:
        cfg.vae = run_dir
    res = api.evaluate(cfg, out=out, progress=progress)
    click.echo(json.dumps({k: v for k, v in res.metrics.items() if k != "config"}, indent=2))


@click.command()
@out_option("Latents file to write (.h5).")
@config_options(EncodeConfig)
@progress_option
def encode(out, config_file, sets, progress, **params) -> None:
    """Encode frames into posterior means and log-variances, with provenance (HDF5); with --states,
    write a scene file's true states instead (the state oracle's input)."""
    from latentdyn import api

    cfg = build_config(EncodeConfig, params, click.get_current_context(), config_file, sets)
    click.echo(f"wrote {api.encode(cfg, out=out, progress=progress).out}")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@out_option("PNG grid to write.")
@config_options(SampleConfig)
def sample(run_dir, out, config_file, sets, **params) -> None:
    """Draw images from a trained VAE's prior (RUN_DIR, or --vae) into a PNG grid."""
    from latentdyn import api

    cfg = build_config(SampleConfig, params, click.get_current_context(), config_file, sets)
    if run_dir is not None:
        cfg.vae = run_dir
    res = api.sample(cfg, out=out)
    m = res.metrics
    click.echo(f"wrote {res.out}: {m['n']} samples of the {m['prior']} prior at temperature {m['temperature']:g} "
               f"({m['grid_shape'][0]}x{m['grid_shape'][1]} px)")


COMMANDS = [train, evaluate, encode, sample]
