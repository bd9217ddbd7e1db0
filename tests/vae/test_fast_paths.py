"""The VAE's fast paths: the small-frame width rule, float32 output layers under bf16 autocast, and
the batched no-grad encoder (precision float32 / bfloat16)."""

import numpy as np
import pytest
import torch

from latentdyn.core.errors import LatentdynError
from latentdyn.vae.config import TrainVAEConfig
from latentdyn.vae.encode import encode_frames
from latentdyn.vae.model import BetaVAE, auto_width


@pytest.mark.parametrize("side, width", [(28, 8), (30, 8), (32, 8), (33, 16), (64, 16), (65, 32), (128, 32)])
def test_width_follows_the_frame_size(side, width):
    assert auto_width((1, side, side)) == width
    m = BetaVAE(TrainVAEConfig(arch="resnet", latent_dim=4, likelihood="bernoulli"), (1, side, side))
    assert m.encoder[0][0].out_channels == width  # the first convolution of the encoder's trunk
    fixed = BetaVAE(TrainVAEConfig(arch="resnet", latent_dim=4, width=16, likelihood="bernoulli"), (1, side, side))
    assert fixed.encoder[0][0].out_channels == 16


def test_the_run_records_the_width_used(tmp_path, scene_file):
    from latentdyn.core.config import load_toml as read_toml
    from latentdyn.vae.train import train_vae

    train_vae(TrainVAEConfig(data=str(scene_file), latent_dim=4, epochs=1, limit=40), tmp_path / "v", verbose=False,
              progress=False)
    assert read_toml(tmp_path / "v" / "config.toml")["width"] == 8  # 30 x 30 frames


@pytest.mark.parametrize("width", [2, 5, 6, 7, 12])
def test_a_width_the_norms_cannot_split_is_refused(width):
    from latentdyn.vae.train import validate

    with pytest.raises(LatentdynError, match=f"width {width}: use 0"):
        validate(TrainVAEConfig(width=width))


@pytest.mark.parametrize("width", [4, 8, 24])
def test_widths_the_norms_split_build(width):
    from latentdyn.vae.train import validate

    validate(TrainVAEConfig(width=width))
    BetaVAE(TrainVAEConfig(width=width, latent_dim=4, likelihood="bernoulli"), (1, 30, 30))


def test_a_run_from_before_the_width_rule_resumes_with_its_width(tmp_path, scene_file):
    from latentdyn.core.config import load_toml
    from latentdyn.vae.train import train_vae

    run = tmp_path / "old"
    train_vae(TrainVAEConfig(data=str(scene_file), latent_dim=4, epochs=1, limit=40, width=32), run, verbose=False,
              progress=False)  # as the old default made it
    train_vae(TrainVAEConfig(data=str(scene_file), latent_dim=4, epochs=2, limit=40), run, resume=True, verbose=False,
              progress=False)  # resumed with today's default (0): keeps 32
    assert load_toml(run / "config.toml")["width"] == 32


@pytest.mark.parametrize("arch, extra", [("resnet", {}), ("tutorial", {}), ("mlp", {}),
                                         ("resnet", {"latent_channels": 2, "latent_dim": 32})])
def test_output_layers_stay_float32_under_bf16(arch, extra):
    cfg = TrainVAEConfig(arch=arch, **{"latent_dim": 4, **extra}, likelihood="discretized-logistic")
    m = BetaVAE(cfg, (1, 30, 30)).eval()
    x = torch.rand(3, 1, 30, 30)
    with torch.no_grad():
        ref_mu, _ = m.encode(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mu, logvar = m.encode(x)
            out = m.decode_logits(mu)
    assert mu.dtype == logvar.dtype == out.dtype == torch.float32
    assert out.shape == (3, 2, 30, 30)
    assert not torch.equal(mu, ref_mu)  # the trunk did run in bf16 ...
    assert torch.allclose(mu, ref_mu, atol=0.05)  # ... and the means stay close


def test_fast_encoder_matches_the_model_and_takes_tensors(rng):
    m = BetaVAE(TrainVAEConfig(arch="resnet", latent_dim=4, likelihood="bernoulli"), (1, 30, 30)).eval()
    frames = rng.integers(0, 256, (70, 30, 30, 1), dtype=np.uint8)
    mu, lv = encode_frames(m, frames, "cpu", batch=32)
    with torch.no_grad():
        ref_mu, ref_lv = m.encode(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
    assert mu.shape == lv.shape == (70, 4) and mu.dtype == np.float32
    np.testing.assert_allclose(mu, ref_mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(lv, ref_lv.numpy(), atol=1e-5)
    t_mu, _ = encode_frames(m, torch.from_numpy(frames), "cpu", batch=64, as_numpy=False)  # uint8 tensor in, tensor out
    assert isinstance(t_mu, torch.Tensor) and np.allclose(t_mu.numpy(), mu, atol=1e-5)
    b_mu, _ = encode_frames(m, frames, "cpu", precision="bfloat16")
    assert b_mu.dtype == np.float32 and np.abs(b_mu - mu).max() < 0.05 and not np.array_equal(b_mu, mu)
    empty = encode_frames(m, frames[:0], "cpu")
    assert empty[0].shape == (0, 4)
    with pytest.raises(LatentdynError, match="precision 'half'"):
        encode_frames(m, frames, "cpu", precision="half")
    with pytest.raises(LatentdynError, match="encode_frames takes uint8 frames"):
        encode_frames(m, frames.astype(np.float32) / 255, "cpu")


@pytest.mark.parametrize("arch, width, side, want", [("resnet", 0, 30, False), ("resnet", 0, 64, True), ("resnet", 32, 30, True),
                                                     ("tutorial", 0, 28, True), ("mlp", 0, 28, False)])
def test_channels_last_only_where_it_was_measured_to_pay(arch, width, side, want):
    from latentdyn.vae.model import channels_last_pays

    m = BetaVAE(TrainVAEConfig(arch=arch, width=width, latent_dim=4, likelihood="bernoulli"), (1, side, side))
    assert channels_last_pays(m, "cpu") is want
    assert channels_last_pays(m, "mps") is False
    assert channels_last_pays(m, "cuda") is (arch != "mlp")


def test_the_encoder_worker_gives_what_encode_frames_gives(tmp_path, scene_file):
    from latentdyn.scenes.file import open_scenes
    from latentdyn.vae.encode import EncoderWorker
    from latentdyn.vae.train import load_vae, train_vae

    train_vae(TrainVAEConfig(data=str(scene_file), latent_dim=4, epochs=1, limit=40), tmp_path / "v", verbose=False,
              progress=False)
    with open_scenes(scene_file) as sf:
        frames = sf.read_frames(slice(0, 3)).reshape(-1, 30, 30, 1)  # (60, 30, 30, 1)
    model, _, _ = load_vae(tmp_path / "v")
    want = encode_frames(model, frames, "cpu")
    with EncoderWorker(tmp_path / "v") as worker:
        jobs = [worker.submit(frames[:30]), worker.submit(frames[30:])]
        got = [j.result(timeout=120) for j in jobs]
    for k in (0, 1):
        np.testing.assert_allclose(np.concatenate([g[k] for g in got]), want[k], atol=1e-5)
    with pytest.raises(LatentdynError, match="has no best.pt"):
        EncoderWorker(tmp_path / "nothing")


def test_grey_frames_reach_the_model_in_the_standard_layout(rng):
    """numpy leaves a size-1 channel axis with stride 1; torch would read such frames as channels-last
    and take the slower path (measured 2x slower encoding at width 8)."""
    from latentdyn.vae.data import to_device_uint8

    t = to_device_uint8(rng.integers(0, 256, (5, 30, 30, 1), dtype=np.uint8), "cpu")
    assert t.stride() == (900, 900, 30, 1)
    assert t[torch.tensor([3, 1])].stride() == (900, 900, 30, 1)  # batches indexed out of it too
    a = rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    rgb = to_device_uint8(a, "cpu")
    assert rgb.stride() == (48, 16, 4, 1) and np.array_equal(rgb.numpy(), a.transpose(0, 3, 1, 2))


def test_the_encode_stage_takes_its_precision(tmp_path, scene_file):
    import latentdyn as ld
    from latentdyn.latents.file import open_latents

    vae = ld.train_vae(data=str(scene_file), latent_dim=4, epochs=1, limit=40, out=tmp_path / "v")
    a = ld.encode(vae=str(vae.out), data=str(scene_file), out=tmp_path / "f32.h5")
    b = ld.encode(vae=str(vae.out), data=str(scene_file), precision="bfloat16", out=tmp_path / "bf16.h5")
    with open_latents(a.out) as fa, open_latents(b.out) as fb:
        mu32, mu16, lv = fa.file["mu"][...], fb.file["mu"][...], fa.file["logvar"][...]
    assert mu32.shape == mu16.shape and not np.array_equal(mu32, mu16)
    assert np.mean(np.abs(mu16 - mu32) / np.exp(0.5 * lv)) < 0.25  # a fraction of the posterior's own spread
    with pytest.raises(LatentdynError, match="precision"):
        ld.encode(vae=str(vae.out), data=str(scene_file), precision="half", out=tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
