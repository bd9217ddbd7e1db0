"""A wheel installed the normal way (not editable) finds its own scenes and experiments from any folder."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh virtual environment with latentdyn installed from its wheel (its dependencies seen
    through the test environment's site-packages, without running their .pth files: the editable
    latentdyn of the test environment stays invisible)."""
    tmp = tmp_path_factory.mktemp("wheel")
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]  # offline when it can be
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(tmp / "dist"), str(ROOT)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wheel = next((tmp / "dist").glob("latentdyn-*.whl"))
    env_dir = tmp / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       capture_output=True, text=True)
    if r.returncode != 0 and "no such option: --python" in r.stderr:  # pip < 22.3
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", site, str(wheel)],
                           capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return env_dir


def _run(env_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LATENTDYN_SCENES", "LATENTDYN_EXPERIMENTS")}
    return subprocess.run([str(env_dir / "bin" / "latentdyn"), *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


def test_the_wheel_finds_its_scenes_and_experiments_from_an_empty_folder(installed, tmp_path):
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import latentdyn; print(latentdyn.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert str(installed) in where and str(ROOT) not in where  # the installed copy, not the source tree
    r = _run(installed, tmp_path, "scenes")
    assert r.returncode == 0, r.stderr
    assert {"light_ball", "three_balls", "gravity_balls"} <= {line.split()[0] for line in r.stdout.splitlines()}
    r = _run(installed, tmp_path, "generate", "three_balls", "-n", "2", "--out", "x.h5")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x.h5").is_file() and "2 sequences x 100 frames of 30x30" in r.stdout
    r = _run(installed, tmp_path, "run", "bouncing_ball", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "train-vae" in r.stdout and "run" in r.stdout


def test_a_users_own_scenes_folder_comes_first(installed, tmp_path):
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "three_balls.toml").write_text('[scene]\nname = "mine"\ndescription = "my own three balls"\nlength = 5\n'
                                                          '[physics]\nn_balls = 1\n')
    r = _run(installed, tmp_path, "scenes")
    assert "my own three balls" in r.stdout
    r = _run(installed, tmp_path, "generate", "three_balls", "-n", "2", "--out", "y.h5")
    assert r.returncode == 0 and "x 5 frames" in r.stdout, r.stdout + r.stderr
