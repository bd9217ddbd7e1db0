"""The report reads: no empty panel, every figure names its split, counts carry their denominator,
and figures are shown at a size whose text can be read (issue #27, item 5). Built from small
hand-written run folders: no training."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from latentdyn.pipeline.report import sections as S
from latentdyn.pipeline.report.html import CSS_DPI, Page, print_width
from latentdyn.pipeline.report.page import _summary_text

COLUMN_PX = 1086  # the report's content column at a 1280 px window: main 1180 - 2 x 24 padding - 2 x 23 section
MIN_SCALE = 0.9  # a figure is shown at no less than this fraction of its print size (10 pt text >= 12 px)


def _vae_folder(d: Path, warmup: int, beta: float = 1.0, log_beta: bool = False) -> Path:
    d.mkdir(parents=True)
    (d / "config.toml").write_text(f'arch = "mlp"\nbeta = {beta}\nwarmup_epochs = {warmup}\n')
    rows = []
    for e in range(1, 6):
        r = {"epoch": e, "train_elbo": -900.0 + 10 * e, "train_kl": 3.0, "val_elbo": -910.0 + 10 * e, "val_kl": 3.1,
             "val_rec": -900.0, "seconds": 0.1}
        if log_beta:
            r["beta"] = beta
        rows.append(json.dumps(r))
    (d / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    return d


def test_beta_per_epoch_follows_the_trainers_warm_up():
    rows = [{"epoch": e} for e in range(1, 6)]
    assert S.beta_per_epoch(rows, {"beta": 4.0, "warmup_epochs": 0}) is None  # constant: no curve
    assert S.beta_per_epoch(rows, {"beta": 4.0}) is None
    assert S.beta_per_epoch(rows, {"beta": 4.0, "warmup_epochs": 2}) == [2.0, 4.0, 4.0, 4.0, 4.0]
    assert S.beta_per_epoch(rows, {"beta": 1.0, "warmup_epochs": 4}) == [0.25, 0.5, 0.75, 1.0, 1.0]
    logged = [{"epoch": e, "beta": b} for e, b in enumerate([0.1, 0.2, 0.3], 1)]
    assert S.beta_per_epoch(logged, {"beta": 9.0, "warmup_epochs": 0}) == [0.1, 0.2, 0.3]  # logged values win
    assert S.beta_per_epoch([{"epoch": 1, "beta": 2.0}, {"epoch": 2, "beta": 2.0}], {}) is None


@pytest.mark.parametrize("warmup", [0, 3])
def test_vae_section_has_a_beta_panel_only_with_a_warm_up(tmp_path, monkeypatch, warmup):
    seen = {}
    real = S._curves

    def curves(rows, panels, path):
        seen["panels"] = [t for t, _ in panels]
        seen["beta"] = [r.get("beta") for r in rows]
        return real(rows, panels, path)

    monkeypatch.setattr(S, "_curves", curves)
    d = _vae_folder(tmp_path / "vae", warmup, beta=2.0)
    html = S._section_vae(Page(tmp_path), d, "vae")
    has_beta = any("β" in t or "beta" in t.lower() for t in seen["panels"])
    assert has_beta == bool(warmup), seen["panels"]
    if warmup:
        assert seen["beta"] == [2 / 3, 4 / 3, 2.0, 2.0, 2.0] and "β warms up" in html
    else:
        assert "β = 2 throughout" in html
    assert "validation split" in html and "training split" in html  # curves and flow name their splits


def test_vae_section_with_beta_logged_and_constant_has_no_beta_panel(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(S, "_curves", lambda rows, panels, path: seen.setdefault("panels", panels) and None)
    S._section_vae(Page(tmp_path), _vae_folder(tmp_path / "vae", 0, 1.0, log_beta=True), "vae")
    assert len(seen["panels"]) == 2


def _rollout_result(n_seq: int = 100, H: int = 25) -> dict:
    per = {"se_per_frame": [1.0] * H, "ssim": [0.5] * H, "all_present": [0.9] * H, "position_error_px": [2.0] * H,
           "count_exact": [0.8] * H}
    summ = {"se_per_frame": 1.0, "ae_per_frame": 2.0, "psnr": 20.0, "ssim": 0.5, "all_present": 0.93,
            "position_error_px": 2.0, "direction_error_deg": 10.0, "vanished_frames": 179, "split_frames": 3,
            "frames": n_seq * H, "count_exact": 0.875, "count_mean": 2.9}
    ol = {k: {"summary": summ, "per_step": per} for k in ("model", "copy_last", "linear_pixels", "reconstruction")}
    return {"split": "test", "config": {"context": 10, "horizon": H}, "sequences": list(range(n_seq)),
            "one_step_se_per_frame": {"model": 1.0, "copy_last": 2.0}, "open_loop": ol,
            "objects": {"protocol": "states", "objects": "ball", "presence": "p", "penalty_px": 9.9, "count": "rule",
                        "shape_from": "estimated from the true frames", "truth_reading": {"all_present": 1.0, "count_exact": 0.998}}}


def test_rollout_section_counts_have_denominators_and_figures_their_split(tmp_path):
    from latentdyn.dynamics.rollout import plot_errors

    d = tmp_path / "rollout"
    d.mkdir()
    result = _rollout_result()
    (d / "metrics.json").write_text(json.dumps(result))
    plot_errors(result, d / "error_vs_horizon.png")
    html = S._section_rollout(Page(tmp_path), d, "rollout")
    assert "179\u00a0of\u00a02,500" in html and "3\u00a0of\u00a02,500" in html  # frames losing a ball, extra blobs
    assert "100% of frames with every ball" in html
    # plausibility beside accuracy: the count's column, and its reading of the true frames with its rule
    assert "fraction of frames showing the true number of balls</th>" in html and "0.875" in html
    assert "99.8% of them showing the true number of balls (counted without the states: rule)" in html
    assert "The balls' shape: estimated from the true frames." in html
    assert "100 sequences of the test split" in html
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html)
    assert captions and all("test split" in c for c in captions), captions
    assert "One-step-ahead error (test split)" in html


def test_error_figure_reads_at_the_page_width(tmp_path):
    """The error-against-horizon figure: its print size fits the report's column, and the page shows it at that size."""
    from PIL import Image

    from latentdyn.dynamics.rollout import plot_errors

    path = plot_errors(_rollout_result(), tmp_path / "error_vs_horizon.png")
    with Image.open(path) as im:
        dpi = im.info["dpi"][0]
        inches = im.width / dpi
    assert inches * CSS_DPI <= COLUMN_PX, f"{inches:.1f} in is wider than the report's column"
    w = print_width(path)
    assert w == pytest.approx(inches * CSS_DPI, abs=1)
    html = Page(tmp_path).image(path, "x")
    assert f'width="{w}"' in html


def test_curves_fit_the_column(tmp_path):
    from PIL import Image

    rows = [{"epoch": e, "a": float(e), "b": 1.0 / e, "c": 2.0, "d": 3.0} for e in range(1, 4)]
    path = S._curves(rows, [(k, [(k, k)]) for k in "abcd"], tmp_path / "c.png")
    with Image.open(path) as im:
        assert im.width / im.info["dpi"][0] * CSS_DPI <= COLUMN_PX


def test_overview_names_the_split_of_a_stage_that_has_one():
    rollout = {"settings": {"split": "test"}, "summary": {"position_error_px": 2.5}}
    assert _summary_text(rollout) == "test split: position error px 2.5"
    generate = {"settings": {"split": "train=0.8,val=0.1,test=0.1"}, "summary": {"sequences": 80}}
    assert _summary_text(generate) == "sequences 80"
    vae = {"settings": {}, "summary": {"train_elbo": -1.0, "val_elbo": -2.0}}
    assert _summary_text(vae) == "train elbo -1; val elbo -2"


def test_latent_map_captions_name_the_configured_split(tmp_path):
    from PIL import Image

    d = tmp_path / "latent_map"
    d.mkdir()
    (d / "config.toml").write_text('vae = "v"\nsplit = "val"\n')
    for stem in ("latent_map", "pairs"):
        Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(d / f"{stem}.png", dpi=(100, 100))
    html = S._section_latent_map(Page(tmp_path), d, "latent_map")
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html)
    assert len(captions) == 2 and all("val split" in c for c in captions), captions


def test_demo_summary_line_gives_lost_frames_with_their_denominator(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from latentdyn.cli.main import cli
    from latentdyn.pipeline import runner

    def fake_run(name, out, *a, **k):
        (Path(out) / "rollout").mkdir(parents=True)
        (Path(out) / "rollout" / "metrics.json").write_text(json.dumps(_rollout_result()))
        (Path(out) / "report.html").write_text("<html></html>")
        return {"run_dir": Path(out), "report": Path(out) / "report.html"}

    monkeypatch.setattr(runner, "run_experiment", fake_run)
    r = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo"), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "179 of 2500 predicted frames lost the ball" in r.output and "(test split)" in r.output
