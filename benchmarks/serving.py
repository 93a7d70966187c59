"""Serving speed: ``est.predict`` and the exported SavedModel side by side, in one run.

Usage (from the repository root)::

    python benchmarks/serving.py [PATH/TO/u.data] [--repeats 2000]
    python benchmarks/serving.py --size 25m

Fits the default estimator on MovieLens 100K (synthetic ratings of the same shape when the
file is missing), exports it (:meth:`EmbeddingRatingRegressor.export`), loads the
SavedModel with ``tf.saved_model.load`` and measures, for both:

* one pair: the median latency of ``repeats`` calls predicting one (user, item) pair. For
  the SavedModel, the ``predict`` signature (a concrete function) is called with its input
  tensors built beforehand, as a server holding them would; the time with the tensors built
  per call is shown too. Target: <= 0.3 ms median through the loaded SavedModel.
* batches: pairs per second on batches of 100k and 1M random (user, item) pairs, the median
  of 5 calls in steady state, after one warm-up call per batch size (tracing, allocation).
  Target: >= 5M pairs/s on large batches.

``--size 25m`` (or ``10m``) measures ``recommend`` at scale instead (issue 26): synthetic
ratings of MovieLens 25M's shape (162,541 users x 59,047 items, 25M ratings; 10M: 69,878 x
10,677) from ``make_ratings(compact=True)``, the defaults fitted, exported and loaded; then
top-10 lists for 1,000 users, from the estimator's ``recommend`` and from the SavedModel's
``recommend`` signature: each call's time and its peak RSS above the RSS before the call
(``VmHWM`` after a reset through ``/proc/self/clear_refs``, as in ``benchmarks/scale.py``),
after one warm-up call of each on 10 users. Targets: the SavedModel's peak <= 1 GB above
the loaded model, its time <= 2x the estimator's.

Timings are taken on whatever else the machine runs: the load average is printed.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
import tensorflow as tf

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"
BATCHES = (100_000, 1_000_000)
# (users, items, ratings) of the MovieLens releases the --size option imitates.
SIZES = {"10m": (69_878, 10_677, 10_000_000), "25m": (162_541, 59_047, 25_000_000)}
RECOMMEND_USERS = 1_000


def ratings(path: Path) -> tuple[pd.DataFrame, np.ndarray, str]:
    if path.exists():
        frame = pd.read_csv(path, sep="\t", header=None,
                            names=["user_id", "item_id", "rating", "timestamp"])
        return frame[["user_id", "item_id"]], frame["rating"].to_numpy(), f"MovieLens ({path})"
    X, y = make_ratings(n_users=943, n_items=1682, n_ratings=100_000, random_state=0)
    return X, np.asarray(y), "synthetic, MovieLens 100K shape"


def median_seconds(call, repeats: int) -> float:
    call()  # warm-up
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return float(np.median(times))


def _measured_call(call) -> tuple[float, float, object]:
    """Seconds and peak RSS (GB) above the RSS before the call, and what it returned."""
    from scale import _reset_peak_rss, _status_gb

    gc.collect()
    before = _status_gb("VmRSS") or 0.0
    _reset_peak_rss()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    return seconds, (_status_gb("VmHWM") or 0.0) - before, result


def recommend_at_scale(size: str) -> None:
    """The ``--size`` benchmark: recommend for 1,000 users, estimator against SavedModel."""
    from scale import _status_gb

    n_users, n_items, n_ratings = SIZES[size]
    start = time.perf_counter()
    X, y = make_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings,
                        random_state=0, compact=True)
    data_s = time.perf_counter() - start
    start = time.perf_counter()
    est = EmbeddingRatingRegressor(random_state=0).fit(X, y)
    fit_s = time.perf_counter() - start
    users = np.unique(X["user_id"].to_numpy())[:RECOMMEND_USERS].astype(np.int64)
    del X, y
    directory = tempfile.mkdtemp()
    start = time.perf_counter()
    est.export(directory)
    export_s = time.perf_counter() - start
    recommend = tf.saved_model.load(directory).signatures["recommend"]
    gc.collect()
    loaded_rss = _status_gb("VmRSS") or 0.0

    def served(chosen: np.ndarray) -> dict:
        return recommend(user=tf.constant(chosen, tf.int64), k=tf.constant(10))

    served(users[:10]), est.recommend(users[:10])  # warm-up: tracing, tables
    own_s, own_peak, own = _measured_call(lambda: est.recommend(users))
    served_s, served_peak, top = _measured_call(lambda: served(users))
    valid = top["valid"].numpy()
    served_items = top["items"].numpy()[valid]
    same = served_items.tolist() == own["item_id"].tolist()
    rating_gap = float(np.abs(top["ratings"].numpy()[valid]
                              - own["predicted_rating"].to_numpy()).max())

    print(f"# recommend at scale ({size}: {n_users:,} users x {n_items:,} items, "
          f"{n_ratings:,} synthetic ratings; default parameters; {time.strftime('%Y-%m-%d')})")
    print(f"machine: {os.cpu_count()} logical CPUs, TensorFlow {tf.__version__}; load average "
          f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())}; data {data_s:.0f} s, fit "
          f"{fit_s:.0f} s, export {export_s:.0f} s; RSS with the loaded model "
          f"{loaded_rss:.2f} GB\n")
    print(f"| top-10 for {len(users):,} users | time | peak RSS above before |\n|---|---:|---:|")
    print(f"| est.recommend | {own_s:.2f} s | {own_peak:.2f} GB |")
    print(f"| SavedModel recommend | {served_s:.2f} s | {served_peak:.2f} GB |")
    print(f"\nsame items in the same order: {same}; largest rating difference "
          f"{rating_gap:.1e}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--size", choices=sorted(SIZES),
                        help="measure recommend for 1,000 users at this scale instead")
    args = parser.parse_args(argv)
    if args.size is not None:
        recommend_at_scale(args.size)
        return

    X, y, source = ratings(Path(args.data))
    est = EmbeddingRatingRegressor(random_state=0).fit(X, y)
    directory = tempfile.mkdtemp()
    est.export(directory)
    served = tf.saved_model.load(directory).signatures["predict"]

    user, item = int(X["user_id"].iloc[0]), int(X["item_id"].iloc[0])
    one_pair = np.array([[user, item]])
    users_t, items_t = tf.constant([user], tf.int64), tf.constant([item], tf.int64)
    assert abs(served(user=users_t, item=items_t)["rating"].numpy()[0]
               - est.predict(one_pair)[0]) < 1e-5
    # Calibration: what any concrete-function call costs on this machine right now.
    empty = tf.function(lambda u, i: {"rating": tf.cast(u + i, tf.float64)}).get_concrete_function(
        users_t, items_t)
    rows = [
        ("calibration: an empty concrete function of the same inputs",
         median_seconds(lambda: empty(users_t, items_t), args.repeats)),
        ("one pair, est.predict (ndarray)", median_seconds(lambda: est.predict(one_pair),
                                                           args.repeats)),
        ("one pair, SavedModel predict signature",
         median_seconds(lambda: served(user=users_t, item=items_t), args.repeats)),
        ("one pair, SavedModel incl. building the input tensors",
         median_seconds(lambda: served(user=tf.constant([user], tf.int64),
                                       item=tf.constant([item], tf.int64)), args.repeats)),
    ]
    rng = np.random.default_rng(0)
    known_users, known_items = X["user_id"].unique(), X["item_id"].unique()
    throughput = []
    for size in BATCHES:
        pairs = np.column_stack([rng.choice(known_users, size), rng.choice(known_items, size)])
        users, items = tf.constant(pairs[:, 0], tf.int64), tf.constant(pairs[:, 1], tf.int64)
        np.testing.assert_allclose(served(user=users, item=items)["rating"].numpy(),
                                   est.predict(pairs), atol=1e-5)
        throughput.append((size, size / median_seconds(lambda p=pairs: est.predict(p), 5),
                           size / median_seconds(lambda u=users, i=items: served(user=u, item=i),
                                                 5)))

    print(f"# Serving speed ({source}; default parameters; {time.strftime('%Y-%m-%d')})")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
          f"CPUs, TensorFlow {tf.__version__}, Python {sys.version.split()[0]}; load average "
          f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    print("| one (user, item) pair | median latency |\n|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e3:.3f} ms |")
    print("\n| batch (steady state, median of 5 after a warm-up call) | est.predict | "
          "SavedModel |\n|---|---:|---:|")
    for size, own, exported in throughput:
        print(f"| {size:,} pairs | {own / 1e6:.2f}M pairs/s | {exported / 1e6:.2f}M pairs/s |")


if __name__ == "__main__":
    main()
