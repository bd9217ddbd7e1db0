"""Videos decode back with the right frame count; grids have the right layout."""

import numpy as np
import pytest

from latentdyn.viz import video as video
from latentdyn.core.errors import LatentdynError


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_written_video_decodes_with_right_frame_count(tmp_path, suffix, rng):
    frames = rng.integers(0, 256, (13, 31, 45, 3), dtype=np.uint8)  # odd sides get padded for H.264
    path = video.write_video(frames, tmp_path / f"v{suffix}", fps=5)
    assert video.count_frames(path) == 13
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left


def test_mp4_is_h264_and_keeps_content(tmp_path):
    import imageio_ffmpeg

    frames = np.zeros((4, 32, 32), np.uint8)
    frames[:, 8:24, 8:24] = 200
    path = video.write_video(video.to_rgb(frames), tmp_path / "v.mp4")
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert meta["codec"] == "h264" and tuple(meta["size"]) == (32, 32)
    first = np.frombuffer(next(reader), np.uint8).reshape(32, 32, 3)
    assert abs(int(first[16, 16, 0]) - 200) <= 3 and first[2, 2, 0] <= 3


def test_grid_layout_and_upscale():
    panels = [np.full((5, 8, 8), 10 * k, np.uint8) for k in range(5)]
    g = video.grid(panels, columns=3, scale=4, gap=4)
    rows = 2
    assert g.shape == (5, 4 + rows * (32 + 4), 4 + 3 * (32 + 4), 3)
    assert (g[:, 4:36, 4:36] == 0).all() and (g[:, 4:36, 40:72] == 10).all()
    labelled = video.grid(panels, labels=[str(k) for k in range(5)], title=["t"] * 5)
    assert labelled.shape[1] % 2 == 0 and labelled.shape[2] % 2 == 0


def test_scene_video_cli_paths(scene_file, tmp_path):
    out = video.scene_video(scene_file, tmp_path / "s.gif", "0-2")
    assert video.count_frames(out) == 20
    with pytest.raises(LatentdynError, match="out of range"):
        video.scene_video(scene_file, tmp_path / "t.mp4", "0,99")
    with pytest.raises(LatentdynError, match=".mp4 or .gif"):
        video.scene_video(scene_file, tmp_path / "t.avi")
    assert not (tmp_path / "t.mp4").exists()


def test_parse_sequences():
    assert video.parse_sequences(None, 10) == [0, 1, 2, 3]
    assert video.parse_sequences("3,1-2", 10) == [1, 2, 3]
    with pytest.raises(LatentdynError, match="indices like"):
        video.parse_sequences("a", 10)
