"""Flow priors and IAF posteriors: densities, bounds, the unchanged Gaussian path, checkpoints,
sampling, resume, and every downstream stage on a flow model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import latentdyn as ld
from latentdyn.cli.main import cli
from latentdyn.engine import checkpoint
from latentdyn.vae.model import LOG_2PI

from tests.helpers import fails_cleanly, make_vae, vae_config


def _fit(m, x, steps, lr=3e-3):
    opt = torch.optim.Adam(m.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        m(x)["loss"].mean().backward()
        opt.step()
    return m


def _binary(n=64, side=6, seed=0):
    """Binary images from 4 random prototypes with 10% of the pixels flipped: a latent worth using
    (pure noise images make the posterior collapse onto the prior, and every bound is then equal)."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(4, 1, side, side, generator=g).round()
    flip = torch.rand(n, 1, side, side, generator=g) < 0.1
    return (protos[torch.randint(0, 4, (n,), generator=g)] + flip.float()) % 2


@pytest.mark.parametrize("kind", ["nsf", "maf"])
def test_flow_prior_density_integrates_to_one_after_training(kind):
    torch.manual_seed(0)
    m = _fit(make_vae(arch="mlp", latent_dim=2, height=6, width_px=6, prior="flow", prior_flow=kind), _binary(), 60, 1e-2)
    h = 0.05
    v = torch.arange(-10.0, 10.0, h) + h / 2  # midpoints
    gx, gy = torch.meshgrid(v, v, indexing="xy")
    z = torch.stack([gx.ravel(), gy.ravel()], -1)  # (n*n, 2)
    with torch.no_grad():
        logp = m.log_prior(z)
    assert abs(logp.exp().sum().item() * h * h - 1.0) < 1e-2  # a normalised density
    gauss = (-0.5 * (z.pow(2) + LOG_2PI)).sum(-1)
    assert (logp - gauss).abs().max() > 0.05  # and it has moved away from N(0, I): the check is not vacuous


def test_flows_start_as_the_identity_and_the_kl_estimate_is_unbiased():
    torch.manual_seed(0)
    g = make_vae(arch="mlp", latent_dim=3, height=5, width_px=5)
    f = make_vae(arch="mlp", latent_dim=3, height=5, width_px=5, prior="flow", posterior="iaf")
    assert f.encoder[-1].out_features == 2 * 3 + 32  # mu, logvar and the IAF's context h(x)
    sd = f.encoder.state_dict()
    sd["5.weight"], sd["5.bias"] = sd["5.weight"][:6], sd["5.bias"][:6]  # the same encoder less the context outputs
    g.encoder.load_state_dict(sd)
    g.decoder.load_state_dict(f.decoder.state_dict())
    x = _binary(7, 5)
    a = g(x, generator=torch.Generator().manual_seed(1))
    b = f(x, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(b["rec"], a["rec"], rtol=1e-6, atol=1e-5)  # the IAF is the identity at init: the same z
    zs = torch.randn(4, 3)
    torch.testing.assert_close(f.log_prior(zs), g.log_prior(zs))  # the flow prior is N(0, I) at init
    torch.testing.assert_close(f.encode(x)[0], g.encode(x)[0])
    # the one-sample KL log q - log p averages to the closed form (both sides are still Gaussian in effect)
    with torch.no_grad():
        mc = f(x.repeat(4000, 1, 1, 1), generator=torch.Generator().manual_seed(2))["kl"].view(4000, 7).mean(0)
    torch.testing.assert_close(mc, a["kl"].detach(), rtol=0.05, atol=0.02)


def test_gaussian_path_is_numerically_unchanged():
    torch.manual_seed(0)
    default = make_vae(arch="mlp", latent_dim=3, height=5, width_px=5)
    torch.manual_seed(0)
    explicit = make_vae(arch="mlp", latent_dim=3, height=5, width_px=5, prior="gaussian", posterior="gaussian",
                        prior_flow="maf", flow_transforms=7, flow_hidden=16)  # flow settings unused
    assert list(default.state_dict()) == list(explicit.state_dict())
    assert not any(k.startswith(("prior.", "iaf.")) for k in default.state_dict())
    x = _binary(9, 5)
    for m in (default, explicit):
        out = m(x, beta=2.0, generator=torch.Generator().manual_seed(5))
        # the forward before flows, written out: chunk, reparameterise, closed-form KL
        mu, logvar = m.encoder(x).chunk(2, dim=-1)
        logvar = logvar.clamp(-30.0, 20.0)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
        rec = m.log_px_z(x, m.decode_logits(mu + torch.exp(0.5 * logvar) * eps))
        kl = (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(1)
        assert torch.equal(out["rec"], rec) and torch.equal(out["kl"], kl)
        assert torch.equal(out["loss"], -(rec - 2.0 * kl)) and torch.equal(out["elbo"], rec - kl)
        iw = m.log_px_iw(x, 5, generator=torch.Generator().manual_seed(6))
        eps = torch.randn((5, *mu.shape), generator=torch.Generator().manual_seed(6))
        z = mu + torch.exp(0.5 * logvar) * eps
        lpx = m.log_px_z(x.expand(5, *x.shape).reshape(45, *x.shape[1:]), m.decode_logits(z.reshape(45, 3))).view(5, 9)
        w = lpx + (-0.5 * (z.pow(2) + LOG_2PI)).sum(-1) - (-0.5 * (eps.pow(2) + LOG_2PI) - 0.5 * logvar).sum(-1)
        assert torch.equal(iw, torch.logsumexp(w, 0) - math.log(5))


def test_iaf_log_q_of_its_own_samples_is_the_change_of_variables():
    torch.manual_seed(0)
    m = make_vae(arch="mlp", latent_dim=3, height=5, width_px=5, posterior="iaf")
    with torch.no_grad():
        for p in m.iaf.parameters():
            p.add_(0.3 * torch.randn_like(p))  # away from the identity
    x = _binary(4, 5)
    mu, logvar, ctx = m.posterior(x)
    z, log_q = m.sample_posterior(mu, logvar, ctx, torch.Generator().manual_seed(0))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(0))
    z0 = mu + (0.5 * logvar).exp() * eps
    for i in range(4):
        J = torch.autograd.functional.jacobian(lambda v: m.iaf(v[None], ctx[i : i + 1])[0][0], z0[i].detach())  # (d, d)
        base = torch.distributions.Normal(mu[i], (0.5 * logvar[i]).exp()).log_prob(z0[i]).sum()
        torch.testing.assert_close(log_q[i], base - torch.linalg.slogdet(J)[1], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(z[i], m.iaf(z0[i : i + 1], ctx[i : i + 1])[0][0])
        # encode: the flow's image of the base mean and the linearised variances diag(J S J^T)
        Jm = torch.autograd.functional.jacobian(lambda v: m.iaf(v[None], ctx[i : i + 1])[0][0], mu[i].detach())
        em, elv = m.encode(x[i : i + 1])
        torch.testing.assert_close(em[0], m.iaf(mu[i : i + 1], ctx[i : i + 1])[0][0])
        torch.testing.assert_close(elv[0].exp(), (Jm @ torch.diag(logvar[i].exp()) @ Jm.T).diagonal(), rtol=1e-4, atol=1e-6)


def test_iwae_is_above_the_elbo_and_rises_with_k_for_a_flow_model():
    torch.manual_seed(0)
    x = _binary()
    m = _fit(make_vae(arch="mlp", latent_dim=2, height=6, width_px=6, prior="flow", posterior="iaf"), x, 200)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        elbo = m(x.repeat(200, 1, 1, 1), generator=g)["elbo"].mean().item()  # E_q ELBO, 200 draws per example
    reps = {1: 256, 4: 64, 16: 16, 64: 4}  # copies of x: every estimate averages 256 draws per example
    iw = {k: m.log_px_iw(x.repeat(r, 1, 1, 1), k, generator=g).mean().item() for k, r in reps.items()}
    assert abs(iw[1] - elbo) < 0.05  # K = 1 is the ELBO
    assert iw[1] < iw[4] < iw[16] < iw[64]  # tightens with K (here it has converged, within noise, by K = 100)
    assert iw[64] > elbo + 0.1


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("flows")
    return ld.generate(scene="light_ball", sequences=24, length=12, out=d / "ball.h5").out


@pytest.fixture(scope="module")
def flow_run(scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("flowrun") / "vae"
    ld.train_vae(vae_config(scene, binarize="none", prior="flow", posterior="iaf", epochs=1), out=out)
    return out


def test_checkpoint_and_config_disagreeing_on_flows_is_one_line(flow_run, scene, tmp_path):
    for change, needle in ([("prior", "gaussian")], "weights hold a flow prior"), ([("posterior", "gaussian")], "weights hold an IAF"):
        run = tmp_path / change[0][0]
        run.mkdir()
        ck = checkpoint.load_checkpoint(flow_run / "best.pt", "vae")
        ck["config"] = {**ck["config"], **dict(change)}
        checkpoint.save_checkpoint(run / "best.pt", {k: v for k, v in ck.items() if k not in ("format", "format_version")})
        fails_cleanly(CliRunner().invoke(cli, ["evaluate", str(run), "--iw-samples", "2"]), needle, "best.pt")
    plain = tmp_path / "plain"
    ld.train_vae(vae_config(scene, binarize="none", epochs=1, val_split=""), out=plain)
    ck = checkpoint.load_checkpoint(plain / "best.pt", "vae")
    ck["config"]["prior"] = "flow"
    checkpoint.save_checkpoint(plain / "best.pt", {k: v for k, v in ck.items() if k not in ("format", "format_version")})
    fails_cleanly(CliRunner().invoke(cli, ["sample", str(plain), "-o", str(tmp_path / "s.png")]),
                  "has a flow prior (prior = flow) but its weights have none")


def test_sample_writes_a_grid_and_the_same_seed_gives_the_same_bytes(flow_run, tmp_path):
    from PIL import Image

    paths = {}
    for name, args in {"a": [], "b": [], "c": ["--seed", "1"], "cold": ["--temperature", "0"]}.items():
        paths[name] = tmp_path / f"{name}.png"
        r = CliRunner().invoke(cli, ["sample", str(flow_run), "-n", "10", "--out", str(paths[name]), *args])
        assert r.exit_code == 0, r.output
        assert "10 samples of the flow prior" in r.output
    im = np.asarray(Image.open(paths["a"]))
    assert im.shape == (3 * 28, 4 * 28)  # 10 images, 4 columns, 3 rows, 28x28 grey frames
    assert paths["a"].read_bytes() == paths["b"].read_bytes() != paths["c"].read_bytes()
    cold = np.asarray(Image.open(paths["cold"])).reshape(3, 28, 4, 28).transpose(0, 2, 1, 3).reshape(12, 28, 28)
    assert all(np.array_equal(cold[0], cold[k]) for k in range(10)) and not cold[10:].any()  # T = 0: g(0) ten times
    res = ld.sample(vae=flow_run, n=4, out=tmp_path / "api.png", seed=0)
    assert res.metrics["grid_shape"] == [56, 56] and res.paths["grid"].is_file()
    fails_cleanly(CliRunner().invoke(cli, ["sample", str(flow_run), "--out", str(tmp_path / "x.jpg")]), ".png")


def test_sample_config_is_the_cli():
    from latentdyn.core.options import options

    params = {p.name: p for p in cli.commands["sample"].params}
    for o in options(ld.SampleConfig):
        assert o.name in params and params[o.name].default == o.default and o.help in params[o.name].help
    assert "-n" in params["n"].opts
    assert list(cli.commands).index("sample") == list(cli.commands).index("encode") + 1


def test_resume_with_flows_matches_uninterrupted(scene, tmp_path):
    kw = dict(binarize="none", prior="flow", posterior="iaf", batch_size=32)
    ld.train_vae(vae_config(scene, epochs=2, **kw), out=tmp_path / "full")
    ld.train_vae(vae_config(scene, epochs=1, **kw), out=tmp_path / "part")
    ld.train_vae(vae_config(scene, epochs=2, **kw), out=tmp_path / "part", resume=True)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    assert any(k.startswith("prior.") for k in a["model"]) and any(k.startswith("iaf.") for k in a["model"])
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_every_stage_runs_on_a_flow_model(flow_run, scene, tmp_path):
    import h5py

    from latentdyn.scenes.file import open_scenes
    from latentdyn.vae.encode import encode_frames
    from latentdyn.vae.train import load_vae

    ev = ld.evaluate(vae=flow_run, split="test", iw_samples=8)
    m = ev.metrics
    assert m["kl_estimate"] == "one-sample Monte Carlo" and m["prior"] == "flow" and m["posterior"] == "iaf"
    assert "kl_per_dim" not in m and len(m["base_kl_per_dim"]) == 2
    assert m["log_px_iw"] > m["elbo"] - 1.0 and m["iwae_bits_per_dim"] > 0
    lat = ld.encode(vae=flow_run, data=scene, out=tmp_path / "lat.h5")
    model, _, _ = load_vae(flow_run)
    with h5py.File(lat.out) as f:
        mu, lv = f["mu"][:2], f["logvar"][:2]  # (2, T, d)
    with open_scenes(scene) as sf:
        frames = sf.read_frames(slice(0, 2))  # (2, T, H, W)
    want_mu, want_lv = encode_frames(model, frames.reshape(-1, 28, 28, 1), "cpu")
    np.testing.assert_allclose(mu.reshape(-1, 2), want_mu, rtol=1e-5, atol=1e-6)  # decoder-space means
    np.testing.assert_allclose(lv.reshape(-1, 2), want_lv, rtol=1e-5, atol=1e-6)
    dyn = ld.train_dynamics(latents=lat.out, epochs=1, context=3, horizon=4, device="cpu", out=tmp_path / "dyn")
    roll = ld.rollout(vae=flow_run, dynamics=dyn.out, data=scene, context=4, horizon=4, sequences=2, out=tmp_path / "roll")
    assert all(math.isfinite(roll.metrics["open_loop"][k]["summary"]["se_per_frame"]) for k in ("model", "reconstruction"))
    lmap = ld.latent_map(vae=flow_run, out=tmp_path / "map", limit=200, grid=4)
    arrays = np.load(lmap.paths["arrays"])
    logp, axes = arrays["prior_log_density"], arrays["prior_log_density_axes"]  # (n, n), (2, n)
    with torch.no_grad():
        zz = torch.tensor([[axes[0, 3], axes[1, 5]]], dtype=torch.float32)
        assert logp[5, 3] == pytest.approx(model.log_prior(zz).item(), abs=1e-5)  # rows along y
    res = ld.interpolate(vae=flow_run, pairs=2, steps=4, points=8, out=tmp_path / "interp")
    assert (tmp_path / "interp" / "interpolation.json").is_file() and res.metrics
