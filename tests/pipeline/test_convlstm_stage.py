"""The same-budget ConvLSTM in an experiment: a train-convlstm stage whose budget is the VAE's and
the predictor's recorded seconds, its row in the rollout, its label and section in the report."""

from __future__ import annotations

import json

from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.pipeline import plan as X

EXPERIMENT = """
[experiment]
name = "same_budget"
device = "cpu"

[stages.scenes]
kind = "generate"
scene = "light_ball"
sequences = 24
length = 12
seed = 3
split = "train=0.5,val=0.25,test=0.25"
video_sequences = 0

[stages.vae]
kind = "train-vae"
data = "scenes"
arch = "mlp"
latent_dim = 3
epochs = 2

[stages.encode]
vae = "vae"

[stages.dynamics]
kind = "train-dynamics"
latents = "encode"
hidden = 8
epochs = 2
context = 3
horizon = 4

[stages.convlstm]
kind = "train-convlstm"
data = "scenes"
budget_from = ["vae", "dynamics"]
layers = 1
hidden = 4
patch = 2
context = 3
horizon = 4

[stages.rollout]
pixel_baseline = "convlstm"
context = 3
horizon = 5
sequences = 3
video_sequences = 0

[stages.report]
"""


def test_a_same_budget_convlstm_stage_and_its_rollout_row(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(EXPERIMENT)
    exp = X.load_experiment(path)
    assert exp.stage("convlstm").refs == {"data": ["scenes"], "budget_from": ["vae", "dynamics"]}
    assert exp.stage("rollout").refs["pixel_baseline"] == ["convlstm"]
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", str(path), "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    seconds = {n: [json.loads(line)["seconds"] for line in (out / n / "metrics.jsonl").read_text().splitlines()]
               for n in ("vae", "dynamics", "convlstm")}
    b = json.loads((out / "convlstm" / "budget.json").read_text())
    assert b["budget_from"] == {str(out / "vae"): sum(seconds["vae"]), str(out / "dynamics"): sum(seconds["dynamics"])}
    assert b["budget_seconds"] == sum(seconds["vae"]) + sum(seconds["dynamics"]) and b["stopped_by"] == "budget"
    spent = seconds["convlstm"]  # the epoch end nearest the budget: one more epoch would have been further from it
    assert len(spent) == 1 or sum(spent[:-1]) + spent[-2] / 2 <= b["budget_seconds"] < sum(spent) + spent[-1] / 2
    cfg = (out / "convlstm" / "config.toml").read_text()
    assert str(out / "vae") in cfg  # the resolved config holds the runs' folders
    m = json.loads((out / "rollout" / "metrics.json").read_text())
    assert "convlstm" in m["open_loop"] and m["pixel_baseline"]["budget_seconds"] == b["budget_seconds"]
    rec = json.loads((out / "rollout" / "stage.json").read_text())
    assert rec["summary"]["open_loop_se_per_frame_convlstm"] == m["open_loop"]["convlstm"]["summary"]["se_per_frame"]
    html = (out / "report.html").read_text()
    assert "ConvLSTM in pixels (1 x 4; trained" in html and "the budget of vae + dynamics" in html
    assert "resolved ConvLSTM configuration" in html  # the stage's own section
    r = CliRunner().invoke(cli, ["run", str(path), "--out", str(out), "--no-progress"])
    assert r.exit_code == 0 and "convlstm (train-convlstm): unchanged, skipped" in r.output
