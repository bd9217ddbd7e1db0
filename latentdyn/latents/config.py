"""The settings of the encode-states stage (``kind = "encode-states"``; ``latentdyn encode --states``)."""

from __future__ import annotations

from dataclasses import dataclass

from latentdyn.core.options import option


@dataclass
class EncodeStatesConfig:
    """A scene file's true states as a latents file: the state oracle's input (``latentdyn.latents.states``)."""

    data: str = option("scenes", "Scene file with ground-truth states (in an experiment: a generate or file stage).",
                       metavar="FILE")
