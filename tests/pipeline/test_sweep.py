"""The [sweep] table (clones per value and seed, rewired references, shared upstream, errors) and
the sweep-summary stage: its numbers against the clones' own files, its figure, its report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.core.errors import LatentdynError
from latentdyn.pipeline import plan as X
from latentdyn.pipeline.sweep_summary import spearman, summarize

SWEEP = """
[experiment]
name = "tiny_sweep"
device = "cpu"

[sweep]
key = "beta"
values = [0, 2]
stages = ["vae"]
seeds = [1, 2]

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
batch_size = 64

[stages.encode]
vae = "vae"

[stages.dynamics]
kind = "train-dynamics"
latents = "encode"
hidden = 8
epochs = 1
context = 3
horizon = 4

[stages.rollout]
context = 3
horizon = 5
sequences = 3
video_sequences = 0

[stages.analyze]
vae = "vae"
limit = 100
dci_estimators = 3
traversal_codes = 1
steps = 3

[stages.summary]
kind = "sweep-summary"
analyze = ["analyze"]
rollout = ["rollout"]

[stages.report]

[profiles.one.sweep]
values = [4]
seeds = [7]
"""
DOWNSTREAM = ["vae", "encode", "dynamics", "rollout", "analyze"]
POINTS = ["-beta=0-seed=1", "-beta=0-seed=2", "-beta=2-seed=1", "-beta=2-seed=2"]


def write(tmp_path: Path, text: str = SWEEP) -> Path:
    p = tmp_path / "sweep.toml"
    p.write_text(text)
    return p


def test_expansion_names_refs_shared_upstream(tmp_path):
    exp = X.load_experiment(write(tmp_path))
    names = [s.name for s in exp.stages]
    assert len(names) == 1 + len(DOWNSTREAM) * len(POINTS) + 2  # scenes, the clones, summary and report
    assert names[0] == "scenes" and names[-2:] == ["summary", "report"]
    assert names[1:5] == ["vae" + p for p in POINTS]  # each stage's clones take its place in file order
    for p in POINTS:
        beta, seed = float(p.split("=")[1].split("-")[0]), int(p.rsplit("=", 1)[1])
        vae, roll = exp.stage("vae" + p), exp.stage("rollout" + p)
        assert vae.settings.beta == beta and vae.settings.seed == seed and vae.point == {"beta": beta, "seed": seed}
        assert vae.refs == {"data": ["scenes"]}  # the scenes are shared
        assert exp.stage("encode" + p).refs == {"vae": ["vae" + p]}
        assert exp.stage("dynamics" + p).refs == {"latents": ["encode" + p]} and exp.stage("dynamics" + p).settings.seed == seed
        assert roll.refs == {"data": ["scenes"], "vae": ["vae" + p], "dynamics": ["dynamics" + p]}
        assert roll.settings.seed == seed and exp.stage("analyze" + p).settings.seed == seed
    summ = exp.stage("summary")
    assert summ.settings.analyze == ["analyze" + p for p in POINTS] and summ.refs["rollout"] == ["rollout" + p for p in POINTS]
    assert exp.stage("scenes").point == {} and exp.stage("scenes").settings.seed == 3
    X.compute_keys(exp)
    assert len({s.key for s in exp.stages}) == len(exp.stages)  # every clone computes something of its own


def test_profile_and_set_override_the_sweep(tmp_path):
    p = write(tmp_path)
    exp = X.load_experiment(p, profile="one")
    assert [s.name for s in exp.stages if s.kind == "train-vae"] == ["vae-beta=4-seed=7"]
    exp = X.load_experiment(p, ["sweep.values=[0.5]", "vae.epochs=3"])
    vaes = [s for s in exp.stages if s.kind == "train-vae"]
    assert [s.name for s in vaes] == ["vae-beta=0.5-seed=1", "vae-beta=0.5-seed=2"]
    assert all(s.settings.epochs == 3 for s in vaes)  # --set NAME.KEY reaches every clone
    exp = X.load_experiment(write(tmp_path, SWEEP.replace("seeds = [1, 2]\n", "")))
    assert [s.name for s in exp.stages if s.kind == "encode"] == ["encode-beta=0", "encode-beta=2"]


@pytest.mark.parametrize("change, message", [
    (("stages = [\"vae\"]", "stages = [\"vea\"]"), "sweep.stages names 'vea', which is no stage; did you mean vae?"),
    (("key = \"beta\"", "key = \"bta\""), "sweep.key = 'bta' is no setting of stage 'vae' (train-vae); did you mean beta?"),
    (("values = [0, 2]", "values = []"), "sweep.values is empty"),
    (("values = [0, 2]", "values = [0, 0]"), "repeats a value"),
    (("seeds = [1, 2]", "seeds = [1.5]"), "sweep.seeds = [1.5]"),
    (("seeds = [1, 2]", "seed = [1, 2]"), "unknown key sweep.seed; did you mean seeds?"),
    (("stages = [\"vae\"]", "stages = [\"summary\"]"), "which gathers and cannot be swept"),
    (("values = [0, 2]", "values = [\"a/b\"]"), "cannot be part of a stage folder name"),
    (("values = [0, 2]", "values = [-1]"), "beta"),  # the clone's own bound check
])
def test_bad_sweep_tables_are_one_line_errors(tmp_path, change, message):
    with pytest.raises(LatentdynError) as e:
        X.load_experiment(write(tmp_path, SWEEP.replace(*change)))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_shipped_beta_sweep_expands():
    exp = X.load_experiment("beta_sweep")
    kinds = [s.kind for s in exp.stages]
    assert kinds.count("train-vae") == 2 * 7 * 3 and kinds.count("rollout") == 42 and kinds.count("sweep-summary") == 2
    assert kinds.count("generate") == 2 and len(kinds) == 2 + 5 * 42 + 2 + 1
    light = [s for s in exp.stages if s.name.startswith("vae_light-")]
    assert {s.settings.latent_dim for s in light} == {3} and sorted({s.settings.beta for s in light}) == [0, 0.5, 1, 2, 4, 8, 16]
    assert all(s.settings.horizon == 20 for s in exp.stages if s.kind == "rollout")
    summ = exp.stage("summary_light")
    assert len(summ.settings.analyze) == 21 and all(n.startswith("analyze_light-") for n in summ.settings.analyze)
    quick = X.load_experiment("beta_sweep", profile="quick")
    assert [s.kind for s in quick.stages].count("train-vae") == 2 * 2 * 2


def test_summary_statistics_and_spearman():
    runs = [{"x": x, "seed": s, "mig": m, "rec_error": 10 - m, "position_error_px": 2 * m, "all_present": 1.0,
             **{k: None for k in ("sap", "dci_disentanglement", "dci_completeness", "dci_informativeness", "probe_r2")}}
            for x, s, m in [(0, 1, 0.1), (0, 2, 0.3), (4, 1, 0.5), (4, 2, 0.9)]]
    s = summarize(runs, "beta")
    v0, v4 = s["values"]
    assert v0["x"] == 0 and v0["mig"]["values"] == [0.1, 0.3] and v0["mig"]["n"] == 2
    assert math.isclose(v4["mig"]["mean"], 0.7) and math.isclose(v4["mig"]["std"], np.std([0.5, 0.9], ddof=1))
    assert v0["sap"]["mean"] is None and v0["sap"]["n"] == 0
    assert math.isclose(s["spearman"]["mig"]["vs_position_error_px"]["rho"], 1.0)
    assert math.isclose(s["spearman"]["mig"]["vs_rec_error"]["rho"], -1.0)
    assert math.isclose(s["spearman"]["mig"]["vs_x"]["rho"], spearman([0, 0, 4, 4], [0.1, 0.3, 0.5, 0.9])["rho"])
    assert s["spearman"]["mig"]["vs_all_present"]["rho"] is None  # a constant: no rank correlation
    assert s["n_runs"] == 4 and s["seeds"] == [1, 2]


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "sweep"
    p = write(tmp_path_factory.mktemp("exp"))
    r = CliRunner().invoke(cli, ["run", str(p), "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["run", str(p), "--out", str(out), "--no-progress"])  # a rerun: every clone skips
    assert r.exit_code == 0 and "0 of 23 stages to run" in r.output, r.output
    return out


def test_sweep_summary_reads_every_clone(sweep_run):
    s = json.loads((sweep_run / "summary" / "summary.json").read_text())
    assert s["n_runs"] == 4 and s["seeds"] == [1, 2] and [v["x"] for v in s["values"]] == [0, 2]
    assert s["splits"] == {"analysis": "test", "reconstruction": "validation", "rollout": "test"} and s["rollout_horizon"] == 5
    for v in s["values"]:
        for i, seed in enumerate(v["seeds"]):
            p = f"-beta={v['x']:g}-seed={seed}"
            a = json.loads((sweep_run / ("analyze" + p) / "analysis.json").read_text())
            fit = a["fit train, score test"]
            assert v["mig"]["values"][i] == a["test"]["mig"]
            assert v["dci_disentanglement"]["values"][i] == fit["dci"]["disentanglement"]
            assert v["dci_informativeness"]["values"][i] == fit["dci"]["informativeness_test"]
            assert v["probe_r2"]["values"][i] == max(fit["probes"]["mean"].values())
            rows = [json.loads(x) for x in (sweep_run / ("vae" + p) / "metrics.jsonl").read_text().splitlines()]
            best = next(r for r in rows if r["epoch"] == a["vae_epoch"])
            assert v["rec_error"]["values"][i] == -best["val_rec"]
            m = json.loads((sweep_run / ("rollout" + p) / "metrics.json").read_text())
            assert v["position_error_px"]["values"][i] == m["open_loop"]["model"]["summary"]["position_error_px"]
            assert v["all_present"]["values"][i] == m["open_loop"]["model"]["summary"]["all_present"]
        assert math.isclose(v["mig"]["mean"], np.mean(v["mig"]["values"]))
        assert math.isclose(v["mig"]["std"], np.std(v["mig"]["values"], ddof=1))
    runs = s["runs"]
    assert s["spearman"]["mig"]["vs_x"] == spearman([r["x"] for r in runs], [r["mig"] for r in runs])
    assert (sweep_run / "summary" / "sweep.png").stat().st_size > 10_000 and (sweep_run / "summary" / "sweep.pdf").is_file()


def test_report_shows_the_sweep(sweep_run):
    html = (sweep_run / "report.html").read_text()
    assert "sweep-summary" in html and "Spearman rank correlations over all runs" in html
    assert "4 runs: 2 values of beta × seeds 1, 2" in html and "summary/sweep.png" in html
    assert 'id="vae-beta=0-seed=1"' in html or "vae-beta=0-seed=1" in html
