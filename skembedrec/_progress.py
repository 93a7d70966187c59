"""Progress reports of long calls: the set-up, epoch and finishing lines of a training run
(stdout, ``verbose >= 1``) and the progress line of a call answered in blocks (stderr).

Nothing is printed at ``verbose=0``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TextIO

import keras


class StepReport:
    """``verbose >= 1``: one line per set-up or finishing step of a training run, with the
    seconds since the previous step (``"Built the network (12,345 weights) - 0.4 s"``),
    to stdout like :class:`EpochReport`'s lines; ``verbose=0`` prints nothing."""

    def __init__(self, verbose: int) -> None:
        self.verbose = verbose
        self.started = time.perf_counter()

    def done(self, step: str | None) -> None:
        """Print ``step`` with its seconds (None: restart the clock silently)."""
        now = time.perf_counter()
        if self.verbose and step is not None:
            print(f"{step} - {now - self.started:.1f} s", flush=True)
        self.started = now


class EpochReport(keras.callbacks.Callback):
    """``verbose >= 1``: one line per epoch in the units of ``history_`` (stars²), with the
    epoch's time and training ratings per second. Keras' own progress bar (``verbose=2``)
    shows the loss in standardised units, the network's training target.

    With ``steps`` (the run's :class:`StepReport`), the first training step, which traces
    and compiles the step function, gets a line of its own before the first epoch's, and
    the clock of ``steps`` restarts after each epoch, so that the finishing step is timed
    from the end of the last.
    """

    def __init__(self, *, n_ratings: int, variance: float, last_epoch: int,
                 after_progress_bar: bool = False, steps: StepReport | None = None):
        super().__init__()
        self.n_ratings = n_ratings
        self.variance = variance
        self.last_epoch = last_epoch
        self.after_progress_bar = after_progress_bar
        # Keras' bar ends its line only on a terminal; elsewhere this line would run on.
        self.newline = "\n" if after_progress_bar and not sys.stdout.isatty() else ""
        self.started = 0.0
        self.steps = steps
        self.first_step_pending = steps is not None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        # The second step begins once the first, traced and compiled, has been dispatched.
        # A begin hook: an end hook would make Keras wait for every step's logs.
        if self.first_step_pending and batch > 0 and not self.after_progress_bar:
            self._first_step_done()

    def _first_step_done(self):
        self.first_step_pending = False
        if self.steps is not None:
            self.steps.done("First training step (trace and compile)")

    def on_epoch_end(self, epoch, logs=None):
        newline = self.newline
        if self.first_step_pending:  # one step per epoch, or behind Keras' bar (verbose=2)
            print(newline, end="")
            newline = ""
            self._first_step_done()
        seconds = time.perf_counter() - self.started
        values = " - ".join(f"{key} {float(value) * self.variance:.4f}"
                            for key, value in (logs or {}).items())
        print(f"{newline}Epoch {epoch + 1}/{self.last_epoch} - {seconds:.1f} s - "
              f"{self.n_ratings / max(seconds, 1e-9):,.0f} ratings/s - {values} (stars²)",
              flush=True)
        if self.steps is not None:
            self.steps.done(None)


class Progress:
    """A progress line on ``stream`` (stderr), rewritten with ``\\r`` after each block:
    ``"recommend: 40,960/162,541 users (25 %), 12 s"``, a newline after the last.

    Examples
    --------
    >>> import io
    >>> stream = io.StringIO()
    >>> list(Progress.over(5, 2, "recommend", "users", verbose=1, stream=stream))
    [0, 2, 4]
    >>> stream.getvalue().split("\\r")[-1]
    'recommend: 5/5 users (100 %), 0 s\\n'
    """

    def __init__(self, label: str, total: int, unit: str, stream: TextIO) -> None:
        self.label, self.total, self.unit, self.stream = label, total, unit, stream
        self.started = time.perf_counter()

    def show(self, done: int) -> None:
        seconds = time.perf_counter() - self.started
        end = "\n" if done >= self.total else ""
        self.stream.write(f"\r{self.label}: {done:,}/{self.total:,} {self.unit} "
                          f"({100 * done // self.total} %), {seconds:.0f} s{end}")
        self.stream.flush()

    @classmethod
    def over(cls, total: int, block: int, label: str, unit: str, verbose: int,
             stream: TextIO | None = None) -> Iterator[int]:
        """The start of each block of ``block`` out of ``total``; the line is shown after
        each block is done, only with ``verbose`` and more than one block."""
        progress = None
        if verbose and total > block:
            progress = cls(label, total, unit, sys.stderr if stream is None else stream)
        for start in range(0, total, block):
            yield start
            if progress is not None:
                progress.show(min(start + block, total))
