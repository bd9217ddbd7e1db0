"""Importing your own video: real MP4 and GIF files written by latentdyn's writer, and PNG folders."""

import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.core.errors import LatentdynError
from latentdyn.scenes.file import open_scenes
from latentdyn.scenes.video_import import import_video, parse_size
from latentdyn.viz.video import write_video
from tests.helpers import fails_cleanly

T, H, W = 23, 32, 48


def _square_video(n=T) -> np.ndarray:
    """A white 8x8 square moving right and down on black: (n, H, W, 3) uint8, two grey levels."""
    fr = np.zeros((n, H, W, 3), np.uint8)
    for t in range(n):
        x, y = (2 * t) % (W - 8), t % (H - 8)
        fr[t, y : y + 8, x : x + 8] = 255
    return fr


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    frames = _square_video()
    write_video(frames, d / "v.mp4", fps=10)
    write_video(frames, d / "v.gif", fps=10)
    (d / "png").mkdir()
    for t in range(T):  # f1.png ... f23.png: natural order differs from name order
        iio.imwrite(d / "png" / f"f{t + 1}.png", frames[t])
    return d, frames


def _grey(frames):
    return frames[..., 0]  # the test frames are grey already (R = G = B)


def _read(path):
    with open_scenes(path) as sf:
        return sf.frames[:], dict(sf.file.attrs), sf.splits, sf.file["clip_start"][:], sf.states


def test_gif_clips_are_the_exact_frames(media, tmp_path):
    d, frames = media
    out = import_video(d / "v.gif", tmp_path / "g.h5", size=None, clip_length=5, stride=3, split="train=0.6,test=0.4", seed=1)
    clips, attrs, splits, starts, states = _read(out)
    n = math.floor((T - 5) / 3) + 1
    assert clips.shape == (n, 5, H, W) and clips.dtype == np.uint8 and states is None
    np.testing.assert_array_equal(starts, 3 * np.arange(n))
    for c in range(n):
        np.testing.assert_array_equal(clips[c], _grey(frames[3 * c : 3 * c + 5]))
    assert attrs["fps"] == 10.0 and attrs["source_fps"] == 10.0 and attrs["source_frames"] == T
    assert attrs["source_kind"] == "video" and attrs["source_codec"] == "gif" and json.loads(attrs["source_size"]) == [W, H]
    assert attrs["clip_length"] == 5 and attrs["stride"] == 3 and attrs["source"].endswith("v.gif")
    assert json.loads(attrs["scene"])["kind"] == "video" and json.loads(attrs["scene"])["scene"]["length"] == 5
    assert {k: len(v) for k, v in splits.items()} == {"train": 4, "test": 3}
    assert sorted(np.concatenate(list(splits.values()))) == list(range(n))


def test_mp4_is_cropped_resized_and_resampled(media, tmp_path):
    from PIL import Image

    d, frames = media
    clips, attrs, _, _, _ = _read(import_video(d / "v.mp4", tmp_path / "m.h5", size=16, clip_length=10, split=""))
    assert clips.shape == (2, 10, 16, 16) and attrs["source_codec"] == "h264" and attrs["fps"] == 10.0
    # the oracle: the centre 32x32 of each 48x32 frame, resized to 16x16; H.264 is lossy
    ref = np.stack([np.asarray(Image.fromarray(f).crop((8, 0, 40, 32)).resize((16, 16), Image.Resampling.BILINEAR).convert("L"))
                    for f in frames[:20]])
    err = np.abs(clips.reshape(20, 16, 16).astype(float) - ref)
    assert err.mean() < 4 and (ref.max() - ref.min()) > 200  # a real picture, reproduced closely
    # resampled to 5 fps by ffmpeg's fps filter: 2.3 s of video -> 12 frames, every other source frame
    clips, attrs, _, _, _ = _read(import_video(d / "v.mp4", tmp_path / "m5.h5", size=None, clip_length=3, fps=5, split=""))
    assert attrs["fps"] == 5.0 and attrs["source_fps"] == 10.0 and attrs["source_frames"] == 12
    got = clips.reshape(-1, H, W).astype(float)
    assert np.abs(got - _grey(frames[0 : 2 * len(got) : 2])).mean() < 4


def test_png_folder_in_natural_order_in_colour(media, tmp_path):
    d, frames = media
    clips, attrs, splits, _, _ = _read(import_video(d / "png", tmp_path / "p.h5", size=None, grey=False,
                                                    clip_length=T, split=None, fps=25))
    assert clips.shape == (1, T, H, W, 3) and splits == {}
    np.testing.assert_array_equal(clips[0], frames)  # f10.png follows f9.png
    assert attrs["source_kind"] == "png-folder" and attrs["fps"] == 25.0 and "source_fps" not in attrs
    assert attrs["first_file"] == "f1.png" and attrs["last_file"] == "f23.png"
    _, attrs, _, _, _ = _read(import_video(d / "png", tmp_path / "q.h5", size=None, clip_length=T, split=None))
    assert "fps" not in attrs  # a PNG folder has no rate of its own


@pytest.mark.parametrize("length,stride", [(1, 1), (5, 2), (23, 5), (4, 30), (6, 6)])
def test_number_of_clips(media, tmp_path, length, stride):
    d, _ = media
    clips, _, splits, starts, _ = _read(import_video(d / "png", tmp_path / "c.h5", size=(8, 12), clip_length=length,
                                                     stride=stride))
    n = (T - length) // stride + 1
    assert clips.shape == (n, length, 8, 12) and len(starts) == n
    assert sum(len(v) for v in splits.values()) == n


def test_time_splits_share_no_frames(media, tmp_path):
    d, _ = media
    _, _, splits, starts, _ = _read(import_video(d / "png", tmp_path / "t.h5", size=8, clip_length=4, stride=2,
                                                 split="train=0.5,val=0.25,test=0.25", split_mode="time"))
    tr, va, te = (starts[splits[k]] for k in ("train", "val", "test"))
    assert len(tr) == 5 and len(va) and len(te)  # 10 clips; the first clip of val and of test overlap and are dropped
    assert tr.max() + 4 <= va.min() and va.max() + 4 <= te.min()
    assert len(tr) + len(va) + len(te) == 8


def test_frames_stream_with_bounded_memory(tmp_path):
    """Peak Python-side memory does not grow with the length of the video."""
    import tracemalloc

    peaks = []
    for n in (40, 40, 320):  # the first run pays for imports and caches: not measured
        src = tmp_path / f"long{n}.mp4"
        write_video(_square_video(n), src, fps=10)
        tracemalloc.start()
        import_video(src, tmp_path / f"long{n}.h5", size=None, clip_length=4, split="")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 280 more frames held at once would add 430 kB (grey) or 1.3 MB (the decoded RGB frames)
    assert peaks[2] - peaks[1] < 200_000, peaks


def _no_output(tmp_path, name="x.h5"):
    assert not (tmp_path / name).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{name}.")]  # no temporary file left


def test_bad_inputs_are_one_line_errors_and_write_nothing(media, tmp_path):
    d, _ = media
    (tmp_path / "notes.mp4").write_text("not a video")
    (tmp_path / "empty").mkdir()
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "a.txt").write_text("x")
    data = (d / "v.mp4").read_bytes()
    assert data.count(b"avc1") >= 1
    (tmp_path / "codec.mp4").write_bytes(data.replace(b"avc1", b"zzzz"))  # a codec no decoder knows
    (tmp_path / "brokenpng").mkdir()
    (tmp_path / "brokenpng" / "0.png").write_bytes(b"\x89PNG broken")
    cases = [
        (tmp_path / "missing.mp4", {}, "does not exist"),
        (tmp_path / "notes.mp4", {}, "not a readable video"),
        (tmp_path / "codec.mp4", {}, "no decoder for its codec"),
        (tmp_path / "empty", {}, "has no .png frames"),
        (tmp_path / "txt", {}, "has no .png frames"),
        (tmp_path / "brokenpng", {}, "not a readable PNG"),
        (d / "v.gif", {"clip_length": T + 1}, f"longer than the {T} frames"),
        (d / "v.mp4", {"clip_length": 13, "fps": 5}, "longer than the 12 frames"),
        (d / "v.mp4", {"fps": 30}, "above the 10 frames per second"),
        (d / "v.gif", {"stride": 0}, "stride 0"),
        (d / "v.gif", {"size": 0}, r"size \(0, 0\)"),
        (d / "v.gif", {"split": "train=0.5"}, "sum to 0.5"),
        (d / "v.gif", {"split_mode": "shuffle"}, "split mode"),
    ]
    for src, kw, match in cases:
        with pytest.raises(LatentdynError, match=match) as e:
            import_video(src, tmp_path / "x.h5", **kw)
        assert "\n" not in str(e.value), str(e.value)
        _no_output(tmp_path)


def test_parse_size():
    assert parse_size("64") == (64, 64) and parse_size("64x48") == (48, 64) and parse_size("source") is None
    with pytest.raises(LatentdynError, match="--size"):
        parse_size("big")


def test_cli_import_then_open_and_train_one_epoch(media, tmp_path):
    d, _ = media
    out, run = tmp_path / "m.h5", tmp_path / "vae"
    r = CliRunner().invoke(cli, ["import-video", str(d / "v.gif"), "--out", str(out), "--size", "16", "--clip-length", "2",
                                 "--stride", "1", "--split", "train=0.7,val=0.3"])
    assert r.exit_code == 0, r.output
    assert f"22 clips x 2 frames of 16x16 from {T} frames at 10 fps" in r.output
    with open_scenes(out) as sf:
        assert sf.n_sequences == 22 and sf.frame_shape == (16, 16) and sf.states is None
    r = CliRunner().invoke(cli, ["train", "vae", "--data", str(out), "--out", str(run), "--arch", "mlp", "--latent-dim", "2",
                                 "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and math.isfinite(rows[0]["train_loss"]) and "val_elbo" in rows[0]
    fails_cleanly(CliRunner().invoke(cli, ["import-video", str(tmp_path / "nope.gif"), "--out", str(tmp_path / "n.h5")]),
                  "does not exist")


def test_an_imported_mp4_trains_and_rolls_out_end_to_end(media, tmp_path):
    """The whole pipeline on a recording: import-video -> train vae -> encode -> train dynamics -> rollout -> report."""
    import latentdyn as ld

    d, _ = media
    scenes = ld.import_video(source=str(d / "v.mp4"), size="16", clip_length=12, stride=1,
                             split="train=0.6,val=0.2,test=0.2", out=tmp_path / "mine.h5")
    assert scenes.metrics["clips"] == T - 12 + 1 and scenes.metrics["frame_shape"] == [16, 16]
    vae = ld.train_vae(data=scenes.out, arch="mlp", latent_dim=3, epochs=1, batch_size=16, device="cpu", out=tmp_path / "vae")
    lat = ld.encode(vae=vae.out, data=scenes.out, out=tmp_path / "lat.h5")
    dyn = ld.train_dynamics(latents=lat.out, epochs=1, context=3, horizon=4, batch_size=8, device="cpu", out=tmp_path / "dyn")
    roll = ld.rollout(vae=vae.out, dynamics=dyn.out, data=scenes.out, context=4, horizon=6, sequences=2, video_sequences=1,
                      out=tmp_path / "roll")
    m = roll.metrics
    assert m["objects"]["protocol"] is None  # a recording has no states and no known objects: pixel measures only
    per = m["open_loop"]["model"]["per_step"]
    assert len(per["se_per_frame"]) == len(per["psnr"]) == len(per["ssim"]) == 6 and "position_error_px" not in per
    assert m["open_loop"]["reconstruction"]["summary"]["se_per_frame"] > 0 and (tmp_path / "roll" / "rollout.mp4").is_file()
    from latentdyn.pipeline.report.page import write_report

    assert "Open loop" in write_report(tmp_path / "roll").read_text()


def test_time_splits_say_where_every_clip_went(media, tmp_path):
    """10 clips at 0.5/0.25/0.25 in time order: 5/3/2 before the gaps; the first clip of val and of
    test shares frames with the split before it and is left out; import-video and info say so."""
    import latentdyn as ld

    d, _ = media
    res = ld.import_video(source=str(d / "png"), out=tmp_path / "t.h5", size="8", clip_length=4, stride=2,
                          split="train=0.5,val=0.25,test=0.25", split_mode="time")
    s = res.metrics["splits"]
    assert s["clips"] == 10 and s["counts"] == {"train": 5, "val": 2, "test": 1} and s["left_out"] == 2
    assert s["gaps"] == [{"before": "val", "after": "train", "clips": 1}, {"before": "test", "after": "val", "clips": 1}]
    with open_scenes(tmp_path / "t.h5") as sf:
        assert {k: len(v) for k, v in sf.splits.items()} == s["counts"]
        assert json.loads(sf.file.attrs["splits_summary"]) == s
    line = ("splits (time) of 10 clips: train 5, val 2, test 1; 2 clips in no split (1 between train and val and 1 "
            "between val and test)")
    r = CliRunner().invoke(cli, ["import-video", str(d / "png"), "--out", str(tmp_path / "c.h5"), "--size", "8",
                                 "--clip-length", "4", "--stride", "2", "--split", "train=0.5,val=0.25,test=0.25",
                                 "--split-mode", "time"])
    assert r.exit_code == 0 and line in r.output, r.output
    r = CliRunner().invoke(cli, ["info", str(tmp_path / "c.h5")])
    assert r.exit_code == 0 and "split val: 2 sequences" in r.output and line in r.output, r.output
    r = CliRunner().invoke(cli, ["import-video", str(d / "png"), "--out", str(tmp_path / "r.h5"), "--size", "8",
                                 "--clip-length", "4", "--stride", "2", "--split", "train=0.5,test=0.5"])
    assert "splits (random) of 10 clips: train 5, test 5\n" in r.output and "no split" not in r.output, r.output
