"""How many intra-op threads latentdyn's PyTorch work uses: the cores it may use, less the cores
other processes keep busy, and no more than the work gains from.

Why: PyTorch's OpenMP pool starts one thread per core, and every op waits at a barrier for all of
them. Two jobs with two threads each on two cores then take turns at every barrier; measured here
(docs/results.md, "Studies in minutes on a CPU"), a GRU training step ran 17x slower beside a second
such job, and two training jobs started together each kept 0.20-0.21 of their speed alone, against
0.58-0.73 under this policy (benchmarks/bench_threads.py). On an idle machine the second thread
gains 10-35% (more on larger work), and on very small work it loses.

The rules, in order:

1. **Fixed**: the ``threads`` option of a stage (> 0), else ``LATENTDYN_THREADS``, else a user's
   ``OMP_NUM_THREADS``: that many threads, never changed.
2. **Cores it may use**: the CPUs of the process's affinity mask, capped by a cgroup CPU quota
   (``/sys/fs/cgroup/cpu.max``), divided among the torchrun processes of this machine
   (``LOCAL_WORLD_SIZE``) and among data workers (``workers``): they split the cores, never multiply
   them.
3. **Free cores**: of those, the cores that other processes kept busy over the last interval are
   not taken (``/proc/stat`` less this process's own time from ``/proc/self/stat``; Linux only,
   elsewhere every core counts as free). Re-read every ``INTERVAL`` seconds from the step loop: a
   job started beside another one drops to the free cores within seconds, and takes them back when
   the other ends.
4. **The work's size**: where more than one thread is free, about ``TRIAL`` seconds of steps are
   timed at the free count and then at one thread (median step times; the loop's validation and
   checkpoints do not count: ``pause``), and the faster count is kept (one thread unless the others
   gain at least ``GAIN``), timed again after ``RETRY`` seconds (``RETRY_CLOSE`` when the two were
   within a factor ``CLOSE``: a one-second trial is noisy), so a job never runs slower for having
   more threads.

torchrun sets ``OMP_NUM_THREADS=1`` in each process unless it is set already: that counts as fixed
(rule 1), so its processes run one thread each unless ``LATENTDYN_THREADS`` says otherwise. The
policy sets torch's process-wide thread count: a notebook that calls a stage keeps that count after.
"""

from __future__ import annotations

import math
import os
import time

INTERVAL = 2.0  # seconds between readings of the free cores
TRIAL = 1.0  # seconds of steps timed at each thread count when choosing by the work's size
GAIN = 1.05  # more threads are kept only when they make the steps at least this much faster
RETRY = 300.0  # seconds after which a choice for the same free cores is timed again (the work may change)
CLOSE = 1.25  # a trial whose counts differ by less than this factor is timed again after RETRY_CLOSE seconds:
RETRY_CLOSE = 20.0  # measured, a one-second trial can read two threads as no faster (45 against 48 ms a step) where
# they are 1.4 times faster (31 against 44 ms), and a stage shorter than RETRY kept that choice (docs/results.md)
ENV = "LATENTDYN_THREADS"


def fixed_threads(option: int = 0) -> int | None:
    """The thread count a user fixed (the stage's ``threads`` option, ``LATENTDYN_THREADS`` or
    ``OMP_NUM_THREADS``), or None when latentdyn chooses."""
    if option and option > 0:
        return int(option)
    for name in (ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def usable_cores(workers: int = 0) -> int:
    """Cores this process may use: its affinity mask, capped by the cgroup quota, split among the
    torchrun processes of this machine and the ``workers`` data processes (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota:
        cores = min(cores, max(1, math.floor(quota)))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // max(1, local) // (1 + max(0, workers)))


def _cgroup_quota() -> float | None:
    """CPUs allowed by a cgroup v2 quota (``cpu.max``: 'max 100000' or '200000 100000'), or None."""
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


class CpuMeter:
    """Cores kept busy by other processes since the last reading (Linux ``/proc``; None elsewhere)."""

    def __init__(self):
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.host = os.cpu_count() or 1
        self.last = self._read()

    @staticmethod
    def _read() -> tuple[float, int, int] | None:
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
            with open("/proc/self/stat") as f:
                s = f.read().rsplit(")", 1)[1].split()  # fields after the command name; utime, stime are 14, 15
        except (OSError, ValueError, IndexError):
            return None
        busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
        return time.monotonic(), busy, int(s[11]) + int(s[12])

    def others(self) -> float | None:
        """Cores (of the whole machine, scaled to this process's share) busy with other processes
        since the previous call; None without ``/proc`` or before any time has passed."""
        now = self._read()
        if now is None or self.last is None or now[0] - self.last[0] < 0.05:
            return None
        (t0, b0, o0), (t1, b1, o1) = self.last, now
        self.last = now
        jiffies = (t1 - t0) * self.tick  # per CPU
        return max(0.0, ((b1 - b0) - (o1 - o0)) / jiffies)


class ThreadPolicy:
    """Sets ``torch.set_num_threads`` by the rules of the module docstring; ``step()`` once per
    training step (cheap: a clock reading, and a ``/proc`` reading every ``INTERVAL`` seconds)."""

    def __init__(self, option: int = 0, workers: int = 0, adapt: bool = True):
        import torch

        self.torch = torch
        self.fixed = fixed_threads(option)
        self.cores = usable_cores(workers)
        self.adapt = adapt and self.fixed is None and self.cores > 1
        self.meter = CpuMeter() if self.adapt else None
        self.best: dict[int, tuple[int, float, float]] = {}  # free cores -> (the count chosen, when, retry after s)
        self.trial: list = []  # [(threads, [step durations])] while timing
        self.prev: float | None = None  # when the previous step ended (None after a pause)
        self.free = self.cores
        self.next = time.monotonic() + INTERVAL
        self.history: list[int] = []
        self._set(self.fixed or (self._free_now() if self.adapt else self.cores))

    def _set(self, n: int) -> None:
        n = max(1, int(n))
        if self.torch.get_num_threads() != n:
            self.torch.set_num_threads(n)
        if not self.history or self.history[-1] != n:
            self.history.append(n)

    @property
    def threads(self) -> int:
        return self.torch.get_num_threads()

    def _free_now(self) -> int:
        """Free cores from a short reading (0.1 s), for the first steps."""
        time.sleep(0.1)
        return self._free(self.meter.others())

    def _free(self, others: float | None) -> int:
        if others is None:
            return self.free
        share = others * min(1.0, self.cores / self.meter.host)  # other processes' load on this process's share
        return max(1, min(self.cores, math.floor(self.cores - share + 0.25)))

    def step(self) -> None:
        """Call once per step: re-reads the free cores now and then, and times the thread counts."""
        if not self.adapt:
            return
        now = time.monotonic()
        took, self.prev = (None if self.prev is None else now - self.prev), now
        if self.trial:
            n, times = self.trial[-1]
            if took is not None:
                times.append(took)
            if sum(times) >= TRIAL and len(times) >= 3:
                self._next_trial(now)
            return
        if now < self.next:
            return
        self.next = now + INTERVAL
        self.free = self._free(self.meter.others())
        chosen = self.best.get(self.free)
        if self.free <= 1:
            self._set(1)
        elif chosen is not None and now - chosen[1] < chosen[2]:
            self._set(chosen[0])
        else:  # time the free count, then one thread, on this work
            self._set(self.free)
            self.trial = [(self.free, [])]

    def pause(self) -> None:
        """Call where the steps stop for other work (validation, checkpoints): the next step's time
        does not count (a trial under way goes on with the steps' own times)."""
        self.prev = None

    def _next_trial(self, now: float) -> None:
        if len(self.trial) == 1:
            self._set(1)
            self.trial.append((1, []))
            return
        (nf, tf), (_, t1) = self.trial
        one, more = sorted(t1)[len(t1) // 2], sorted(tf)[len(tf) // 2]  # median step times
        choice = nf if one >= GAIN * more else 1
        close = max(one, more) < CLOSE * min(one, more)
        self.best[nf] = (choice, now, RETRY_CLOSE if close else RETRY)
        self.trial = []
        self._set(choice)
        self.meter.others()  # the trial's own load does not count as another's at the next reading
        self.next = now + INTERVAL


def configure(option: int = 0, workers: int = 0) -> int:
    """One-off choice for work outside a step loop (encode, rollout, evaluate): the fixed count, or
    the free cores now. Returns the count set."""
    return ThreadPolicy(option, workers).threads
