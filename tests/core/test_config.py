from dataclasses import dataclass, field

import pytest

from latentdyn.core.config import apply_overrides, dumps_toml, from_dict, parse_value, to_dict
from latentdyn.core.errors import LatentdynError


@dataclass
class Inner:
    a: float = 1.0
    b: list[int] = field(default_factory=list)
    c: str | None = None


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    n: int = 3


def test_parse_value():
    assert parse_value("2.0") == 2.0 and parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2] and parse_value("disk") == "disk" and parse_value('"x y"') == "x y"


def test_overrides_and_round_trip():
    data = apply_overrides({"inner": {"a": 2}}, ["inner.b=[1,2]", "n=5", "inner.c=hello"])
    cfg = from_dict(Outer, data)
    assert cfg.inner.a == 2.0 and isinstance(cfg.inner.a, float) and cfg.inner.b == [1, 2] and cfg.n == 5
    assert from_dict(Outer, to_dict(cfg)) == cfg
    import tomllib

    assert from_dict(Outer, tomllib.loads(dumps_toml(to_dict(cfg)))) == cfg


@pytest.mark.parametrize(
    "data,match",
    [
        ({"inner": {"z": 1}}, "unknown key inner.z; valid keys in \\[inner\\]: a, b, c"),
        ({"n": 1.5}, "whole number"),
        ({"n": True}, "whole number"),
        ({"inner": {"a": "x"}}, "expected a number"),
        ({"inner": 3}, "table"),
    ],
)
def test_bad_config(data, match):
    with pytest.raises(LatentdynError, match=match):
        from_dict(Outer, data)


def test_bad_override_syntax():
    with pytest.raises(LatentdynError, match="KEY=VALUE"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(LatentdynError, match="not a section"):
        apply_overrides({"n": 1}, ["n.x=1"])
