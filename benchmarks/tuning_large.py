"""Tuning a large catalogue: what one fit costs, and tuning on a user sample (issue 26).

Usage (from the repository root)::

    python benchmarks/tuning_large.py --size 1m --steps cost        # ~1 min
    python benchmarks/tuning_large.py --size 10m --steps cost       # ~1-2 min, ~2 GB
    python benchmarks/tuning_large.py --size 10m                    # ~5-8 min (all steps)

Builds synthetic ratings of the chosen shape (``make_ratings(..., random_state=0,
compact=True)``; 1m: 6,040 users x 3,706 items, 10m: 69,878 x 10,677, MovieLens 1M / 10M)
and holds out a random 10 % of the ratings as a test set. Then, by step:

* ``cost``: fits ``EmbeddingRatingRegressor(random_state=0)`` with its defaults on the
  other 90 %; prints seconds per fit and per epoch, the resolved settings
  (``learning_rate_``, ``l2_``, ``batch_size_``, ``epochs_``, ``n_estimators_``,
  ``implicit_``) and the test RMSE;
* ``sample``: draws ``--sample`` of the training users (all their ratings), and grid-searches
  ``l2`` and ``learning_rate`` at x 1/3, x 1, x 3 the full-size resolved values, with the
  other settings fixed at the full-size values (a sample may fall in another "auto"
  regime); one 80/20 split of the sample per candidate;
* ``full``: refits the ``--full-candidates`` best candidates of the sample search on all
  the training ratings (the defaults' result comes from ``cost``) and prints their test
  RMSE, so the sample's ranking can be compared with the full-size one. With
  ``--candidates`` (a JSON list of parameter dicts) it refits those instead, and
  ``--steps full`` then runs this step alone::

      python benchmarks/tuning_large.py --steps full \
          --candidates '[{"l2": 0.3, "learning_rate": 0.04}]'

Prints one JSON line per result as it comes, then the load average and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import GridSearchCV, ShuffleSplit, train_test_split

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings

SIZES = {
    "1m": {"n_users": 6_040, "n_items": 3_706, "n_ratings": 1_000_000},
    "10m": {"n_users": 69_878, "n_items": 10_677, "n_ratings": 10_000_000},
}
STEPS = ("cost", "sample", "full")
# The settings the "auto" rules resolve at full size, held fixed on the sample.
FIXED = ("batch_size_", "epochs_", "n_estimators_", "implicit_")


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def user_sample(X: pd.DataFrame, fraction: float, random_state: int) -> np.ndarray:
    """Boolean mask of the rows of a random ``fraction`` of the users (all their ratings)."""
    users = X["user_id"].unique()
    rng = np.random.default_rng(random_state)
    chosen = rng.choice(users, size=max(1, round(fraction * len(users))), replace=False)
    return X["user_id"].isin(chosen).to_numpy()


def timed_fit(X: pd.DataFrame, y: pd.Series, X_test: pd.DataFrame, y_test: pd.Series,
              **params: Any) -> tuple[EmbeddingRatingRegressor, dict[str, Any]]:
    """Fit with ``params`` (else the defaults) and return the model, seconds and test RMSE."""
    start = time.perf_counter()
    est = EmbeddingRatingRegressor(random_state=0, **params).fit(X, y)
    seconds = time.perf_counter() - start
    rmse = root_mean_squared_error(y_test, est.predict(X_test))
    return est, {"fit_s": round(seconds, 1), "epoch_s": round(seconds / est.n_iter_, 1),
                 "test_rmse": round(float(rmse), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="10m")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help="comma-separated subset of " + ", ".join(STEPS))
    parser.add_argument("--sample", type=float, default=0.1,
                        help="fraction of the users in the tuning sample")
    parser.add_argument("--full-candidates", type=int, default=2,
                        help="best sample candidates (other than the defaults) refitted")
    parser.add_argument("--candidates", type=json.loads, default=None,
                        help="JSON list of parameter dicts for the full step")
    args = parser.parse_args()
    steps = set(args.steps.split(","))

    start = time.perf_counter()
    X, y = make_ratings(**SIZES[args.size], random_state=0, compact=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=0)
    _emit({"size": args.size, "train_ratings": len(y_train), "test_ratings": len(y_test),
           "data_s": round(time.perf_counter() - start, 1)})

    if args.candidates is not None and steps == {"full"}:
        _refit(args.candidates, X_train, y_train, X_test, y_test)
        return
    est, record = timed_fit(X_train, y_train, X_test, y_test)
    resolved = {name: getattr(est, name) for name in
                ("learning_rate_", "l2_", *FIXED)}
    _emit({"step": "cost", **record, **{k: (v.item() if hasattr(v, "item") else v)
                                        for k, v in resolved.items()}})
    if not steps & {"sample", "full"}:
        return

    fixed = {name.rstrip("_"): resolved[name] for name in FIXED}
    lr, l2 = float(resolved["learning_rate_"]), float(resolved["l2_"])
    grid = {"l2": [l2 / 3, l2, l2 * 3], "learning_rate": [lr / 3, lr, lr * 3]}
    mask = user_sample(X_train, args.sample, random_state=0)
    search = GridSearchCV(
        EmbeddingRatingRegressor(random_state=0, **fixed), grid,
        scoring="neg_root_mean_squared_error", refit=False,
        cv=ShuffleSplit(n_splits=1, test_size=0.2, random_state=0),
    )
    start = time.perf_counter()
    search.fit(X_train[mask], y_train[mask])
    seconds = time.perf_counter() - start
    ranking = sorted(zip(-search.cv_results_["mean_test_score"], search.cv_results_["params"],
                         strict=True), key=lambda pair: pair[0])
    _emit({"step": "sample", "sample_ratings": int(mask.sum()), "fits": len(ranking),
           "search_s": round(seconds, 1), "fixed": fixed,
           "ranking": [{"rmse": round(float(r), 4),
                        **{k: round(v, 4) for k, v in p.items()}} for r, p in ranking]})
    if "full" not in steps:
        return

    default = {"l2": l2, "learning_rate": lr}
    refits = [p for _, p in ranking if p != default][:args.full_candidates]
    _refit(args.candidates or refits, X_train, y_train, X_test, y_test)


def _refit(candidates: list[dict[str, Any]], X_train: pd.DataFrame, y_train: pd.Series,
           X_test: pd.DataFrame, y_test: pd.Series) -> None:
    for params in candidates:
        _, record = timed_fit(X_train, y_train, X_test, y_test, **params)
        _emit({"step": "full", **{k: round(v, 4) for k, v in params.items()}, **record})


if __name__ == "__main__":
    main()
    print(f"load average: {os.getloadavg()}")
    print("command: python " + " ".join(sys.argv))
