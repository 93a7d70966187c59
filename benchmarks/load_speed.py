"""``save`` / ``load`` of a large model against ``joblib.dump`` / ``joblib.load``, with a
profile of ``load`` by phase (project issue 26: each within 3x of joblib).

Usage (from the repository root)::

    python benchmarks/load_speed.py                        # 3M ratings, 25M's catalogue
    python benchmarks/load_speed.py --n-ratings 25000000   # the 25M model (fit: minutes)
    python benchmarks/load_speed.py --cache /tmp/big.joblib --repeat 7

Builds ratings of MovieLens 25M's catalogue (162,541 users x 59,047 items) with
``make_ratings(..., random_state=0, compact=True)`` and fits
``EmbeddingRatingRegressor(epochs=1, random_state=0)``: one epoch, since the file size (the
tables, ``seen_`` of every rated pair, Adam's moments) is what matters here, not the
quality. With ``--cache`` the fitted model is kept as a joblib file and read back on the
next run, so that code changes can be measured against the same model without fitting
again.

Then alternates ``save``, ``joblib.dump``, ``load`` and ``joblib.load`` ``--repeat`` times
(alternated: on a shared machine one timing can be off by 2x, and the targets are ratios;
every other run times the joblib step of each pair first), prints the medians, ratios,
peak memory and file sizes as a markdown table, then a profile of ``load``: the median
time of each phase over three loads (timers around the functions ``load`` calls, each
phase without the phases it calls) and cProfile's top entries of one more load.
``PYTHONPATH=<a copy of the package>`` measures other code against the same model.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from scale import _reset_peak_rss, _status_gb  # noqa: E402

N_USERS, N_ITEMS = 162_541, 59_047  # MovieLens 25M's catalogue

# The phases of a load, by the module attribute each is reached through ("Class.method"
# for a method): the timers wrap these for one profiled load, and each phase gets its own
# time, not that of the phases it calls (so the phases add up to the whole). A name the
# code does not have (the code before or after a change) is left out.
PHASES = (
    ("skembedrec._persistence", "read_zip", "read the outer zip (copies)"),
    ("skembedrec._archive", "ZipReader.read",
     "read zip members (their SHA-256 included when hashed while read)"),
    ("zipfile", "crc32", "CRC-32 in zipfile"),
    ("zlib", "crc32", "CRC-32 of stored members"),
    ("hashlib", "sha256", "SHA-256 digests"),
    ("skembedrec._persistence", "read_json", "parse the manifest"),
    ("skembedrec._persistence", "read_npz", "arrays.npz to arrays"),
    ("skembedrec._persistence", "_rebuild_encoder", "rebuild the id encoder"),
    ("skembedrec._persistence", "_check_params", "check the parameters"),
    ("skembedrec._persistence", "decode", "decode values (seen_ ...)"),
    ("skembedrec._persistence", "_check_regressor", "check the regressor settings"),
    ("skembedrec._persistence", "_check_fitted", "check the fitted attributes"),
    ("skembedrec._persistence", "load_model_bytes", "Keras: temporary file, the rest"),
    ("skembedrec._keras_file", "read_zip", "Keras: its zip's members"),
    ("skembedrec._keras_file", "read_json", "Keras: its JSON"),
    ("skembedrec._keras_file", "check_config", "Keras: config checks"),
    ("skembedrec._keras_file", "check_hdf5", "Keras: HDF5 checks"),
    ("keras.saving", "load_model", "Keras: keras.saving.load_model"),
    ("skembedrec._keras_file", "_check_loaded", "Keras: finite weights, every row rated"),
    ("skembedrec._keras", "restore_fitted_regressor", "rebuild the inner regressor"),
)


def build(n_ratings: int, cache: str | None) -> EmbeddingRatingRegressor:
    """The fitted model: read from ``cache`` when it exists, else fitted (and cached)."""
    if cache and os.path.exists(cache):
        print(f"model read from {cache}", flush=True)
        return joblib.load(cache)
    start = time.perf_counter()
    X, y = make_ratings(n_users=N_USERS, n_items=N_ITEMS, n_ratings=n_ratings,
                        random_state=0, compact=True)
    print(f"make_ratings: {time.perf_counter() - start:.1f} s", flush=True)
    start = time.perf_counter()
    est = EmbeddingRatingRegressor(epochs=1, random_state=0).fit(X, y)
    print(f"fit (1 epoch): {time.perf_counter() - start:.1f} s", flush=True)
    if cache:
        joblib.dump(est, cache)
    return est


def alternate(est: EmbeddingRatingRegressor, folder: str, repeat: int
              ) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, int]]:
    """Seconds and peak memory above the start (GB) of each step, ``repeat`` times
    alternated, and the two files' sizes."""
    safe, pickled = os.path.join(folder, "model.skembedrec"), os.path.join(folder, "model.joblib")
    steps: dict[str, Callable[[], Any]] = {
        "save": lambda: est.save(safe),
        "joblib.dump": lambda: joblib.dump(est, pickled),
        "load": lambda: EmbeddingRatingRegressor.load(safe),
        "joblib.load": lambda: joblib.load(pickled),
    }
    seconds: dict[str, list[float]] = {step: [] for step in steps}
    peaks: dict[str, list[float]] = {step: [] for step in steps}
    for run in range(repeat):
        # Every other run times joblib first: a step right after another one's writes (a
        # file of ~200 MB) can find the page cache busy writing them back, which slows
        # whatever writes next (load writes the Keras part to a temporary file).
        order = list(steps) if run % 2 == 0 else ["joblib.dump", "save", "joblib.load",
                                                  "load"]
        for step in order:
            call = steps[step]
            before = _status_gb("VmRSS") or 0.0
            _reset_peak_rss()
            start = time.perf_counter()
            result = call()
            seconds[step].append(time.perf_counter() - start)
            peaks[step].append((_status_gb("VmHWM") or 0.0) - before)
            del result
        print(f"run {run + 1}/{repeat}: " + ", ".join(
            f"{step} {values[-1]:.2f} s" for step, values in seconds.items()), flush=True)
    sizes = {"save": os.path.getsize(safe), "joblib.dump": os.path.getsize(pickled)}
    return seconds, peaks, sizes


def table(seconds: dict[str, list[float]], peaks: dict[str, list[float]],
          sizes: dict[str, int]) -> str:
    """Medians, ratios to joblib, peak memory and file sizes as a markdown table."""
    medians = {step: float(np.median(values)) for step, values in seconds.items()}
    lines = ["| step | median s | runs (s) | vs joblib | peak above start GB (median) "
             "| file MB |", "|---|---|---|---|---|---|"]
    for step, values in seconds.items():
        other = {"save": "joblib.dump", "load": "joblib.load"}.get(step)
        ratio = f"{medians[step] / medians[other]:.2f}x" if other else ""
        size = f"{sizes[step] / 1e6:.0f}" if step in sizes else ""
        runs = ", ".join(f"{value:.2f}" for value in values)
        lines.append(f"| {step} | {medians[step]:.2f} | {runs} | {ratio} | "
                     f"{float(np.median(peaks[step])):.2f} | {size} |")
    return "\n".join(lines)


class _PhaseTimer:
    """Wall time spent in each wrapped function, less the time of the wrapped functions it
    calls (their own phases); a phase re-entered (decode is recursive) is timed once."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[list] = []  # [label, start, seconds in wrapped callees]

    def wrap(self, label: str, function: Callable) -> Callable:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if any(frame[0] == label for frame in self._stack):
                return function(*args, **kwargs)
            self._stack.append([label, time.perf_counter(), 0.0])
            try:
                return function(*args, **kwargs)
            finally:
                _, start, inner = self._stack.pop()
                elapsed = time.perf_counter() - start
                self.seconds[label] = self.seconds.get(label, 0.0) + elapsed - inner
                if self._stack:
                    self._stack[-1][2] += elapsed

        return timed


@contextlib.contextmanager
def phase_timers() -> Iterator[_PhaseTimer]:
    """Wrap the functions of :data:`PHASES` that exist for the duration of the block."""
    import importlib

    timer = _PhaseTimer()
    originals = []
    for module_name, attribute, label in PHASES:
        owner: Any = importlib.import_module(module_name)
        *classes, name = attribute.split(".")
        for class_name in classes:
            owner = getattr(owner, class_name, None)
        original = getattr(owner, name, None) if owner is not None else None
        if original is None:
            continue
        originals.append((owner, name, original))
        setattr(owner, name, timer.wrap(label, original))
    try:
        yield timer
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


def profile_load(path: str, top: int, runs: int = 3) -> str:
    """Phase timers of ``runs`` loads (the median of each phase, and of the totals) and
    cProfile's top entries of one more."""
    timings, totals = [], []
    for _ in range(runs):
        with phase_timers() as timer:
            start = time.perf_counter()
            EmbeddingRatingRegressor.load(path)
            totals.append(time.perf_counter() - start)
        timings.append(timer.seconds)
    labels = list(dict.fromkeys(label for seconds in timings for label in seconds))
    medians = {label: float(np.median([seconds.get(label, 0.0) for seconds in timings]))
               for label in labels}
    total = float(np.median(totals))
    lines = [f"| phase of load (own time, median of {runs}) | s | share |", "|---|---|---|"]
    for label, value in medians.items():
        lines.append(f"| {label} | {value:.3f} | {value / total:.0%} |")
    rest = float(np.median([t - sum(s.values()) for t, s in zip(totals, timings, strict=True)]))
    lines.append(f"| the rest | {rest:.3f} | {rest / total:.0%} |")
    lines.append(f"| total | {total:.3f} | 100% |")
    profiler = cProfile.Profile()
    profiler.enable()
    EmbeddingRatingRegressor.load(path)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(top)
    return "\n".join(lines) + "\n\ncProfile of one more load (cumulative):\n" + stream.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-ratings", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache", default=None,
                        help="a joblib file to keep the fitted model in between runs")
    parser.add_argument("--dir", default=None, help="where to write the model files")
    parser.add_argument("--top", type=int, default=25, help="cProfile entries shown")
    args = parser.parse_args(argv)
    est = build(args.n_ratings, args.cache)
    print(f"model: {est.n_users_:,} users x {est.n_items_:,} items, seen_ {est.seen_.nnz:,} "
          "pairs", flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        seconds, peaks, sizes = alternate(est, folder, args.repeat)
        loaded = EmbeddingRatingRegressor.load(os.path.join(folder, "model.skembedrec"))
        pairs = pd.DataFrame({"user_id": est.encoder_.user_ids[:1000],
                              "item_id": est.encoder_.item_ids[:1000]})
        same = np.array_equal(loaded.predict(pairs), est.predict(pairs))
        profile = profile_load(os.path.join(folder, "model.skembedrec"), args.top)
    print()
    print(table(seconds, peaks, sizes))
    print(f"\nloaded model predicts as saved: {same}; load average {os.getloadavg()}")
    print("command: python benchmarks/load_speed.py " + " ".join(
        argv if argv is not None else sys.argv[1:]))
    print()
    print(profile)


if __name__ == "__main__":
    main()
