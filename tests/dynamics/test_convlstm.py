"""The pixel-space ConvLSTM yardstick: its cell, its shapes, scheduled sampling, the budget,
training, resume, its rollout row and its errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.dynamics import rollout as R
from latentdyn.dynamics.config import TrainConvLSTMConfig
from latentdyn.dynamics.convlstm import ConvLSTMCell, ConvLSTMPredictor, load_convlstm, pixel_rows
from latentdyn.dynamics.convlstm_train import over_budget, read_split, train_convlstm, truth_prob
from latentdyn.pipeline.report.baselines import budget_label
from tests.helpers import fails_cleanly, killed_in_epoch

TINY = {"layers": 1, "hidden": 8, "kernel": 3, "patch": 2, "context": 4, "horizon": 6, "device": "cpu"}


@pytest.fixture(scope="module")
def ball(tmp_path_factory):
    """light_ball, 60 sequences of 16 frames of 28 x 28: 48 train, 6 val, 6 test."""
    from latentdyn.scenes import generate as scenes

    path = tmp_path_factory.mktemp("convlstm") / "ball.h5"
    scenes.generate(scenes.load_scene("light_ball", ["scene.length=16"]), path, 60, seed=1,
                    splits={"train": 0.8, "val": 0.1, "test": 0.1}, progress=False)
    return path


def _cfg(data, **kw):
    return TrainConvLSTMConfig(data=str(data), **{**TINY, **kw})


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ---- the model ----------------------------------------------------------------------------------------

def test_cell_matches_a_hand_computed_step():
    """One 1 x 1 channel: the gates of Shi et al.'s Eq. 3 (no peepholes) by hand."""
    cell = ConvLSTMCell(1, 1, 1)
    assert cell.conv.bias.tolist() == [0.0, 1.0, 0.0, 0.0]  # the forget gate starts open
    wx, wh, b = [0.5, -1.0, 2.0, 0.25], [1.5, 0.5, -0.5, 1.0], [0.1, 0.2, -0.3, 0.4]  # i, f, g, o
    with torch.no_grad():
        cell.conv.weight.copy_(torch.tensor([[a, c] for a, c in zip(wx, wh)]).view(4, 2, 1, 1))
        cell.conv.bias.copy_(torch.tensor(b))
    x, h, c = 0.8, -0.3, 0.6
    h1, c1 = cell(torch.full((1, 1, 2, 3), x), torch.full((1, 1, 2, 3), h), torch.full((1, 1, 2, 3), c))
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    i, f, g, o = (wx[k] * x + wh[k] * h + b[k] for k in range(4))
    c_want = sig(f) * c + sig(i) * math.tanh(g)
    h_want = sig(o) * math.tanh(c_want)
    np.testing.assert_allclose(c1.detach().numpy(), c_want, rtol=1e-6)
    np.testing.assert_allclose(h1.detach().numpy(), h_want, rtol=1e-6)


@pytest.mark.parametrize("C", [1, 3])
def test_shapes_and_range(C):
    m = ConvLSTMPredictor((C, 8, 12), layers=2, hidden=5, kernel=3, patch=4)
    x = torch.rand(3, 7, C, 8, 12)
    y = m(x, context=3, truth_prob=0.5, generator=torch.Generator().manual_seed(0))
    assert y.shape == (3, 6, C, 8, 12) and 0 < y.min() and y.max() < 1  # a sigmoid's frames
    assert m.rollout(x[:, :3], 5).shape == (3, 5, C, 8, 12)
    m.start_at(0.1)
    assert torch.allclose(m.rollout(torch.zeros(1, 1, C, 8, 12), 1), torch.tensor(0.1), atol=0.05)  # a start near the mean


def test_scheduled_sampling_spans_teacher_forcing_and_the_open_loop():
    torch.manual_seed(0)
    m = ConvLSTMPredictor((1, 8, 8), layers=2, hidden=4, kernel=3, patch=2).eval()
    x = torch.rand(2, 9, 1, 8, 8)
    with torch.no_grad():
        teacher = m(x, context=9)  # every step reads the truth
        assert torch.equal(m(x, context=3, truth_prob=1.0), teacher)
        free = m(x, context=3, truth_prob=0.0)
        assert torch.equal(free[:, :3], teacher[:, :3])  # the context is read alike
        torch.testing.assert_close(free[:, 2:], m.rollout(x[:, :3], 6))  # then its own predictions: the rollout
        assert not torch.allclose(free[:, 3:], teacher[:, 3:])


def test_truth_prob_and_budget_rules():
    assert [truth_prob(p, 0.4) for p in (0.0, 0.2, 0.4, 0.9)] == [1.0, 0.5, 0.0, 0.0]
    assert truth_prob(0.0, 0.0) == 0.0  # no scheduled sampling: the open loop from the start
    assert not over_budget([], 10.0) and not over_budget([4.0, 4.0], 0.0)  # the first epoch always; no budget
    assert not over_budget([3.0, 3.0], 7.5)  # 6 + 1.5 = 7.5: one more epoch ends nearer the budget
    assert over_budget([3.0, 3.1], 7.5)  # 6.1 + 1.55 > 7.5: stopping now is nearer


# ---- training ----------------------------------------------------------------------------------------

def test_training_beats_copy_last_and_a_blank_frame(ball, tmp_path):
    row = train_convlstm(_cfg(ball, epochs=12, hidden=16, lr=3e-3, batch_size=8), tmp_path / "run", progress=False,
                         verbose=False)
    val = read_split(ball, "val", "cpu").float().numpy()[:, :10] / 255.0  # (6, 10, 1, 28, 28)
    copy_last = ((val[:, 4:] - val[:, 3:4]) ** 2).reshape(6, 6, -1).sum(-1).mean()
    blank = (val[:, 4:] ** 2).reshape(6, 6, -1).sum(-1).mean()
    first = _rows(tmp_path / "run")[0]["val_se_per_frame"]
    best = min(r["val_se_per_frame"] for r in _rows(tmp_path / "run"))
    assert best < 0.7 * blank < copy_last and best < 0.7 * first, (best, blank, copy_last, first)
    assert row["epoch"] == 12 and row["truth_prob"] == 0.0  # sampling_until 0.4: truth no longer fed
    b = json.loads((tmp_path / "run" / "budget.json").read_text())
    assert b["stopped_by"] == "epochs" and b["epochs"] == 12 and b["budget_seconds"] == 0
    model, cfg, ck = load_convlstm(tmp_path / "run")
    assert ck["data"]["frame_shape"] == [1, 28, 28] and cfg.hidden == 16 and not model.training


def test_the_budget_stops_training_and_budget_from_sums_runs(ball, tmp_path):
    r = train_convlstm(_cfg(ball, epochs=50, budget_seconds=1e-6), tmp_path / "tight", progress=False, verbose=False)
    b = json.loads((tmp_path / "tight" / "budget.json").read_text())
    assert r["epoch"] == 1 and (b["stopped_by"], b["epochs"]) == ("budget", 1)  # one epoch at least, then the budget
    for name, secs in (("vae", [100.0, 50.5]), ("dyn", [0.25])):  # two finished runs' epoch seconds
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text("".join(json.dumps({"epoch": k + 1, "seconds": s}) + "\n"
                                                               for k, s in enumerate(secs)))
    train_convlstm(_cfg(ball, epochs=2, budget_from=[str(tmp_path / "vae"), str(tmp_path / "dyn")]), tmp_path / "wide",
                   progress=False, verbose=False)
    b = json.loads((tmp_path / "wide" / "budget.json").read_text())
    assert b["budget_seconds"] == 150.75 and b["budget_from"] == {str(tmp_path / "vae"): 150.5, str(tmp_path / "dyn"): 0.25}
    assert (b["stopped_by"], b["epochs"]) == ("epochs", 2)
    assert b["trained_seconds"] == pytest.approx(sum(r["seconds"] for r in _rows(tmp_path / "wide")))
    assert "the budget of vae + dyn, 151 s" in budget_label({**b, "layers": 1, "hidden": 8})


def test_resume_matches_an_uninterrupted_run(ball, tmp_path):
    train_convlstm(_cfg(ball, epochs=3), tmp_path / "full", progress=False, verbose=False)
    with killed_in_epoch(2):
        train_convlstm(_cfg(ball, epochs=3), tmp_path / "part", progress=False, verbose=False)
    train_convlstm(_cfg(ball, epochs=3), tmp_path / "part", resume=True, progress=False, verbose=False)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["truth_prob"] for r in _rows(tmp_path / "part")] == [r["truth_prob"] for r in _rows(tmp_path / "full")]


def test_bad_options_fail_in_one_line(ball, tmp_path):
    run = CliRunner().invoke
    base = ["train", "convlstm", "--data", str(ball), "--device", "cpu", "--no-progress", "--epochs", "1", "--context", "4",
            "--horizon", "6"]
    fails_cleanly(run(cli, [*base, "--out", str(tmp_path / "a"), "--kernel", "4"]), "--kernel 4", "odd")
    fails_cleanly(run(cli, [*base, "--out", str(tmp_path / "b"), "--patch", "3"]), "--patch 3", "28 x 28")
    fails_cleanly(run(cli, [*base, "--out", str(tmp_path / "c"), "--context", "10", "--horizon", "10"]), "longer than the sequences")
    fails_cleanly(run(cli, [*base, "--out", str(tmp_path / "d"), "--budget-seconds", "5", "--budget-from", str(tmp_path)]),
                  "not both")
    fails_cleanly(run(cli, [*base, "--out", str(tmp_path / "e"), "--budget-from", str(tmp_path)]), "no metrics.jsonl")
    fails_cleanly(run(cli, [*base, "--out", str(tmp_path / "f"), "--sampling-until", "2"]), "--sampling-until 2", "at most 1")
    fails_cleanly(run(cli, ["rollout", "--vae", str(tmp_path), "--dynamics", str(tmp_path), "--data", str(ball),
                            "--out", str(tmp_path / "g")]), "does not exist")


# ---- the rollout row --------------------------------------------------------------------------------

def test_the_rollout_scores_the_convlstm_beside_the_model(ball, tmp_path, scene_file):
    run = CliRunner().invoke
    d = tmp_path
    common = ["--device", "cpu", "--no-progress"]
    for args in (["train", "vae", "--data", str(ball), "--out", str(d / "vae"), "--arch", "mlp", "--latent-dim", "3",
                  "--epochs", "1", *common],
                 ["encode", "--vae", str(d / "vae"), "--data", str(ball), "--out", str(d / "lat.h5")],
                 ["train", "dynamics", "--latents", str(d / "lat.h5"), "--out", str(d / "dyn"), "--epochs", "1",
                  "--context", "3", "--horizon", "4", "--hidden", "8", *common],
                 ["train", "convlstm", "--data", str(ball), "--out", str(d / "conv"), "--epochs", "2", "--hidden", "8",
                  "--layers", "1", "--patch", "2", "--context", "4", "--horizon", "6", "--budget-from", str(d / "vae"),
                  "--budget-from", str(d / "dyn"), *common],
                 ["train", "convlstm", "--data", str(scene_file), "--out", str(d / "other"), "--epochs", "1", "--hidden", "4",
                  "--layers", "1", "--patch", "2", "--context", "3", "--horizon", "3", *common]):
        r = run(cli, args)
        assert r.exit_code == 0, r.output
    assert "stopped by" in r.output
    base = ["rollout", "--vae", str(d / "vae"), "--dynamics", str(d / "dyn"), "--data", str(ball), "--context", "5",
            "--horizon", "7", "--video-sequences", "0", "--device", "cpu"]
    r = run(cli, [*base, "--pixel-baseline", str(d / "conv"), "--out", str(d / "roll")])
    assert r.exit_code == 0, r.output
    res = json.loads((d / "roll" / "metrics.json").read_text())
    conv, model = res["open_loop"]["convlstm"], res["open_loop"]["model"]
    assert set(conv["summary"]) == set(model["summary"]) and set(conv["per_step"]) == set(model["per_step"])
    assert len(conv["per_step"]["se_per_frame"]) == 7 and res["one_step_se_per_frame"]["convlstm"] > 0
    rec = res["pixel_baseline"]
    # 2 epochs, or 1 when the machine is slow enough that the first overruns the VAE's + predictor's seconds
    assert rec["run"] == str(d / "conv") and (rec["epochs"], rec["stopped_by"]) in {(2, "epochs"), (1, "budget")}
    assert set(rec["budget_from"]) == {str(d / "vae"), str(d / "dyn")} and rec["parameters"] > 0
    # the row is the run's own frames, scored by the same code (another context and horizon than it trained on)
    from latentdyn.scenes.file import open_scenes

    with open_scenes(ball) as sf:
        ids = np.array(res["sequences"])
        truth = sf.read_frames(ids)[..., None].astype(np.float32) / 255.0  # (6, 16, 28, 28, 1)
        states = sf.states[ids]
        balls, n = R._scene_balls(sf.scene, states, truth)
    opened, one, _ = pixel_rows(d / "conv", truth, 5, 7, torch.device("cpu"))
    again = R._finite(R.score(opened, truth[:, 5:12], states[:, 5:12], 0.3, balls, n))
    np.testing.assert_allclose(again["se_per_frame"], conv["per_step"]["se_per_frame"], rtol=1e-6)
    assert one.shape == (6, 15, 28, 28, 1)
    fails_cleanly(run(cli, [*base, "--pixel-baseline", str(d / "other"), "--out", str(d / "bad")]), "(1, 30, 30)",
                  "train it on this scene")
