"""Scene frames streamed from HDF5 in blocks: every frame once per epoch, bounded blocks, training works."""

import numpy as np
import torch

from latentdyn.scenes.file import open_scenes
from latentdyn.scenes.stream import SceneStream
from latentdyn.vae.train import open_frames, train_vae

from tests.vae.test_vae import _cfg


def test_every_frame_once_per_epoch_and_seeded(scene_file):
    with open_scenes(scene_file) as sf:
        ids = sf.split_indices("train")
        want = sf.read_frames(np.sort(ids)).reshape(-1, 30 * 30)
    stream = SceneStream(scene_file, ids, torch.device("cpu"), block_sequences=5)
    assert len(stream) == len(ids) * 20
    got = torch.cat(list(stream.batches(7, torch.Generator().manual_seed(1)))).reshape(len(stream), -1).numpy()
    # the same multiset of frames, in another order
    assert sorted(map(bytes, got)) == sorted(map(bytes, want))
    assert not np.array_equal(got, want)
    again = torch.cat(list(stream.batches(7, torch.Generator().manual_seed(1)))).reshape(len(stream), -1).numpy()
    np.testing.assert_array_equal(got, again)
    ordered = torch.cat(list(stream.batches(64))).reshape(len(stream), -1).numpy()
    np.testing.assert_array_equal(ordered, want)  # no generator: file order
    assert all(len(b) <= 7 for b in stream.batches(7))


def test_big_scene_files_stream_and_train(scene_file, tmp_path):
    cfg = _cfg(scene_file, epochs=2)
    cfg.binarize = "none"
    cfg.max_memory_mb = 0  # anything is "too big": stream
    frames, shape = open_frames(cfg, "train", torch.device("cpu"))
    assert isinstance(frames, SceneStream) and shape == (30, 30, 1)
    cfg.max_memory_mb = 4096
    frames_mem, _ = open_frames(cfg, "train", torch.device("cpu"))
    assert not isinstance(frames_mem, SceneStream) and len(frames_mem) == len(frames)
    cfg.max_memory_mb = 0
    train_vae(cfg, tmp_path / "run", progress=False)
    rows = [__import__("json").loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[1]["train_loss"] < rows[0]["train_loss"]
    assert "val_elbo" not in rows[0]  # the file has no val split: selected on the training loss, never on test
