"""Progress that shows everywhere: bars on a terminal, log lines anywhere else.

On a terminal (stderr is a tty) the loops draw tqdm bars. In a log file, a notebook cell's
captured output or CI there are no bars (``--progress`` forces them, ``--no-progress`` turns them
off), so the training loop prints lines instead: one per epoch, with the time elapsed and an
estimate of the time left, and inside an epoch that runs longer than ``HEARTBEAT`` seconds one
line every ``HEARTBEAT`` seconds (batches done, elapsed, left). ``latentdyn run`` prints a line as
each stage starts and ends, with the run's elapsed time and, where every stage still to run has a
recorded duration from an earlier run, the time left. Lines go to stdout through ``tqdm.write``
(above any bar) and are flushed at once, so a log file shows them as they happen.

The estimate of the time left is the mean time per unit done so far in this session times the
units left: epochs in the loop (a resumed run counts from where it resumed; early stopping can
end sooner than estimated), batches within an epoch.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

HEARTBEAT = 60.0  # seconds between the lines inside a long epoch when there is no bar


def bars_shown(progress: bool | None, stream=None) -> bool:
    """Whether bars are drawn: ``progress`` when given, else whether ``stream`` (stderr) is a terminal."""
    if progress is not None:
        return bool(progress)
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def duration(seconds: float) -> str:
    """'0.4 s', '42 s', '3 min 05 s', '2 h 03 min'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def say(line: str) -> None:
    """One line on stdout, above any bar, flushed (a log file shows it at once)."""
    from tqdm.auto import tqdm

    tqdm.write(line)
    sys.stdout.flush()


class Progress:
    """The time elapsed since this object was made and an estimate of the time left, for ``total``
    units of work of which ``done`` were done before it was made."""

    def __init__(self, total: int, done: int = 0, clock: Callable[[], float] = time.perf_counter):
        self.total, self.first, self.clock = int(total), int(done), clock
        self.t0 = clock()

    def elapsed(self) -> float:
        return self.clock() - self.t0

    def left(self, done: int) -> float | None:
        """Seconds left after ``done`` units: the mean time per unit so far times the units left (None before any)."""
        n = done - self.first
        return self.elapsed() / n * max(0, self.total - done) if n > 0 else None

    def status(self, done: int) -> str:
        """'12 s elapsed, about 36 s left' (no estimate before the first unit; none once all are done)."""
        left = self.left(done)
        return f"{duration(self.elapsed())} elapsed" + (f", about {duration(left)} left" if left and done < self.total else "")


class Heartbeat:
    """Inside an epoch without a bar: a line every ``every`` seconds ('epoch 2/10: 120/400 batches, ...')."""

    def __init__(self, label: str, total: int, enabled: bool, every: float | None = None):
        self.label, self.enabled = label, enabled
        self.every = HEARTBEAT if every is None else every
        self.progress = Progress(total)
        self.next = self.every

    def __call__(self, done: int) -> None:
        """Called after ``done`` batches; prints when the interval has passed."""
        if not self.enabled or self.progress.elapsed() < self.next:
            return
        self.next = self.progress.elapsed() + self.every
        say(f"{self.label}: {done}/{self.progress.total} batches, {self.progress.status(done)}")
