"""``evaluate`` keeps to ``max_memory_mb``: smaller passes, the same numbers, a measured peak under the limit."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from latentdyn.core.errors import LatentdynError
from latentdyn.vae.evaluate import evaluate_run
from latentdyn.vae.memory import MB, activation_bytes, plan_memory
from latentdyn.vae.train import load_vae, train_vae
from tests.helpers import vae_config

K = 16  # importance samples


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """A resnet VAE (width 32, latent 2, static binarisation) on 30x30 three_balls frames: 64 test frames."""
    from latentdyn.scenes import generate as scenes

    d = tmp_path_factory.mktemp("evalmem")
    cfg = scenes.load_scene("three_balls", ["scene.length=8"])
    scenes.generate(cfg, d / "tb.h5", 16, seed=0, splits={"train": 0.5, "test": 0.5}, progress=False, workers=1)
    train_vae(vae_config(d / "tb.h5", arch="resnet", width=32, epochs=1,
                         batch_size=32), d / "vae", progress=False, verbose=False)
    return d / "vae"


def test_activation_bytes_of_a_known_stack():
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 100), torch.nn.ReLU(), torch.nn.Linear(100, 3))
    x = torch.zeros(10, 4)
    # the widest layer: the ReLU's input and output (10 x 100 float32 each) while the Sequential holds its input
    assert activation_bytes(net, x) == 4 * (10 * 100 + 10 * 100 + 10 * 4)


def test_plan_keeps_the_estimate_under_the_limit_and_refuses_what_cannot_fit(vae_run):
    model, _, _ = load_vae(vae_run, "best", "cpu")
    data = 64 * 30 * 30
    for limit in (8, 16, 64, 512):
        p = plan_memory(model, K, data, limit, max_batch=64)
        assert p.batch >= 1 and 1 <= p.chunk <= K and p.peak_bytes() <= limit * MB
    assert plan_memory(model, K, data, 4096, max_batch=64).chunk == K  # room for all: one pass
    with pytest.raises(LatentdynError, match=r"max_memory_mb 1: .*raise --max-memory-mb to at least \d+") as e:
        plan_memory(model, K, data, 1, max_batch=64)
    assert "\n" not in str(e.value)


def test_chunking_gives_the_same_numbers(vae_run, tmp_path):
    """64 examples x latent 2 = 128 normals per sample: torch draws the same noise in any chunks, so
    the bound is the same to the last bit with all 16 samples at once or a few at a time."""
    model, _, _ = load_vae(vae_run, "best", "cpu")
    full = plan_memory(model, K, 64 * 900, 4096, max_batch=64)
    small = math.ceil(full.peak_bytes(64, 3) / MB)  # room for 64 examples with about 3 samples at once
    a = evaluate_run(vae_run, split="test", iw_samples=K, device="cpu", out=tmp_path / "a.json", max_memory_mb=4096)
    b = evaluate_run(vae_run, split="test", iw_samples=K, device="cpu", out=tmp_path / "b.json", max_memory_mb=small)
    assert a["n"] == b["n"] == 64 and a["memory"]["batch"] == b["memory"]["batch"] == 64
    assert a["memory"]["iw_chunk"] == K and 1 <= b["memory"]["iw_chunk"] < K
    assert b["memory"]["estimated_peak_mb"] <= small
    assert a["log_px_iw"] == b["log_px_iw"] and a["elbo"] == b["elbo"]
    assert a["seconds"] > 0 and json.loads((tmp_path / "b.json").read_text())["memory"]["max_memory_mb"] == small


RSS_PROBE = """
import json, re, sys
from latentdyn.vae.evaluate import evaluate_run

def status_mb(key):  # this process's resident memory now (VmRSS) or at its peak since exec (VmHWM), in MB
    with open("/proc/self/status") as f:
        return int(re.search(key + r":\\s*(\\d+) kB", f.read()).group(1)) / 1024

run, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
evaluate_run(run, split="test", iw_samples=2, device="cpu", limit=8, out=out, max_memory_mb=limit)  # imports, caches
base = status_mb("VmRSS")
res = evaluate_run(run, split="test", iw_samples=64, device="cpu", out=out, max_memory_mb=limit)
print(json.dumps({"growth_mb": status_mb("VmHWM") - base, "memory": res["memory"]}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status; glibc's malloc settings")
def test_measured_peak_stays_under_the_limit(vae_run, tmp_path):
    """64 frames x 64 samples at once would decode 4096 images (about 1.4 GB here); at a 128 MB limit
    the process's resident memory grows by less than 128 MB (measured 87 MB). glibc's allocator is
    told to return every large block when it is freed (a fixed mmap threshold), so the peak measured
    is that of the live memory, not of pages the allocator keeps for later (20 to 60 MB more, varying
    from run to run, with its default adaptive threshold). The peak is the kernel's VmHWM, not
    ``getrusage``'s ru_maxrss, which a child process inherits from the parent it was forked from."""
    env = {"OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "131072", "PATH": ""}
    r = subprocess.run([sys.executable, "-c", RSS_PROBE, str(vae_run), str(tmp_path / "e.json"), "128"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    unchunked = 64 * 64 * got["memory"]["per_sample_bytes"] / MB
    assert got["memory"]["iw_chunk"] < 64 and unchunked > 8 * 128
    assert got["growth_mb"] < 128, got
