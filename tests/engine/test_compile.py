"""torch.compile with a clean fallback: no compiler, or a compiler failure at the first call, trains eagerly."""

import warnings

import pytest
import torch

from latentdyn.engine import distributed as D


def test_no_compiler_on_the_path_trains_eagerly(monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert D.compiler_missing("cpu") == "no C++ compiler on the PATH"
    model = torch.nn.Linear(3, 2)
    with pytest.warns(UserWarning, match="compile: no C\\+\\+ compiler on the PATH; training without torch.compile"):
        net = D.wrap(model, D.Dist(), torch.device("cpu"), compile=True)
    assert net is model


def test_a_compiler_failure_at_the_first_call_falls_back_once():
    from torch._dynamo.exc import BackendCompilerFailed

    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise BackendCompilerFailed(lambda *a: None, RuntimeError("no cc"), None)

    model = torch.nn.Linear(3, 2)
    net = D._CompiledOrEager(broken, model)
    x = torch.ones(4, 3)
    with pytest.warns(UserWarning, match="compile failed \\(BackendCompilerFailed\\)"):
        y = net(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(net(x), y) and torch.equal(y, model(x))
    assert len(calls) == 1  # the compiled path is not retried
    assert net.weight is model.weight  # attributes read through to the model


def test_errors_of_the_model_itself_are_not_swallowed():
    def wrong(*args, **kwargs):
        raise ValueError("shapes")

    net = D._CompiledOrEager(wrong, torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="shapes"):
        net(torch.ones(1, 3))
