"""The settings of the analysis stages: analyze and steer (one dataclass each)."""

from __future__ import annotations

from dataclasses import dataclass

from latentdyn.core.options import data_dir_option, device_option, option, seed_option, source_option, vae_option


@dataclass
class AnalyzeConfig:
    """``latentdyn analyze``: what each latent dimension means, against the ground truth (docs/analysis.md)."""

    vae: str = vae_option()
    data: str | None = source_option()
    data_dir: str | None = data_dir_option()
    split: str = option("test", "The split scored (codes are fitted on train_split).")
    train_split: str = option("train", "The split probes, DCI and SAP are fitted on.")
    limit: int = option(5000, "Frames or images drawn from each split (0: all).", minimum=0,
                        why="5,000: MIG's bias (bins-1)^2/2n stays below 0.04 nats")
    order: str = option("auto", "Ball order of scene factors: stored, sort-x (by x in each frame), match (by identity to "
                        "frame 0), or auto (stored for one ball or distinguishable balls, else sort-x).",
                        choices=("auto", "stored", "sort-x", "match"))
    bins: int = option(20, "Histogram bins of MIG's discretisation.", minimum=2, why="disentanglement_lib's 20")
    dci_method: str = option("gbt", "DCI importances: gbt (gradient-boosted trees, as disentanglement_lib) or lasso.",
                             choices=("gbt", "lasso"))
    dci_estimators: int = option(100, "Trees per factor of DCI's gradient boosting.", minimum=1)
    traversal_codes: int = option(4, "Test codes each traversal starts from.", minimum=1)
    steps: int = option(9, "Decoded points along each traversal.", minimum=2)
    span: float = option(3.0, "Traversal half-width, in units of traversal_scale.", minimum=0.0, why="±3 standard deviations")
    traversal_scale: str = option("posterior", "Traversal unit: posterior (each code's posterior std of that dimension) or "
                                  "data (the std of the posterior means over the data).", choices=("posterior", "data"))
    seed: int = seed_option("the frames drawn and the fits")
    fps: float = option(6.0, "Frames per second of the traversal video.", minimum=0.1, in_key=False)
    device: str = device_option()


@dataclass
class SteerConfig:
    """``latentdyn steer``: edit codes along a fitted direction (InterFaceGAN-style) and read what changed."""

    vae: str = vae_option()
    data: str | None = source_option()
    data_dir: str | None = data_dir_option()
    factor: str = option("x0", "Scenes: a ball position, x0, y0, x1, ... (by in pixels). Datasets: A->B, class indices or "
                         "names (by: the logit of B against A to reach).")
    by: float = option(3.0, "How far to move the factor (pixels; for datasets the target logit, 3: p(B) = 0.95).")
    condition: list[str] = option([], "Factors to hold still: the conditional edit projects their directions out "
                                  "(repeatable, e.g. --condition y).")
    split: str = option("test", "The split whose codes are edited.")
    train_split: str = option("train", "The split the direction is fitted on.")
    n: int = option(16, "Codes edited.", minimum=1)
    limit: int = option(5000, "Frames or images drawn from each split (0: all).", minimum=0)
    order: str = option("auto", "Ball order of scene factors (see analyze).", choices=("auto", "stored", "sort-x", "match"))
    seed: int = seed_option("the frames drawn and the fits")
    device: str = device_option()
