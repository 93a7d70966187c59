"""Which time terms to build: the selection behind ``time_col``, on validation folds only.

Usage (from the repository root)::

    python benchmarks/time_terms.py [--data PATH/TO/ml-100k] [--write]

Every figure here is measured on five folds (``KFold(5, shuffle=True, random_state=1)``) of
the *training* ratings of the notebook split (``train_test_split(test_size=0.1,
random_state=315)`` of MovieLens 100K): the test ratings of that split, and the 5-fold
protocol's, are never used. Two parts:

1. The network (``EmbeddingRatingRegressor(time_col="timestamp")``, defaults otherwise,
   ``random_state=0``) with each candidate set of time terms, built by replacing
   :func:`skembedrec._network._time_terms` for the run: none, the users' drift, the period
   level, both (what ships), both plus timeSVD++'s bias per item and time bin (penalised
   1.0 and 30 per rating), the shipped terms with the biases started at zero instead of
   the damped baseline, and with the biases pulled back to that baseline (their prior) by
   the per-id penalty of the small-data regime (``_defaults.bias_penalty_for``, issue 24).
2. A regularised linear model of the ratings (least squares, ``scipy.sparse.linalg.lsqr``)
   with user and item biases, then the drift, a bias per (user, day) and both, to see
   whether timeSVD++'s day-specific user bias adds anything over the drift.

``--write`` replaces the "Time terms" section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp
from keras import ops
from scipy.sparse.linalg import lsqr
from sklearn.model_selection import KFold, train_test_split

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from movielens import load, machine, versions, write_section  # noqa: E402

import skembedrec._network as network  # noqa: E402
import skembedrec._training as training  # noqa: E402
from skembedrec import EmbeddingRatingRegressor  # noqa: E402
from skembedrec._layers import TimeBinBias, UserDrift  # noqa: E402

DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ml-100k"
SECTION = ("<!-- time-terms:start -->", "<!-- time-terms:end -->")
SHIPPED = network._time_terms


class ItemBinBias(keras.layers.Layer):
    """timeSVD++'s ``b_i,Bin(t)``: a penalised bias per item and time bin (candidate only)."""

    def __init__(self, n_rows, grid, l2, **kwargs):
        super().__init__(**kwargs)
        self.n_rows, self.grid, self.l2 = n_rows, grid, l2

    def build(self, input_shape):
        self.table = self.add_weight(shape=(self.n_rows, self.grid.n_bins),
                                     initializer="zeros", name="table")

    def call(self, inputs, training=None):
        codes, days = inputs
        bins = ops.clip((days - self.grid.first_day) // self.grid.days_per_bin, 0,
                        self.grid.n_bins - 1)
        rows = ops.take(self.table, codes, axis=0)
        if training:
            self.add_loss(self.l2 * ops.mean(ops.sum(ops.square(rows), axis=-1))
                          / self.grid.n_bins)
        return ops.take_along_axis(rows, ops.expand_dims(bins, -1), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)


def candidate(drift: bool, level: bool, item_bins: float | None):
    def terms(codes, days, sizes, grid, l2):
        parts = []
        if drift:
            parts.append(UserDrift(sizes["user"], grid.first_day, grid.last_day, l2=l2,
                                   name="user_drift")([codes["user"], days]))
        if level:
            parts.append(TimeBinBias(grid.n_bins, grid.first_day, grid.last_day,
                                     grid.days_per_bin, name="time_bias")(days))
        if item_bins is not None:
            parts.append(ItemBinBias(sizes["item"], grid, item_bins,
                                     name="item_time_bias")([codes["item"], days]))
        return parts
    return terms


NETWORK_CANDIDATES = {
    "no time (time_col=None)": None,
    "drift only": candidate(True, False, None),
    "period level only": candidate(False, True, None),
    "drift + period level (shipped)": SHIPPED,
    "shipped + item bias per bin, L2 1.0": candidate(True, True, 1.0),
    "shipped + item bias per bin, L2 30": candidate(True, True, 30.0),
    "shipped, biases started at zero": "zero-biases",
    "shipped, biases pulled to their prior (penalty 0.3)": 0.3,
    "shipped, biases pulled to their prior (penalty 1)": 1.0,
}


def folds(data: Path):
    frame = load(data / "u.data")
    train, _ = train_test_split(frame, test_size=0.1, random_state=315)
    for fit_rows, valid_rows in KFold(5, shuffle=True, random_state=1).split(train):
        yield train.iloc[fit_rows], train.iloc[valid_rows]


def network_rmse(data: Path, terms) -> list[float]:
    columns = ["user_id", "item_id"] + ([] if terms is None else ["timestamp"])
    damped, penalty = training.set_damped_biases, training._defaults.bias_penalty_for
    network._time_terms = SHIPPED if terms is None or isinstance(terms, (str, float)) else terms
    if terms == "zero-biases":
        training.set_damped_biases = lambda *args, **kwargs: None
    if isinstance(terms, float):
        training._defaults.bias_penalty_for = lambda n_ratings: terms
    try:
        scores = []
        for fit, valid in folds(data):
            est = EmbeddingRatingRegressor(random_state=0,
                                           time_col=None if terms is None else "timestamp")
            est.fit(fit[columns], fit["rating"])
            error = est.predict(valid[columns]) - valid["rating"].to_numpy()
            scores.append(float(np.sqrt(np.mean(error ** 2))))
        return scores
    finally:
        network._time_terms, training.set_damped_biases = SHIPPED, damped
        training._defaults.bias_penalty_for = penalty


def linear_rmse(data: Path, blocks: tuple[str, ...]) -> list[float]:
    """Least squares over one-hot (and drift) columns, each block penalised as ridge."""
    scores = []
    for fit, valid in folds(data):
        fit, valid = (frame.assign(day=frame["timestamp"] // 86400) for frame in (fit, valid))
        keys = _keys(fit, ("user", "item", *blocks))
        vocabularies = {block: {key: code for code, key in enumerate(pd.unique(values))}
                        for block, values in keys.items()}
        mean_day = fit.groupby("user_id")["day"].mean()
        mu = fit["rating"].mean()
        weights = lsqr(_design(fit, vocabularies, mean_day), fit["rating"].to_numpy() - mu,
                       damp=1.0, iter_lim=500)[0]
        predicted = np.clip(mu + _design(valid, vocabularies, mean_day) @ weights, 1, 5)
        scores.append(float(np.sqrt(np.mean((predicted - valid["rating"].to_numpy()) ** 2))))
    return scores


def _keys(frame: pd.DataFrame, blocks) -> dict[str, pd.Series]:
    users = frame["user_id"]
    every = {"user": users, "item": frame["item_id"], "drift": users,
             "user_day": users.astype(str) + "|" + frame["day"].astype(str)}
    return {block: every[block] for block in blocks}


def _design(frame: pd.DataFrame, vocabularies: dict, mean_day: pd.Series) -> sp.csr_matrix:
    columns = []
    for block, keys in _keys(frame, tuple(vocabularies)).items():
        value = np.ones(len(frame))
        if block == "drift":
            distance = frame["day"] - frame["user_id"].map(mean_day).fillna(frame["day"])
            value = (np.sign(distance) * np.abs(distance) ** 0.4 / 5).to_numpy()
        codes = keys.map(vocabularies[block]).fillna(-1).astype(int).to_numpy()
        known = codes >= 0
        columns.append(sp.csr_matrix(
            (value[known], (np.flatnonzero(known), codes[known])),
            shape=(len(frame), len(vocabularies[block]))) * np.sqrt(1 / PENALTY[block]))
    return sp.hstack(columns).tocsr()


# Inverse ridge penalties of the linear model's blocks (larger = less shrinkage).
PENALTY = {"user": 0.1, "item": 0.04, "drift": 0.1, "user_day": 0.1}
LINEAR_CANDIDATES = {
    "biases": (), "biases + drift": ("drift",), "biases + user-day bias": ("user_day",),
    "biases + drift + user-day bias": ("drift", "user_day"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    started = time.time()
    rows = []
    for name, terms in NETWORK_CANDIDATES.items():
        scores = network_rmse(args.data, terms)
        rows.append(("network", name, scores))
        print(f"network  {name:45s} {np.mean(scores):.4f}", flush=True)
    for name, blocks in LINEAR_CANDIDATES.items():
        scores = linear_rmse(args.data, blocks)
        rows.append(("linear", name, scores))
        print(f"linear   {name:45s} {np.mean(scores):.4f}", flush=True)
    table = ["| Model | Terms | mean validation RMSE | per fold |", "|---|---|---:|---|"]
    table += [f"| {kind} | {name} | {np.mean(s):.4f} | {', '.join(f'{v:.4f}' for v in s)} |"
              for kind, name, s in rows]
    text = "\n".join([
        "## Time terms (issue 15): the selection, on validation folds", "",
        "Command: `python benchmarks/time_terms.py --write`  ",
        f"Date: {datetime.date.today().isoformat()}  ", f"Machine: {machine()}  ",
        f"Versions: {versions()}  ", f"Run time: {time.time() - started:.0f} s", "",
        "Five folds (`KFold(5, shuffle=True, random_state=1)`) of the notebook split's "
        "training ratings; no test rating is used. Network: the defaults with "
        "`time_col='timestamp'` and each set of time terms; linear: ridge least squares "
        "over user and item biases and the time terms (`lsqr`).", "", *table,
    ])
    print("\n" + text)
    if args.write:
        write_section(text, *SECTION)


if __name__ == "__main__":
    main()
