"""Progress without a terminal: per-epoch lines with elapsed and remaining time, lines inside long
epochs, and per-stage lines of `latentdyn run` (pytest's captured output is not a terminal)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.engine import progress
from latentdyn.engine.progress import Progress, bars_shown, duration
from latentdyn.vae.train import train_vae
from tests.helpers import vae_config

TIME = r"\d+(?:\.\d)? s|\d+ min \d\d s|\d+ h \d\d min"


@pytest.fixture(scope="module")
def ball(tmp_path_factory):
    import latentdyn

    p = tmp_path_factory.mktemp("progress") / "ball.h5"
    latentdyn.generate(scene="light_ball", length=6, sequences=24, split="train=0.5,val=0.25,test=0.25", out=p)
    return p


def test_duration_and_the_estimate_of_the_time_left():
    assert [duration(s) for s in (0.42, 42.4, 185, 7380)] == ["0.4 s", "42 s", "3 min 05 s", "2 h 03 min"]
    now = [100.0]
    p = Progress(10, done=2, clock=lambda: now[0])  # resumed after 2 of 10 units
    assert p.status(2) == "0.0 s elapsed"  # no estimate before a unit is done
    now[0] += 30  # 3 units in 30 s: 10 s each, 5 to go
    assert p.status(5) == "30 s elapsed, about 50 s left"
    now[0] += 50
    assert p.status(10) == "1 min 20 s elapsed"  # done: nothing left to estimate
    assert bars_shown(True) and not bars_shown(False)


def test_training_without_a_terminal_prints_a_line_per_epoch(ball, tmp_path, capsys):
    train_vae(vae_config(ball, epochs=2), tmp_path / "r", progress=None, verbose=True)
    out, err = capsys.readouterr()
    lines = [x for x in out.splitlines() if x.startswith("epoch ")]
    assert len(lines) == 2, out
    assert re.fullmatch(rf"epoch 1/2: .* \(\d+\.\d s; ({TIME}) elapsed, about ({TIME}) left\)", lines[0]), lines[0]
    assert re.fullmatch(rf"epoch 2/2: .* \(\d+\.\d s; ({TIME}) elapsed\)", lines[1]), lines[1]
    assert "\r" not in err and "batch/s" not in err  # no bar drawn into a log


def test_a_long_epoch_prints_lines_inside_it(ball, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "HEARTBEAT", 0.0)  # every batch counts as "long"
    train_vae(vae_config(ball, epochs=1, batch_size=16), tmp_path / "r", progress=None, verbose=True)
    out = capsys.readouterr().out
    inside = [x for x in out.splitlines() if re.fullmatch(rf"epoch 1/1: \d+/\d+ batches, ({TIME}) elapsed.*", x)]
    assert len(inside) >= 2 and inside[0].startswith("epoch 1/1: 1/"), out
    assert "about" in inside[0] and " left" in inside[0]
    train_vae(vae_config(ball, epochs=1, batch_size=16), tmp_path / "q", progress=None, verbose=False)
    assert capsys.readouterr().out == ""  # verbose=False (the API's default) stays silent


def test_run_prints_a_line_per_stage_with_elapsed_and_an_estimate_from_earlier_runs(ball, tmp_path):
    exp = tmp_path / "two.toml"
    exp.write_text(f"""[experiment]
name = "two"
device = "cpu"

[stages.scenes]
kind = "file"
path = "{ball}"

[stages.vae]
kind = "train-vae"
data = "scenes"
arch = "mlp"
latent_dim = 2
epochs = 2
batch_size = 64
""")
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", str(exp), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "[1/2] scenes (file): running\n" in r.output, r.output
    assert re.search(rf"\[1/2\] scenes \(file\): done in .*; run ({TIME}) so far, 1 stage left\n", r.output)
    assert re.search(rf"\[2/2\] vae \(train-vae\): done in .*; run ({TIME}) so far\n", r.output)
    assert re.search(r"epoch 2/2: .*elapsed\)", r.output)  # the stage's own epoch lines
    r = CliRunner().invoke(cli, ["run", str(exp), "--out", str(out), "--set", "vae.latent_dim=3"])
    assert r.exit_code == 0, r.output
    assert re.search(rf"1 of 2 stages to run, about ({TIME}) by earlier runs", r.output), r.output
    assert re.search(rf"\[2/2\] vae \(train-vae\): running \(took ({TIME}) last time\)", r.output), r.output
