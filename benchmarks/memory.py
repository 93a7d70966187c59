"""Memory in searches: RSS over 30 consecutive fits in one process, as GridSearchCV runs them.

Usage (from the repository root)::

    python benchmarks/memory.py [--data PATH/TO/u.data | --synthetic] [--keep]

A real :class:`~sklearn.model_selection.GridSearchCV` (10 candidates x 3 folds = 30 fits,
``n_jobs=1``, ``refit=False``) runs on MovieLens 100K (or synthetic ratings); its scorer
records the process RSS right after each fit, while that fit's model is still alive, as a
search holds it. The table shows the RSS every 3 fits and the growth since the first fit
(which pays TensorFlow's one-off start-up allocations). Target: at most 200 MB of growth
from fit 1 to fit 30.

``--keep`` is the control: the scorer keeps every fitted estimator alive, which is what a
leak of per-fit state looks like in the same table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
import psutil
from sklearn.model_selection import GridSearchCV, KFold

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"
TARGET_MB = 200
GRID = {"n_factors": [16, 32], "l2": [0.01, 0.03, 0.1, 0.3, 1.0]}  # 10 candidates
BASE = dict(hidden_units=(), epochs=2, batch_size=1024, random_state=0)


def load(args) -> tuple[pd.DataFrame, np.ndarray, str]:
    if not args.synthetic and Path(args.data).exists():
        frame = pd.read_csv(args.data, sep="\t", header=None,
                            names=["user_id", "item_id", "rating", "timestamp"])
        return frame[["user_id", "item_id"]], frame["rating"].to_numpy(float), "MovieLens 100K"
    X, y = make_ratings(n_users=943, n_items=1682, n_ratings=100_000, random_state=0)
    return X, y.to_numpy(), "synthetic (943 users, 1682 items, 100k ratings)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--keep", action="store_true", help="control: keep every fitted model")
    args = parser.parse_args()

    X, y, name = load(args)
    process = psutil.Process()
    rss_start = process.memory_info().rss
    records, kept = [], []
    started = time.perf_counter()

    def recording_scorer(estimator, X_test, y_test):
        score = estimator.score(X_test, y_test)
        params = {k: estimator.get_params()[k] for k in GRID}  # not the estimator: no reference
        records.append((time.perf_counter() - started, process.memory_info().rss, params))
        if args.keep:
            kept.append(estimator)
        return score

    search = GridSearchCV(EmbeddingRatingRegressor(**BASE), GRID, cv=KFold(3, shuffle=True,
                          random_state=0), scoring=recording_scorer, refit=False, n_jobs=1)
    search.fit(X, y)

    mb = 2**20
    first = records[0][1]
    print(f"data: {name}; {len(records)} fits; GridSearchCV over {GRID}, base {BASE}"
          + ("; --keep (control: every model kept alive)" if args.keep else ""))
    print(f"RSS before the search: {rss_start / mb:.0f} MiB")
    print(f"{'fit':>4} {'seconds':>8} {'RSS MiB':>8} {'growth MiB':>11}  params")
    for i, (seconds, rss, params) in enumerate(records, start=1):
        if i in (1, 2, 3) or i % 3 == 0:
            print(f"{i:>4} {seconds:>8.1f} {rss / mb:>8.0f} {(rss - first) / mb:>11.1f}  {params}")
    growth = (records[-1][1] - first) / mb
    later = (records[-1][1] - records[4][1]) / mb
    peak = max(rss for _, rss, _ in records) / mb
    print(f"growth fit 1 -> fit {len(records)}: {growth:.1f} MiB; fit 5 -> fit {len(records)}: "
          f"{later:.1f} MiB; peak RSS {peak:.0f} MiB; target <= {TARGET_MB} MB: "
          f"{'met' if growth * mb <= TARGET_MB * 1e6 else 'NOT met'}")
    print(f"best mean test R^2: {np.nanmax(search.cv_results_['mean_test_score']):.4f}")


if __name__ == "__main__":
    main()
