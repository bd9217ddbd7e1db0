"""The settings of the generate stage (``latentdyn generate``), one dataclass.

The scene *definition* (box, balls, camera) is a TOML file of its own (``SceneConfig`` in
``latentdyn.scenes.generate``, documented in docs/formats.md); these are the settings of one
generation run from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from latentdyn.core.options import data_dir_option, option, seed_option


@dataclass
class SceneInfo:
    """The ``[scene]`` table of a scene definition (every kind of scene has one)."""

    name: str = "scene"  # shown in files, videos and reports
    description: str = ""  # one line for people
    length: int = 100  # frames per sequence


@dataclass
class GenerateConfig:
    """``latentdyn generate``: synthetic sequences with ground-truth states, in one HDF5 scene file."""

    scene: str = option("light_ball", "A scene name (latentdyn scenes lists them) or a .toml file.", metavar="SCENE",
                        why="one ball: the smallest study", cli=False)
    sequences: int = option(1000, "Number of sequences.", short="-n", minimum=1)
    length: int | None = option(None, "Frames per sequence (default: the scene's length).", minimum=2)
    seed: int = seed_option()
    split: str = option("train=0.8,val=0.1,test=0.1", "Named splits and their fractions ('' for none).",
                        why="model selection reads val, never test")
    set: list[str] = option([], "Override a setting of the scene definition, e.g. --set render.radius=2.0 (repeatable).",
                            metavar="KEY=VALUE")
    video_sequences: int = option(4, "Sequences filmed beside the file (with --video, or in an experiment).", minimum=0)
    scenes_dir: str | None = option(None, "Folder searched first for scene definitions (then ./scenes, then ours).",
                                    in_key=False, metavar="DIR")
    workers: int | None = option(None, "Worker processes (default: the CPU cores, at most 8).", minimum=1, maximum=64,
                                 in_key=False)
    data_dir: str | None = data_dir_option()  # sprite scenes: where their dataset's files are (else sprites.data_dir)


@dataclass
class ImportVideoConfig:
    """``latentdyn import-video``: your own video (MP4, GIF, any video ffmpeg reads, or a folder of PNG
    frames) cut into clips, in the scene-file layout without states."""

    source: str = option("", "The video file or folder of PNG frames.", metavar="CLIP", cli=False)
    size: str = option("64", "Frame size: a side (64), WIDTHxHEIGHT (64x48) or 'source'; centre-cropped to that aspect.",
                       why="64: the Moving-MNIST frame")
    grey: bool = option(True, "Grey (ITU-R 601-2 luma) or RGB frames.", flag="--grey/--colour")
    clip_length: int = option(20, "Frames per clip (sequence).", minimum=2, why="20: the Moving-MNIST sequence")
    stride: int | None = option(None, "Frames between clip starts (default: the clip length, no overlap).", minimum=1)
    split: str = option("train=0.8,val=0.1,test=0.1", "Named splits and their fractions ('' for none).")
    split_mode: str = option("random", "random: clips drawn at random (seeded); time: consecutive runs of clips, no frame "
                             "shared between splits.", choices=("random", "time"))
    seed: int = seed_option("the split")
    fps: float | None = option(None, "Resample a video to this frame rate (at most the source's); for a PNG folder, its "
                               "frame rate.", minimum=0.01)
