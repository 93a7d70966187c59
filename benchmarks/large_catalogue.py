"""A MovieLens-25M-sized catalogue end to end: fit, predict, recommend, export, partial_fit,
save and load (project issue 26).

Usage (from the repository root)::

    python benchmarks/large_catalogue.py                      # 25M ratings, ~5-8 min, ~4 GB
    python benchmarks/large_catalogue.py --size 10m           # 10M (ML-10M's shape)
    python benchmarks/large_catalogue.py --size 1m --params '{"epochs": 1}'   # a smoke run

Builds synthetic ratings of the chosen shape
(``make_ratings(..., random_state=0, compact=True)``; 25M: 162,541 users x 59,047 items),
fits ``EmbeddingRatingRegressor(random_state=0)`` with its defaults once, then times:

* ``predict`` of 10,000,000 random known pairs, in steady state (after a first call of
  1,000,000 pairs: the first large call sets up TensorFlow's buffers);
* ``recommend`` (top 10) for 1,000 users, by the estimator and by the exported SavedModel
  (``export`` timed too, with the size of the folder), after a 10-user warm-up each;
* ``partial_fit`` of 100,000 new ratings, 5,000 of them from new users (ids past the
  fitted ones), the rest by fitted users; with the peak resident memory above the
  resident memory before the call (``VmHWM`` reset through ``/proc/self/clear_refs``);
* ``save`` / ``load`` (the safe format) and ``joblib.dump`` / ``joblib.load`` of the
  fitted model, with the file sizes and peaks.

Prints a markdown table, the load average and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import tensorflow as tf

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from scale import _reset_peak_rss, _status_gb  # noqa: E402

# (users, items, ratings): ML-25M's and ML-10M's shapes, and a small one for smoke runs.
SIZES = {"25m": (162_541, 59_047, 25_000_000), "10m": (69_878, 10_677, 10_000_000),
         "1m": (6_040, 3_706, 1_000_000)}
N_NEW_RATINGS = 100_000
N_NEW_USER_RATINGS = 5_000
N_PREDICT = 10_000_000
N_RECOMMEND_USERS = 1_000
REPEATS = 3


def new_batch(X: pd.DataFrame, n_users: int, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """100,000 ratings: 5,000 by new users (ids ``n_users`` on), the rest by fitted users,
    on items drawn from those of ``X``; ratings 1-5 at random."""
    rng = np.random.default_rng(seed)
    users = rng.choice(X["user_id"].to_numpy(), N_NEW_RATINGS)
    users[:N_NEW_USER_RATINGS] = n_users + rng.integers(0, N_NEW_USER_RATINGS // 20,
                                                        N_NEW_USER_RATINGS)
    items = rng.choice(X["item_id"].to_numpy(), N_NEW_RATINGS)
    batch = pd.DataFrame({"user_id": users.astype(X["user_id"].dtype),
                          "item_id": items.astype(X["item_id"].dtype)})
    return batch, rng.integers(1, 6, N_NEW_RATINGS).astype(np.float32)


def timed(label: str, run, rows: list[dict], **extra) -> object:
    """Run ``run()``, append its wall time and peak memory above the start to ``rows``."""
    before = _status_gb("VmRSS") or 0.0
    _reset_peak_rss()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak = _status_gb("VmHWM") or 0.0
    rows.append({"step": label, "seconds": round(seconds, 2),
                 "peak_above_before_gb": round(peak - before, 2), **extra})
    print(f"{label}: {seconds:.2f} s, peak +{peak - before:.2f} GB", flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="25m")
    parser.add_argument("--params", default="{}", help="JSON estimator parameters")
    parser.add_argument("--dir", default=None, help="where to write the model files")
    args = parser.parse_args(argv)
    n_users, n_items, n_ratings = SIZES[args.size]
    rows: list[dict] = []
    X, y = timed("make_ratings", lambda: make_ratings(
        n_users=n_users, n_items=n_items, n_ratings=n_ratings, random_state=0, compact=True),
        rows)
    est = EmbeddingRatingRegressor(random_state=0, **json.loads(args.params))
    timed("fit", lambda: est.fit(X, y), rows)
    batch, batch_y = new_batch(X, n_users)
    rng = np.random.default_rng(0)
    pairs = np.column_stack([rng.choice(X["user_id"].to_numpy(), N_PREDICT),
                             rng.choice(X["item_id"].to_numpy(), N_PREDICT)]).astype(np.int64)
    users = np.unique(X["user_id"].to_numpy())[:N_RECOMMEND_USERS].astype(np.int64)
    X = y = None  # free the training ratings before the timed steps
    est.predict(pairs[: N_PREDICT // 10])
    timed(f"predict {N_PREDICT:,} pairs (steady state)", lambda: est.predict(pairs), rows)
    pairs = None
    est.recommend(users[:10])
    timed(f"recommend {N_RECOMMEND_USERS:,} users (estimator)", lambda: est.recommend(users),
          rows)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        timed("export", lambda: est.export(os.path.join(tmp, "saved")), rows)
        rows[-1]["note"] = f"{_folder_bytes(os.path.join(tmp, 'saved')) / 1e6:.0f} MB"
        recommend = tf.saved_model.load(os.path.join(tmp, "saved")).signatures["recommend"]
        recommend(user=tf.constant(users[:10]), k=tf.constant(10))
        timed(f"recommend {N_RECOMMEND_USERS:,} users (SavedModel)",
              lambda: recommend(user=tf.constant(users), k=tf.constant(10)), rows)
        recommend = None
    fitted_seen = est.seen_
    timed("partial_fit 100k (5k new-user ratings)", lambda: est.partial_fit(batch, batch_y),
          rows)
    rows[-1]["note"] = (f"seen_ {fitted_seen.nnz:,} -> {est.seen_.nnz:,} pairs, "
                        f"{_nbytes(est.seen_) / 1e6:.0f} MB in memory")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        safe, pickled = os.path.join(tmp, "model.skembedrec"), os.path.join(tmp, "model.joblib")
        # Alternated and repeated: on a shared machine one timing can be off by 2x, and the
        # targets are ratios of the two formats.
        for repeat in range(REPEATS):
            timed("save", lambda: est.save(safe), rows, repeat=repeat)
            timed("joblib.dump", lambda: joblib.dump(est, pickled), rows, repeat=repeat)
            loaded = timed("load", lambda: EmbeddingRatingRegressor.load(safe), rows,
                           repeat=repeat)
            timed("joblib.load", lambda: joblib.load(pickled), rows, repeat=repeat)
        sizes = {"save": os.path.getsize(safe), "joblib.dump": os.path.getsize(pickled)}
    rows = _medians(rows, sizes)
    same = np.array_equal(loaded.predict(batch[:1000]), est.predict(batch[:1000]))
    print()
    print(markdown_table(rows))
    print(f"\nloaded model predicts as saved: {same}; load average {os.getloadavg()}")
    print("command: python benchmarks/large_catalogue.py " + " ".join(argv or sys.argv[1:]))


def markdown_table(rows: list[dict]) -> str:
    """``rows`` (dicts) as a markdown table, columns in order of first appearance."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(key, "")) for key in columns) + " |"
              for row in rows]
    return "\n".join(lines)


def _medians(rows: list[dict], sizes: dict[str, int]) -> list[dict]:
    """One row per step: the median of the repeated steps, the file sizes, the ratios of the
    safe format to joblib."""
    merged: dict[str, dict] = {}
    for row in rows:
        merged.setdefault(row["step"], {**row, "runs": []})["runs"].append(row["seconds"])
    for step, row in merged.items():
        runs = row.pop("runs")
        row.pop("repeat", None)
        row["seconds"] = round(float(np.median(runs)), 2)
        if len(runs) > 1:
            row["note"] = "median of " + ", ".join(f"{run:.2f}" for run in runs) + " s"
        if step in sizes:
            row["note"] += f"; {sizes[step] / 1e6:.0f} MB"
    for safe, other in (("save", "joblib.dump"), ("load", "joblib.load")):
        if safe in merged:
            ratio = merged[safe]["seconds"] / merged[other]["seconds"]
            merged[safe]["note"] += f"; {ratio:.1f}x {other}"
    return list(merged.values())


def _folder_bytes(folder: str) -> int:
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


def _nbytes(matrix) -> int:
    return matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes


if __name__ == "__main__":
    main()
