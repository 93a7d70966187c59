"""Fit, predict, recommend and partial_fit cost at 1M, 10M and 25M synthetic ratings.

Two modes, each size in a fresh subprocess so that its peak RSS (``ru_maxrss``) is its own:

``--defaults`` (issue #13): ``EmbeddingRatingRegressor(random_state=0)`` as it comes, on
``make_ratings`` data shaped like MovieLens: 1M ratings over ML-1M's 6,040 users x 3,706
items, 10M over ML-10M's 69,878 x 10,677, 25M over ML-25M's 162,541 x 59,047 (other sizes
interpolate these log-log, with ML-100K's 943 x 1,682 at 100k). The data are int32 ids and
float32 ratings (``make_ratings(compact=True)``), trained on ``n`` ratings, tested on 5 %
more of the same generator. Per size, in one process:

* fit throughput per epoch: ratings / wall seconds of every epoch after the first (the first
  also traces the training step; with several ensemble members, each member's epochs are
  counted), and ratings per CPU second of the same epochs (robust to other processes
  competing for the cores); the whole ``fit`` time (encoding, scaling and building
  included); the epochs run (``n_iter_``) and every resolved setting the fit exposes as a
  fitted attribute named after its parameter (``batch_size_``, ``learning_rate_``, ...);
* RSS after the data are generated, the peak RSS during ``fit`` and of the whole process;
* test RMSE, next to the standard deviation of the test ratings (the RMSE of the mean);
* ``predict`` throughput on ``min(10M, 10 n)`` known (user, item) pairs, in the steady
  state: one warm-up call on 1,000 pairs first (it traces the serving function), then the
  timed call;
* ``recommend`` for 10,000 users (all if fewer) with the default ``n``: time, RSS growth
  and peak RSS growth over the call;
* ``partial_fit`` of 10,000 new ratings (new pairs of the same generator): time.

At every size, Surprise's ``SVD()`` (defaults, ``random_state=0``) is fitted in its own
process on the same split: fit time (trainset build included) and test RMSE, side by side
(``--no-svd`` skips it: 13-15 minutes at 25M). So is "the machine" (issue 25): biased matrix
factorisation by SGD in numba on 2 threads (``benchmarks/mf_reference.py``, the ``bench``
extra; skipped with a note without numba), and Spark MLlib ALS where pyspark and Java are
installed. The side-by-side table gives each contender's fit, seconds per epoch, ratings per
second per epoch, test RMSE and peak RSS, and the ratios of the estimator to them; with
10M among the sizes, ``--plot PATH`` draws test RMSE against fit time there.
A shape table compares the user and item degree distributions of ``make_ratings`` at each
size (and at ML-100K's shape) with ML-100K's own (``/work/shared/data/ml-100k/u.data``, or
``$SKEMBEDREC_ML100K``): quantiles, Gini coefficients and the generation time. ``--shape``
prints only that table (all sizes in this process).

The old mode (no ``--defaults``) keeps the scale settings documented in
``docs/distributed.rst``: matrix factorisation with biases (no MLP tower, no implicit term),
32 factors, batches of 65,536 with a learning rate of 0.02, XLA (``jit_compile=True``), at
100k, 1M and 10M ratings over 10,000 items and ~7 users per 1,000 ratings.

Usage::

    python benchmarks/scale.py --defaults                  # 1M, 10M, 25M; markdown on stdout
    python benchmarks/scale.py --defaults --sizes 1000000 --params '{"epochs": 1}' --json o.json
    python benchmarks/scale.py --shape                     # degree distributions only
    python benchmarks/scale.py                             # old mode, scale settings
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SETTINGS = dict(n_factors=32, hidden_units=(), implicit=False, batch_size=65_536,
                learning_rate=0.02, epochs=3, jit_compile=True, random_state=None)
USERS_PER_RATING = 70_000 / 10_000_000  # ML-10M: ~70k users for 10M ratings
N_ITEMS = 10_000
TEST_FRACTION = 0.05

DEFAULT_SIZES = [1_000_000, 2_000_000, 10_000_000, 25_000_000]
# (ratings, users, items) of the MovieLens releases whose shapes the sizes follow.
ML_SHAPES = ((100_000, 943, 1_682), (1_000_000, 6_040, 3_706), (10_000_000, 69_878, 10_677),
             (25_000_000, 162_541, 59_047))
PREDICT_PAIRS = 10_000_000
RECOMMEND_USERS = 10_000
NEW_RATINGS = 10_000
ML100K = Path(os.environ.get("SKEMBEDREC_ML100K",
                             Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"))
QUANTILES = (10, 50, 90, 99)


def _peak_rss_gb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _status_gb(field: str) -> float | None:
    """``VmRSS`` or ``VmHWM`` (peak since the last reset) of this process from /proc."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return None


def _reset_peak_rss() -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so that a
    # later VmHWM is the peak of what ran in between.
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


# -- shapes and degree distributions ---------------------------------------------------------


def shape_for(n_ratings: int) -> tuple[int, int]:
    """Users and items for ``n_ratings``: ML's shapes, log-log interpolated between them.

    Beyond the smallest and largest shapes the nearest segment is extended; at most a fifth
    of all (user, item) pairs are rated.

    Examples
    --------
    >>> shape_for(10_000_000), shape_for(316_228)
    ((69878, 10677), (2387, 2497))
    """
    logs = np.log([shape for shape in ML_SHAPES])
    at = int(np.clip(np.searchsorted(logs[:, 0], np.log(n_ratings)) - 1, 0, len(logs) - 2))
    low, high = logs[at], logs[at + 1]
    t = (np.log(n_ratings) - low[0]) / (high[0] - low[0])
    users, items = np.exp(low[1:] + t * (high[1:] - low[1:]))
    stretch = max(1.0, np.sqrt(5 * n_ratings / (users * items)))
    return round(users * stretch), round(items * stretch)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 when all equal, -> 1 when one holds all.

    Examples
    --------
    >>> gini(np.array([1, 1, 1, 1])), gini(np.array([0, 0, 0, 4]))
    (0.0, 0.75)
    """
    values = np.sort(np.asarray(values, dtype=float))
    n = values.size
    return float(2 * np.sum(np.arange(1, n + 1) * values) / (n * values.sum()) - (n + 1) / n)


def degree_stats(degrees: np.ndarray) -> dict:
    """min, 10/50/90/99 % quantiles, max, mean and Gini of ratings per user (or item)."""
    quantiles = np.percentile(degrees, QUANTILES)
    return {"min": int(degrees.min()),
            **{f"p{q}": float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
            "max": int(degrees.max()), "mean": float(degrees.mean()), "gini": gini(degrees)}


def _shape_row(name: str, users: np.ndarray, items: np.ndarray, n_users: int,
               n_items: int) -> dict:
    # Ids absent from the ratings count as degree 0 (ML-100K's ids are 1..n, all present).
    return {"data": name, "n_users": n_users, "n_items": n_items, "n_ratings": int(users.size),
            "users": degree_stats(np.bincount(users, minlength=n_users)[-n_users:]),
            "items": degree_stats(np.bincount(items, minlength=n_items)[-n_items:])}


def ml100k_shape_row(path: Path = ML100K) -> dict | None:
    """The shape row of ML-100K's ``u.data`` (read in place, never copied), or None."""
    if not (path / "u.data").exists():
        return None
    pairs = np.loadtxt(path / "u.data", dtype=np.int64, usecols=(0, 1))
    return _shape_row("ML-100K", pairs[:, 0], pairs[:, 1], 943, 1_682)


def make_ratings_shape_row(n_ratings: int, n_users: int, n_items: int) -> dict:
    from skembedrec.datasets import make_ratings

    start = time.perf_counter()
    X, _ = make_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings, n_factors=16,
                        random_state=0, compact=True)
    seconds = time.perf_counter() - start
    return {**_shape_row("make_ratings", X["user_id"].to_numpy(), X["item_id"].to_numpy(),
                         n_users, n_items), "seconds": seconds}


# -- one size in this process ----------------------------------------------------------------


def measure(n_ratings: int) -> dict:
    """Old mode: generate, fit (``SETTINGS``) and predict ``n_ratings`` ratings in this process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from skembedrec import EmbeddingRatingRegressor
    from skembedrec.datasets import make_ratings

    n_test = int(n_ratings * TEST_FRACTION)
    n_users = max(int(n_ratings * USERS_PER_RATING), 700)
    start = time.perf_counter()
    X, y = make_ratings(n_users=n_users, n_items=N_ITEMS, n_ratings=n_ratings + n_test,
                        n_factors=16, noise=0.5, random_state=0)
    X_test, y_test = X.iloc[n_ratings:], y.iloc[n_ratings:].to_numpy()
    X, y = X.iloc[:n_ratings], y.iloc[:n_ratings]
    data_s, data_rss = time.perf_counter() - start, _peak_rss_gb()

    epochs = []
    est = EmbeddingRatingRegressor(**SETTINGS, callbacks=[_epoch_clock(epochs)])
    start = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    est.predict(X)
    predict_s = time.perf_counter() - start
    rmse = float(np.sqrt(np.mean((est.predict(X_test) - y_test) ** 2)))
    return {
        "n_ratings": n_ratings, "n_users": n_users, "n_items": N_ITEMS,
        "data_s": data_s, "fit_s": fit_s, **_epoch_figures(epochs, n_ratings),
        "predict_ratings_per_s": n_ratings / predict_s,
        "peak_rss_gb": _peak_rss_gb(), "data_rss_gb": data_rss,
        "test_rmse": rmse, "rating_std": float(y_test.std()),
        "loss": est.history_["loss"],
    }


def _epoch_clock(epochs: list):
    """A Keras callback appending (wall, CPU) seconds of each epoch to ``epochs``."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            epochs.append((time.perf_counter() - self.wall, time.process_time() - self.cpu))

    # Passed through the public callbacks parameter: the fit copies the callback, the copies
    # append to the same list.
    return EpochClock()


def _epoch_figures(epochs: list, n_ratings: int) -> dict:
    steady = epochs[1:] or epochs
    wall = sum(w for w, _ in steady) / len(steady)
    cpu = sum(c for _, c in steady) / len(steady)
    return {"epoch_wall_s": [w for w, _ in epochs], "epoch_cpu_s": [c for _, c in epochs],
            "fit_ratings_per_s": n_ratings / wall, "fit_ratings_per_cpu_s": n_ratings / cpu}


def _split(n_ratings: int):
    """Train (n), test (5 %) and new (10,000) ratings of one ``make_ratings`` call."""
    from skembedrec.datasets import make_ratings

    n_test = max(int(n_ratings * TEST_FRACTION), 1)
    n_users, n_items = shape_for(n_ratings)
    X, y = make_ratings(n_users=n_users, n_items=n_items, n_factors=16, noise=0.5,
                        n_ratings=n_ratings + n_test + NEW_RATINGS, random_state=0, compact=True)
    cuts = (slice(0, n_ratings), slice(n_ratings, n_ratings + n_test),
            slice(n_ratings + n_test, None))
    return (n_users, n_items, X, y), [(X.iloc[cut], y.iloc[cut]) for cut in cuts]


def _resolved(est) -> dict:
    """Fitted attributes named after a parameter (``batch_size_``...), where the fit sets them."""
    names = [f"{name}_" for name in est.get_params(deep=False)] + ["n_iter_", "best_epoch_"]
    values = {name: getattr(est, name, None) for name in names}
    return {name: value for name, value in values.items()
            if isinstance(value, (bool, int, float, str, tuple, np.number))}


def measure_defaults(n_ratings: int, params: dict | None = None) -> dict:
    """``--defaults`` mode: every figure of one size, in this process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from skembedrec import EmbeddingRatingRegressor

    start = time.perf_counter()
    (n_users, n_items, X_all, _), [(X, y), (X_test, y_test), (X_new, y_new)] = _split(n_ratings)
    data_s = time.perf_counter() - start
    shape = {**_shape_row("make_ratings", X_all["user_id"].to_numpy(),
                          X_all["item_id"].to_numpy(), n_users, n_items), "seconds": data_s}
    del X_all
    data_rss = _status_gb("VmRSS")

    epochs = []
    est = EmbeddingRatingRegressor(random_state=0, callbacks=[_epoch_clock(epochs)],
                                   **(params or {}))
    _reset_peak_rss()
    start = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - start
    fit_peak = _status_gb("VmHWM")
    # Before partial_fit adds to them.
    fitted = {"resolved": _resolved(est), **_epoch_figures(epochs, n_ratings),
              "n_epochs": len(est.history_["loss"]), "loss": list(est.history_["loss"])}
    rmse = float(np.sqrt(np.mean((est.predict(X_test) - y_test.to_numpy()) ** 2)))

    rng = np.random.default_rng(1)
    n_pairs = min(PREDICT_PAIRS, 10 * n_ratings)
    pairs = X.iloc[rng.integers(0, n_ratings, n_pairs)].reset_index(drop=True)
    pairs["item_id"] = X["item_id"].to_numpy()[rng.integers(0, n_ratings, n_pairs)]
    est.predict(pairs.iloc[:1_000])
    start = time.perf_counter()
    est.predict(pairs)
    predict_s = time.perf_counter() - start
    del pairs

    users = np.unique(X["user_id"].to_numpy())[:RECOMMEND_USERS]
    rss_before = _status_gb("VmRSS")
    _reset_peak_rss()
    start = time.perf_counter()
    top = est.recommend(users)
    recommend_s = time.perf_counter() - start
    recommend_rss = (_status_gb("VmRSS") or 0) - (rss_before or 0)
    recommend_peak = (_status_gb("VmHWM") or 0) - (rss_before or 0)
    del top

    start = time.perf_counter()
    est.partial_fit(X_new, y_new)
    partial_fit_s = time.perf_counter() - start
    return {
        "mode": "defaults", "n_ratings": n_ratings, "n_users": n_users, "n_items": n_items,
        "params": params or {}, "keras": keras.__version__, "data_s": data_s, "fit_s": fit_s,
        **fitted,
        "data_rss_gb": data_rss, "fit_peak_rss_gb": fit_peak, "peak_rss_gb": _peak_rss_gb(),
        "test_rmse": rmse, "rating_std": float(y_test.std()), "n_test": len(y_test),
        "predict_pairs": n_pairs, "predict_pairs_per_s": n_pairs / predict_s,
        "recommend_users": len(users), "recommend_s": recommend_s,
        "recommend_rss_gb": recommend_rss, "recommend_peak_rss_gb": recommend_peak,
        "partial_fit_ratings": len(y_new), "partial_fit_s": partial_fit_s,
        "shape": shape,
    }


def measure_surprise(n_ratings: int) -> dict:
    """Surprise's default ``SVD`` on the split of ``measure_defaults`` (same data)."""
    import pandas as pd
    from surprise import SVD, Dataset, Reader

    _, [(X, y), (X_test, y_test), _] = _split(n_ratings)
    frame = pd.DataFrame({"user": X["user_id"].to_numpy(), "item": X["item_id"].to_numpy(),
                          "rating": y.to_numpy(dtype=float)})
    start = time.perf_counter()
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = SVD(random_state=0).fit(trainset)
    fit_s = time.perf_counter() - start
    pairs = zip(X_test["user_id"], X_test["item_id"], strict=True)
    pred = [algo.predict(user, item).est for user, item in pairs]
    rmse = float(np.sqrt(np.mean((np.array(pred) - y_test.to_numpy()) ** 2)))
    return {"n_ratings": n_ratings, "svd_fit_s": fit_s, "svd_test_rmse": rmse,
            "svd_peak_rss_gb": _peak_rss_gb()}


def _mf_reference():
    """``benchmarks/mf_reference.py``, also when this file is loaded by path (tests)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import mf_reference

    return mf_reference


def measure_reference(n_ratings: int, contender: str) -> dict:
    """"The machine" (numba SGD) or Spark ALS on the split of ``measure_defaults``."""
    mf_reference = _mf_reference()

    _, [(X, y), (X_test, y_test), _] = _split(n_ratings)
    n_users, n_items = shape_for(n_ratings)
    fit = mf_reference.fit_numba_mf if contender == "numba" else mf_reference.fit_spark_als
    _reset_peak_rss()
    model = fit(X["user_id"].to_numpy(np.int32), X["item_id"].to_numpy(np.int32),
                y.to_numpy(np.float32), n_users, n_items)
    if model is None:
        return {"n_ratings": n_ratings, "skipped": True}
    result = mf_reference.figures(model, X_test["user_id"].to_numpy(np.int32),
                                  X_test["item_id"].to_numpy(np.int32),
                                  y_test.to_numpy(np.float32), n_ratings)
    return {"n_ratings": n_ratings, **result, "peak_rss_gb": _status_gb("VmHWM")}


def _side_by_side(results: list[dict], svd: dict, references: dict) -> list[str]:
    """Each contender per size, then the estimator's ratios to SVD and to the machine."""
    lines = ["", "| ratings | contender | fit (s) | s per epoch | ratings/s per epoch "
             "| test RMSE | peak RSS (GB) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        n = r["n_ratings"]
        steady = r["epoch_wall_s"][1:] or r["epoch_wall_s"]
        rows = [("`EmbeddingRatingRegressor()`", r["fit_s"], sum(steady) / len(steady),
                 r["fit_ratings_per_s"], r["test_rmse"], r["fit_peak_rss_gb"])]
        if n in svd:
            s = svd[n]
            rows.append(("Surprise `SVD()`", s["svd_fit_s"], None, None, s["svd_test_rmse"],
                         s["svd_peak_rss_gb"]))
        for name, ref in sorted(references.get(n, {}).items()):
            if not ref.get("skipped"):
                rows.append((f"{name} (the machine)" if name == "numba" else name,
                             ref["fit_s"], ref["epoch_s"], ref["ratings_per_s"],
                             ref["test_rmse"], ref["peak_rss_gb"]))
        for name, fit_s, epoch_s, per_s, rmse, rss in rows:
            lines.append(f"| {n:,} | {name} | {fit_s:.1f} | "
                         + ("-" if epoch_s is None else f"{epoch_s:.2f}") + " | "
                         + ("-" if per_s is None else f"{per_s:,.0f}")
                         + f" | {rmse:.4f} | " + ("-" if rss is None else f"{rss:.2f}") + " |")
    lines += ["", "| ratings | RMSE ours - SVD | fit ours / SVD | throughput ours / machine |",
              "|---|---|---|---|"]
    for r in results:
        n, s = r["n_ratings"], svd.get(r["n_ratings"])
        machine = references.get(n, {}).get("numba", {})
        lines.append(
            f"| {n:,} | " + (f"{r['test_rmse'] - s['svd_test_rmse']:+.4f} | "
                             f"{r['fit_s'] / s['svd_fit_s']:.2f}" if s else "- | -")
            + " | " + (f"{r['fit_ratings_per_s'] / machine['ratings_per_s']:.3f}"
                       if machine.get("ratings_per_s") else "-") + " |")
    return lines


def plot_rmse_against_fit_time(result: dict, svd: dict | None, references: dict,
                               path: str) -> None:
    """Test RMSE against fit time at one size: the estimator, SVD and the machine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [("EmbeddingRatingRegressor()", result["fit_s"], result["test_rmse"])]
    if svd:
        points.append(("Surprise SVD()", svd["svd_fit_s"], svd["svd_test_rmse"]))
    for name, ref in references.items():
        if not ref.get("skipped"):
            points.append((f"{name} SGD (the machine)" if name == "numba" else name,
                           ref["fit_s"], ref["test_rmse"]))
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, fit_s, rmse in points:
        axes.scatter(fit_s, rmse)
        axes.annotate(name, (fit_s, rmse), textcoords="offset points", xytext=(5, 5))
    axes.set_xscale("log")
    axes.set_xlabel("fit time (s, log scale)")
    axes.set_ylabel("test RMSE")
    axes.set_title(f"{result['n_ratings']:,} ratings, 2-core machine")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


# -- driver ----------------------------------------------------------------------------------


def _run_in_subprocess(*args: str) -> dict:
    """Run this script with ``args`` in a fresh process; it writes its figures to a file
    (the fit's progress output may share stdout)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "figures.json"
        done = subprocess.run([sys.executable, __file__, *args, "--out", str(out)],
                              capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-4000:]}")
        return json.loads(out.read_text())


def _header(load: tuple, load_after: tuple | None = None) -> list[str]:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.machine())
    after = f", after {load_after[0]:.1f} / {load_after[1]:.1f} / {load_after[2]:.1f}" \
        if load_after else ""
    return [
        f"Machine: {model}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Load average before the run {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        f"(1/5/15 min){after}.",
        f"Command: `python benchmarks/scale.py {shlex.join(sys.argv[1:])}`.", "",
    ]


def _markdown(results: list[dict], load: tuple[float, float, float]) -> str:
    lines = [
        *_header(load),
        f"Settings: {SETTINGS}.",
        "",
        "| ratings | users | fit ratings/s per epoch (wall) | per CPU-second | whole fit (s) "
        "| predict ratings/s | peak RSS (GB) | RSS after data (GB) | test RMSE | rating std |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['n_ratings']:,} | {r['n_users']:,} | {r['fit_ratings_per_s']:,.0f} "
            f"| {r['fit_ratings_per_cpu_s']:,.0f} | {r['fit_s']:.1f} "
            f"| {r['predict_ratings_per_s']:,.0f} | {r['peak_rss_gb']:.2f} "
            f"| {r['data_rss_gb']:.2f} | {r['test_rmse']:.3f} | {r['rating_std']:.3f} |"
        )
    return "\n".join(lines)


def shape_table(rows: list[dict]) -> str:
    """Markdown: degree quantiles and Gini of users and items, one line per data and side."""
    lines = ["| data | users x items | ratings | side | min | p10 | p50 | p90 | p99 | max "
             "| mean | Gini | generated in (s) |", "|---" * 13 + "|"]
    for row in rows:
        for side in ("users", "items"):
            s = row[side]
            lines.append(
                f"| {row['data']} | {row['n_users']:,} x {row['n_items']:,} "
                f"| {row['n_ratings']:,} | {side} | {s['min']} | "
                + " | ".join(f"{s[f'p{q}']:,.0f}" for q in QUANTILES)
                + f" | {s['max']:,} | {s['mean']:,.1f} | {s['gini']:.3f} "
                + (f"| {row['seconds']:.1f} |" if "seconds" in row else "| - |"))
    return "\n".join(lines)


def _defaults_markdown(results: list[dict], svd: dict, references: dict, shapes: list[dict],
                       load: tuple, load_after: tuple) -> str:
    lines = [
        *_header(load, load_after),
        "`EmbeddingRatingRegressor(random_state=0"
        + "".join(f", {k}={v!r}" for k, v in (results[0]["params"] if results else {}).items())
        + ")` on `make_ratings(compact=True)` data; resolved = fitted attributes.", "",
        "| ratings | users x items | epochs (history) | resolved settings "
        "| ratings/s per epoch (wall) | per CPU-s | whole fit (s) | RSS after data (GB) "
        "| peak RSS fit (GB) | peak RSS process (GB) | test RMSE | rating std |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        resolved = ", ".join(f"{k}={v}" for k, v in r["resolved"].items()) or "-"
        lines.append(
            f"| {r['n_ratings']:,} | {r['n_users']:,} x {r['n_items']:,} | {r['n_epochs']} "
            f"| {resolved} | {r['fit_ratings_per_s']:,.0f} | {r['fit_ratings_per_cpu_s']:,.0f} "
            f"| {r['fit_s']:.1f} | {r['data_rss_gb']:.2f} | {r['fit_peak_rss_gb']:.2f} "
            f"| {r['peak_rss_gb']:.2f} | {r['test_rmse']:.4f} | {r['rating_std']:.3f} |")
    lines += ["", "| ratings | predict pairs | predict pairs/s | recommend users | recommend (s) "
              "| recommend RSS growth / peak growth (GB) | partial_fit ratings | partial_fit (s) |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['n_ratings']:,} | {r['predict_pairs']:,} | {r['predict_pairs_per_s']:,.0f} "
            f"| {r['recommend_users']:,} | {r['recommend_s']:.2f} "
            f"| {r['recommend_rss_gb']:.2f} / {r['recommend_peak_rss_gb']:.2f} "
            f"| {r['partial_fit_ratings']:,} | {r['partial_fit_s']:.2f} |")
    lines += _side_by_side(results, svd, references)
    return "\n".join([*lines, "", shape_table(shapes)])


def _shape_rows(sizes: list[int], measured: list[dict] | None = None) -> list[dict]:
    """ML-100K, make_ratings at ML-100K's shape, then make_ratings at each size."""
    rows = [row for row in [ml100k_shape_row()] if row]
    if ML_SHAPES[0][0] not in sizes:
        rows.append(make_ratings_shape_row(*ML_SHAPES[0]))
    by_size = {r["n_ratings"]: r["shape"] for r in measured or []}
    for n in sizes:
        rows.append(by_size.get(n) or make_ratings_shape_row(n, *shape_for(n)))
    return rows


def _reference_contenders() -> list[str]:
    """The reference contenders that can run here; why the others cannot, on stderr."""
    reasons = _mf_reference().available()
    for name, reason in reasons.items():
        if reason:
            print(f"{name} reference skipped: {reason}", file=sys.stderr)
    return [name for name, reason in reasons.items() if reason is None]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defaults", action="store_true",
                        help="EmbeddingRatingRegressor() as it comes at 1M/10M/25M (issue #13)")
    parser.add_argument("--shape", action="store_true",
                        help="only the degree distributions of ML-100K and make_ratings")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--params", type=json.loads, default={},
                        help='JSON estimator settings for --defaults, e.g. \'{"epochs": 1}\'')
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--no-svd", action="store_true", help="skip Surprise's SVD")
    parser.add_argument("--plot", help="with --defaults and 10M among the sizes: a PNG of "
                        "test RMSE against fit time there")
    parser.add_argument("--child-reference", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-defaults", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-surprise", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for child, run in ((args.child, measure), (args.child_surprise, measure_surprise),
                       (args.child_defaults, lambda n: measure_defaults(n, args.params))):
        if child is not None:
            Path(args.out).write_text(json.dumps(run(child), default=str))
            return
    if args.child_reference:
        size, contender = args.child_reference
        Path(args.out).write_text(json.dumps(measure_reference(int(size), contender)))
        return
    load = os.getloadavg()
    default_sizes = DEFAULT_SIZES if args.defaults or args.shape else [100_000, 1_000_000,
                                                                       10_000_000]
    sizes = args.sizes or default_sizes
    if args.shape:
        print("\n".join(_header(load)) + shape_table(_shape_rows(sizes)))
        return
    results, svd, references = [], {}, {}
    contenders = _reference_contenders() if args.defaults else []
    for n in sizes:
        if args.defaults:
            results.append(_run_in_subprocess("--child-defaults", str(n),
                                              "--params", json.dumps(args.params)))
            if not args.no_svd:
                svd[n] = _run_in_subprocess("--child-surprise", str(n))
            references[n] = {name: _run_in_subprocess("--child-reference", str(n), name)
                             for name in contenders}
        else:
            results.append(_run_in_subprocess("--child", str(n)))
        print(f"{n:,} ratings done: {results[-1]['fit_ratings_per_s']:,.0f} ratings/s",
              file=sys.stderr, flush=True)
    if args.defaults:
        shapes = _shape_rows(sizes, results)
        print(_defaults_markdown(results, svd, references, shapes, load, os.getloadavg()))
        figures = {"results": results, "surprise": svd, "references": references,
                   "shapes": shapes}
        at_10m = [r for r in results if r["n_ratings"] == 10_000_000]
        if args.plot and at_10m:
            plot_rmse_against_fit_time(at_10m[0], svd.get(10_000_000),
                                       references.get(10_000_000, {}), args.plot)
    else:
        print(_markdown(results, load))
        figures = {"settings": SETTINGS, "results": results}
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"load_average": load, "argv": sys.argv, **figures}, out, indent=1,
                      default=str)


if __name__ == "__main__":
    main()
