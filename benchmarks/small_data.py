"""Small catalogues: the defaults against a damped-bias baseline on samples of MovieLens 100K.

Usage (from the repository root)::

    python benchmarks/small_data.py [--data PATH/TO/u.data] [--sizes 2000 8000 30000]
        [--seeds 5] [--first-seed 0] [--proposed] [--params '{"l2": 0.3, "epochs": 8}' ...]
        [--full] [--json PATH]

Protocol. For each size ``n`` and each seed ``s`` (``first_seed`` onwards): draw ``n`` ratings
from ``u.data`` (``DataFrame.sample(n, random_state=s)``), split them 80/20 with
``train_test_split(test_size=0.2, random_state=s)``, fit every contender on the 80 % and
score its RMSE on the 20 %. Contenders:

* the damped-bias baseline ``mu + b_u + b_i`` (:func:`damped_baseline`);
* ``EmbeddingRatingRegressor(random_state=s)`` exactly as it comes (the defaults);
* with ``--proposed``, the size-aware rule of :func:`proposed_params` (this study's result);
* each ``--params`` JSON object, as ``EmbeddingRatingRegressor(random_state=s, **params)``,
  so that settings can be compared side by side in one run.

``--full`` adds the full-data check of issue 13: the ML-100K notebook split (90/10,
``train_test_split(test_size=0.1, random_state=315)``, the load and split functions of
``benchmarks/movielens.py``) with ``random_state=0``, where the defaults must stay <= 0.8932.

The table gives, per size, each contender's mean RMSE and its standard deviation over the
seeds, its mean relative difference to the baseline (negative = better than the baseline),
in how many seeds it beats the baseline and in how many it is at worst 0.002 above it, and
its worst seed's RMSE minus the baseline's (issue 24 asks for at most +0.002 on every seed).
From Python, :func:`run` also takes candidates as functions of the training data's size
(rules), e.g. ``{"rule": lambda n_ratings, n_users, n_items: {"epochs": 8}}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ml-100k" / "u.data"
DEFAULT_SIZES = (2_000, 8_000, 30_000)
BASELINE = "damped baseline"
DEFAULTS = "defaults"
FULL_SIZE = "ML-100K notebook split"
TIE = 0.002  # "at worst a tie": this much above the baseline's RMSE still counts

Params = Mapping[str, object] | Callable[[int, int, int], Mapping[str, object]]


# -- the baseline and the samples ------------------------------------------------------------


def damped_baseline(
    train_users: np.ndarray,
    train_items: np.ndarray,
    train_ratings: np.ndarray,
    test_users: np.ndarray,
    test_items: np.ndarray,
    *,
    user_shrinkage: float = 10.0,
    item_shrinkage: float = 25.0,
    clip: bool = True,
) -> np.ndarray:
    """Predict ``mu + b_u + b_i`` with damped (shrunk) biases fitted on the training ratings.

    Koren's order (Koren 2010, "Factor in the neighbors"): the item biases first,
    ``b_i = sum(r - mu) / (item_shrinkage + n_i)`` over the item's ratings, then the user
    biases on what is left, ``b_u = sum(r - mu - b_i) / (user_shrinkage + n_u)`` over the
    user's ratings. An id absent from the training ratings gets a bias of 0. With ``clip``
    the predictions are clipped to the training ratings' range, as the estimator's are.

    Parameters
    ----------
    train_users, train_items : array-like of shape (n_train,)
        Ids of the training ratings (any hashable values).
    train_ratings : array-like of shape (n_train,)
        The training ratings.
    test_users, test_items : array-like of shape (n_test,)
        Ids of the pairs to predict.
    user_shrinkage, item_shrinkage : float, default=10.0 and 25.0
        The damping terms added to each id's rating count.
    clip : bool, default=True
        Clip the predictions to ``[min(train_ratings), max(train_ratings)]``.

    Returns
    -------
    ndarray of shape (n_test,)

    Examples
    --------
    >>> damped_baseline([1, 1, 2], [7, 8, 7], [5.0, 3.0, 4.0], [1, 3], [7, 9],
    ...                 user_shrinkage=0, item_shrinkage=0).round(3).tolist()
    [4.75, 4.0]
    """
    ratings = np.asarray(train_ratings, dtype=float)
    if not (len(train_users) == len(train_items) == len(ratings)) or len(ratings) == 0:
        raise ValueError("train_users, train_items and train_ratings must be non-empty and of "
                         f"one length; got {len(train_users)}, {len(train_items)}, "
                         f"{len(ratings)}.")
    if len(test_users) != len(test_items):
        raise ValueError(f"test_users and test_items must have one length; got "
                         f"{len(test_users)} and {len(test_items)}.")
    if user_shrinkage < 0 or item_shrinkage < 0:
        raise ValueError("user_shrinkage and item_shrinkage must be >= 0.")
    users, items = pd.Series(np.asarray(train_users)), pd.Series(np.asarray(train_items))
    mu = ratings.mean()
    residual = pd.Series(ratings - mu)
    item_bias = residual.groupby(items).sum() / (residual.groupby(items).size() + item_shrinkage)
    residual = residual - items.map(item_bias).to_numpy()
    user_bias = residual.groupby(users).sum() / (residual.groupby(users).size() + user_shrinkage)
    pred = (mu + pd.Series(np.asarray(test_users)).map(user_bias).fillna(0.0).to_numpy()
            + pd.Series(np.asarray(test_items)).map(item_bias).fillna(0.0).to_numpy())
    return np.clip(pred, ratings.min(), ratings.max()) if clip else pred


def load_ratings(path: str | os.PathLike) -> pd.DataFrame:
    """``u.data`` as one frame with ``user_id``, ``item_id`` and ``rating``, in file order."""
    from skembedrec.datasets import read_ratings

    X, y = read_ratings(path)
    return X.assign(rating=y.to_numpy())


def sample_split(frame: pd.DataFrame, size: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw ``size`` ratings with ``seed`` and split them 80/20 with the same seed.

    Examples
    --------
    >>> frame = pd.DataFrame({"user_id": range(50), "item_id": range(50), "rating": 3.0})
    >>> train, test = sample_split(frame, 20, seed=0)
    >>> len(train), len(test)
    (16, 4)
    """
    if not 5 <= size <= len(frame):
        raise ValueError(f"size must be between 5 and the {len(frame)} ratings available; "
                         f"got {size}.")
    sample = frame.sample(n=size, random_state=seed)
    return tuple(train_test_split(sample, test_size=0.2, random_state=seed))


# -- the size-aware settings proposed for issue 13 --------------------------------------------

SMALL = 30_000  # training ratings below which the proposed rule changes the defaults


def proposed_params(n_ratings: int, n_users: int, n_items: int) -> dict:
    """The size-aware settings this study proposes, from the training data's size.

    From ``SMALL`` (30,000) training ratings up: today's defaults (nothing changed). Below:
    no implicit term, ``l2=0.3`` (1.0 since issue 24, with the biases' prior; which in
    practice leaves the biases to do the work),
    ``epochs=10``, ``batch_size = max(128, 2 ** round(log2(n_ratings / 24)))`` (about 24
    steps per epoch, as 4096 gives at ML-100K size; 128 at 1,600 ratings, 256 at 6,400,
    1,024 at 24,000) and ``learning_rate=0.01`` whatever the batch (a smaller rate leaves
    the biases under-trained here). ``n_users`` and ``n_items`` are not needed.

    Examples
    --------
    >>> proposed_params(90_000, 943, 1682), proposed_params(6_400, 880, 1150)["batch_size"]
    ({}, 256)
    """
    if n_ratings >= SMALL:
        return {}
    batch_size = max(128, 2 ** round(math.log2(n_ratings / 24)))
    return {"implicit": False, "l2": 0.3, "epochs": 10, "batch_size": batch_size,
            "learning_rate": 0.01}


# -- one fit, one figure ---------------------------------------------------------------------


def _rmse(truth, pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(truth, dtype=float) - pred) ** 2)))


def resolve_params(params: Params, train: pd.DataFrame) -> dict:
    """A candidate's parameters for this training set (a rule is called with its size)."""
    if callable(params):
        return dict(params(len(train), train["user_id"].nunique(), train["item_id"].nunique()))
    return dict(params)


def score(train: pd.DataFrame, test: pd.DataFrame, params: Params | None,
          seed: int) -> tuple[float, float, dict]:
    """Fit one contender (None: the baseline) on ``train``; (test RMSE, fit seconds, params)."""
    start = time.perf_counter()
    if params is None:
        pred = damped_baseline(train["user_id"], train["item_id"], train["rating"],
                               test["user_id"], test["item_id"])
        return _rmse(test["rating"], pred), time.perf_counter() - start, {}
    from skembedrec import EmbeddingRatingRegressor

    resolved = resolve_params(params, train)
    model = EmbeddingRatingRegressor(**{"random_state": seed, **resolved})
    model.fit(train[["user_id", "item_id"]], train["rating"])
    fit_s = time.perf_counter() - start
    return _rmse(test["rating"], model.predict(test[["user_id", "item_id"]])), fit_s, resolved


def run(frame: pd.DataFrame, sizes: Iterable[int] = DEFAULT_SIZES, seeds: int = 5,
        candidates: Mapping[str, Params] | None = None, *, defaults: bool = True,
        full: tuple[pd.DataFrame, pd.DataFrame] | None = None, first_seed: int = 0,
        log: Callable[[str], None] | None = None) -> list[dict]:
    """Score the baseline, the defaults and ``candidates`` on every (size, seed) sample.

    Parameters
    ----------
    frame : DataFrame
        Ratings with ``user_id``, ``item_id`` and ``rating`` columns (not modified).
    sizes : iterable of int
        Sample sizes, in ratings (before the 80/20 split).
    seeds : int
        Number of seeds, ``first_seed .. first_seed + seeds - 1``; each draws the sample,
        the split and the estimator's ``random_state``.
    candidates : mapping of str to dict or callable, optional
        Name -> estimator parameters, or a rule ``f(n_ratings, n_users, n_items) -> dict``
        called with the training part's size.
    defaults : bool, default=True
        Include ``EmbeddingRatingRegressor()`` as it comes.
    full : (train, test) pair of DataFrames, optional
        Also score every contender on this split (the ML-100K notebook split, from
        :func:`notebook_split`), with seed 0.
    first_seed : int, default=0
        The first seed (a rule tuned on seeds 0-4 is checked on fresh ones from 5).
    log : callable, optional
        Called with one line per fit (progress).

    Returns
    -------
    list of dict
        One record per fit: size, seed, contender, params, rmse, fit_s, n_train, n_test.
    """
    contenders: dict[str, Params | None] = {BASELINE: None}
    if defaults:
        contenders[DEFAULTS] = {}
    contenders.update(candidates or {})
    splits = [(size, seed, *sample_split(frame, size, seed))
              for size in sizes for seed in range(first_seed, first_seed + seeds)]
    if full is not None:
        splits.append((FULL_SIZE, 0, *full))
    records = []
    for size, seed, train, test in splits:
        for name, params in contenders.items():
            rmse, fit_s, resolved = score(train, test, params, seed)
            records.append({"size": size, "seed": seed, "contender": name, "params": resolved,
                            "rmse": rmse, "fit_s": fit_s, "n_train": len(train),
                            "n_test": len(test)})
            if log is not None:
                log(f"{size} seed {seed} {name}: RMSE {rmse:.4f} ({fit_s:.1f} s)")
    return records


def notebook_split(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ML-100K notebook split, with ``benchmarks/movielens.py``'s own load and split."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from movielens import load, split

    return split(load(Path(path)), "notebook", 0)


# -- reporting -------------------------------------------------------------------------------


def summarise(records: list[dict]) -> list[dict]:
    """Per (size, contender): mean and std RMSE, mean relative difference to the baseline,
    seeds beating it, seeds within ``TIE`` of it and the worst seed's RMSE minus the
    baseline's (the promise of issue 24: at most ``TIE`` on every seed)."""
    table = pd.DataFrame(records)
    base = table[table["contender"] == BASELINE].set_index(["size", "seed"])["rmse"]
    rows = []
    for (size, name), group in table.groupby(["size", "contender"], sort=False):
        ref = base.loc[[(size, s) for s in group["seed"]]].to_numpy()
        rmse = group["rmse"].to_numpy()
        rows.append({"size": size, "contender": name, "seeds": len(group),
                     "mean": rmse.mean(), "std": rmse.std(),
                     "rel_diff": float(np.mean(rmse / ref - 1)),
                     "wins": int(np.sum(rmse < ref)), "ties": int(np.sum(rmse <= ref + TIE)),
                     "worst": float(np.max(rmse - ref)),
                     "fit_s": float(group["fit_s"].mean())})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| ratings | contender | mean RMSE | std | vs baseline | beats baseline | "
             f"<= baseline + {TIE} | worst seed - baseline | fit s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        size = r["size"] if isinstance(r["size"], str) else f"{r['size']:,}"
        versus = "" if r["contender"] == BASELINE else f"{100 * r['rel_diff']:+.2f} %"
        wins = "" if r["contender"] == BASELINE else f"{r['wins']}/{r['seeds']}"
        ties = "" if r["contender"] == BASELINE else f"{r['ties']}/{r['seeds']}"
        worst = "" if r["contender"] == BASELINE else f"{r['worst']:+.4f}"
        lines.append(f"| {size} | {r['contender']} | {r['mean']:.4f} | {r['std']:.4f} | "
                     f"{versus} | {wins} | {ties} | {worst} | {r['fit_s']:.1f} |")
    return "\n".join(lines)


def _load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="path to u.data")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                        help="sample sizes in ratings (default: 2000 8000 30000)")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default: 5)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (default: 0)")
    parser.add_argument("--params", action="append", default=[], metavar="JSON",
                        help="a candidate's estimator parameters as a JSON object; repeatable")
    parser.add_argument("--proposed", action="store_true",
                        help="add the size-aware rule of proposed_params() as a contender")
    parser.add_argument("--no-defaults", action="store_true",
                        help="leave out EmbeddingRatingRegressor() as it comes")
    parser.add_argument("--full", action="store_true",
                        help="also score every contender on the ML-100K notebook split")
    parser.add_argument("--json", metavar="PATH", help="write the raw figures there")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1; got {args.seeds}")
    candidates = {}
    for text in args.params:
        try:
            params = json.loads(text)
        except json.JSONDecodeError as error:
            parser.error(f"--params {text!r} is not valid JSON: {error}")
        if not isinstance(params, dict):
            parser.error(f"--params must be a JSON object such as '{{\"l2\": 0.3}}'; got {text!r}")
        candidates[json.dumps(params, separators=(", ", ": "))] = params
    if args.proposed:
        candidates["proposed rule"] = proposed_params
    path = Path(args.data)
    if not path.exists():
        parser.error(f"MovieLens ratings not found at {path}; pass --data PATH/TO/u.data")

    command = "python benchmarks/small_data.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    load_start, started = _load_average(), time.perf_counter()
    records = run(load_ratings(path), args.sizes, args.seeds, candidates,
                  defaults=not args.no_defaults, full=notebook_split(path) if args.full else None,
                  first_seed=args.first_seed,
                  log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"Command: `{command.strip()}`  ")
    print(f"Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC  ")
    sys.path.insert(0, str(HERE))
    from movielens import machine  # one description of the machine for every benchmark

    print(f"Machine: {machine()}  ")
    print(f"Load average: {load_start} at start, {_load_average()} at the end "
          f"({time.perf_counter() - started:.0f} s)\n")
    print(markdown(summarise(records)))
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))
    return records


if __name__ == "__main__":
    main()
