"""Stage caching that can be trusted: keys follow the code's version and the scene definition; old results are moved aside."""

from __future__ import annotations

import json

from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.pipeline import plan as P

EXP = """
[experiment]
name = "tiny"
[stages.scenes]
kind = "generate"
scene = "SCENE"
sequences = 8
video_sequences = 0
[stages.report]
kind = "report"
"""


def _exp(tmp_path):
    scene = tmp_path / "ball.toml"
    scene.write_text('[scene]\nname = "ball"\nlength = 5\n[render]\nwidth = 12\nheight = 12\n')
    exp = tmp_path / "e.toml"
    exp.write_text(EXP.replace("SCENE", str(scene)))
    return exp, scene


def test_keys_change_with_the_latentdyn_version_and_the_scene_definition(tmp_path, monkeypatch):
    exp, scene = _exp(tmp_path)
    e1 = P.load_experiment(exp)
    P.compute_keys(e1)
    monkeypatch.setattr(P, "__version__", "99.0.0")
    e2 = P.load_experiment(exp)
    P.compute_keys(e2)
    assert e1.stage("scenes").key != e2.stage("scenes").key
    monkeypatch.undo()
    scene.write_text(scene.read_text().replace("length = 5", "length = 6"))
    e3 = P.load_experiment(exp)
    P.compute_keys(e3)
    assert e3.stage("scenes").key != e1.stage("scenes").key


def test_a_changed_stage_reruns_beside_its_old_result_which_is_kept(tmp_path, monkeypatch):
    exp, _ = _exp(tmp_path)
    out = tmp_path / "run"
    assert CliRunner().invoke(cli, ["run", str(exp), "--out", str(out), "--no-progress"]).exit_code == 0
    old = json.loads((out / "scenes" / "stage.json").read_text())
    monkeypatch.setattr(P, "__version__", "99.0.0")  # an upgrade
    r = CliRunner().invoke(cli, ["run", str(exp), "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "the old results are kept in" in r.output
    kept = out / "_superseded" / f"scenes-{old['key'][:10]}"
    assert (kept / "scenes.h5").is_file() and json.loads((kept / "stage.json").read_text())["key"] == old["key"]
    assert json.loads((out / "scenes" / "stage.json").read_text())["key"] != old["key"]
    r = CliRunner().invoke(cli, ["run", str(exp), "--out", str(out), "--no-progress"])
    assert "unchanged, skipped" in r.output  # and the new result is reused by the same version


def test_a_scene_file_from_elsewhere_is_an_experiments_scenes(tmp_path):
    """kind = "file": the study runs on data latentdyn did not generate; the key follows the file's bytes."""
    import latentdyn

    data = tmp_path / "theirs.h5"
    latentdyn.generate(scene="light_ball", sequences=12, length=6, out=data)
    exp = tmp_path / "e.toml"
    exp.write_text(f'[stages.scenes]\nkind = "file"\npath = "{data}"\n[stages.vae]\nkind = "train-vae"\ndata = "scenes"\n'
                   'arch = "mlp"\nlatent_dim = 2\nepochs = 1\ndevice = "cpu"\n')
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", str(exp), "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert (out / "scenes" / "scenes.h5").resolve() == data.resolve()
    assert P.load_toml(out / "vae" / "config.toml")["data"] == str(out / "scenes" / "scenes.h5")
    e1 = P.load_experiment(exp)
    P.compute_keys(e1)
    latentdyn.generate(scene="light_ball", sequences=12, length=6, seed=5, out=tmp_path / "other.h5")
    (tmp_path / "other.h5").replace(data)  # other bytes at the same path
    e2 = P.load_experiment(exp)
    P.compute_keys(e2)
    assert e1.stage("scenes").key != e2.stage("scenes").key and e1.stage("vae").key != e2.stage("vae").key
    exp.write_text('[stages.scenes]\nkind = "file"\npath = "nowhere.h5"\n')
    r = CliRunner().invoke(cli, ["run", str(exp), "--out", str(tmp_path / "r2")])
    assert r.exit_code == 2 and "no such scene file" in r.output and not (tmp_path / "r2").exists()
