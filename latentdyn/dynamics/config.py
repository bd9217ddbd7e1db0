"""The settings of the dynamics stages: train-dynamics and rollout (one dataclass each).

Every field is an :func:`latentdyn.core.options.option`; the ``latentdyn train dynamics`` and
``latentdyn rollout`` options, the experiment-file keys and ``config.toml`` come from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from latentdyn.core.options import TrainingOptions, device_option, option, seed_option, vae_option

CELLS = ("gru", "convgru", "interaction")  # latentdyn.dynamics.model, latentdyn.dynamics.interaction


@dataclass
class TrainDynamicsConfig(TrainingOptions):
    """``latentdyn train dynamics``: the GRU latent predictor, trained on encoded scene sequences."""

    latents: str = option("encode", "Latents file of scene sequences (latentdyn encode; in an experiment: an encode stage).",
                          metavar="FILE")
    cell: str = option("gru", "The recurrent cell: gru (over the flat latent vector), convgru (a convolutional GRU "
                       "over a spatial latent's maps, Ballas et al. 2016; needs a VAE trained with latent_channels) or "
                       "interaction (an interaction network over objects, Battaglia et al. 2016; needs object-factored "
                       "latents: state latents from `latentdyn encode --states`, or a slot VAE's).",
                       choices=CELLS, why="gru: every latent, the setting of the published figures", key_if_set="added")
    hidden: int = option(128, "GRU width (convgru: hidden channels per latent-map position; interaction: width of "
                         "each object's state and of the message network).", minimum=1, maximum=8192,
                         why="128: enough for 3 balls, fast on a CPU")
    kernel: int = option(3, "convgru: odd size of the square convolution kernels.", minimum=1, maximum=15,
                         why="3: a 1/8-resolution map moves less than one cell per frame in the shipped scenes",
                         key_if_set="added")
    layers: int = option(1, "Stacked GRU layers.", minimum=1, maximum=16)
    use_logvar: bool = option(True, "Also read the posterior log-variances (the classic study fed means and variances).",
                              flag="--use-logvar/--means-only")
    residual: bool = option(True, "Predict a change of the latent (smooth motion) rather than the next latent.",
                            flag="--residual/--absolute")
    velocity_input: bool = option(True, "Also read mu_t - mu_(t-1): constant motion is then trivial to continue.",
                                  flag="--velocity-input/--no-velocity-input")
    epochs: int = option(30, "Training epochs.", minimum=1, may_resume=True)
    batch_size: int = option(64, "Global batch size of windows (split over torchrun processes).", minimum=1)
    lr: float = option(2e-3, "Adam learning rate.", minimum=1e-12, maximum=10.0)
    context: int = option(5, "Observed latents before the open-loop part of each training window.", minimum=1)
    horizon: int = option(20, "Open-loop steps in the multi-step training loss.", minimum=1)
    open_loop_weight: float = option(1.0, "Weight of the multi-step loss (0: teacher forcing only).", minimum=0.0)
    horizon_curriculum: int = option(0, "Epochs over which the training open-loop horizon grows from 1 step to --horizon "
                                     "(linearly; validation always scores the full horizon). 0: the full horizon from "
                                     "the start.", minimum=0, why="0: the full horizon, the setting of the published figures",
                                     key_if_set=True, may_resume=True)
    windows: int = option(4, "Random windows drawn from each sequence per epoch.", minimum=1)
    grad_clip: float = option(1.0, "Largest gradient norm (clipped above).", minimum=0.0)
    vae: str | None = option(None, "VAE run folder whose frozen decoder scores the open loop in pixels (the one that made "
                             "the latents; needed when frame_loss_weight > 0; in an experiment: a train-vae stage).",
                             metavar="RUN", key_if_set=True)
    frame_loss_weight: float = option(0.0, "Weight of the decoded-frame loss: the open-loop predicted means and the true "
                                      "latents decoded by the VAE, squared error summed over pixels, averaged over the "
                                      "horizon (no gradient into the VAE).", minimum=0.0,
                                      why="0: the latent loss alone, the setting of the published figures", key_if_set=True)
    decoder_finetune: bool = option(False, "Train a copy of the VAE's decoder with the predictor: the frame loss then "
                                    "compares the decoded open-loop predictions, and the decoded true latents, with the "
                                    "true frames, and the rollout decodes the model's predictions with the tuned decoder "
                                    "(needs --vae and --frame-loss-weight > 0; latentdyn.dynamics.decoder_tuning).",
                                    flag="--decoder-finetune/--frozen-decoder", key_if_set=True,
                                    why="the frozen decoder, the setting of the published figures")
    decoder_lr: float = option(1e-4, "Adam learning rate of the tuned decoder (decoder_finetune).", minimum=1e-12,
                               maximum=10.0, key_if_set=True, why="a small step: the decoder starts trained")
    latent_noise: float = option(0.0, "Std of the Gaussian noise added to the observed input latents in training (not "
                                 "the targets), in units of each latent's spread over the training sequences.",
                                 why="0: clean inputs, the setting of the published figures", minimum=0.0,
                                 key_if_set=True)
    sample_inputs: bool = option(False, "Train on inputs drawn from the posteriors, z ~ N(mu, exp(logvar)), instead of "
                                 "their means (the targets stay the means).", flag="--sample-inputs/--mean-inputs",
                                 why="the means: the setting of the published figures", key_if_set=True)
    init: str | None = option(None, "A dynamics run whose best weights start this predictor (fine-tuning, e.g. with the "
                              "frame loss or the decoder trained on predictions after training on the latent loss alone; "
                              "the same cell, sizes and VAE; the optimiser starts afresh, and a decoder the run tuned is "
                              "not carried over). In an experiment: a train-dynamics stage.", metavar="RUN",
                              why="none: the predictor starts from random weights", key_if_set=True)
    fresh_sequences: int = option(0, "Training sequences drawn anew every epoch from the latents file's scene definition "
                                  "(simulated, rendered and encoded by the file's VAE; for state latents the simulated "
                                  "states), in place of the file's training sequences; validation, test and the input "
                                  "scales stay the file's. 0: the file's fixed training sequences.", minimum=0,
                                  maximum=10**9, why="0: the file's sequences, the setting of the published figures",
                                  key_if_set=True)
    fresh_workers: int = option(1, "Worker processes making the fresh sequences while the predictor trains (one CPU "
                                "thread each; 0: in the training process, without overlap).", minimum=0, maximum=64,
                                why="1: one core beside the trainer's", in_key=False, may_resume=True)


@dataclass
class PublishedFigure:
    """One method's published open-loop figures (``[stages.rollout.published."LABEL"]``), shown in
    the report beside ours as "published, not run here"; a figure the source lacks stays unset."""

    epochs: int | None = option(None, "Training epochs behind the figures.", minimum=1)
    mse: float | None = option(None, "Squared error per frame, summed over pixels on [0, 1] (our se_per_frame).", minimum=0.0)
    mae: float | None = option(None, "Absolute error per frame, summed over pixels on [0, 1] (our ae_per_frame).", minimum=0.0)
    ssim: float | None = option(None, "SSIM, mean over predicted frames.")
    psnr: float | None = option(None, "PSNR (dB), mean over predicted frames.")
    note: str = option("", "What differs from our protocol, or why a figure is left out.")


@dataclass
class RolloutConfig:
    """``latentdyn rollout``: open-loop predictions decoded, scored against the truth and baselines, filmed."""

    vae: str = vae_option()
    dynamics: str = option("dynamics", "Dynamics run folder (in an experiment: a train-dynamics stage).", metavar="RUN")
    data: str = option("scenes", "Scene file (in an experiment: a generate stage).", metavar="FILE")
    oracle: str | None = option(None, "The state oracle: a dynamics run trained on this scene's true states (latentdyn "
                                "encode --states, then train dynamics; in an experiment: a train-dynamics stage), rolled "
                                "out from the true states, drawn by the scene's renderer and scored beside the model.",
                                metavar="RUN", key_if_set=True)
    pixel_baseline: str | None = option(None, "A pixel-space ConvLSTM run (latentdyn train convlstm; in an experiment: a "
                                        "train-convlstm stage) rolled out on the same frames and scored beside the "
                                        "model as the row 'convlstm'.", metavar="RUN", key_if_set="added")
    split: str = option("test", "The scene file's split to roll out (every sequence if it has none).")
    context: int = option(10, "Observed frames before predicting.", minimum=2)
    horizon: int = option(20, "Predicted steps.", minimum=1)
    sequences: int = option(64, "Sequences scored (the first of the split).", minimum=1)
    samples: int = option(0, "Sampled futures per sequence besides the mean (0: the mean only).", minimum=0)
    reencode: bool = option(False, "Re-encode each predicted step: decode the predicted latent to its mean image "
                            "(quantised to the data's 256 levels), encode that image and continue from its posterior, "
                            "so the rollout stays where the encoder puts real frames (a decode and an encode per step).",
                            flag="--reencode/--no-reencode", why="off: the predictor alone, as trained",
                            key_if_set=True)
    video_sequences: int = option(4, "Sequences shown in the video.", minimum=0)
    threshold: float = option(0.3, "Intensity above which pixels belong to a ball (region detector).", cli=False,
                              minimum=0.0, maximum=1.0)
    reference: dict[str, float] = option({}, "Published one-step errors shown beside ours (experiment files).", cli=False)
    reference_source: str = option("", "Where the reference figures come from.", cli=False)
    published: dict[str, PublishedFigure] = option({}, "Published open-loop figures by method label, shown beside ours "
                                                   "(experiment files).", cli=False, key_if_set=True)
    published_source: str = option("", "Where the published open-loop figures come from.", cli=False, key_if_set=True)
    seed: int = seed_option("the sampled futures")
    fps: float = option(8.0, "Frames per second of the videos.", minimum=0.1, maximum=120.0, in_key=False)
    device: str = device_option()


@dataclass
class TrainConvLSTMConfig(TrainingOptions):
    """``latentdyn train convlstm``: the pixel-space ConvLSTM (Shi et al. 2015), a yardstick trained on a scene
    file's frames for a wall-time budget (``latentdyn.dynamics.convlstm``, ``latentdyn.dynamics.convlstm_train``)."""

    data: str = option("scenes", "Scene file whose training split it learns (in an experiment: a generate stage).",
                       metavar="FILE")
    layers: int = option(2, "Stacked ConvLSTM layers.", minimum=1, maximum=16,
                         why="2 of 64 channels: OpenSTL's ConvLSTM-S (4 of 128, 5 x 5 kernels) takes 20 times as long per "
                         "sequence on a CPU (4.5 s against 0.22 s on one thread, docs/results.md)")
    hidden: int = option(64, "Channels of each layer's state.", minimum=1, maximum=1024,
                         why="64: see layers")
    kernel: int = option(3, "Odd size of the square convolution kernels.", minimum=1, maximum=15,
                         why="3: a Moving MNIST digit moves less than one 4-pixel patch a frame, and 3 x 3 is 2.2 times "
                         "as fast as OpenSTL's 5 x 5 on a CPU (docs/results.md)")
    patch: int = option(4, "Side of the square patches stacked as channels (space to depth); must divide the frames.",
                        minimum=1, maximum=64, why="4: OpenSTL's patch_size (64 x 64 frames become 16 x 16 maps)")
    context: int = option(10, "Observed frames before the predicted ones (validation scores the open loop after them).",
                          minimum=1, why="10: OpenSTL's Moving MNIST protocol, 10 -> 10")
    horizon: int = option(10, "Predicted frames of each training window and of the validation open loop.", minimum=1)
    epochs: int = option(100, "Training epochs, at most (a wall-time budget may end training sooner).", minimum=1,
                         may_resume=True, why="100: the budget, not the epochs, is meant to end a same-budget run")
    epoch_sequences: int = option(512, "Training sequences per epoch (a new random draw of the training split each "
                                  "epoch; 0: all of them). Training stops at an epoch's end, so shorter epochs keep "
                                  "closer to a wall-time budget.", minimum=0,
                                  why="512: about two minutes at the default size on one CPU thread (0.21 s a sequence, "
                                  "docs/results.md), short beside a budget of tens of minutes")
    batch_size: int = option(16, "Sequences per batch.", minimum=1, why="16: OpenSTL's")
    lr: float = option(1e-3, "Adam learning rate.", minimum=1e-12, maximum=10.0, why="1e-3: OpenSTL's")
    grad_clip: float = option(1.0, "Largest gradient norm (clipped above; 0: no clipping).", minimum=0.0)
    sampling_until: float = option(0.4, "Scheduled sampling (Bengio et al. 2015): the probability that a step after "
                                   "the context reads the true frame rather than the model's own prediction falls "
                                   "linearly from 1 to 0 over this fraction of training (of the budget's seconds, or "
                                   "of the epochs, whichever runs out first), then stays 0. 0: the model's own "
                                   "predictions from the start.", minimum=0.0, maximum=1.0,
                                   why="0.4: OpenSTL's Moving MNIST run stops feeding truth after 50,000 of its "
                                   "125,000 iterations")
    budget_seconds: float = option(0.0, "Wall-time budget in seconds, counted as the trainers count an epoch's time "
                                   "(the 'seconds' of metrics.jsonl); training ends at the epoch end nearest to it. "
                                   "0: none.", minimum=0.0)
    budget_from: list[str] = option([], "Training runs whose epochs' recorded seconds, summed, are the budget (in an "
                                    "experiment: train-vae and train-dynamics stages, e.g. the VAE and the predictor "
                                    "this model is measured against).", metavar="RUN")
