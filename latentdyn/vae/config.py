"""The settings of the VAE stages: train-vae, evaluate, encode, sample (one dataclass each).

Every field is an :func:`latentdyn.core.options.option`: the one place where its name, type,
default, the reason for the default and its help text live. The ``latentdyn train vae``,
``evaluate`` and ``encode`` options, the experiment-file keys and the run folder's
``config.toml`` are derived from these classes.
"""

from __future__ import annotations

from dataclasses import dataclass

from latentdyn.core.options import (
    TrainingOptions, data_dir_option, device_option, option, seed_option, source_option, vae_option,
)

ARCHS = ("tutorial", "mlp", "resnet", "slots")
LIKELIHOODS = ("auto", "bernoulli", "discretized-logistic", "discretized-gaussian", "gaussian")  # see docs/likelihoods.md
BINARIZE = ("none", "static", "dynamic")
PRIORS = ("gaussian", "flow")  # latentdyn.vae.priors; docs/flows.md
PRIOR_FLOWS = ("maf", "nsf")
POSTERIORS = ("gaussian", "iaf")  # latentdyn.vae.posteriors


@dataclass
class TrainVAEConfig(TrainingOptions):
    """``latentdyn train vae``: a beta-VAE trained on a dataset or a scene file."""

    data: str = option("fashion-mnist", "A dataset name (mnist, fashion-mnist, cifar10, cifar10-gray) or a scene file.",
                       metavar="SOURCE", why="Debian's dataset-fashion-mnist package has it offline (apt-get install dataset-fashion-mnist); "
                           "elsewhere it downloads once, checksum-checked")
    data_dir: str | None = data_dir_option()
    latent_dim: int = option(2, "Latent dimensions.", why="2 gives latent maps one can plot directly", minimum=1, maximum=1024)
    latent_channels: int = option(0, "resnet: a spatial latent, a map of this many channels at 1/8 (latent_stride) of the input's "
                                  "height and width (latent_dim must then equal channels x ceil(H/8) x ceil(W/8), e.g. 8 x 8 x 8 = "
                                  "512 for 64x64 frames); its predictor can be a convolutional GRU (cell = convgru). "
                                  "0: a flat latent.", minimum=0, maximum=1024,
                                  why="0: a flat latent, the setting of every published figure", key_if_set="added")
    latent_stride: int = option(8, "A spatial latent's map: one cell per this many input pixels, 8 (the map at 1/8 of "
                                "the input's height and width) or 4 (1/4: 16 x 16 for 64x64 frames, the map size SimVP "
                                "predicts in; latent_dim = channels x ceil(H/4) x ceil(W/4)).", minimum=4, maximum=8,
                                why="8: a map of 8 x 8 for 64x64 frames, fast for the ConvGRU", key_if_set="added")
    slots: int = option(0, "arch slots: the latent's object slots K (one object each, kept in the same slot from "
                        "frame to frame; latentdyn.vae.slots); 0 for the other archs.", minimum=0, maximum=64,
                        why="0: no slots, the other archs' setting", key_if_set="added")
    slot_dim: int = option(0, "arch slots: latent dimensions D per slot (latent_dim must equal slots x slot_dim; the "
                           "latent's shape is (slots, slot_dim), flattened object-major).", minimum=0, maximum=256,
                           why="0: no slots, the other archs' setting", key_if_set="added")
    slot_decoder: str = option("broadcast", "arch slots: how a slot is drawn: broadcast (a per-pixel MLP over each "
                               "pixel's position relative to the slot's, Watters et al. 2019) or sprite (a small "
                               "convolutional decoder draws the slot's appearance as a sprite, pasted at the slot's "
                               "position by a spatial transformer, Jaderberg et al. 2015; AIR, Eslami et al. 2016; over a "
                               "learned background).", choices=("broadcast", "sprite"),
                               why="broadcast: the decoder measured on three_balls", key_if_set="added")
    slot_centroid: str = option("attention", "arch slots: where a slot moves after each attention iteration: the "
                                "centroid of its attention (Biza et al. 2023), or of its attention times the frame's light "
                                "(light: for light objects on a dark background, whose pixels are few; the background's "
                                "pixels, shared among the slots, otherwise pull every slot to the frame's centre).",
                                choices=("attention", "light"), why="attention: Invariant Slot Attention's update",
                                key_if_set="added")
    sprite_scale: float = option(0.5, "slot_decoder sprite: a sprite's side as a fraction of the frame's (0.5: 32 pixels "
                                 "of a 64 x 64 frame, a 28 x 28 digit with its margin).", minimum=0.05, maximum=1.0,
                                 why="0.5: Moving MNIST's digits", key_if_set="added")
    beta: float = option(1.0, "Weight of the KL term (Higgins et al. 2017).", why="1 is the plain VAE", minimum=0.0)
    arch: str = option("resnet", "Encoder/decoder: tutorial (the TF CVAE tutorial, exact), mlp (2 dense layers each side), "
                       "resnet (ours) or slots (object slots: Slot Attention with slots carried frame to frame and a "
                       "spatial broadcast decoder; set slots and slot_dim).", choices=ARCHS, why="resnet: about the tutorial's cost, better fits")
    width: int = option(0, "resnet: channels of the first stage (doubled at the second); 0: from the frame size, 8 for "
                        "frames up to 32 px, 16 up to 64 px, 32 above (the run's config.toml records the width used). "
                        "slots: the features, slot and decoder width (0: 32).",
                        minimum=0, maximum=1024,
                        why="0: the small-frame rule, measured on three_balls at a third of width 32's time to the same "
                            "reconstructions (docs/results.md)")
    likelihood: str = option("auto", "p(x|z): bernoulli (binary data), discretized-logistic or discretized-gaussian "
                             "(8-bit data, a likelihood over the 256 levels), gaussian (a continuous density: a training "
                             "loss only); auto: Bernoulli for binarised data, the discretised logistic for 8-bit images.",
                             choices=LIKELIHOODS, why="every reported ELBO is then a log-probability of the data")
    sigma: float | None = option(None, "Continuous Gaussian: fixed std in [0, 1] pixel units (default: learned per channel).",
                                 minimum=0.00157, maximum=1.0)  # density x bin width <= 1 at the floor: 1 / (255 sqrt(2 pi))
    binarize: str = option("none", "Binarise grey images: static (> 0.5 once), dynamic (a Bernoulli draw each epoch) or none.",
                           choices=BINARIZE)
    prior: str = option("gaussian", "p(z): gaussian (N(0, I)) or flow (a normalising flow over N(0, I), learned with "
                        "the VAE; see --prior-flow).", choices=PRIORS,
                        why="the plain VAE; its KL has a closed form")
    posterior: str = option("gaussian", "q(z|x): gaussian (diagonal) or iaf (an inverse autoregressive flow on the "
                            "Gaussian, conditioned on the encoder; Kingma et al. 2016).", choices=POSTERIORS,
                            why="the plain VAE; its KL has a closed form")
    prior_flow: str = option("maf", "The flow prior's steps: maf (affine, Papamakarios et al. 2017) or nsf "
                             "(rational-quadratic splines, Durkan et al. 2019); zuko's, autoregressive.", choices=PRIOR_FLOWS,
                             why="measured no worse than nsf on Fashion-MNIST latent 2 and cheaper per step "
                                 "(1.18x against 1.38x the Gaussian model's; docs/results.md)")
    flow_transforms: int = option(3, "Steps of each flow (the prior's and the IAF's).", minimum=1, maximum=32,
                                  why="zuko's default")
    flow_hidden: int = option(64, "Hidden units of each flow step's two-layer MADE network.", minimum=4, maximum=4096,
                              why="zuko's default; a latent of a few dimensions needs no more")
    epochs: int = option(10, "Training epochs.", minimum=1, may_resume=True)
    batch_size: int = option(128, "Global batch size (split over torchrun processes).", minimum=1, maximum=65536,
                             why="the tutorial's is 32 with lr 1e-4")
    lr: float = option(1e-3, "Adam learning rate.", minimum=1e-12, maximum=10.0)
    warmup_epochs: int = option(0, "KL warm-up: beta rises linearly from 0 over these epochs.", minimum=0)
    lr_warmup: int = option(0, "Learning-rate warm-up: over the first N optimizer steps the rate rises linearly from lr/N "
                            "to lr (0: none; with lr_schedule constant; Slot Attention warms up over 10,000 steps, "
                            "Locatello et al. 2020, Sec. 4).", minimum=0,
                            why="0: no warm-up, the setting of every run before the option", key_if_set="added")
    limit: int = option(0, "Use only the first N training images (scene files: frames, rounded up to whole sequences of "
                       "the train split; 0: all).", minimum=0)
    val_size: int = option(5000, "Datasets: images of the official training set held out as the val split.",
                           minimum=0, why="5,000: the usual MNIST validation size")
    max_memory_mb: int = option(4096, "Scene files larger than this stream from HDF5 in blocks instead of sitting in memory.",
                                minimum=0, in_key=False, may_resume=True)


@dataclass
class EvaluateConfig:
    """``latentdyn evaluate``: ELBO, IWAE log p(x), active units and KL per dimension of a trained VAE."""

    vae: str = vae_option()
    data: str | None = source_option()
    data_dir: str | None = data_dir_option()
    split: str = option("test", "The split evaluated.")
    iw_samples: int = option(64, "Samples of the importance-weighted bound (0: skip).", minimum=0,
                             why="64: within a fraction of a nat of K=5000 on MNIST (Burda et al. 2016)")
    checkpoint: str = option("best", "Which checkpoint of the run: best or last.", choices=("best", "last"))
    limit: int = option(0, "Evaluate only the first N examples (0: all).", minimum=0)
    device: str = device_option()
    max_memory_mb: int = option(4096, "Memory (MB) the evaluation's data, model and tensors may take: the examples per "
                                "batch and the importance samples decoded at once are sized to stay under it.",
                                minimum=16, in_key=False, why="as train-vae's; leaves room on an 8 GB laptop")


@dataclass
class EncodeConfig:
    """``latentdyn encode``: posterior means and log-variances in HDF5, with provenance."""

    vae: str = vae_option()
    data: str | None = option(None, "A scene file (every sequence is encoded), or a dataset name (then --split); default: "
                              "the VAE's training data.", metavar="SOURCE")
    data_dir: str | None = data_dir_option()
    split: str | None = option(None, "Datasets: the split to encode (default test). Scene files: every sequence.")
    precision: str = option("float32", "Arithmetic of the encoder's trunk: float32, bfloat16 (the output layer, hence mu "
                            "and logvar, stays float32), or auto (bfloat16 where the device runs it natively).",
                            choices=("auto", "float32", "bfloat16"), key_if_set="added",
                            why="float32: the latents of every published figure; bfloat16 changes the means by a small "
                                "fraction of the posterior's std at twice the speed (docs/results.md)")
    states: bool = option(False, "Write the scene file's true states (x, y, vx, vy in pixels per object) instead of a VAE's "
                          "latents: the state oracle's input (no VAE read; --data names the scene file).",
                          flag="--states/--vae-latents", key_if_set=True, why="a VAE's latents")
    device: str = device_option()


@dataclass
class SampleConfig:
    """``latentdyn sample``: a grid of images decoded from the model's prior (flow included)."""

    vae: str = vae_option()
    n: int = option(64, "Samples drawn (tiled into a near-square grid).", short="-n", minimum=1, maximum=4096,
                    why="an 8x8 grid")
    temperature: float = option(1.0, "Scale of the prior's base Gaussian std: z = g(T u), u ~ N(0, I) (g the flow, or "
                                "the identity for a Gaussian prior).", minimum=0.0, maximum=10.0,
                                why="1 samples the prior itself")
    seed: int = seed_option("the base noise")
    checkpoint: str = option("best", "Which checkpoint of the run: best or last.", choices=("best", "last"))
    device: str = device_option()


def check_slots(cfg) -> None:
    """Refuse slot options that do not fit ``cfg.arch`` (``TrainVAEConfig.slots`` / ``slot_dim``):
    one-line errors naming the option and the fix."""
    from latentdyn.core.errors import LatentdynError

    K, D = int(getattr(cfg, "slots", 0) or 0), int(getattr(cfg, "slot_dim", 0) or 0)
    if cfg.arch != "slots":
        if K or D:
            raise LatentdynError(f"slots {K}, slot_dim {D}: object slots need arch = slots, not {cfg.arch}")
        if getattr(cfg, "slot_decoder", "broadcast") != "broadcast" or getattr(cfg, "slot_centroid", "attention") != "attention":
            raise LatentdynError(f"slot_decoder {cfg.slot_decoder}, slot_centroid {cfg.slot_centroid}: options of "
                                 f"arch = slots, not {cfg.arch}")
        return
    if K < 1 or D < 2:
        raise LatentdynError(f"arch slots needs slots >= 1 and slot_dim >= 2 (a slot's position and appearance; "
                             f"got slots {K}, slot_dim {D}); e.g. slots = 4, slot_dim = 6 for three balls")
    if getattr(cfg, "sprite_scale", 0.5) != 0.5 and getattr(cfg, "slot_decoder", "broadcast") != "sprite":
        raise LatentdynError(f"sprite_scale {cfg.sprite_scale:g} sizes the sprites of slot_decoder = sprite; set it, or "
                             "drop sprite_scale")
    if cfg.latent_dim != K * D:
        raise LatentdynError(f"latent_dim {cfg.latent_dim} with {K} slots of {D}: set latent_dim = {K * D} (slots x slot_dim)")
    if cfg.prior != "gaussian" or cfg.posterior != "gaussian":
        raise LatentdynError("arch slots takes the gaussian prior and posterior (a flow over all slots would tie them "
                             "to an order); set prior = gaussian and posterior = gaussian")
