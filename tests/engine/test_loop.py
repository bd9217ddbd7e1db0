"""The one epoch loop: crash windows of the checkpoints, stray temporaries, early stopping, schedules, TensorBoard."""

from __future__ import annotations

import json
import math

import pytest
import torch

from latentdyn.engine import checkpoint, loop
from latentdyn.vae.train import train_vae

from tests.helpers import vae_config, killed_in_epoch


@pytest.fixture(scope="module")
def ball(tmp_path_factory):
    import latentdyn

    p = tmp_path_factory.mktemp("loop") / "ball.h5"
    latentdyn.generate(scene="light_ball", length=6, sequences=24, split="train=0.5,val=0.25,test=0.25", out=p)
    return p


def test_best_is_written_before_last_and_a_kill_between_them_resumes_exactly(ball, tmp_path, monkeypatch):
    full = tmp_path / "full"
    train_vae(vae_config(ball, epochs=3), full, progress=False, verbose=False)
    order = []
    real = checkpoint.save_checkpoint

    def save(path, payload):
        order.append(path.name)
        if payload["epoch"] == 2 and path.name == "last.pt":  # killed while writing last.pt of epoch 2
            with checkpoint.atomic_path(path) as tmp:
                tmp.write_bytes(b"half a checkpoint")
                raise KeyboardInterrupt
        return real(path, payload)

    monkeypatch.setattr(loop, "save_checkpoint", save)
    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        train_vae(vae_config(ball, epochs=3), part, progress=False, verbose=False)
    assert order[:2] == ["best.pt", "last.pt"]  # epoch 1: best first
    assert checkpoint.load_checkpoint(part / "last.pt")["epoch"] == 1
    # a temporary file left by a crash (atomic_path removes its own; make one as a hard kill would)
    (part / ".last.pt.abc123.tmp.pt").write_bytes(b"junk")
    monkeypatch.setattr(loop, "save_checkpoint", real)
    train_vae(vae_config(ball, epochs=3), part, resume=True, progress=False, verbose=False)
    assert not list(part.glob(".*.tmp*"))  # cleaned
    a, b = (torch.load(d / "last.pt", weights_only=True) for d in (full, part))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    rows = [json.loads(x)["epoch"] for x in (part / "metrics.jsonl").read_text().splitlines()]
    assert rows == [1, 2, 3]


def test_a_stray_temporary_does_not_block_a_new_run(ball, tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / ".best.pt.x1y2.tmp.pt").write_bytes(b"left by a crash")
    train_vae(vae_config(ball, epochs=1), run, progress=False, verbose=False)
    assert (run / "best.pt").is_file() and not (run / ".best.pt.x1y2.tmp.pt").exists()


def test_early_stopping_reads_val_and_stops(ball, tmp_path):
    cfg = vae_config(ball, epochs=40, patience=2, lr=3e-2)
    row = train_vae(cfg, tmp_path / "r", progress=False, verbose=False)
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    best = max(range(len(rows)), key=lambda i: rows[i]["val_elbo"])
    assert len(rows) < 40 and len(rows) - 1 - best == 2  # stopped two epochs after the best
    assert checkpoint.load_checkpoint(tmp_path / "r" / "best.pt")["epoch"] == rows[best]["epoch"]
    assert row["epoch"] == rows[-1]["epoch"]


def test_cosine_schedule_lowers_the_rate_and_resumes_with_it(ball, tmp_path, monkeypatch):
    train_vae(vae_config(ball, epochs=4, lr_schedule="cosine"), tmp_path / "s", progress=False, verbose=False)
    straight = [json.loads(x)["lr"] for x in (tmp_path / "s" / "metrics.jsonl").read_text().splitlines()]
    assert straight[0] == pytest.approx(1e-3) and all(b < a for a, b in zip(straight, straight[1:]))
    with killed_in_epoch(3):
        train_vae(vae_config(ball, epochs=4, lr_schedule="cosine"), tmp_path / "r", progress=False, verbose=False)
    train_vae(vae_config(ball, epochs=4, lr_schedule="cosine"), tmp_path / "r", resume=True, progress=False, verbose=False)
    resumed = [json.loads(x)["lr"] for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert resumed == pytest.approx(straight)  # the schedule's state came back with the checkpoint


def test_cosine_step_anneals_within_epochs_to_zero_and_resumes(ball, tmp_path):
    """cosine-step sets the rate after every optimizer step: the rate an epoch ends with is the cosine at
    that epoch's last step (k steps of n in all: lr (1 + cos(pi k / n)) / 2), 0 after the last."""
    cfg = vae_config(ball, epochs=3, lr_schedule="cosine-step")
    train_vae(cfg, tmp_path / "s", progress=False, verbose=False)
    straight = [json.loads(x)["lr"] for x in (tmp_path / "s" / "metrics.jsonl").read_text().splitlines()]
    per_epoch = -(-checkpoint.load_checkpoint(tmp_path / "s" / "last.pt")["data"]["n_train"] // cfg.batch_size)
    want = [1e-3 * (1 + math.cos(math.pi * e / 3)) / 2 for e in (1, 2, 3)]
    assert per_epoch > 1 and straight == pytest.approx(want, abs=1e-12)
    with killed_in_epoch(2):
        train_vae(vae_config(ball, epochs=3, lr_schedule="cosine-step"), tmp_path / "r", progress=False, verbose=False)
    train_vae(vae_config(ball, epochs=3, lr_schedule="cosine-step"), tmp_path / "r", resume=True, progress=False,
              verbose=False)
    resumed = [json.loads(x)["lr"] for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert resumed == pytest.approx(straight, abs=1e-12)
    a = checkpoint.load_checkpoint(tmp_path / "s" / "last.pt")["model"]
    b = checkpoint.load_checkpoint(tmp_path / "r" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same steps at the same rates


def test_tensorboard_holds_the_metrics_rows(ball, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_vae(vae_config(ball, epochs=2, tensorboard=True), tmp_path / "r", progress=False, verbose=False)
    acc = EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    acc.Reload()
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    for key, tag in (("train_elbo", "train/elbo"), ("val_elbo", "val/elbo"), ("val_kl", "val/kl")):
        got = [e.value for e in acc.Scalars(tag)]
        assert got == pytest.approx([r[key] for r in rows], rel=1e-6), tag
    assert len(acc.Scalars("val/kl_per_dim/1")) == 2  # the KL of each latent dimension
    assert "flow/inputs_reconstructions_prior_samples" in acc.Tags()["images"]
