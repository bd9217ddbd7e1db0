"""Videos for review: grids of frame sequences written as MP4 (H.264) or GIF.

Small frames (28 px) are upscaled by pixel repetition (nearest neighbour) so they stay sharp,
tiled into a grid with a label over each tile, and stamped with the frame number. Labels are
drawn in a scalable font sized to the tiles (``label_size``: at least 13 px, a sixth of a tile's
height), so they stay readable where the report shows the video at its own size. MP4 goes
through the ffmpeg that imageio-ffmpeg ships (H.264, yuv420p, faststart: plays in browsers);
GIF through Pillow. Files are written atomically.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path, check_writable_dir

VIDEO_SUFFIXES = (".mp4", ".gif")
BACKGROUND = 24  # grey level between tiles and behind labels
MIN_LABEL = 13  # px: the smallest label text; 13 CSS px is the report's caption size


def to_rgb(frames: np.ndarray) -> np.ndarray:
    """(T, H, W), (T, H, W, 1) or (T, H, W, 3) uint8 -> (T, H, W, 3) uint8."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"frames must be (T, H, W[, 1|3]), got {frames.shape}")
    return np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of (T, H, W, C) by an integer factor."""
    if factor == 1:
        return frames
    return frames.repeat(factor, axis=1).repeat(factor, axis=2)  # (T, H*f, W*f, C)


def auto_scale(height: int, target: int = 112) -> int:
    """Integer upscaling that makes a frame of ``height`` about ``target`` pixels tall."""
    return max(1, round(target / height))


@functools.lru_cache(maxsize=16)
def label_font(size: int):
    """A scalable sans-serif font of ``size`` pixels: Pillow's own (Pillow >= 10.1), else the DejaVu
    Sans that matplotlib ships, else Pillow's fixed bitmap font (about 11 px) where FreeType is absent."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1, or no FreeType
        pass
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def label_size(height: int) -> int:
    """Label text size (px) for tiles or frames ``height`` px tall: a sixth of it, from 13 to 24 px."""
    return int(min(24, max(MIN_LABEL, round(height / 6))))


def text_width(text: str, size: int) -> int:
    """Width in pixels of ``text`` drawn at ``size``."""
    box = label_font(size).getbbox(text)
    return int(box[2] - box[0])


def fitted_size(text: str, size: int, width: int) -> int:
    """``size``, or smaller (down to 9 px) until ``text`` fits in ``width`` pixels."""
    while size > 9 and text_width(text, size) > width:
        size -= 1
    return size


def _draw_text(img: np.ndarray, xy: tuple[int, int], text: str, size: int = MIN_LABEL, fill=(235, 235, 235)) -> None:
    """Draw ``text`` (``size`` px) onto an (H, W, 3) uint8 array in place."""
    from PIL import Image, ImageDraw

    pil = Image.fromarray(img)
    ImageDraw.Draw(pil).text(xy, text, fill=fill, font=label_font(size))
    img[...] = np.asarray(pil)


def grid(
    panels: Sequence[np.ndarray],
    labels: Sequence[str] | None = None,
    columns: int | None = None,
    scale: int = 1,
    gap: int = 4,
    title: Sequence[str] | None = None,
) -> np.ndarray:
    """Tile sequences of equal length (each (T, H, W[, C]) uint8) into one (T, H', W', 3) video.

    ``labels`` go above each tile, ``title`` (one string per frame) above the whole grid, in text
    sized to the tiles (``label_size``); a label wider than its tile is set smaller to fit it.
    """
    tiles = [upscale(to_rgb(p), scale) for p in panels]
    T = tiles[0].shape[0]
    if any(t.shape != tiles[0].shape for t in tiles):
        raise ValueError("all panels must have the same shape")
    cols = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    th, tw = tiles[0].shape[1:3]
    size = label_size(th)
    lab = size + 6 if labels else 0  # the label strip above each tile
    head = size + 8 + gap if title else 0
    H = head + rows * (lab + th + gap) + gap
    W = cols * (tw + gap) + gap
    H, W = H + H % 2, W + W % 2  # H.264 in yuv420p needs even sides
    out = np.full((T, H, W, 3), BACKGROUND, np.uint8)
    strip = np.full((H, W, 3), BACKGROUND, np.uint8)  # the static labels, drawn once
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        y = head + gap + r * (lab + th + gap) + lab
        x = gap + c * (tw + gap)
        out[:, y : y + th, x : x + tw] = tile
        if labels:
            _draw_text(strip, (x, y - lab + 1), labels[k], fitted_size(labels[k], size, tw + gap))
    if labels:
        mask = (strip != BACKGROUND).any(-1)  # (H, W) text pixels
        out[:, mask] = strip[mask]
    if title:
        tsize = min(fitted_size(t, size + 2, W - 2 * gap) for t in set(title))  # one size for every frame
        for t in range(T):
            _draw_text(out[t], (gap, 2), title[t], tsize)
    return out


def write_video(frames: np.ndarray, path: str | Path, fps: float = 10.0) -> Path:
    """Write (T, H, W, 3) uint8 frames to ``path`` (.mp4 or .gif), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise LatentdynError(f"cannot write video {path}: use a .mp4 or .gif file name")
    if fps <= 0:
        raise LatentdynError(f"--fps {fps}: must be positive")
    frames = to_rgb(frames)
    check_writable_dir(path)
    with atomic_path(path) as tmp:
        if suffix == ".mp4":
            _write_mp4(frames, tmp, fps)
        else:
            _write_gif(frames, tmp, fps)
    return path


def _write_mp4(frames: np.ndarray, path: Path, fps: float) -> None:
    import imageio_ffmpeg

    T, H, W, _ = frames.shape
    if H % 2 or W % 2:  # pad to even sides for yuv420p
        frames = np.pad(frames, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)), constant_values=BACKGROUND)
        T, H, W, _ = frames.shape
    writer = imageio_ffmpeg.write_frames(
        str(path), (W, H), fps=fps, codec="libx264", quality=None, pix_fmt_out="yuv420p",
        macro_block_size=1, ffmpeg_log_level="error",
        output_params=["-crf", "17", "-preset", "veryfast", "-movflags", "+faststart", "-f", "mp4"],
    )
    writer.send(None)  # start ffmpeg
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()


def _write_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    from PIL import Image

    # one palette for the whole animation, from a sample of frames: no flicker, and fast
    sample = frames[:: max(1, len(frames) // 8)][:8]  # (k, H, W, 3)
    palette = Image.fromarray(sample.reshape(-1, *frames.shape[2:])).quantize(256, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    images[0].save(
        path, format="GIF", save_all=True, append_images=images[1:], duration=max(20, round(1000 / fps)),
        loop=0, optimize=False, disposal=1,
    )


def count_frames(path: str | Path) -> int:
    """Number of frames in a written MP4 or GIF, by decoding it."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        from PIL import Image

        with Image.open(path) as im:
            return im.n_frames
    import imageio_ffmpeg

    return sum(1 for _ in imageio_ffmpeg.read_frames(str(path))) - 1  # first item is the metadata


def parse_sequences(text: str | None, available: int, default: int = 4) -> list[int]:
    """'0,1,2,3' or '0-7' -> sorted unique indices, each checked against ``available``."""
    if not text:
        return list(range(min(default, available)))
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                out.update(range(a, b + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise LatentdynError(f"--sequences {text!r}: expected indices like 0,1,2 or a range like 0-7") from None
    bad = [i for i in sorted(out) if not 0 <= i < available]
    if bad:
        raise LatentdynError(f"--sequences: index {bad[0]} is out of range; the file has sequences 0..{available - 1}")
    if len(out) > 64:
        raise LatentdynError(f"--sequences: {len(out)} sequences is too many for one grid; pick at most 64")
    return sorted(out)


def scene_video(
    scene_path: str | Path, out: str | Path, sequences: str | Sequence[int] | None = None,
    fps: float = 10.0, scale: int | None = None,
) -> Path:
    """Video of a grid of sequences from a scene file, with the frame number on every frame and
    each sequence's split ("seq 3 (val)") over its tile."""
    from latentdyn.scenes.file import open_scenes

    if Path(out).suffix.lower() not in VIDEO_SUFFIXES:
        raise LatentdynError(f"cannot write video {out}: use a .mp4 or .gif file name")
    check_writable_dir(out)
    with open_scenes(scene_path) as sf:
        idx = parse_sequences(sequences, sf.n_sequences) if not isinstance(sequences, (list, tuple)) else list(sequences)
        clips = [sf.read_frames(i) for i in idx]  # each (T, H, W[, C])
        name = (sf.scene or {}).get("scene", {}).get("name", Path(scene_path).stem)
        T = sf.length
        split_of = {int(i): k for k, ids in sf.splits.items() for i in ids}  # sequence -> the split holding it
    s = scale or auto_scale(clips[0].shape[1])
    title = [f"{name}  frame {t + 1}/{T}" for t in range(T)]
    labels = [f"seq {i}" + (f" ({split_of[i]})" if i in split_of else "") for i in idx]
    frames = grid(clips, labels=labels, scale=s, title=title)
    return write_video(frames, out, fps)


def write_rollout_video(truth: np.ndarray, pred: np.ndarray, K: int, ids, out: Path, fps: float,
                        others: dict[str, np.ndarray] | None = None) -> list[Path]:
    """Per sequence [truth | prediction | other predictors ... | |error|]; observed frames framed green,
    predicted red (``rollout_frames``)."""
    frames = rollout_frames(truth, pred, K, ids, others)
    return [write_video(frames, out / "rollout.mp4", fps), write_video(frames, out / "rollout.gif", fps)]


def rollout_frames(truth: np.ndarray, pred: np.ndarray, K: int, ids, others: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The rollout film as uint8 frames (L, H, W, 3): truth (S, L, h, w, C) beside the prediction
    (S, L - K, h, w, C) after K observed frames, then each of ``others`` (label -> predictions of the
    same shape as ``pred``, e.g. a same-budget baseline, filmed side by side), then the prediction's
    absolute error."""
    S, L, h, w, C = truth.shape
    others = others or {}

    def after_context(p: np.ndarray) -> np.ndarray:  # (S, L, h, w, C): the observed frames, then p
        full = truth.copy()
        full[:, K:] = p[:S]
        return full

    shown = [after_context(pred), *(after_context(p) for p in others.values())]
    err = np.abs(shown[0] - truth)
    s = auto_scale(h, 84)
    panels = []
    for k in range(S):
        cols = []
        for j, x in enumerate((truth[k], *(f[k] for f in shown), err[k])):
            rgb = upscale((np.clip(x, 0, 1) * 255).round().astype(np.uint8).repeat(3 // C, -1), s)  # (L, h*s, w*s, 3)
            rgb = np.pad(rgb, ((0, 0), (2, 2), (2, 2), (0, 0)))
            if 1 <= j <= len(shown):  # a predictor's column
                rgb[:K, :2], rgb[:K, -2:], rgb[:K, :, :2], rgb[:K, :, -2:] = [(40, 200, 80)] * 4  # observed: green
                rgb[K:, :2], rgb[K:, -2:], rgb[K:, :, :2], rgb[K:, :, -2:] = [(230, 70, 50)] * 4  # predicted: red
            cols.append(rgb)
        gap = np.full((L, cols[0].shape[1], 3, 3), 24, np.uint8)
        panels.append(np.concatenate([c for col in cols for c in (col, gap)][:-1], axis=2))
    names = " | ".join(["truth", "prediction", *others, "error"])
    title = [f"step {t + 1}/{L}  " + ("observed" if t < K else f"predicted +{t - K + 1}") + f"   {names}"
             for t in range(L)]
    return grid(panels, labels=[f"seq {i}" for i in ids[:S]], columns=1 if S <= 2 else 2, title=title)
