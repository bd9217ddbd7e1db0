"""Every writer makes the folders of its output; a file in a folder's place is a one-line error."""

from __future__ import annotations

import json

import h5py
import pytest
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path, check_writable_dir, make_folder
from latentdyn.viz.video import count_frames
from tests.helpers import fails_cleanly


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def test_atomic_path_makes_the_folders_and_check_makes_none(tmp_path):
    out = tmp_path / "a" / "b" / "c.txt"
    assert check_writable_dir(out) == out and not (tmp_path / "a").exists()  # a check alone creates nothing
    with atomic_path(out) as tmp:
        tmp.write_text("x")
    assert out.read_text() == "x" and [p.name for p in out.parent.iterdir()] == ["c.txt"]


def test_a_file_in_a_folders_place_is_a_one_line_error(tmp_path):
    (tmp_path / "f").write_text("a file")
    for path in (tmp_path / "f" / "x.h5", tmp_path / "f" / "deeper" / "x.h5"):
        with pytest.raises(LatentdynError, match="is a file, not a folder") as e:
            with atomic_path(path) as tmp:
                tmp.write_text("never")
        assert "\n" not in str(e.value)
    with pytest.raises(LatentdynError, match="is a file, not a folder"):
        make_folder(tmp_path / "f" / "sub")
    with pytest.raises(LatentdynError, match="it is a folder"):
        check_writable_dir(tmp_path)
    fails_cleanly(CliRunner().invoke(cli, ["generate", "light_ball", "-n", "2", "--out", str(tmp_path / "f" / "b.h5")]),
                  "is a file, not a folder")


def test_the_readme_generate_example_in_a_new_folder(tmp_path, monkeypatch):
    import latentdyn as ld

    monkeypatch.chdir(tmp_path)
    res = ld.generate(scene="light_ball", sequences=4, length=6, out="data/ball.h5")  # README: out="data/ball.h5"
    assert (tmp_path / "data" / "ball.h5").is_file() and res.out.name == "ball.h5"


def test_every_command_writes_into_new_nested_folders(tmp_path, monkeypatch):
    """generate (+ --video), video, import-video, train, evaluate's JSON, encode and sample, each into new folders."""
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke
    _ok(run(cli, ["generate", "light_ball", "-n", "8", "--length", "6", "--split", "train=0.5,val=0.25,test=0.25",
                  "--out", "data/new/tb.h5", "--video", "films/new/tb.gif"]))
    assert (tmp_path / "data/new/tb.h5").is_file() and count_frames(tmp_path / "films/new/tb.gif") == 6
    _ok(run(cli, ["video", "data/new/tb.h5", "--out", "v/w/x.gif", "--sequences", "0"]))
    assert count_frames(tmp_path / "v/w/x.gif") == 6
    _ok(run(cli, ["import-video", "films/new/tb.gif", "--out", "clips/a/b.h5", "--size", "8", "--clip-length", "2",
                  "--split", ""]))
    with h5py.File(tmp_path / "clips/a/b.h5") as f:
        assert f["frames"].shape[1:] == (2, 8, 8)
    _ok(run(cli, ["train", "vae", "--data", "data/new/tb.h5", "--out", "runs/a/vae", "--arch", "mlp", "--latent-dim", "2",
                  "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--no-progress"]))
    _ok(run(cli, ["evaluate", "runs/a/vae", "--split", "test", "--iw-samples", "2", "--device", "cpu",
                  "--out", "reports/x/eval.json"]))
    assert json.loads((tmp_path / "reports/x/eval.json").read_text())["split"] == "test"
    _ok(run(cli, ["encode", "--vae", "runs/a/vae", "--data", "data/new/tb.h5", "--device", "cpu", "--out", "lat/a/l.h5"]))
    with h5py.File(tmp_path / "lat/a/l.h5") as f:
        assert f["mu"].shape[:2] == (8, 6)
    _ok(run(cli, ["sample", "runs/a/vae", "-n", "4", "--device", "cpu", "--out", "grids/a/g.png"]))
    assert (tmp_path / "grids/a/g.png").stat().st_size > 0
