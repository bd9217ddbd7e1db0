"""Traversals, ``analyze`` and ``steer`` on a tiny VAE trained one epoch on a tiny light_ball file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentdyn.analysis import analyze, steer
from latentdyn.analysis.traversals import kl_per_dim, montage, traverse, write_traversals
from latentdyn.core.errors import LatentdynError
from latentdyn.vae.config import TrainVAEConfig
from latentdyn.vae.train import train_vae

LATENT = 3


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    from latentdyn.scenes import generate as scenes

    d = tmp_path_factory.mktemp("analysis")
    scene = d / "ball.h5"
    scenes.generate(scenes.load_scene("light_ball", ["scene.length=8"]), scene, 40, seed=0,
                    splits={"train": 0.75, "test": 0.25}, progress=False)
    cfg = TrainVAEConfig(data=str(scene), arch="mlp", latent_dim=LATENT, val_split="", epochs=1, batch_size=64, device="cpu")
    train_vae(cfg, d / "vae", progress=False, verbose=False)
    return d / "vae", scene


def test_traverse_with_a_linear_decoder_sweeps_one_coordinate():
    mu = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])
    logvar = np.log(np.array([[0.04, 1.0, 0.25], [1.0, 1.0, 1.0]]))

    def decode(z):  # the code itself as a 1 x 3 "image"
        return np.asarray(z).reshape(-1, 1, 3, 1)

    imgs, t = traverse(decode, mu, logvar, dims=[2, 0], steps=5, span=3.0)
    assert imgs.shape == (2, 2, 5, 1, 3, 1)
    np.testing.assert_allclose(t, [-3, -1.5, 0, 1.5, 3])
    np.testing.assert_allclose(imgs[0, 0, :, 0, 2, 0], 2.0 + t * 0.5)  # +-3 posterior sd of that code
    np.testing.assert_allclose(imgs[1, 0, :, 0, 0, 0], 0.5 + t * 0.2)
    np.testing.assert_allclose(imgs[0, 0, :, 0, :2, 0], np.tile([0.5, -1.0], (5, 1)))  # the rest stays
    prior, _ = traverse(decode, mu, logvar, dims=[1], steps=3, scale="prior")
    np.testing.assert_allclose(prior[0, 0, :, 0, 1, 0], [-4, -1, 2])
    np.testing.assert_allclose(kl_per_dim(np.zeros((4, 2)), np.zeros((4, 2))), 0.0)
    assert montage(np.zeros((3, 4, 5, 6, 1)), gap=1).shape == (3 * 5 + 2, 4 * 6 + 3, 1)
    with pytest.raises(LatentdynError, match="scale"):
        traverse(decode, mu, logvar, [0], scale="wide")


def test_traversal_files_of_the_tiny_vae(tiny_vae, tmp_path):
    from latentdyn.analysis import vaeio
    from latentdyn.scenes.file import open_scenes

    vae = vaeio.load(tiny_vae[0], "cpu")
    assert vae.latent_dim == LATENT and vae.shape == (28, 28, 1)
    with open_scenes(tiny_vae[1]) as sf:
        frames = sf.read_frames(np.arange(4)).reshape(-1, 28, 28, 1)
    mu, lv = vae.encode(frames)
    res = write_traversals(vae.decode, mu, lv, tmp_path, n_codes=2, steps=7)
    assert res["images"].shape == (LATENT, 2, 7, 28, 28, 1)  # k rows x steps, per code
    assert sorted(res["dims"]) == list(range(LATENT))
    kl = np.array(res["kl_per_dim"])
    assert np.all(np.diff(kl[res["dims"]]) <= 0)  # rows by decreasing KL
    for p in [res["png"], *res["videos"]]:
        assert (tmp_path / p.split("/")[-1]).stat().st_size > 1000
    from latentdyn.viz.video import count_frames

    assert count_frames(tmp_path / "traversals.gif") == 2 * 7 - 2  # ping-pong over the steps


def test_analyze_writes_every_score_under_its_split(tiny_vae, tmp_path):
    run, scene = tiny_vae
    res = analyze(run, None, tmp_path, device="cpu", limit=0, dci_estimators=10, traversal_codes=2, steps=5)
    saved = json.loads((tmp_path / "analysis.json").read_text())
    assert saved == res
    assert res["n"] == {"train": 30 * 8, "test": 10 * 8} and res["factors"] == ["x0", "y0", "vx0", "vy0"]
    assert res["ball_order"] == "stored" and res["latent_dim"] == LATENT
    for split in ("train", "test"):
        assert 0 <= res[split]["mig"] <= 1
    t = res["test"]
    assert np.array(t["mi_normalized"]).shape == (4, LATENT) and 0 <= t["sap"] <= 1
    assert 0 <= t["active_units"] <= LATENT and len(t["kl_per_dim"]) == LATENT
    fit = res["fit train, score test"]
    assert {"disentanglement", "completeness", "informativeness_train", "informativeness_test"} <= set(fit["dci"])
    assert set(fit["probes"]["factors"]["x0"]) == {"metric", "linear", "linear_train", "hgb", "hgb_train"}
    for name in ("mi_heatmap.png", "traversals.png", "traversals.mp4", "traversals.gif", "prior_samples.png"):
        assert (tmp_path / name).stat().st_size > 1000, name
    with pytest.raises(LatentdynError, match="no split 'val'"):
        analyze(run, None, tmp_path / "x", split="val", device="cpu", limit=0)


def test_steer_writes_asked_and_achieved(tiny_vae, tmp_path):
    run, _ = tiny_vae
    res = steer(run, None, tmp_path, "x0", 2.0, condition=("y0",), n=6, device="cpu", limit=0)
    saved = json.loads((tmp_path / "steer.json").read_text())
    assert saved == res and (tmp_path / "steer.png").stat().st_size > 1000
    u, c = res["unconditional"], res["conditional"]
    assert u["asked"] == 2.0 and u["n"] == 6 and set(u["leakage_per_coordinate"]) == {"y0"}
    assert c["conditions"] == ["y0"] and abs(c["cosine_to_unconditional"]) <= 1
    assert len(res["frames"]["sequence"]) == 6 and abs(np.linalg.norm(res["direction"]["normal"]) - 1) < 1e-9
    with pytest.raises(LatentdynError, match="velocity"):
        steer(run, None, tmp_path, "vx0", 1.0, device="cpu", limit=0)
    with pytest.raises(LatentdynError, match="not one of"):
        steer(run, None, tmp_path, "z0", 1.0, device="cpu", limit=0)


def test_analyze_and_steer_on_fashion_mnist_labels(tmp_path):
    from tests.helpers import need_fashion_mnist

    need_fashion_mnist()
    cfg = TrainVAEConfig(data="fashion-mnist", arch="mlp", latent_dim=4, val_split="", limit=600, epochs=1, batch_size=64,
                         device="cpu")
    train_vae(cfg, tmp_path / "vae", progress=False, verbose=False)
    res = analyze(tmp_path / "vae", None, tmp_path / "an", device="cpu", limit=400, dci_estimators=5,
                  probe_kinds=("linear",), traversal_codes=1, steps=3)
    assert res["factors"] == ["label"] and res["continuous"] == [False]
    fit = res["fit train, score test"]
    assert res["kind"] == "dataset" and 0 <= fit["sap"] <= 1 and fit["dci"]["disentanglement"] is None  # one factor
    assert fit["probes"]["factors"]["label"]["metric"] == "accuracy" and fit["probes"]["factors"]["label"]["linear"] > 0.2
    s = steer(tmp_path / "vae", None, tmp_path / "st", "Trouser->Bag", 3.0, n=8, device="cpu", limit=400)
    assert s["class_names"] == ["Trouser", "Bag"] and 0 <= s["unconditional"]["success_rate"] <= 1
    assert s["probe_test_accuracy"] > 0.5


def test_analysis_never_imports_the_pipeline_or_the_cli():
    import ast
    from pathlib import Path

    import latentdyn.analysis

    found = []
    for path in Path(latentdyn.analysis.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            found += [(path.name, n) for n in names if n.startswith(("latentdyn.pipeline", "latentdyn.cli"))]
    assert found == []
    assert len(list(Path(latentdyn.analysis.__file__).parent.glob("*.py"))) >= 6  # the scan saw the modules


def test_analyze_and_steer_commands_and_stage(tmp_path):
    """`latentdyn analyze` / `steer` through the CLI, and an analyze stage in an experiment with its report section."""
    import json

    from click.testing import CliRunner

    from latentdyn.cli.main import cli

    exp = tmp_path / "e.toml"
    exp.write_text('''
[stages.scenes]
kind = "generate"
scene = "light_ball"
sequences = 30
length = 8
video_sequences = 0
[stages.vae]
kind = "train-vae"
data = "scenes"
arch = "mlp"
latent_dim = 3
epochs = 2
device = "cpu"
[stages.analysis]
kind = "analyze"
vae = "vae"
limit = 200
dci_estimators = 5
traversal_codes = 1
steps = 3
[stages.report]
kind = "report"
''')
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", str(exp), "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "analysis" / "analysis.json").read_text())
    assert res["factors"] == ["x0", "y0", "vx0", "vy0"] and res["splits"] == {"train": "train", "test": "test"}
    html = (out / "report.html").read_text()
    assert "MIG" in html and "mi_heatmap.png" in html and "traversals" in html
    r = CliRunner().invoke(cli, ["steer", str(out / "vae"), "--factor", "x0", "--by", "2", "--n", "4", "--limit", "200",
                                 "--out", str(tmp_path / "st")])
    assert r.exit_code == 0, r.output
    st = json.loads((tmp_path / "st" / "steer.json").read_text())
    assert st["factor"] == "x0" and st["by"] == 2.0 and "unconditional" in st and (tmp_path / "st" / "steer.png").is_file()
    r = CliRunner().invoke(cli, ["analyze", str(out / "vae"), "--limit", "100", "--dci-estimators", "3",
                                 "--traversal-codes", "1", "--steps", "3", "--out", str(tmp_path / "an")])
    assert r.exit_code == 0 and "MIG" in r.output, r.output
