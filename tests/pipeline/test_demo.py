"""The README's main command, `latentdyn demo`, run as users run it (about 2 minutes on 2 idle cores).

What the issue asks of it: the predicted ball keeps bouncing correctly for at least 20 frames.
Checked here with the failure-counting rollout metrics (the ball judged against its true state:
present when at least half the truth's light lies in its true disc, a lost ball costing the
penalty in the position error). Measured on this machine (seed 1, the demo's; 3 seeds in
docs/results.md), with the profile of issue #28: every ball present in 100% of sequences up to predicted
frame 8, 97% at frame 10 and 84% at frame 20; position error 2.48 px at frame 20 (lost balls counted); the
ceiling (true latents decoded) 100% present. The thresholds leave room for other CPUs' floats.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from latentdyn.cli.main import cli


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the whole demo: minutes on 2 free cores, far more on a loaded machine
def test_demo_keeps_the_ball_bouncing_for_20_predicted_frames(tmp_path):
    out = tmp_path / "demo"
    r = CliRunner().invoke(cli, ["demo", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output[-2000:]
    assert r.output.strip().splitlines()[-1] == f"report: {(out / 'report.html').resolve()}"
    assert r.output.startswith("the demo will take about ")  # before it starts, from its first steps timed
    m = json.loads((out / "rollout" / "metrics.json").read_text())
    model, copy = m["open_loop"]["model"], m["open_loop"]["copy_last"]
    pos = model["per_step"]["position_error_px"]
    assert len(pos) >= 20 and m["config"]["sequences"] == 100
    present = model["per_step"]["all_present"]
    assert max(pos[:20]) < 3.5, pos  # a tenth of the ball's 1.5 px/frame x 20 frames = 30 px travel, lost balls counted
    assert min(present[:8]) >= 0.97 and min(present[:10]) >= 0.93 and min(present[:20]) >= 0.7, present
    assert m["open_loop"]["reconstruction"]["summary"]["all_present"] == 1.0  # the ceiling keeps every ball
    assert model["summary"]["direction_error_deg"] < 35
    assert model["summary"]["position_error_px"] < copy["summary"]["position_error_px"] / 4
    assert m["one_step_se_per_frame"]["model"] < m["one_step_se_per_frame"]["linear_pixels"] / 3
    for f in ("rollout/rollout.mp4", "rollout/rollout.gif", "vae/flow.mp4", "latent_map/latent_map.png", "report.html"):
        assert (out / f).is_file(), f
    # a second call finds everything finished
    r = CliRunner().invoke(cli, ["demo", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0 and r.output.count("unchanged, skipped") == 7
    assert "will take about" not in r.output  # nothing left to run: no estimate
