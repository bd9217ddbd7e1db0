"""The thread policy (latentdyn.engine.threads): fixed counts win, cores are split, busy cores are
left alone, and the step timing keeps the faster count."""

import subprocess
import sys
import time

import pytest
import torch

from latentdyn.engine import threads as T


@pytest.fixture
def clean_env(monkeypatch):
    for name in (T.ENV, "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(before)


def test_fixed_counts_in_order(clean_env):
    assert T.fixed_threads(0) is None
    clean_env.setenv("OMP_NUM_THREADS", "3")
    assert T.fixed_threads(0) == 3
    clean_env.setenv(T.ENV, "2")
    assert T.fixed_threads(0) == 2  # latentdyn's own variable before OpenMP's
    assert T.fixed_threads(5) == 5  # the stage's option before both
    clean_env.setenv(T.ENV, "zero")
    assert T.fixed_threads(0) == 3  # an unreadable value is ignored


def test_a_fixed_count_is_set_and_never_adapted(clean_env):
    p = T.ThreadPolicy(1)
    assert torch.get_num_threads() == 1 and not p.adapt
    for _ in range(5):
        p.step()
    assert p.history == [1]


def test_torchrun_processes_and_workers_split_the_cores(clean_env):
    alone = T.usable_cores()
    assert alone >= 1
    clean_env.setenv("LOCAL_WORLD_SIZE", str(alone))
    assert T.usable_cores() == 1
    clean_env.setenv("LOCAL_WORLD_SIZE", str(4 * alone))
    assert T.usable_cores() == 1  # never below one
    clean_env.delenv("LOCAL_WORLD_SIZE")
    assert T.usable_cores(workers=alone) == max(1, alone // (1 + alone))


def test_free_cores_from_the_others_load(clean_env):
    p = T.ThreadPolicy(0)
    if not p.adapt:
        pytest.skip("one usable core: nothing to choose")
    p.meter.host = p.cores
    assert p._free(0.0) == p.cores
    assert p._free(float(p.cores)) == 1  # every core busy: one thread, never zero
    assert p._free(1.0) == p.cores - 1
    assert p._free(0.9) == p.cores - 1  # a core mostly busy is not taken
    assert p._free(0.1) == p.cores  # a little background load is
    assert p._free(None) == p.free  # no reading: the last answer


def test_the_trial_keeps_one_thread_unless_more_are_faster(clean_env):
    p = T.ThreadPolicy(0)
    if not p.adapt:
        pytest.skip("one usable core: nothing to choose")
    p.free, now = p.cores, time.monotonic()
    p.trial = [(p.cores, [0.01] * 4 + [5.0]), (1, [0.02] * 5)]  # twice as fast at all cores; one slow outlier
    p._next_trial(now)
    assert p.best[p.cores][0] == p.cores and torch.get_num_threads() == p.cores
    assert p.best[p.cores][2] == T.RETRY  # a clear choice is kept for RETRY seconds
    p.trial = [(p.cores, [0.0098] * 5), (1, [0.0100] * 5)]  # within GAIN of one thread: one
    p._next_trial(now)
    assert p.best[p.cores][0] == 1 and torch.get_num_threads() == 1
    assert p.best[p.cores][2] == T.RETRY_CLOSE  # a close one is timed again soon
    p.free, p.next = p.cores, 0.0
    p.meter.others = lambda: 0.0  # nothing else running
    p.best[p.cores] = (1, time.monotonic() - T.RETRY_CLOSE - 1, T.RETRY_CLOSE)
    p.step()
    assert p.trial == [(p.cores, [])] and torch.get_num_threads() == p.cores  # the close choice is being timed again


def test_a_pause_skips_the_gap_and_keeps_the_trial(clean_env):
    p = T.ThreadPolicy(0)
    if not p.adapt:
        pytest.skip("one usable core: nothing to choose")
    p.trial = [(1, [0.01, 0.01])]
    p.prev = time.monotonic() - 10.0
    p.pause()
    assert p.trial == [(1, [0.01, 0.01])] and p.prev is None  # the trial goes on
    p.step()  # the first step after the pause is not timed: the gap held validation, not a step
    assert p.trial == [(1, [0.01, 0.01])]
    p.step()
    assert len(p.trial[0][1]) == 3 and p.trial[0][1][2] < 1.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_cores_busy_with_another_process_are_left_to_it(clean_env):
    cores = T.usable_cores()
    if cores < 2 or cores > 8:
        pytest.skip("needs 2 to 8 usable cores")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores - 1)]
    try:
        time.sleep(0.5)
        p = T.ThreadPolicy(0)
        p.meter.others()
        time.sleep(1.0)
        others = p.meter.others()
        assert others is not None and others >= 0.6 * (cores - 1)
        assert p._free(others) <= max(1, cores - (cores - 1))
    finally:
        for b in busy:
            b.kill()


def test_the_option_stays_out_of_the_cache_key_and_may_change_on_resume():
    from latentdyn.core.options import key_settings, resumable
    from latentdyn.dynamics.config import TrainDynamicsConfig
    from latentdyn.vae.config import TrainVAEConfig

    for cls in (TrainVAEConfig, TrainDynamicsConfig):
        assert "threads" not in key_settings(cls(threads=2), every=True)
        assert "threads" in resumable(cls)
