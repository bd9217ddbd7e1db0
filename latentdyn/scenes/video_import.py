"""Your own video as a scene file: frames read one at a time, cut into clips, written in blocks.

``import_video`` reads an MP4, GIF or any other file ffmpeg decodes (through imageio-ffmpeg's
frame pipe), or a folder of PNG frames (imageio, in natural name order), and writes the
standard scene file (docs/formats.md) without states. Each frame is centre-cropped to the
aspect of ``size`` and resized (Pillow's antialiased bilinear filter), and turned to grey with
ITU-R 601-2 luma as Pillow's ``convert("L")`` (the weights of ``datasets.transforms.to_gray``).
Clip c holds frames ``c * stride ... c * stride + clip_length - 1``, so a video of F frames
gives ``floor((F - clip_length) / stride) + 1`` clips. Memory holds ``clip_length`` frames and
one block of compressed clips, whatever the length of the video; the output appears only when
complete (``latentdyn.core.fileio.atomic_path``). The file's ``splits_summary`` attribute says how
many clips each split got and, with ``split_mode = "time"``, how many were left out between two
splits because they share frames with the clips before them (``latentdyn info`` prints it).
"""

from __future__ import annotations

import collections
import json
import math
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from latentdyn.core.version import __version__
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path
from latentdyn.scenes.file import SceneWriter, deflate

BLOCK_CLIPS = 64  # compressed clips collected before one write into the file
SPLIT_MODES = ("random", "time")


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'64' -> (64, 64); '64x48' (WIDTHxHEIGHT) -> (48, 64) as (height, width); 'source' or '' -> None."""
    if text is None or text.strip().lower() in ("", "source"):
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not m:
        raise LatentdynError(f"--size {text!r}: give a side (64), WIDTHxHEIGHT (64x48) or 'source'")
    w = int(m.group(1))
    return (int(m.group(2)) if m.group(2) else w, w)


def _natural_key(path: Path) -> list:
    """'frame10.png' after 'frame9.png': digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _ffmpeg_reason(err: Exception) -> str:
    """One short reason from ffmpeg's error output."""
    text = str(err)
    if "no decoder found" in text or "Decoder not found" in text or "Unknown decoder" in text:
        codec = re.search(r"Video: (\S+) \(([^)]*)\)", text)
        return f"ffmpeg has no decoder for its codec{f' ({codec.group(2).strip()})' if codec else ''}"
    if "Could not load meta information" in text or "Invalid data found" in text or "moov atom not found" in text:
        return "ffmpeg cannot open it as a video"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("===")]
    return lines[-1][:160] if lines else type(err).__name__


def _video_frames(src: Path, fps: float | None, info: dict) -> Iterator[np.ndarray]:
    """RGB frames (H, W, 3) uint8 of a video file, resampled to ``fps`` by ffmpeg's fps filter."""
    import imageio_ffmpeg

    params = ["-vf", f"fps={fps!r}"] if fps is not None else None
    gen = imageio_ffmpeg.read_frames(str(src), pix_fmt="rgb24", output_params=params)
    try:
        try:
            meta = next(gen)
        except (OSError, RuntimeError, StopIteration) as e:
            raise LatentdynError(f"{src} is not a readable video: {_ffmpeg_reason(e)}") from None
        w, h = meta["size"]
        info.update(source_kind="video", source_codec=str(meta.get("codec", "")).rstrip(","), source_size=[int(w), int(h)])
        if meta.get("fps"):
            info["source_fps"] = float(meta["fps"])
            if fps is not None and fps > info["source_fps"] * (1 + 1e-6):
                raise LatentdynError(f"fps {fps:g} is above the {info['source_fps']:g} frames per second of {src}; frames would repeat")
        while True:
            try:
                raw = next(gen)
            except StopIteration:
                return
            except (OSError, RuntimeError) as e:
                raise LatentdynError(f"{src} is not a readable video: {_ffmpeg_reason(e)}") from None
            yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)
    finally:
        gen.close()  # stops ffmpeg if the reader quits early


def _png_frames(src: Path, info: dict) -> Iterator[np.ndarray]:
    """Frames of a folder of PNGs in natural name order: (H, W) grey or (H, W, 3) RGB uint8."""
    import imageio.v3 as iio

    files = sorted((p for p in src.iterdir() if p.suffix.lower() == ".png" and p.is_file()), key=_natural_key)
    if not files:
        raise LatentdynError(f"folder {src} has no .png frames; put frame images (e.g. 0001.png, 0002.png) in it")
    info.update(source_kind="png-folder", source_files=len(files), first_file=files[0].name, last_file=files[-1].name)
    for f in files:
        try:
            im = np.asarray(iio.imread(f, plugin="pillow"))
        except Exception as e:  # imageio raises many types for a broken file
            raise LatentdynError(f"{f} is not a readable PNG image ({type(e).__name__}); remove or replace it") from None
        if im.dtype == np.uint16:
            im = (im >> 8).astype(np.uint8)
        if im.dtype != np.uint8 or im.ndim not in (2, 3):
            raise LatentdynError(f"{f} is a {im.dtype} image of shape {im.shape}; use 8-bit grey or RGB(A) PNGs")
        if im.ndim == 3:
            im = im[..., :3] if im.shape[2] >= 3 else im[..., 0]  # drop alpha; grey+alpha -> grey
        info.setdefault("source_size", [int(im.shape[1]), int(im.shape[0])])
        yield im


def _transform(im: np.ndarray, size: tuple[int, int] | None, grey: bool, first_size: list[int]) -> np.ndarray:
    """Centre-crop to the aspect of ``size`` = (height, width), resize, and make grey or RGB."""
    from PIL import Image

    pil = Image.fromarray(im)
    W0, H0 = pil.size
    if size is None:
        if [W0, H0] != first_size:
            raise LatentdynError(f"frames differ in size ({W0}x{H0} after {first_size[0]}x{first_size[1]}); pass a size")
    elif (H0, W0) != size:
        h, w = size
        if W0 * h > H0 * w:  # too wide: keep the centre columns
            cw = max(1, round(H0 * w / h))
            box = ((W0 - cw) // 2, 0, (W0 - cw) // 2 + cw, H0)
        else:  # too tall: keep the centre rows
            ch = max(1, round(W0 * h / w))
            box = (0, (H0 - ch) // 2, W0, (H0 - ch) // 2 + ch)
        pil = pil.crop(box).resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(pil.convert("L" if grey else "RGB"))  # (h, w) or (h, w, 3)


def _time_splits(starts: np.ndarray, clip_length: int, fractions: dict[str, float], seed: int
                 ) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Consecutive runs of clips per split, in the given order; a clip that shares frames with a
    clip of an earlier split is left out of every split (no frame is both seen and held out).

    Returns the splits and the gaps: ``{"before": split, "after": earlier split, "clips": n}`` for
    each split whose first ``n`` clips were left out."""
    from latentdyn.scenes.generate import assign_splits

    counts = [len(v) for v in assign_splits(len(starts), fractions, seed).values()]  # largest remainder
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    out, gaps, last_end, last_name = {}, [], None, None  # last_end: one past the last frame of the earlier splits' clips
    for k, name in enumerate(fractions):
        idx = np.arange(bounds[k], bounds[k + 1])
        if last_end is not None:
            kept = idx[starts[idx] >= last_end]
            if len(kept) < len(idx):
                gaps.append({"before": name, "after": last_name, "clips": int(len(idx) - len(kept))})
            idx = kept
        out[name] = idx.astype(np.int64)
        if len(idx):
            last_end, last_name = int(starts[idx[-1]]) + clip_length, name
    return out, gaps


def split_summary(mode: str, n_clips: int, parts: dict[str, np.ndarray], gaps: list[dict]) -> dict:
    """Where the clips went: ``{"mode", "clips", "counts": {split: n}, "left_out", "gaps"}`` (the
    ``splits_summary`` attribute of an imported file, shown by ``latentdyn info``)."""
    counts = {k: int(len(v)) for k, v in parts.items()}
    return {"mode": mode, "clips": int(n_clips), "counts": counts,
            "left_out": int(n_clips - sum(counts.values())) if counts else 0, "gaps": gaps}


def describe_splits(summary: dict) -> str:
    """One line: 'splits (time) of 97 clips: train 77, val 7, test 7; 6 clips in no split: ...'."""
    if not summary.get("counts"):
        return f"no splits: all {summary['clips']} clips in one set"
    line = (f"splits ({summary['mode']}) of {summary['clips']} clips: "
            + ", ".join(f"{k} {n}" for k, n in summary["counts"].items()))
    if summary.get("left_out"):
        where = " and ".join(f"{g['clips']} between {g['after']} and {g['before']}" for g in summary["gaps"])
        line += (f"; {summary['left_out']} clips in no split ({where}): they share frames with the clips of the "
                 "split before them, so no frame is both trained on and held out")
    return line


def import_video(
    src: str | Path,
    out: str | Path,
    size: int | tuple[int, int] | None = 64,
    grey: bool = True,
    clip_length: int = 20,
    stride: int | None = None,
    split: str | dict[str, float] | None = "train=0.8,val=0.1,test=0.1",
    seed: int = 0,
    fps: float | None = None,
    split_mode: str = "random",
) -> Path:
    """Write the clips of a video (MP4, GIF, ...) or PNG folder ``src`` to the scene file ``out``.

    ``size``: frame side, or (height, width), or None to keep the source's; ``stride``: frames
    between clip starts (default ``clip_length``: no overlap); ``split``: NAME=FRACTION pairs or
    a dict ('' or None: no splits); ``split_mode``: "random" (clips drawn at random, seeded, as
    ``generate`` does) or "time" (consecutive runs in the order given, without shared frames);
    ``fps``: resample a video to this rate (ffmpeg's fps filter; at most the source's), or the
    rate of a PNG folder's frames. Returns ``out``. Bad input is a one-line LatentdynError and
    leaves no output file.
    """
    from latentdyn.scenes.generate import assign_splits, parse_splits

    src, out = Path(src), Path(out)
    if isinstance(size, int):
        size = (size, size)
    if size is not None:
        size = tuple(int(s) for s in size)
        if len(size) != 2 or not all(1 <= s <= 4096 for s in size):
            raise LatentdynError(f"size {size}: give a side or (height, width), each 1..4096 pixels")
    if clip_length < 1:
        raise LatentdynError(f"clip length {clip_length}: must be at least 1 frame")
    stride = clip_length if stride is None else stride
    if stride < 1:
        raise LatentdynError(f"stride {stride}: must be at least 1 frame")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise LatentdynError(f"fps {fps}: must be a positive number")
    if not 0 <= seed < 2**63:
        raise LatentdynError(f"seed {seed}: must be in [0, 2**63)")
    if split_mode not in SPLIT_MODES:
        raise LatentdynError(f"split mode {split_mode!r}: use one of {', '.join(SPLIT_MODES)}")
    fractions = parse_splits(split) if isinstance(split, str) or split is None else dict(split)
    if not src.exists():
        raise LatentdynError(f"video {src} does not exist; give an .mp4, .gif (any video ffmpeg reads) or a folder of .png frames")
    if src.resolve() == out.resolve():
        raise LatentdynError(f"--out {out} is the source itself; choose another file name")

    info: dict = {}
    frames = _png_frames(src, info) if src.is_dir() else _video_frames(src, fps, info)
    window: collections.deque = collections.deque(maxlen=clip_length)
    pending: list[bytes] = []
    starts: list[int] = []
    n_frames, shape = 0, None
    with atomic_path(out) as tmp:
        writer = None
        try:
            for f, im in enumerate(frames):
                frame = _transform(im, size, grey, info["source_size"])  # (h, w) or (h, w, 3)
                if writer is None:
                    shape = frame.shape
                    writer = SceneWriter(tmp, 0, clip_length, shape, None, {}, extra={"clip_start": ((), np.int64)},
                                         resizable=True)
                window.append(frame)
                n_frames = f + 1
                start = f - clip_length + 1
                if start >= 0 and start % stride == 0:
                    pending.append(deflate(np.stack(window).tobytes()))  # one clip (T, h, w[, 3])
                    starts.append(start)
                if len(pending) == BLOCK_CLIPS:
                    _flush(writer, pending, starts)
            if n_frames == 0:
                raise LatentdynError(f"{src} has no frames")
            if not starts:
                at = f" at {fps:g} fps" if fps is not None and not src.is_dir() else ""
                raise LatentdynError(
                    f"clip length {clip_length} is longer than the {n_frames} frames of {src}{at}; use a shorter clip length"
                )
            _flush(writer, pending, starts)
            start_arr = np.asarray(starts, np.int64)
            parts, gaps = ((assign_splits(len(starts), fractions, seed), []) if split_mode == "random"
                           else _time_splits(start_arr, clip_length, fractions, seed))
            writer.write_splits(parts)
            info["splits_summary"] = split_summary(split_mode, len(starts), parts, gaps)
            rate = fps if fps is not None else info.get("source_fps")
            settings = {"source": str(src), "size": list(shape[:2]), "grey": grey, "clip_length": clip_length,
                        "stride": stride, "split": fractions, "split_mode": split_mode, "seed": seed, "fps": fps}
            attrs = {
                "scene": {"kind": "video", "scene": {"name": src.stem, "description": f"clips of {src.name}",
                                                     "length": clip_length}, "video": settings},
                "generator": f"latentdyn {__version__}", "seed": int(seed), "source": str(src.resolve()),
                "source_frames": n_frames, "clip_length": clip_length, "stride": stride, **info,
            }
            if rate:
                attrs["fps"] = float(rate)
            for k, v in attrs.items():
                writer.file.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v)
        finally:
            if writer is not None:
                writer.close()
            frames.close()
    return out


def _flush(writer: SceneWriter, pending: list[bytes], starts: list[int]) -> None:
    """Append the pending clips (the last len(pending) of ``starts``) to the file; empties pending."""
    if not pending:
        return
    done = len(starts) - len(pending)
    writer.resize(len(starts))
    writer.write(done, pending, extra={"clip_start": np.asarray(starts[done:], np.int64)})
    pending.clear()
