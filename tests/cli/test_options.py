"""Every stage option is written once: the CLI, the experiment TOML and config.toml come from the config dataclass."""

from __future__ import annotations

import dataclasses
import typing

import click
import pytest
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.core.config import dumps_toml, from_dict, load_toml, to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.core.options import options
from latentdyn.analysis.config import AnalyzeConfig, SteerConfig
from latentdyn.dynamics.config import RolloutConfig, TrainConvLSTMConfig, TrainDynamicsConfig
from latentdyn.geometry.config import InterpolateConfig, LatentMapConfig
from latentdyn.pipeline.stages import KINDS
from latentdyn.scenes.config import GenerateConfig, ImportVideoConfig
from latentdyn.vae.config import EncodeConfig, EvaluateConfig, TrainVAEConfig

from tests.helpers import fails_cleanly

COMMANDS = {  # stage config -> the command path that exposes it
    GenerateConfig: ("generate",), TrainVAEConfig: ("train", "vae"), EvaluateConfig: ("evaluate",),
    EncodeConfig: ("encode",), TrainDynamicsConfig: ("train", "dynamics"), RolloutConfig: ("rollout",),
    LatentMapConfig: ("latent-map",), InterpolateConfig: ("interpolate",), AnalyzeConfig: ("analyze",),
    SteerConfig: ("steer",), ImportVideoConfig: ("import-video",), TrainConvLSTMConfig: ("train", "convlstm"),
}


def _command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = cli
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


def test_every_stage_kind_has_a_command_checked_here():
    from latentdyn.pipeline.stages import CompareMapsConfig, ReportConfig, SceneFileConfig, SweepSummaryConfig

    from latentdyn.latents.config import EncodeStatesConfig
    from latentdyn.vae.config import EncodeConfig

    without = {CompareMapsConfig, ReportConfig, SceneFileConfig, SweepSummaryConfig}  # experiment-only kinds (report: `latentdyn report`)
    assert {k.config for k in KINDS.values()} - without - {EncodeStatesConfig} <= set(COMMANDS)
    assert "states" in {o.name for o in options(EncodeConfig)}  # encode-states' command: `latentdyn encode --states`


@pytest.mark.parametrize("cls", list(COMMANDS), ids=lambda c: c.__name__)
def test_every_field_is_a_cli_option_with_the_same_default_and_a_toml_key(cls):
    params = {p.name: p for p in _command(COMMANDS[cls]).params}
    for o in options(cls):
        assert o.help and o.help[-1] in ".)", f"{cls.__name__}.{o.name} needs a help sentence"
        # the TOML accepts the key with its default value, and round-trips through config.toml
        value = to_dict(cls())[o.name]
        assert getattr(from_dict(cls, {o.name: value} if value is not None else {}), o.name) == o.default
        if not o.cli:
            continue
        assert o.name in params, f"{cls.__name__}.{o.name} has no CLI option"
        p = params[o.name]
        default = list(p.default) if isinstance(p.default, tuple) else p.default
        assert default == o.default, (o.name, p.default, o.default)
        assert o.help in (p.help or ""), o.name
        if o.choices:
            assert list(p.type.choices) == list(o.choices)
    again = from_dict(cls, load_toml_text(dumps_toml(to_dict(cls()))))
    assert again == cls()


def load_toml_text(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def test_every_cli_option_has_help_and_commands_are_in_pipeline_order():
    def walk(cmd, path=()):
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, cmd

    for path, cmd in walk(cli):
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name not in ("help",):
                assert p.help, f"latentdyn {' '.join(path)} {p.opts[0]} has no help text"
    order = list(cli.list_commands(click.Context(cli)))
    pipeline = ["scenes", "generate", "datasets", "train", "evaluate", "encode", "rollout", "latent-map", "interpolate",
                "run", "report"]
    assert [c for c in order if c in pipeline] == pipeline
    out = CliRunner().invoke(cli, ["--help"]).output
    assert [out.index(f"  {c} ") for c in pipeline] == sorted(out.index(f"  {c} ") for c in pipeline)


def test_unknown_keys_name_the_closest_valid_one(tmp_path):
    with pytest.raises(LatentdynError, match="unknown key latnet_dim; did you mean latent_dim"):
        from_dict(TrainVAEConfig, {"latnet_dim": 3})
    r = CliRunner().invoke(cli, ["train", "vae", "--out", str(tmp_path / "r"), "--set", "epoch=3"])
    fails_cleanly(r, "unknown key epoch; did you mean epochs?")
    exp = tmp_path / "e.toml"
    exp.write_text('[stages.scenes]\nkind = "generate"\nsequencs = 3\n')
    r = CliRunner().invoke(cli, ["run", str(exp), "--dry-run"])
    fails_cleanly(r, "stages.scenes.sequencs; did you mean sequences?")
    exp.write_text('[stages.scenes]\nkind = "generat"\n')
    fails_cleanly(CliRunner().invoke(cli, ["run", str(exp), "--dry-run"]), "did you mean generate?")
    assert not (tmp_path / "r").exists()


def test_bounds_and_choices_are_one_line_errors_naming_the_option(tmp_path):
    out = str(tmp_path / "r")
    fails_cleanly(CliRunner().invoke(cli, ["train", "vae", "--out", out, "--epochs", "0"]), "--epochs 0: must be at least 1")
    fails_cleanly(CliRunner().invoke(cli, ["train", "dynamics", "--out", out, "--set", "lr_schedule=\"wavy\""]),
                  "--lr-schedule wavy: use one of constant, cosine, cosine-step, plateau")
    with pytest.raises(LatentdynError, match=r"stages\.vae\.beta = -1\.0: must be at least 0"):
        from_dict(TrainVAEConfig, {"beta": -1.0}, "stages.vae")


def test_a_new_option_is_one_edit():
    """What docs/architecture.md promises: one field, and the CLI, TOML and config.toml have it."""
    from latentdyn.cli.derive import config_options
    from latentdyn.core.options import option

    @dataclasses.dataclass
    class Toy:
        speed: float = option(0.5, "How fast.", minimum=0.0)
        name: str = option("ball", "What it is.", choices=("ball", "digit"))

    @click.command()
    @config_options(Toy)
    def toy(config_file, sets, **params):
        from latentdyn.cli.derive import build_config

        click.echo(dumps_toml(to_dict(build_config(Toy, params, click.get_current_context(), config_file, sets))))

    r = CliRunner().invoke(toy, ["--speed", "2", "--name", "digit"])
    assert r.exit_code == 0 and 'speed = 2.0' in r.output and 'name = "digit"' in r.output
    assert "How fast." in CliRunner().invoke(toy, ["--help"]).output
    assert from_dict(Toy, {"speed": 1.0}).speed == 1.0
    assert typing.get_type_hints(Toy)["speed"] is float


def test_rerun_from_a_run_folder_reproduces_its_config(tmp_path):
    import latentdyn

    data = tmp_path / "ball.h5"
    latentdyn.generate(scene="light_ball", length=6, sequences=12, split="train=0.5,val=0.5", out=data)
    args = ["train", "vae", "--data", str(data), "--arch", "mlp", "--latent-dim", "2", "--epochs", "1", "--device", "cpu",
            "--no-progress"]
    assert CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a")]).exit_code == 0
    r = CliRunner().invoke(cli, ["train", "vae", "--config", str(tmp_path / "a"), "--out", str(tmp_path / "b"), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a" / "config.toml").read_text() == (tmp_path / "b" / "config.toml").read_text()
    a = [__import__("json").loads(x)["train_loss"] for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    b = [__import__("json").loads(x)["train_loss"] for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert a == b  # same config, same seed: the same numbers
    r = CliRunner().invoke(cli, ["train", "vae", "--config", str(tmp_path / "a" / "config.toml"), "--out",
                                 str(tmp_path / "c"), "--set", "epochs=2", "--beta", "2", "--no-progress"])
    assert r.exit_code == 0, r.output
    c = load_toml(tmp_path / "c" / "config.toml")
    assert c["epochs"] == 2 and c["beta"] == 2.0 and c["arch"] == "mlp" and c["latent_dim"] == 2
    # a scene file carries the settings that made it
    r = CliRunner().invoke(cli, ["generate", "--config", str(data), "--out", str(tmp_path / "again.h5"), "-n", "12"])
    assert r.exit_code == 0, r.output
    fails_cleanly(CliRunner().invoke(cli, ["train", "vae", "--config", str(tmp_path), "--out", str(tmp_path / "d")]),
                  "has no config.toml")
