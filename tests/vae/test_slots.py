"""The object-slot VAE (TrainVAEConfig.arch = "slots", latentdyn.vae.slots): shapes, the object-major
layout, symmetry in the slots, slots carried from frame to frame, training clips, the slot-matching
measure, refusals, determinism, and the pipeline end to end through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.core.errors import LatentdynError
from latentdyn.latents.file import open_latents
from latentdyn.vae.config import TrainVAEConfig
from latentdyn.vae.factory import make_vae
from latentdyn.vae.slot_match import consistency, match_slots
from latentdyn.vae.slots import ClipFrames, SlotVAE
from tests.helpers import fails_cleanly

K, D = 3, 4


def slot_vae(seed: int = 0, likelihood: str = "discretized-logistic", size: int = 16) -> SlotVAE:
    torch.manual_seed(seed)
    cfg = TrainVAEConfig(arch="slots", slots=K, slot_dim=D, latent_dim=K * D, width=8, likelihood=likelihood)
    return make_vae(cfg, (1, size, size)).eval()


def test_shapes_frames_and_clips():
    m = slot_vae()
    assert isinstance(m, SlotVAE) and m.latent_shape == (K, D) and m.latent_dim == K * D
    x = torch.rand(5, 1, 16, 16)
    mu, lv = m.encode(x)
    assert mu.shape == lv.shape == (5, K * D)
    assert m.decode(mu).shape == (5, 1, 16, 16)
    maps, masks = m.slot_decoder.components(mu)
    assert maps.shape == (5, K, 2, 16, 16) and masks.shape == (5, K, 1, 16, 16)  # discretised logistic: 2 maps
    assert torch.allclose(masks.sum(1), torch.ones(5, 1, 16, 16))
    assert m(x)["elbo"].shape == (5,)
    clips = torch.rand(2, 3, 1, 16, 16)
    out = m(clips)  # (B, L, C, H, W): one term per frame, slots carried through the clip
    assert out["elbo"].shape == (6,) and torch.isfinite(out["elbo"]).all()
    assert m.slot_positions(mu).shape == (5, K, 2)


def test_latent_is_object_major():
    """Slot k's D dimensions are columns [k D, (k + 1) D): permuting the initial slots permutes the
    encoder's output in blocks of D (the slots are the rows of a (K, D) view)."""
    m = slot_vae()
    x = torch.rand(4, 1, 16, 16)
    prev = torch.randn(4, K * D)
    perm = torch.tensor([2, 0, 1])
    with torch.no_grad():
        mu, lv = m.encode(x, prev)
        mu_p, lv_p = m.encode(x, prev.view(4, K, D)[:, perm].reshape(4, K * D))
    assert torch.allclose(mu_p.view(4, K, D), mu.view(4, K, D)[:, perm], atol=1e-5)
    assert torch.allclose(lv_p.view(4, K, D), lv.view(4, K, D)[:, perm], atol=1e-5)
    assert not torch.allclose(mu.view(4, K, D)[:, 0], mu.view(4, K, D)[:, 1], atol=1e-3)  # the slots differ


def test_decoder_and_prior_are_symmetric_in_the_slots():
    """p(x|z) and p(z) are unchanged when the slots of z are permuted, so the ELBO is too; swapping
    two dimensions inside one slot is no such symmetry (the decoder reads a slot's dimensions in order)."""
    m = slot_vae()
    z = torch.randn(3, K * D)
    zp = z.view(3, K, D)[:, [1, 2, 0]].reshape(3, K * D)
    with torch.no_grad():
        assert torch.allclose(m.decode(z), m.decode(zp), atol=1e-6)
        assert torch.allclose(m.log_prior(z), m.log_prior(zp))
        zs = z.clone()
        zs[:, [0, 1]] = zs[:, [1, 0]]  # x and y of slot 0
        assert not torch.allclose(m.decode(z), m.decode(zs), atol=1e-4)


def test_sequences_carry_the_slots():
    """encode_sequence starts frame t's slots from frame t-1's means; the first frame from the learned start."""
    m = slot_vae()
    x = torch.rand(2, 4, 1, 16, 16)
    with torch.no_grad():
        mu, lv = m.encode_sequence(x)
        assert mu.shape == lv.shape == (2, 4, K * D)
        assert torch.allclose(mu[:, 0], m.encode(x[:, 0])[0])
        for t in range(1, 4):
            assert torch.allclose(mu[:, t], m.encode(x[:, t], mu[:, t - 1])[0], atol=1e-6)
        assert not torch.allclose(mu[:, 2], m.encode(x[:, 2])[0], atol=1e-3)  # carried, not started afresh


def test_carry_keeps_identity_on_a_swapped_sequence():
    """A sequence whose slots were handed over in another order keeps that order in every later
    frame: identity follows the carried slots, not the order the frame would give alone."""
    m = slot_vae(1)
    x = torch.rand(1, 5, 1, 16, 16)
    perm = torch.tensor([1, 2, 0])
    with torch.no_grad():
        mu0, _ = m.encode(x[:, 0])  # (1, K D)
        a, _ = m.encode_sequence(x[:, 1:], mu0)
        b, _ = m.encode_sequence(x[:, 1:], mu0.view(1, K, D)[:, perm].reshape(1, K * D))
    assert torch.allclose(b.view(1, 4, K, D), a.view(1, 4, K, D)[:, :, perm], atol=1e-4)


def test_encode_sequences_matches_the_model_and_the_flat_path():
    from latentdyn.vae.encode import encode_frames, encode_sequences
    from tests.helpers import make_vae as flat_vae

    m = slot_vae()
    frames = np.random.default_rng(0).integers(0, 256, (3, 5, 16, 16, 1), dtype=np.uint8)
    mu, lv = encode_sequences(m, frames, "cpu", batch=2)  # two blocks of sequences
    with torch.no_grad():
        ref, _ = m.encode_sequence(torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 255)
    assert mu.shape == lv.shape == (3, 5, K * D) and np.allclose(mu, ref.numpy(), atol=1e-5)
    flat = flat_vae("mlp", 3, height=16, width_px=16).eval()
    mu_f, _ = encode_sequences(flat, frames, "cpu")
    assert np.array_equal(mu_f, encode_frames(flat, frames.reshape(15, 16, 16, 1), "cpu")[0].reshape(3, 5, 3))


def test_clips_stay_inside_sequences():
    T, L = 10, 4
    x = torch.arange(3 * T).view(3 * T, 1, 1, 1)  # frame i of sequence s holds s T + i
    clips = ClipFrames(x[:27], T, L)  # a limit cut the last sequence to 7 frames: one clip of it
    firsts = clips.x[:, 0].flatten().tolist()
    assert firsts == [0, 4, 10, 14, 20] and len(clips) == 20
    assert (clips.x.flatten(1).diff(dim=1) == 1).all()  # consecutive frames
    assert clips.head(3).shape == (3, 1, 1, 1)
    batches = list(clips.batches(8, torch.Generator().manual_seed(0)))
    assert [b.shape[0] for b in batches] == [2, 2, 1] and sorted(torch.cat(batches)[:, 0].flatten().tolist()) == firsts


def test_match_slots_oracle_swap_and_noise(rng):
    truth = rng.uniform(0, 30, (4, 20, 3, 2))
    pos = np.empty((4, 20, 4, 2))
    pos[:, :, [1, 3, 0]] = truth  # objects 0, 1, 2 in slots 1, 3, 0
    pos[:, :, 2] = np.nan  # a slot that draws nothing
    slot, dist = match_slots(pos, truth)
    assert (slot == np.array([1, 3, 0])).all() and np.allclose(dist, 0) and consistency(slot) == 1.0
    swapped = pos.copy()
    swapped[0, 10:, [1, 3]] = swapped[0, 10:, [3, 1]]  # sequence 0: two objects trade slots half way
    slot, _ = match_slots(swapped, truth)
    assert consistency(slot) == 0.75 and (slot[0, 10:, 0] == 3).all()
    noisy, _ = match_slots(pos[..., [1, 3, 0], :] + rng.normal(0, 0.1, (4, 20, 3, 2)), truth)
    assert consistency(noisy) == 1.0
    with pytest.raises(LatentdynError, match="train the slot VAE with slots >= 3"):
        match_slots(pos[:, :, :2], truth)


def test_slot_options_are_refused_in_one_line():
    bad = [
        (dict(arch="slots", slots=3, slot_dim=4, latent_dim=10), "set latent_dim = 12"),
        (dict(arch="slots", slots=0, slot_dim=4, latent_dim=4), "slots >= 1 and slot_dim >= 2"),
        (dict(arch="slots", slots=3, slot_dim=1, latent_dim=3), "slots >= 1 and slot_dim >= 2"),
        (dict(arch="resnet", slots=3, slot_dim=4, latent_dim=12), "object slots need arch = slots, not resnet"),
        (dict(arch="slots", slots=3, slot_dim=4, latent_dim=12, prior="flow"), "set prior = gaussian"),
        (dict(arch="slots", slots=3, slot_dim=4, latent_dim=12, latent_channels=2), "a spatial latent needs --arch resnet, not slots"),
        (dict(arch="slots", slots=3, slot_dim=4, latent_dim=12, sprite_scale=0.3), "sprite_scale 0.3 sizes the sprites"),
        (dict(arch="resnet", latent_dim=12, slot_decoder="sprite"), "slot_decoder sprite, slot_centroid attention: options of arch = slots"),
    ]
    for kw, msg in bad:
        with pytest.raises(LatentdynError, match=msg):
            make_vae(TrainVAEConfig(likelihood="gaussian", **kw), (1, 16, 16))


def sprite_vae(seed: int = 0, size: int = 32, scale: float = 0.5) -> SlotVAE:
    torch.manual_seed(seed)
    cfg = TrainVAEConfig(arch="slots", slots=K, slot_dim=D, latent_dim=K * D, width=8, likelihood="gaussian",
                         slot_decoder="sprite", sprite_scale=scale)
    return make_vae(cfg, (1, size, size)).eval()


def test_sprite_decoder_pastes_a_fixed_shape_where_the_slot_is():
    """slot_decoder = sprite: the composed image is the slots' sprites over the background; moving a
    slot by whole pixels moves its sprite by those pixels, unchanged (its appearance does not depend on
    its position); a slot outside the frame draws nothing; swapping slots changes nothing."""
    from latentdyn.vae.slots import SpriteDecoder

    m = sprite_vae()
    dec = m.slot_decoder
    assert isinstance(dec, SpriteDecoder)
    with torch.no_grad():
        dec.background.fill_(0.25)
        z = torch.zeros(2, K, D)
        z[:, :, 2:] = torch.randn(1, K, D - 2)  # the same appearances in both
        z[:, 1:, :2] = 5.0  # slots 1 and 2 far outside the frame: only slot 0 draws
        step = 2 / 31  # one pixel in frame units (32 pixels, centres from -1 to 1)
        z[0, 0, :2] = torch.tensor([-6 * step, 0.0])
        z[1, 0, :2] = torch.tensor([-6 * step + 5 * step, 3 * step])  # 5 pixels right, 3 down
        out = m.decode(z.view(2, K * D))  # (2, 1, 32, 32)
        maps, masks = dec.components(z.view(2, K * D))
        assert out.shape == (2, 1, 32, 32) and maps.shape == (2, K, 1, 32, 32) and masks.shape == (2, K, 1, 32, 32)
        assert (masks.sum(1) <= 1).all() and masks.sum(1).min() < 1e-6  # the background where no sprite lies
        assert masks[:, 1:].abs().max() < 1e-6  # outside the frame: no light, no share
        np.testing.assert_allclose(out[1, 0, 3 + 4 : 3 + 24, 5 + 4 : 5 + 20].numpy(), out[0, 0, 4:24, 4:20].numpy(),
                                   atol=1e-5)  # the same sprite, moved
        assert not torch.allclose(out[0], out[1], atol=1e-3)
        z[:, 0, :2] = 5.0  # every slot away: the background alone
        alone = m.decode(z.view(2, K * D))
        assert alone.max() - alone.min() < 1e-6 and torch.allclose(alone[:, :, 0, 0], out[:, :, 0, 0], atol=1e-6)  # as in a corner
        z2 = torch.randn(3, K * D) * 0.5
        zp = z2.view(3, K, D)[:, [1, 2, 0]].reshape(3, K * D)
        assert torch.allclose(m.decode(z2), m.decode(zp), atol=1e-5)
        assert torch.equal(m.decode(z2.t().contiguous().t()), m.decode(z2))  # a strided z, as slices give
    x = torch.rand(2, 3, 1, 32, 32)
    loss = m.train()(x)["loss"].mean()
    loss.backward()
    assert m.slot_encoder.head[1].weight.grad is not None  # gradients reach the encoder through the paste


def test_light_centroids_find_light_objects_on_a_dark_frame():
    """slot_centroid = light: a slot's position is the centroid of its attention times the light, so on a
    dark frame with one small bright square every slot sits on the square after the first frame's
    iterations (the attention's centroid alone sits near the frame's centre); the weights draw from the
    seed as without the option."""
    from latentdyn.vae.slots import SlotAttention

    torch.manual_seed(0)
    cfg = dict(arch="slots", slots=K, slot_dim=D, latent_dim=K * D, width=8, likelihood="gaussian")
    lit = make_vae(TrainVAEConfig(slot_centroid="light", **cfg), (1, 32, 32)).eval()
    torch.manual_seed(0)
    plain = make_vae(TrainVAEConfig(**cfg), (1, 32, 32)).eval()
    assert all(torch.equal(a, b) for a, b in zip(lit.state_dict().values(), plain.state_dict().values()))
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 4:8, 22:26] = 1.0  # a square at pixels (22..25, 4..7): centre x = 23.5, y = 5.5 in frame units below
    enc_l, enc_p = lit.slot_encoder, plain.slot_encoder
    with torch.no_grad():
        start = enc_l.start.expand(1, K, D)
        feats = enc_l.features(x)
        light = torch.nn.functional.avg_pool2d(x.mean(1, keepdim=True), 2, ceil_mode=True).flatten(1) + 1e-3
        _, pos_l, _ = enc_l.attention(feats, enc_l.where, enc_l.init(start), start[..., :2], 3, light)
        _, pos_p, _ = enc_p.attention(feats, enc_p.where, enc_p.init(start), start[..., :2], 3)
    centre = torch.tensor([23.5 / 31 * 2 - 1, 5.5 / 31 * 2 - 1])  # the square's centre, frame units
    assert (pos_l[0] - centre).norm(dim=-1).max() < 0.1  # every slot on the square
    assert (pos_p[0] - centre).norm(dim=-1).min() > 0.3  # the attention alone: not there
    assert isinstance(enc_l.attention, SlotAttention) and enc_l.light and not enc_p.light
    mu, _ = lit.encode(x)
    assert mu.shape == (1, K * D) and torch.isfinite(mu).all()


def test_same_seed_same_weights(scene_file, tmp_path):
    from latentdyn.vae.train import train_vae

    def run(name, seed):
        cfg = TrainVAEConfig(data=str(scene_file), arch="slots", slots=3, slot_dim=3, latent_dim=9, width=8, epochs=1,
                             limit=40, batch_size=8, seed=seed, device="cpu")
        train_vae(cfg, tmp_path / name, progress=False, verbose=False)
        return torch.load(tmp_path / name / "last.pt", weights_only=False)["model"]

    a, b, c = run("a", 3), run("b", 3), run("c", 4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_slot_pipeline_through_cli(slot_pipeline, tmp_path):
    d = slot_pipeline
    with open_latents(d / "lat.h5") as lf:
        assert lf.latent_shape == (4, 3) and lf.latent_dim == 12 and lf.file["mu"].shape == (12, 12, 12)
    run = CliRunner().invoke
    r = run(cli, ["evaluate", "--vae", str(d / "vae"), "--data", str(d / "balls.h5"), "--iw-samples", "4",
                  "--out", str(tmp_path / "ev.json")])
    assert r.exit_code == 0, r.output
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert ev["latent_dim"] == 12 and ev["log_px_iw"] is not None and ev["elbo"] < 0
    r = run(cli, ["train", "dynamics", "--latents", str(d / "lat.h5"), "--out", str(tmp_path / "dyn"), "--hidden", "8",
                  "--epochs", "1", "--context", "3", "--horizon", "4", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    r = run(cli, ["rollout", "--vae", str(d / "vae"), "--dynamics", str(tmp_path / "dyn"), "--data", str(d / "balls.h5"),
                  "--out", str(tmp_path / "roll"), "--context", "4", "--horizon", "5", "--video-sequences", "0",
                  "--reencode", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "roll" / "metrics.json").read_text())
    assert res["latent_shape"] == [4, 3] and res["slots"]["frames"] == 12 and res["slots"]["sequences"] == 3
    assert 0.0 <= res["slots"]["consistency"] <= 1.0
    from latentdyn.pipeline.report.html import Page
    from latentdyn.pipeline.report.sections import _section_encode, _section_rollout

    assert "every slot keeps its ball over all 12 frames" in _section_rollout(Page(tmp_path), tmp_path / "roll", "rollout")
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "latents.h5").symlink_to(d / "lat.h5")
    assert "object slots (slots x dimensions each)" in _section_encode(Page(tmp_path), tmp_path / "enc", "encode")
    fails_cleanly(run(cli, ["train", "vae", "--data", str(d / "balls.h5"), "--out", str(tmp_path / "bad"), "--arch", "slots",
                            "--slots", "4", "--slot-dim", "3", "--latent-dim", "10", "--epochs", "1", "--device", "cpu",
                            "--no-progress"]), "set latent_dim = 12")
    assert not (tmp_path / "bad").exists()
