"""The command line through click's CliRunner: success paths and one-line errors."""

import h5py
import numpy as np
import pytest

from tests.helpers import fails_cleanly as _fails_cleanly
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.viz.video import count_frames


@pytest.fixture
def runner():
    return CliRunner()




def test_generate_writes_file_and_video(runner, tmp_path):
    out, vid = tmp_path / "b.h5", tmp_path / "b.mp4"
    r = runner.invoke(cli, ["generate", "light_ball", "--out", str(out), "-n", "6", "--length", "12",
                            "--seed", "5", "--set", "render.radius=2.0", "--video", str(vid), "--split", "train=0.5,test=0.5"])
    assert r.exit_code == 0, r.output
    with h5py.File(out) as f:
        assert f["frames"].shape == (6, 12, 28, 28) and len(f["splits/train"]) == 3
        assert '"radius": 2.0' in f.attrs["scene"]
    assert count_frames(vid) == 12


def test_video_and_info_commands(runner, scene_file, tmp_path):
    r = runner.invoke(cli, ["video", str(scene_file), "--out", str(tmp_path / "v.gif"), "--sequences", "0,1"])
    assert r.exit_code == 0, r.output
    assert count_frames(tmp_path / "v.gif") == 20
    r = runner.invoke(cli, ["info", str(scene_file)])
    assert r.exit_code == 0 and "24 sequences x 20 frames of 30x30" in r.output and "split train: 18" in r.output
    r = runner.invoke(cli, ["scenes"])
    assert "three_balls" in r.output and "light_ball" in r.output


@pytest.mark.parametrize(
    "args,needles",
    [
        (["generate", "three_balls", "--set", "render.radiuss=2"], ["render.radiuss", "valid keys"]),
        (["generate", "three_balls", "--set", "physics.radius=7"], ["too large"]),
        (["generate", "nosuchscene"], ["unknown scene", "three_balls"]),
        (["generate", "three_balls", "-n", "-1"], ["at least 1"]),
        (["generate", "three_balls", "--split", "train=0.3"], ["sum to"]),
        (["generate", "three_balls", "--video", "x.avi"], [".mp4 or .gif"]),
    ],
)
def test_generate_bad_input(runner, tmp_path, args, needles):
    out = tmp_path / "o.h5"
    r = runner.invoke(cli, args + ["--out", str(out)])
    _fails_cleanly(r, *needles)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_unwritable_and_missing_paths(runner, tmp_path):
    (tmp_path / "file").write_text("in the way")
    _fails_cleanly(runner.invoke(cli, ["generate", "three_balls", "--out", str(tmp_path / "file" / "o.h5")]), "is a file")
    _fails_cleanly(runner.invoke(cli, ["video", str(tmp_path / "none.h5"), "--out", str(tmp_path / "v.mp4")]), "does not exist")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    _fails_cleanly(runner.invoke(cli, ["info", str(tmp_path / "junk.h5")]), "not a readable HDF5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    _fails_cleanly(runner.invoke(cli, ["video", str(tmp_path / "other.h5"), "--out", str(tmp_path / "v.mp4")]), "not a scene file")
    assert not (tmp_path / "v.mp4").exists()


def test_existing_output_survives_a_failed_run(runner, tmp_path, scene_file):
    out = tmp_path / "keep.h5"
    out.write_bytes(scene_file.read_bytes())
    before = out.read_bytes()
    _fails_cleanly(runner.invoke(cli, ["generate", "three_balls", "--out", str(out), "--set", "physics.n_balls=50"]), "cannot fit")
    assert out.read_bytes() == before


def test_python_dash_m_and_version():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "latentdyn", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "latentdyn, version" in r.stdout
    r = subprocess.run([sys.executable, "-m", "latentdyn", "generate", "three_balls", "--out", "/dev/null/x.h5"],
                       capture_output=True, text=True)  # a missing folder would be made; a file in its place is refused
    assert r.returncode == 2 and r.stderr.startswith("Error:") and "Traceback" not in r.stderr
    assert "is a file, not a folder" in r.stderr


# ---- datasets -------------------------------------------------------------------------------------

def test_datasets_list_show_and_errors(runner, tmp_path, monkeypatch):
    from tests.dataset_files import write_cifar, write_mnist

    monkeypatch.setenv("LATENTDYN_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr("latentdyn.datasets.SYSTEM_DIRS", [])
    write_mnist(tmp_path / "cache" / "mnist", n_train=40, n_test=30)
    write_cifar(tmp_path / "cifar", per_batch=4)
    r = runner.invoke(cli, ["datasets", "list"])
    assert r.exit_code == 0, r.output
    lines = {line.split()[0]: line for line in r.output.splitlines()[1:]}
    assert "40" in lines["mnist"] and "30" in lines["mnist"] and str(tmp_path / "cache" / "mnist") in lines["mnist"]
    assert "missing" in lines["fashion-mnist"] and "missing" in lines["cifar10"]
    r = runner.invoke(cli, ["datasets", "list", "--data-dir", str(tmp_path / "cifar")])
    assert str(tmp_path / "cifar") in r.output.splitlines()[3]  # cifar10 row
    out = tmp_path / "grid.png"
    # the official sizes are required by `show`: small files are refused with the reason
    _fails_cleanly(runner.invoke(cli, ["datasets", "show", "mnist", "--out", str(out)]), "expected (60000")
    assert not out.exists()
    _fails_cleanly(runner.invoke(cli, ["datasets", "show", "fashion-mnist", "--out", str(out)]), "not available offline")
    _fails_cleanly(runner.invoke(cli, ["datasets", "show", "svhn", "--out", str(out)]), "unknown dataset 'svhn'")
    _fails_cleanly(runner.invoke(cli, ["datasets", "show", "mnist", "--out", str(tmp_path / "g.jpg")]), ".png, .pdf or .svg")


def test_datasets_show_real_fashion_mnist(runner, tmp_path):
    from PIL import Image

    from tests.helpers import need_fashion_mnist as _need_fashion_mnist

    _need_fashion_mnist()
    out = tmp_path / "fm.png"
    r = runner.invoke(cli, ["datasets", "show", "fashion-mnist", "--out", str(out), "--per-class", "4"])
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 600


def test_datasets_fetch_offline_fails_cleanly(runner, tmp_path, monkeypatch):
    import dataclasses

    import latentdyn.datasets as ds

    monkeypatch.setenv("LATENTDYN_DATA", str(tmp_path / "cache"))
    monkeypatch.setitem(ds.DATASETS, "mnist", dataclasses.replace(ds.DATASETS["mnist"], urls=[(tmp_path / "nowhere").as_uri() + "/"]))
    _fails_cleanly(runner.invoke(cli, ["datasets", "fetch", "mnist"]), "could not download", "put train-images-idx3-ubyte.gz")
    assert not (tmp_path / "cache" / "mnist").exists()
