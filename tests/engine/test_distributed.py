"""Distributed training under torchrun (two gloo processes on the CPU), and device-parametrized
checks that skip CUDA cleanly where there is none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from latentdyn.engine import distributed as distributed
from latentdyn.core.errors import LatentdynError

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here"))]


def torchrun(*args, nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=N -m latentdyn ARGS`` with one thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "latentdyn", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def state(run: Path, which: str = "last") -> dict:
    return torch.load(run / f"{which}.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def ball_file(tmp_path_factory) -> Path:
    from latentdyn.scenes import generate as scenes

    cfg = scenes.load_scene("light_ball", ["scene.length=10"])
    path = tmp_path_factory.mktemp("ddp") / "ball.h5"
    scenes.generate(cfg, path, 40, seed=5, splits={"train": 0.8, "val": 0.2}, progress=False)
    return path


VAE_ARGS = ["--arch", "mlp", "--latent-dim", "3", "--batch-size", "32", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def ddp_vae(ball_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "vae"
    r = torchrun("train", "vae", "--data", ball_file, "--out", out, "--epochs", 3, *VAE_ARGS)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_two_process_vae_trains_one_model_and_writes_once(ddp_vae):
    rows = [json.loads(x) for x in (ddp_vae / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # one writer: one row per epoch
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]  # the loss falls
    info = json.loads((ddp_vae / "distributed.json").read_text())
    assert info["world_size"] == 2 and info["backend"] == "gloo" and info["per_rank_batch_size"] == 16
    assert info["in_sync"] and len(set(info["param_sha256"])) == 1  # identical parameters on both ranks
    names = sorted(p.name for p in ddp_vae.iterdir())
    assert names == ["best.pt", "config.toml", "distributed.json", "flow", "flow.gif", "flow.mp4", "last.pt", "metrics.jsonl"]
    assert sorted(p.name for p in (ddp_vae / "flow").iterdir()) == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]
    ck = state(ddp_vae)
    assert ck["data"]["n_train"] == 320  # 32 training sequences x 10 frames, split over the 2 ranks
    assert not any(k.startswith("module.") for k in ck["model"])  # saved without the DDP wrapper


def test_two_process_resume_matches_uninterrupted(ddp_vae, ball_file, tmp_path):
    out = tmp_path / "vae"
    r = torchrun("train", "vae", "--data", ball_file, "--out", out, "--epochs", 1, *VAE_ARGS)
    assert r.returncode == 0, r.stderr[-3000:]
    r = torchrun("train", "vae", "--data", ball_file, "--out", out, "--epochs", 3, "--resume", *VAE_ARGS)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = state(ddp_vae)["model"], state(out)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]


def test_two_process_vae_streams_its_shard_from_hdf5(ball_file, ddp_vae, tmp_path):
    out = tmp_path / "stream"
    r = torchrun("train", "vae", "--data", ball_file, "--out", out, "--epochs", 3, "--max-memory-mb", 0, *VAE_ARGS)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] and state(out)["data"]["n_train"] == 320
    assert json.loads((out / "distributed.json").read_text())["in_sync"]


def test_two_process_dynamics(ball_file, tmp_path):
    from latentdyn.vae.encode import encode

    vae = tmp_path / "vae"
    r = torchrun("train", "vae", "--data", ball_file, "--out", vae, "--epochs", 1, *VAE_ARGS)
    assert r.returncode == 0, r.stderr[-3000:]
    lat = encode(vae, ball_file, tmp_path / "lat.h5", device="cpu", progress=False)
    dyn = tmp_path / "dyn"
    r = torchrun("train", "dynamics", "--latents", lat, "--out", dyn, "--epochs", 4, "--hidden", 16, "--context", 3,
                 "--horizon", 4, "--batch-size", 16, "--device", "cpu", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("finished") == 1  # rank 0 reports, rank 1 is silent
    rows = [json.loads(x) for x in (dyn / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4] and rows[-1]["train_loss"] < rows[0]["train_loss"]
    info = json.loads((dyn / "distributed.json").read_text())
    assert info["in_sync"] and info["world_size"] == 2


SESSION_EXIT = r"""
import os, torch
from latentdyn.engine import distributed as distributed
with distributed.session("cpu") as (d, device):
    net = distributed.wrap(torch.nn.Linear(3, 2), d, device)
    net(torch.randn(4, 3)).sum().backward()  # one DDP step: the gradients are all-reduced
    del net
tasks = sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
os.write(1, f"threads {d.rank} {' '.join(tasks)}\n".encode())  # one write: the ranks share the pipe
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread names from /proc")
def test_leaving_the_session_stops_the_gloo_threads(tmp_path):
    # A process group still alive at interpreter shutdown lets gloo's worker threads race it, and
    # the process sometimes aborts after finishing ("terminate called without an active exception").
    script = tmp_path / "s.py"
    script.write_text(SESSION_EXIT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = sorted(x for x in r.stdout.splitlines() if x.startswith("threads"))
    assert [x.split()[1] for x in lines] == ["0", "1"], r.stdout
    for line in lines:
        assert "gloo" not in line, line


def test_global_batch_must_divide_among_processes(ball_file, tmp_path):
    r = torchrun("train", "vae", "--data", ball_file, "--out", tmp_path / "v", "--epochs", 1, *VAE_ARGS[:-5],
                 "--batch-size", "33", "--device", "cpu", "--no-progress")
    assert r.returncode != 0
    assert "Error: --batch-size 33 is the global batch and must divide among the 2 processes" in r.stderr
    assert not (tmp_path / "v" / "last.pt").exists()


def test_dist_helpers_in_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    d = distributed.from_env()
    assert not d.active and d.main and d.local_batch(33) == 33 and d.stream(7) == 7
    t = torch.ones(3)
    assert d.all_sum(t) is t and torch.equal(t, torch.ones(3))
    two = distributed.Dist(rank=1, world=2)
    assert two.shard(7).tolist() == [1, 3, 5] and distributed.Dist(rank=0, world=2).shard(7).tolist() == [0, 2, 4]
    assert two.stream(7) == 1007
    with pytest.raises(LatentdynError, match="must divide among the 2 processes"):
        two.local_batch(33)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(LatentdynError, match="start distributed runs with torchrun"):
        distributed.from_env()


# ---- device-parametrized: the same code on every device this machine has ----------------------


@pytest.mark.parametrize("device", DEVICES)
def test_vae_step_on_device(device):
    from tests.helpers import make_vae

    torch.manual_seed(0)
    model = make_vae(arch="resnet", latent_dim=4).to(device)
    x = torch.rand(8, 1, 28, 28, device=device)
    g = torch.Generator(device=device).manual_seed(0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    with autocast:
        terms = model(x, generator=g)
    terms["loss"].mean().backward()
    assert terms["loss"].shape == (8,) and terms["loss"].device.type == device
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("device", DEVICES)
def test_rollout_and_geodesic_on_device(device):
    from latentdyn.geometry import metric as geometry
    from tests.helpers import make_gru

    torch.manual_seed(0)
    gru = make_gru(3, hidden=8).to(device)
    mu = torch.randn(5, 6, 3, device=device)
    out = gru.rollout(mu, torch.zeros_like(mu), 7)["mu"]
    assert out.shape == (5, 7, 3) and out.device.type == device
    A = torch.randn(3, 10, device=device)
    geo = geometry.connecting_geodesic(lambda z: z @ A, torch.zeros(2, 3, device=device), torch.ones(2, 3, device=device),
                                       n_points=8)
    np.testing.assert_allclose(geo["length"].cpu().numpy(), geo["line_length"].cpu().numpy(), rtol=1e-3)


@pytest.mark.slow
def test_compiled_training_matches_eager(ball_file, tmp_path):
    from click.testing import CliRunner

    from latentdyn.cli.main import cli

    rows = {}
    for flag in ("", "--compile"):
        out = tmp_path / f"v{flag}"
        args = ["train", "vae", "--data", str(ball_file), "--out", str(out), "--epochs", "2", *VAE_ARGS] + ([flag] if flag else [])
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 0, r.output
        rows[flag] = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(rows[""], rows["--compile"]):
        np.testing.assert_allclose(a["val_elbo"], b["val_elbo"], rtol=1e-4)
    assert "compile = true" in (tmp_path / "v--compile" / "config.toml").read_text()
