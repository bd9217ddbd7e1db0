"""Scripted experiments (`latentdyn run`): stages, content-hash skipping, resume, --only, errors,
and the HTML report rendered in headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from latentdyn.pipeline import plan as X
from latentdyn.pipeline import stages as S
from latentdyn.cli.main import cli
from latentdyn.core.errors import LatentdynError

TINY = """
[experiment]
name = "tiny"
description = "a tiny light-ball study for the tests"
device = "cpu"

[stages.scenes]
kind = "generate"
scene = "light_ball"
sequences = 24
length = 12
seed = 3
split = "train=0.5,val=0.25,test=0.25"
video_sequences = 2

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
hidden = 16
epochs = 2
context = 3
horizon = 4

[stages.rollout]
context = 3
horizon = 5
sequences = 3
video_sequences = 2

[stages.rollout.reference]
copy_last = 11.8

[stages.latent_map]
kind = "latent-map"
vae = "vae"
limit = 200

[stages.report]
title = "Tiny study"
"""
NAMES = ["scenes", "vae", "encode", "dynamics", "rollout", "latent_map", "report"]


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def actions(output: str) -> dict[str, str]:
    """Stage -> what the run did, from its log lines."""
    out = {}
    for line in output.splitlines():
        m = re.match(r"\[\d+/\d+\] (\S+) \(\S+\): (running|resuming|unchanged, skipped)", line)
        if m:
            out[m.group(1)] = {"unchanged, skipped": "skip", "running": "run", "resuming": "resume"}[m.group(2)]
    return out


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("exp") / "tiny.toml"
    p.write_text(TINY)
    return p


@pytest.fixture(scope="module")
def tiny_run(tiny_file, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    r = run("run", tiny_file, "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    return out, r.output


def test_run_end_to_end_writes_every_stage(tiny_run):
    out, output = tiny_run
    assert actions(output) == {n: "run" for n in NAMES}
    for n in NAMES:
        rec = json.loads((out / n / "stage.json").read_text())
        assert rec["status"] == "done" and rec["format"] == "latentdyn-stage" and len(rec["key"]) == 64
    assert (out / "scenes" / "scenes.h5").is_file() and (out / "scenes" / "scenes.mp4").is_file()
    assert (out / "vae" / "best.pt").is_file() and (out / "vae" / "flow.gif").is_file()
    m = json.loads((out / "rollout" / "metrics.json").read_text())
    assert set(m["one_step_se_per_frame"]) >= {"model", "copy_last", "linear_pixels"}
    assert len(m["open_loop"]["model"]["per_step"]["se_per_frame"]) == 5
    assert (out / "latent_map" / "latent_map.png").is_file()
    assert (out / "report.html").is_file() and "report:" in output
    resolved = (out / "experiment.toml").read_text()
    assert 'kind = "train-vae"' in resolved and "copy_last = 11.8" in resolved
    log = (out / "run.log").read_text()
    assert log.count("done in") == len(NAMES)
    # different stages read what their references name
    assert json.loads((out / "rollout" / "stage.json").read_text())["reads"] == {
        "data": ["scenes"], "vae": ["vae"], "dynamics": ["dynamics"]}


def test_second_run_skips_every_stage(tiny_file, tiny_run):
    out, _ = tiny_run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "run.log"}
    r = run("run", tiny_file, "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    assert actions(r.output) == {n: "skip" for n in NAMES}
    after = {p: p.stat().st_mtime_ns for p in before}
    changed = [str(p) for p in before if before[p] != after[p] and p.name != "experiment.toml"]
    assert changed == []


def test_changing_one_setting_reruns_only_downstream(tiny_file, tiny_run, tmp_path):
    import shutil

    src, _ = tiny_run
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    r = run("run", tiny_file, "--out", out, "--set", "dynamics.hidden=24", "--no-progress")
    assert r.exit_code == 0, r.output
    assert actions(r.output) == {"scenes": "skip", "vae": "skip", "encode": "skip", "dynamics": "run",
                                 "rollout": "run", "latent_map": "skip", "report": "run"}
    # a setting that cannot change results (the device) reruns nothing
    r = run("run", tiny_file, "--out", out, "--set", "dynamics.hidden=24", "--set", "rollout.device=auto", "--no-progress")
    assert set(actions(r.output).values()) == {"skip"}, r.output
    # a finished training stage with more epochs continues from its checkpoint
    r = run("run", tiny_file, "--out", out, "--set", "dynamics.hidden=24", "--set", "dynamics.epochs=3", "--no-progress")
    assert actions(r.output)["dynamics"] == "resume", r.output
    rows = [json.loads(x) for x in (out / "dynamics" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    # fewer epochs than already trained cannot be had by resuming: the stage starts over
    r = run("run", tiny_file, "--out", out, "--set", "dynamics.hidden=24", "--set", "dynamics.epochs=1", "--no-progress")
    assert actions(r.output)["dynamics"] == "run", r.output
    rows = [json.loads(x) for x in (out / "dynamics" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1]


def test_interrupted_run_resumes_and_skips_finished_stages(tiny_file, tmp_path, monkeypatch):
    out = tmp_path / "cut"
    import dataclasses

    real = S.KINDS["train-vae"]

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setitem(S.KINDS, "train-vae", dataclasses.replace(real, run=interrupted))
    r = run("run", tiny_file, "--out", out, "--no-progress")
    assert r.exit_code == 130 and "Interrupted" in r.output
    assert json.loads((out / "scenes" / "stage.json").read_text())["status"] == "done"
    assert json.loads((out / "vae" / "stage.json").read_text())["status"] == "running"
    assert not (out / "encode").exists()
    monkeypatch.setitem(S.KINDS, "train-vae", real)
    r = run("run", tiny_file, "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    acts = actions(r.output)
    assert acts["scenes"] == "skip" and acts["vae"] == "run" and acts["report"] == "run"


def test_training_cut_mid_stage_resumes_from_its_checkpoint(tiny_file, tmp_path, monkeypatch):
    from latentdyn.engine import loop as training

    out = tmp_path / "mid"
    real = training.finish_epoch

    def cut_after_first(fit, *a, **k):
        best = real(fit, *a, **k)
        if fit.kind == "vae":
            raise KeyboardInterrupt
        return best

    monkeypatch.setattr(training, "finish_epoch", cut_after_first)
    r = run("run", tiny_file, "--out", out, "--only", "scenes,vae", "--no-progress")
    assert r.exit_code == 130
    monkeypatch.setattr(training, "finish_epoch", real)
    r = run("run", tiny_file, "--out", out, "--only", "scenes,vae", "--no-progress")
    assert r.exit_code == 0, r.output
    assert actions(r.output) == {"scenes": "skip", "vae": "resume"}
    rows = [json.loads(x) for x in (out / "vae" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]


def test_only_needs_finished_inputs(tiny_file, tmp_path):
    r = run("run", tiny_file, "--out", tmp_path / "o", "--only", "rollout")
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "--only rollout: it reads stage 'scenes'" in r.output
    assert not (tmp_path / "o").exists()
    r = run("run", tiny_file, "--out", tmp_path / "o", "--only", "nosuch")
    assert r.exit_code == 2 and "no stage 'nosuch'" in r.output


def test_dry_run_lists_actions(tiny_file, tiny_run):
    out, _ = tiny_run
    r = run("run", tiny_file, "--out", out, "--dry-run", "--set", "rollout.horizon=6")
    assert r.exit_code == 0, r.output
    got = dict(line.split()[0::2] for line in r.output.splitlines())
    assert got == {"scenes": "skip", "vae": "skip", "encode": "skip", "dynamics": "skip", "rollout": "run",
                   "latent_map": "skip", "report": "run"}


@pytest.mark.parametrize("text, message", [
    ("[stages.a]\nkind = 'train-vae'\ndata = 'fashion-mnist'\nepochz = 3\n", "unknown key stages.a.epochz"),
    ("[stages.a]\nkind = 'nope'\n", "kind = 'nope'"),
    ("[stages.m]\nkind = 'latent-map'\nvae = 'v'\n[stages.v]\nkind = 'train-vae'\n", "comes after it"),
    ("[stages.m]\nkind = 'latent-map'\nvae = 'nothing'\n", "names no earlier stage"),
    ("[stages.g]\nkind = 'generate'\n[stages.m]\nkind = 'latent-map'\nvae = 'g'\n", "is a generate stage; it must be train-vae"),
    ("[experiment]\nname = 'x'\n", "has no stages"),
    ("[stagez.a]\nkind = 'report'\n", "unknown table [stagez]"),
    ("[stages.a]\nkind = 'train-vae'\nepochs = 'many'\n", "stages.a.epochs = 'many': expected a whole number"),
])
def test_bad_experiment_files_are_one_line_errors(tmp_path, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    r = run("run", p, "--out", tmp_path / "r")
    assert r.exit_code == 2, r.output
    assert message in r.output and r.output.count("\n") == 1 and "Traceback" not in r.output
    assert not (tmp_path / "r").exists()


def test_bad_set_and_profile(tiny_file, tmp_path):
    r = run("run", tiny_file, "--out", tmp_path / "r", "--set", "nostage.x=1")
    assert r.exit_code == 2 and "no stage 'nostage'" in r.output
    r = run("run", tiny_file, "--out", tmp_path / "r", "--profile", "demo")
    assert r.exit_code == 2 and "defines no profiles" in r.output


def test_a_failing_stage_names_itself_and_stays_unfinished(tmp_path):
    p = tmp_path / "bad_rollout.toml"
    p.write_text(TINY.replace("context = 3\nhorizon = 5", "context = 10\nhorizon = 5"))
    r = run("run", p, "--out", tmp_path / "r", "--no-progress")
    assert r.exit_code == 2
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("Error: stage 'rollout': --context 10 + --horizon 5 = 15 is longer than the sequences (12 frames)")
    assert json.loads((tmp_path / "r" / "rollout" / "stage.json").read_text())["status"] == "running"
    assert "rollout (rollout): failed" in (tmp_path / "r" / "run.log").read_text()
    assert not (tmp_path / "r" / "report.html").exists()


def test_missing_dataset_fails_before_any_work(tmp_path, monkeypatch):
    from latentdyn import datasets as ds

    monkeypatch.setattr(ds, "SYSTEM_DIRS", [])
    monkeypatch.setenv("LATENTDYN_DATA", str(tmp_path / "empty_cache"))
    p = tmp_path / "needs_mnist.toml"
    p.write_text("[stages.scenes]\nkind = 'generate'\nsequences = 4\n"
                 "[stages.vae]\nkind = 'train-vae'\ndata = 'mnist'\n")
    r = run("run", p, "--out", tmp_path / "r")
    assert r.exit_code == 2
    assert r.output.startswith("Error: stage 'vae': mnist is not available offline: put train-images-idx3-ubyte.gz")
    assert "latentdyn datasets fetch mnist" in r.output and r.output.count("\n") == 1
    assert not (tmp_path / "r").exists()  # nothing ran, not even the generate stage
    mine = tmp_path / "mine"
    mine.mkdir()
    r = run("run", p, "--out", tmp_path / "r", "--data-dir", mine)
    assert r.exit_code == 2 and "mnist is not available offline: put train-images-idx3-ubyte.gz" in r.output
    assert f"in {mine}" in r.output and not (tmp_path / "r").exists()
    # the stages that do not need MNIST still plan and run on their own
    r = run("run", p, "--out", tmp_path / "r", "--dry-run")
    assert r.exit_code == 0, r.output
    lines = dict(line.split(None, 1) for line in r.output.splitlines())
    assert lines["scenes"].split() == ["generate", "run"]
    assert lines["vae"].split(None, 2)[:2] == ["train-vae", "run"]
    assert "(cannot run here: mnist is not available offline" in lines["vae"]
    r = run("run", p, "--out", tmp_path / "r", "--only", "scenes", "--no-progress")
    assert r.exit_code == 0, r.output
    assert actions(r.output) == {"scenes": "run"} and (tmp_path / "r" / "scenes" / "scenes.h5").is_file()


def test_missing_scene_file_fails_before_any_work(tmp_path):
    p = tmp_path / "needs_file.toml"
    gone = tmp_path / "gone.h5"
    p.write_text(f"[stages.vae]\nkind = 'train-vae'\ndata = '{gone}'\n[stages.map]\nkind = 'latent-map'\nvae = 'vae'\n")
    r = run("run", p, "--out", tmp_path / "r")
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert r.output.startswith(f"Error: stage 'vae': scene file {gone} does not exist; generate it first")
    assert not (tmp_path / "r").exists()
    r = run("run", p, "--out", tmp_path / "r", "--dry-run")
    assert r.exit_code == 0 and r.output.count("(cannot run here: scene file") == 2  # the map reads the VAE


def test_only_with_a_report_shows_what_has_finished(tiny_file, tmp_path):
    out = tmp_path / "part"
    r = run("run", tiny_file, "--out", out, "--only", "scenes,vae,report", "--no-progress")
    assert r.exit_code == 0, r.output
    assert actions(r.output) == {"scenes": "run", "vae": "run", "report": "run"}
    page = (out / "report.html").read_text()
    assert 'id="vae"' in page and 'id="rollout"' not in page
    left_out = re.findall(r'<tr><td class="">(\w+)</td><td class="">[\w-]+</td><td class="">not run</td>', page)
    assert left_out == ["encode", "dynamics", "rollout", "latent_map"]  # the overview lists what was left out
    r = run("run", tiny_file, "--out", out, "--only", "scenes,vae,report", "--no-progress")
    assert actions(r.output) == {"scenes": "skip", "vae": "skip", "report": "skip"}
    assert r.output.strip().endswith(f"report: {out / 'report.html'}")
    r = run("run", tiny_file, "--out", out, "--only", "latent_map", "--no-progress")
    assert actions(r.output) == {"latent_map": "run"} and "report:" not in r.output  # the page is behind: not offered
    r = run("run", tiny_file, "--out", out, "--only", "scenes,vae,latent_map,report", "--no-progress")
    assert actions(r.output) == {"scenes": "skip", "vae": "skip", "latent_map": "skip", "report": "run"}  # one more section
    r = run("run", tiny_file, "--out", out, "--no-progress")
    assert actions(r.output) == {"scenes": "skip", "vae": "skip", "encode": "run", "dynamics": "run", "rollout": "run",
                                 "latent_map": "skip", "report": "run"}
    assert 'id="rollout"' in (out / "report.html").read_text()


def test_bundled_experiments_load_and_link():
    shipped = sorted(p.stem for p in (Path(X.__file__).parents[1] / "shipped" / "experiments").glob("*.toml"))
    assert {"bouncing_ball", "three_balls", "latent_maps", "interpolation", "latent_analysis", "beta_sweep",
            "moving_mnist", "moving_fashion", "ball_scenes", "three_balls_slots"} <= set(shipped)
    for name in shipped:  # every shipped file, and every profile of it, loads and links
        for profile in [None, *X.load_toml(X.find_experiment(name)).get("profiles", {})]:
            exp = X.load_experiment(name, profile=profile)
            assert exp.stages[-1].kind == "report" and exp.info.name == name, (name, profile)
            assert exp.stages[-1].refs["stages"] == [s.name for s in exp.stages[:-1]]
    la = X.load_experiment("latent_analysis")
    assert la.stage("vae").settings.latent_dim == 3 and la.stage("analyze").refs == {"data": ["scenes"], "vae": ["vae"]}
    assert la.stage("steer_x_given_y").settings.condition == ["y0"]
    assert la.stage("steer_fashion").refs == {"vae": ["vae_fashion"]}  # a dataset, not a stage
    bs = X.load_experiment("ball_scenes")
    assert bs.stage("five_scenes").settings.set == ["physics.n_balls=5"] and bs.stage("gravity_scenes").settings.scene == "gravity_balls"
    assert bs.stage("five_rollout_40").refs == {"vae": ["five_vae"], "dynamics": ["five_dynamics"], "data": ["five_scenes"],
                                                "oracle": ["five_oracle"]}
    r40 = X.load_experiment("three_balls", profile="quick").stage("rollout_40").settings
    assert (r40.horizon, r40.context, r40.samples) == (40, 10, 4)
    full = X.load_experiment("three_balls")  # the VAE on the first 1000 of the 4000 training sequences
    assert full.stage("vae").settings.limit == 100 * 1000 and full.stage("vae").settings.epochs == 4
    assert full.stage("vae").settings.lr_schedule == "cosine-step"
    quick = X.load_experiment("three_balls", profile="quick")
    assert quick.stage("vae").settings.limit == 0
    assert (quick.stage("oracle").settings.epochs, full.stage("oracle").settings.epochs) == (16, 60)  # the quick oracle
    demo = X.load_experiment("bouncing_ball", profile="demo")
    assert demo.stage("vae").settings.arch == "mlp" and demo.stage("scenes").settings.scene == "light_ball"
    maps = X.load_experiment("latent_maps")
    assert {s.settings.data for s in maps.stages if s.kind == "train-vae"} == {"mnist", "fashion-mnist", "cifar10", "cifar10-gray"}
    assert all(s.settings.latent_dim == 2 and s.settings.epochs == 10 for s in maps.stages if s.kind == "train-vae")
    tb = X.load_experiment("three_balls")
    assert tb.stage("rollout").settings.reference == {"linear_pixels": 6.8, "copy_last": 11.8}
    # the state oracle (issue #25): true states as latents, the interaction predictor on them, read by both rollouts
    assert tb.stage("states").refs == {"data": ["scenes"]} and tb.stage("oracle").refs == {"latents": ["states"]}
    assert tb.stage("oracle").settings.cell == "interaction"
    assert tb.stage("rollout").refs["oracle"] == tb.stage("rollout_40").refs["oracle"] == ["oracle"]
    sl = X.load_experiment("three_balls_slots", profile="quick")  # object slots: the same scene, a slot VAE, interaction
    v = sl.stage("vae").settings
    assert (v.arch, v.slots, v.slot_dim, v.latent_dim) == ("slots", 4, 6, 24)
    assert sl.stage("dynamics").settings.cell == sl.stage("oracle").settings.cell == "interaction"
    assert sl.stage("rollout").refs == {"vae": ["vae"], "dynamics": ["dynamics"], "oracle": ["oracle"], "data": ["scenes"]}
    assert sl.stage("analysis").refs == {"data": ["scenes"], "vae": ["vae"]}
    assert sl.stage("scenes").settings.sequences == X.load_experiment("three_balls", profile="quick").stage("scenes").settings.sequences


def test_keys_follow_inputs(tiny_file):
    exp = X.load_experiment(tiny_file)
    X.compute_keys(exp)
    keys = {s.name: s.key for s in exp.stages}
    exp2 = X.load_experiment(tiny_file, ["scenes.seed=4"])
    X.compute_keys(exp2)
    changed = {s.name for s in exp2.stages if s.key != keys[s.name]}
    assert changed == set(NAMES)  # everything reads the scenes
    exp3 = X.load_experiment(tiny_file, ["latent_map.grid=10"])
    X.compute_keys(exp3)
    assert {s.name for s in exp3.stages if s.key != keys[s.name]} == {"latent_map", "report"}


def test_options_added_later_leave_finished_stages_skipped(tiny_file, tiny_run, tmp_path):
    """A ``key_if_set`` option at its default stays out of the key, so a stage finished before it
    existed (its record holds the key with it, or without it) is skipped; set, it reruns."""
    import shutil

    from latentdyn.core.options import key_settings

    exp = X.load_experiment(tiny_file)
    X.compute_keys(exp)
    dyn = exp.stage("dynamics")
    assert "latent_noise" not in key_settings(dyn.settings) and key_settings(dyn.settings, every=True)["latent_noise"] == 0.0
    # options that never were in a key (key_if_set="added") stay out of the full key too
    assert not {"cell", "kernel"} & set(key_settings(dyn.settings, every=True))
    assert "latent_channels" not in key_settings(exp.stage("vae").settings, every=True)
    assert dyn.key != dyn.full_key and exp.stage("rollout").key != exp.stage("rollout").full_key
    assert exp.stage("scenes").key == exp.stage("scenes").full_key  # no such option: one key
    src, _ = tiny_run
    out = tmp_path / "old"
    shutil.copytree(src, out)
    for name in ("dynamics", "rollout", "report"):  # as an older latentdyn wrote them: the full keys
        rec = json.loads((out / name / "stage.json").read_text())
        rec["key"] = exp.stage(name).full_key
        (out / name / "stage.json").write_text(json.dumps(rec))
    assert {s.name: a for s, a in X.plan(X.load_experiment(tiny_file), out)} == {n: "skip" for n in NAMES}
    noisy = X.load_experiment(tiny_file, ["dynamics.latent_noise=0.1"])
    X.compute_keys(noisy)
    assert noisy.stage("dynamics").key not in (dyn.key, dyn.full_key)
    assert dict((s.name, a) for s, a in X.plan(noisy, out))["dynamics"] == "run"
    rec = json.loads((out / "rollout" / "stage.json").read_text())
    rec["key"] = "0" * 64  # neither key: the stage reruns
    (out / "rollout" / "stage.json").write_text(json.dumps(rec))
    assert dict((s.name, a) for s, a in X.plan(X.load_experiment(tiny_file), out))["rollout"] == "run"


def test_report_renders_in_chromium_with_every_resource(tiny_run, tmp_path):
    from tests.chromium import render

    out, _ = tiny_run
    page = out / "report.html"
    text = page.read_text()
    links = re.findall(r'(?:src|href|data-gif)="([^"#][^"]*)"', text)
    assert links, "the report links no files"
    for link in links:
        assert not re.match(r"^[a-z]+:|^/", link), f"not a relative link: {link}"
        from urllib.parse import unquote

        assert (out / unquote(link)).is_file(), f"missing file {link}"
    for title in ("Overview", "scenes", "vae", "dynamics", "rollout", "latent_map"):
        assert f">{title}<" in text
    assert "11.8" in text  # the published yardstick beside the measured error
    res = render(page, tmp_path / "profile")
    assert res["images"], res
    bad = [i["src"] for i in res["images"] if not i["ok"]]
    assert bad == [], f"images that did not load: {bad}"
    for v in res["videos"]:  # an MP4 the browser cannot play is replaced by its GIF, which is then an image
        assert v["error"] is None and v["ready"] >= 1 and v["w"] > 0, v
    media = {Path(i["src"]).name for i in res["images"]} | {Path(v["src"]).name for v in res["videos"]}
    assert {"rollout.mp4", "rollout.gif"} & media and {"flow.mp4", "flow.gif"} & media
    assert {"error_vs_horizon.png", "latent_map.png", "vae_curves.png", "dynamics_curves.png"} <= media
    _check_readable(out, text, res)


def _check_readable(out: Path, text: str, res: dict) -> None:
    """Issue #27, item 5: at 1280 px every plot is shown at (nearly) its print size, so its text
    reads as set; every figure names its split; counts carry their denominators; no empty β panel."""
    from urllib.parse import unquote

    from PIL import Image

    for i in res["images"]:
        if i["plot"]:
            with Image.open(out / unquote(i["src"])) as im:
                printed = im.width * 96 / im.info["dpi"][0]  # CSS px at 96 per inch
            assert i["shown"] >= 0.9 * printed, f"{i['src']} shown {i['shown']:.0f} px, printed {printed:.0f} px"
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", text)
    assert captions and all("split" in c for c in captions), [c for c in captions if "split" not in c]
    assert re.search(r"\d\u00a0of\u00a0[\d,]+", text), "frame counts without their denominator"
    assert "β = 1 throughout" in text  # no warm-up: no β panel, the caption says so
    assert re.search(r"<td[^>]*>test split: ", text)  # the overview names the rollout's split


def test_report_of_a_single_run_folder(tiny_run):
    from latentdyn.pipeline.report.page import write_report

    out, _ = tiny_run
    page = write_report(out / "vae")
    text = page.read_text()
    assert "validation ELBO" in text and "flow.mp4" in text
    with pytest.raises(LatentdynError, match="holds no run"):
        write_report(out / "report_files")


MAPS = """
[experiment]
name = "maps"
device = "cpu"

[stages.vae_a]
kind = "train-vae"
data = "fashion-mnist"
arch = "mlp"
latent_dim = 2
epochs = 2
limit = 600
binarize = "static"

[stages.vae_b]
kind = "train-vae"
data = "fashion-mnist"
arch = "mlp"
latent_dim = 2
beta = 4.0
epochs = 1
limit = 600

[stages.eval_a]
kind = "evaluate"
vae = "vae_a"
iw_samples = 4
limit = 200

[stages.map_a]
kind = "latent-map"
vae = "vae_a"
limit = 300
grid = 6

[stages.map_b]
kind = "latent-map"
vae = "vae_b"
limit = 300
grid = 6

[stages.compare]
kind = "compare-maps"
maps = ["map_a", "map_b"]
title = "two 2-d latent spaces"

[stages.interp]
kind = "interpolate"
vae = "vae_a"
pairs = 2
points = 8
steps = 4
classes = "Sandal,Sneaker"

[stages.report]
"""


def test_dataset_experiment_with_comparison_interpolation_and_report(tmp_path):
    import imageio.v3 as iio

    from tests.chromium import render
    from tests.helpers import need_fashion_mnist as _need_fashion_mnist

    _need_fashion_mnist()
    p = tmp_path / "maps.toml"
    p.write_text(MAPS)
    out = tmp_path / "run"
    r = run("run", p, "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    ev = json.loads((out / "eval_a" / "eval.json").read_text())
    assert not list((out / "vae_a").glob("eval_*.json"))  # a stage writes only into its own folder
    assert ev["n"] == 200 and ev["log_px_iw"] >= ev["elbo"] - 1e-3  # IWAE bound above the ELBO
    assert (out / "compare" / "compare.png").is_file() and (out / "compare" / "compare.pdf").is_file()
    flow = iio.imread(out / "compare" / "compare_flow.mp4")
    assert flow.shape[0] == 2  # one frame per epoch of the longer run; the shorter holds its last
    res = json.loads((out / "interp" / "interpolation.json").read_text())
    assert [pair["labels"] for pair in res["pairs"]] == [["Sandal", "Sneaker"]] * 2
    assert all(pair["geodesic_length"] <= pair["line_length"] + 1e-4 for pair in res["pairs"])
    page = render(out / "report.html", tmp_path / "profile")
    assert all(i["ok"] for i in page["images"]) and page["videos"]
    assert all(v["error"] is None and v["ready"] >= 1 for v in page["videos"])
    media = {Path(i["src"]).name for i in page["images"]} | {Path(v["src"]).name for v in page["videos"]}
    assert {"compare.png", "manifold.png", "pair_00.png"} <= media and ({"compare_flow.mp4", "compare_flow.gif"} & media)
