"""partial_fit on MovieLens 100K by time: what old users lose, what new users gain.

Usage (from the repository root)::

    python benchmarks/partial_fit.py [--data PATH/TO/u.data] [--seed 0]
        [--params '{"n_factors": 32}'] [--replay 1.0] [--refit]

Protocol (project issue 23). Sort ``u.data`` by timestamp (ties by row order) and cut it at
80 % and 90 % of the rows: *fit* is the first 80 %, *stream* the next 10 %, *test* the
last 10 %. Fit ``EmbeddingRatingRegressor(random_state=seed, **params)`` on *fit* and score
*test* (before). Then, from that fitted model:

* **1 call**: one ``partial_fit`` on the whole *stream*;
* **3 calls**: *stream* cut into three consecutive thirds by time (rows 80-83.3 %,
  83.3-86.7 %, 86.7-90 %), one ``partial_fit`` on each in order.

Each is scored on the same *test*. Users are *old* when they rated in *fit* and *new* when
they first rate in *stream* (test users of neither kind are left out: nothing was learned
about them). *fallback* is the fitted model's RMSE on the new users' test ratings before any
``partial_fit`` (they are unknown ids then: the unknown-id fallback). Each ``partial_fit``
gets the batch's own ratings plus, with ``--replay F``, a random ``F`` x batch-size sample
of the ratings trained on so far (0, the default, gives the batch alone, which is what
the Training guide recommends). ``--refit`` adds a fit from scratch on *fit* + *stream* for
reference.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "u.data"


def load(path: Path) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """The ratings of ``u.data`` sorted by time: X (user_id, item_id), y and the timestamps."""
    data = pd.read_csv(path, sep="\t", names=["user_id", "item_id", "rating", "timestamp"])
    data = data.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return data[["user_id", "item_id"]], data["rating"].astype(float), data["timestamp"]


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(actual)) ** 2)))


def with_replay(X_batch, y_batch, X_known, y_known, fraction: float, rng):
    """The batch plus a random sample of ``fraction`` x its size of the known ratings."""
    n_replay = min(len(X_known), round(fraction * len(X_batch)))
    if not n_replay:
        return X_batch, y_batch
    rows = rng.choice(len(X_known), n_replay, replace=False)
    return (pd.concat([X_known.iloc[rows], X_batch], ignore_index=True),
            pd.concat([y_known.iloc[rows], y_batch], ignore_index=True))


def run(data: Path = DEFAULT_DATA, *, seed: int = 0, params: dict | None = None,
        replay: float = 0.0, refit: bool = False) -> pd.DataFrame:
    """The table: RMSE of old users, new users and the fallback, per stage."""
    from skembedrec import EmbeddingRatingRegressor

    X, y, _ = load(data)
    n = len(X)
    cut_fit, cut_stream = int(0.8 * n), int(0.9 * n)
    fit_rows, stream_rows = np.arange(cut_fit), np.arange(cut_fit, cut_stream)
    test_rows = np.arange(cut_stream, n)
    old_users = set(X["user_id"].iloc[fit_rows])
    new_users = set(X["user_id"].iloc[stream_rows]) - old_users
    X_test, y_test = X.iloc[test_rows], y.iloc[test_rows].to_numpy()
    is_old = X_test["user_id"].isin(old_users).to_numpy()
    is_new = X_test["user_id"].isin(new_users).to_numpy()

    def score(model) -> dict[str, float]:
        predicted = model.predict(X_test)
        return {"old users": rmse(predicted[is_old], y_test[is_old]),
                "new users": rmse(predicted[is_new], y_test[is_new]),
                "all scored": rmse(predicted[is_old | is_new], y_test[is_old | is_new])}

    def fitted():
        started = time.perf_counter()
        model = EmbeddingRatingRegressor(random_state=seed, **(params or {}))
        model.fit(X.iloc[fit_rows], y.iloc[fit_rows])
        return model, time.perf_counter() - started

    rows = {}
    model, seconds = fitted()
    rows["before (fit on 80 %)"] = {**score(model), "seconds": seconds}
    fallback = rows["before (fit on 80 %)"]["new users"]
    for name, slices in (("after 1 call", [stream_rows]),
                         ("after 3 calls", np.array_split(stream_rows, 3))):
        model, _ = fitted()
        rng = np.random.default_rng(seed)
        started = time.perf_counter()
        known = fit_rows
        for batch in slices:
            X_batch, y_batch = with_replay(X.iloc[batch], y.iloc[batch], X.iloc[known],
                                           y.iloc[known], replay, rng)
            model.partial_fit(X_batch, y_batch)
            known = np.r_[known, batch]
        rows[name] = {**score(model), "seconds": time.perf_counter() - started}
    if refit:
        started = time.perf_counter()
        model = EmbeddingRatingRegressor(random_state=seed, **(params or {}))
        model.fit(X.iloc[:cut_stream], y.iloc[:cut_stream])
        rows["refit on 90 %"] = {**score(model), "seconds": time.perf_counter() - started}
    table = pd.DataFrame(rows).T
    table["fallback (new users)"] = fallback
    table.attrs.update(n_old=int(is_old.sum()), n_new=int(is_new.sum()))
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", type=json.loads, default={})
    parser.add_argument("--replay", type=float, default=0.0)
    parser.add_argument("--refit", action="store_true")
    args = parser.parse_args(argv)
    table = run(args.data, seed=args.seed, params=args.params, replay=args.replay,
                refit=args.refit)
    print(f"test ratings scored: {table.attrs['n_old']} of old users, "
          f"{table.attrs['n_new']} of new users; replay={args.replay}, params={args.params}")
    print(table.to_string(float_format=lambda value: f"{value:.4f}"))


if __name__ == "__main__":
    main()
