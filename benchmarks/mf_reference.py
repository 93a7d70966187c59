"""What this machine's cores do with biased matrix factorisation: "the machine" of issue #25.

A reference for ``benchmarks/scale.py``: the model family of the estimator's scale settings
(global mean, user and item biases, 32 factors, no MLP tower), fitted by the fastest plain
code we know how to write for a CPU, so that the estimator's fit time can be reported as a
ratio to it. Two contenders:

* **numba SGD** (:func:`fit_numba_mf`, needs the ``bench`` extra: ``pip install
  skembedrec[bench]``): Surprise's ``SVD`` update rule (Funk SVD with biases), compiled in
  nopython mode with ``fastmath``, run Hogwild-style: the shuffled ratings are cut into one
  contiguous shard per thread and the threads update the shared parameters without locks
  (``numba.prange`` over the shards). With more than one thread the races make the result
  vary slightly from run to run; ``n_threads=1`` is reproducible. ``cache=False``, so that
  the first fit of a process compiles; a warm-up on tiny data compiles first and its time is
  reported on its own (``compile_seconds``).
* **Spark MLlib ALS** (:func:`fit_spark_als`), an optional contender where Java and
  ``pyspark`` are installed (``pip install pyspark``, plus a JDK on ``PATH``: 17 or
  later for Spark 4). They are
  not part of any extra: pyspark is a ~300 MB download and needs a JVM. Without them
  :func:`fit_spark_als` prints why and returns ``None``; :func:`available` says which
  contenders can run.

Both return a fitted :class:`MFModel` (a :class:`NumbaMF` or a :class:`SparkALS`) whose
factors are plain NumPy arrays, so prediction (and the RMSE) is the same code for both.

Figures on ``make_ratings`` data shaped like ML-10M (69,878 users x 10,677 items, 10M
training ratings, the next 500,000 of the same generator held out), 2 cores shared with
other jobs (load average ~4.5), this script's defaults (32 factors, 20 epochs, learning rate
0.01, ``reg`` 0.025): numba SGD on 2 threads, 7.5-14.3 s fit, 0.29-0.67 s an epoch
(15-35M ratings/s, 22-33M per CPU second), 1 s compilation, test RMSE 0.5888, 0.66 GB peak
RSS during the fit. Surprise's defaults (learning rate 0.005, ``reg`` 0.02) reach 0.5957 in
20 epochs. Measured earlier (with settings or data not recorded; the RMSEs are not
reproduced here): numba SGD 7.6 s fit, 0.37 s an epoch, RMSE 0.6185; Spark ALS
``local[2]``, rank 32, 10 iterations, ``regParam`` 0.05: 120 s (+14 s set-up), RMSE 0.6182.
Epochs run on two threads race each other for the hot items' factor rows; with the cores
busy a single thread can be faster (0.32-0.41 s an epoch against 0.56-0.71 s on two,
measured back to back at load ~4).

Usage::

    python benchmarks/mf_reference.py                 # ML-10M shape, numba, markdown row
    python benchmarks/mf_reference.py --size 1M --contender all
    python benchmarks/mf_reference.py --size 25M --threads 2 --epochs 20
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import resource
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# (ratings, users, items) of the MovieLens releases whose shapes ``--size`` follows.
SIZES = {"1M": (1_000_000, 6_040, 3_706), "10M": (10_000_000, 69_878, 10_677),
         "25M": (25_000_000, 162_541, 59_047)}
TEST_FRACTION = 0.05
INIT_STD = 0.1


@dataclass
class MFModel:
    """Biased matrix factorisation with plain NumPy parameters.

    A known (user, item) pair is predicted as ``intercept + user_bias[u] + item_bias[i] +
    user_factors[u] . item_factors[i]``; a pair with an unknown side (a code outside
    ``0..n-1``, e.g. ``-1``) as ``global_mean`` plus the bias of the known side, if any.
    Predictions are clipped to the training ratings' range, as Surprise does.

    Attributes
    ----------
    global_mean : float
        Mean training rating: the prediction for a pair with both sides unknown.
    intercept : float
        Constant of a known pair's prediction (the global mean for SGD, 0 for ALS, which
        fits the ratings as they are).
    user_bias, item_bias : ndarray of shape (n_users,), (n_items,)
        Biases (zeros for ALS, which has none).
    user_factors, item_factors : ndarray of shape (n_users, n_factors), (n_items, n_factors)
        Latent factors.
    rating_range : tuple of float
        Smallest and largest training rating.
    fit_seconds : float
        Wall time of the fit (data preparation included, compilation or start-up excluded).
    epoch_seconds : list of float
        Wall time of each epoch (SGD), or the mean iteration's (ALS: one entry, as Spark
        runs its iterations in one call).
    epoch_cpu_seconds : list of float
        CPU time of this process (all its threads) in each epoch: robust to other processes
        competing for the cores (empty for ALS, whose work is in the JVM).
    """

    global_mean: float
    intercept: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    rating_range: tuple[float, float]
    fit_seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)
    epoch_cpu_seconds: list[float] = field(default_factory=list)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predict the ratings of (user, item) code pairs.

        Parameters
        ----------
        users, items : array-like of int of shape (n_pairs,)
            Codes ``0..n-1`` as in training; any other code is an unknown user or item.

        Returns
        -------
        ndarray of shape (n_pairs,), float32
            The predicted ratings, clipped to ``rating_range``.
        """
        users, items = np.asarray(users), np.asarray(items)
        if users.shape != items.shape or users.ndim != 1:
            raise ValueError(f"users and items must be 1-d arrays of the same length; got "
                             f"shapes {users.shape} and {items.shape}.")
        known_user = (users >= 0) & (users < len(self.user_bias))
        known_item = (items >= 0) & (items < len(self.item_bias))
        user_rows, item_rows = np.where(known_user, users, 0), np.where(known_item, items, 0)
        both = known_user & known_item
        dot = np.einsum("ij,ij->i", self.user_factors[user_rows], self.item_factors[item_rows])
        pred = (np.where(both, self.intercept, self.global_mean)
                + np.where(known_user, self.user_bias[user_rows], 0.0)
                + np.where(known_item, self.item_bias[item_rows], 0.0)
                + np.where(both, dot, 0.0))
        return np.clip(pred, *self.rating_range).astype(np.float32)


@dataclass
class NumbaMF(MFModel):
    """:class:`MFModel` fitted by :func:`fit_numba_mf`.

    Attributes
    ----------
    compile_seconds : float
        Wall time of the warm-up on tiny data that compiles the epoch kernel (near 0 once it
        has been compiled in this process).
    n_threads : int
        Threads (and shards) the epochs ran on.
    """

    compile_seconds: float = 0.0
    n_threads: int = 1


@dataclass
class SparkALS(MFModel):
    """:class:`MFModel` fitted by :func:`fit_spark_als`.

    Attributes
    ----------
    setup_seconds : float
        Wall time to start the Spark session and hand it the ratings.
    """

    setup_seconds: float = 0.0


def available() -> dict[str, str | None]:
    """Which contenders can run here.

    Returns
    -------
    dict
        ``{"numba": reason, "spark": reason}`` where ``reason`` is ``None`` if the contender
        can run, otherwise a sentence saying what is missing and how to install it.

    Examples
    --------
    >>> sorted(available())
    ['numba', 'spark']
    """
    numba_reason = None
    if importlib.util.find_spec("numba") is None:
        numba_reason = "numba is not installed: pip install 'skembedrec[bench]' (or numba)."
    spark_missing = []
    if importlib.util.find_spec("pyspark") is None:
        spark_missing.append("pyspark is not installed (pip install pyspark)")
    if shutil.which("java") is None:
        spark_missing.append("no java on PATH (install a JDK 17+, e.g. openjdk-17-jre)")
    spark_reason = ("Spark ALS skipped: " + "; ".join(spark_missing) + ".") if spark_missing \
        else None
    return {"numba": numba_reason, "spark": spark_reason}


def _check_codes(users: Any, items: Any, ratings: Any, n_users: int,
                 n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training triples as int32, int32, float32 arrays; raise if any code is out of range."""
    users, items = np.asarray(users), np.asarray(items)
    ratings = np.asarray(ratings, dtype=np.float32)
    if not (users.ndim == items.ndim == ratings.ndim == 1
            and len(users) == len(items) == len(ratings) > 0):
        raise ValueError(f"users, items and ratings must be non-empty 1-d arrays of one length; "
                         f"got shapes {users.shape}, {items.shape} and {ratings.shape}.")
    for name, codes, count in (("users", users, n_users), ("items", items, n_items)):
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"{name} must be integer codes 0..{count - 1}; got dtype "
                             f"{codes.dtype}. Encode the ids first (np.unique(..., "
                             "return_inverse=True)).")
        if codes.min() < 0 or codes.max() >= count:
            raise ValueError(f"{name} codes must lie in 0..{count - 1} (n_{name}={count}); got "
                             f"{codes.min()}..{codes.max()}. Pass n_{name} = the number of "
                             f"distinct {name}.")
    if not np.isfinite(ratings).all():
        raise ValueError("ratings contain NaN or infinity; drop those rows first.")
    return users.astype(np.int32, copy=False), items.astype(np.int32, copy=False), ratings


@functools.cache
def _sgd_epoch_kernel() -> Callable[..., None]:
    """The compiled epoch (built on first use, so this module imports without numba)."""
    import numba

    @numba.njit(parallel=True, fastmath=True, cache=False, nogil=True)
    def sgd_epoch(users, items, ratings, global_mean, user_bias, item_bias, user_factors,
                  item_factors, learning_rate, reg, n_shards):
        n_ratings, n_factors = len(ratings), user_factors.shape[1]
        for shard in numba.prange(n_shards):
            stop = n_ratings * (shard + 1) // n_shards
            for at in range(n_ratings * shard // n_shards, stop):
                user, item = users[at], items[at]
                pred = global_mean + user_bias[user] + item_bias[item]
                for k in range(n_factors):
                    pred += user_factors[user, k] * item_factors[item, k]
                err = ratings[at] - pred
                user_bias[user] += learning_rate * (err - reg * user_bias[user])
                item_bias[item] += learning_rate * (err - reg * item_bias[item])
                for k in range(n_factors):
                    user_k, item_k = user_factors[user, k], item_factors[item, k]
                    user_factors[user, k] += learning_rate * (err * item_k - reg * user_k)
                    item_factors[item, k] += learning_rate * (err * user_k - reg * item_k)

    return sgd_epoch  # type: ignore[no-any-return]


def _warm_up(n_threads: int) -> float:
    """Compile the kernel on tiny data of the real dtypes; return the seconds it took."""
    start = time.perf_counter()
    codes = np.arange(4, dtype=np.int32)
    factors = np.zeros((4, 2), dtype=np.float32)
    _sgd_epoch_kernel()(codes, codes, np.ones(4, np.float32), np.float32(1.0),
                        np.zeros(4, np.float32), np.zeros(4, np.float32), factors,
                        factors.copy(), np.float32(0.01), np.float32(0.02), n_threads)
    return time.perf_counter() - start


def fit_numba_mf(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int,
                 n_items: int, *, n_factors: int = 32, epochs: int = 20,
                 learning_rate: float = 0.01, reg: float = 0.025, lr_decay: float = 1.0,
                 n_threads: int = 2, random_state: int = 0) -> NumbaMF:
    """Fit biased matrix factorisation by parallel (Hogwild) SGD compiled with numba.

    Surprise's ``SVD`` update, epoch after epoch over one shuffled order of the ratings:
    biases start at 0, factors at normal(0, 0.1), the global mean is fixed; epoch ``t``
    (from 0) uses the learning rate ``learning_rate * lr_decay ** t``.

    Parameters
    ----------
    users, items : ndarray of int of shape (n_ratings,)
        User and item codes, ``0..n_users-1`` and ``0..n_items-1`` (int32 is used as is).
    ratings : ndarray of float of shape (n_ratings,)
        The ratings (float32 is used as is).
    n_users, n_items : int
        Numbers of users and items (rows of the factor matrices).
    n_factors : int, default=32
        Size of the latent factors.
    epochs : int, default=20
        Passes over the ratings.
    learning_rate : float, default=0.01
        SGD step of the first epoch.
    reg : float, default=0.025
        L2 penalty of the biases and factors (per update, as in Surprise).
    lr_decay : float, default=1.0
        Factor applied to the learning rate after each epoch.
    n_threads : int, default=2
        Threads, each running SGD over its own shard of the ratings; at most the
        ``NUMBA_NUM_THREADS`` numba started with (the number of cores by default).
    random_state : int, default=0
        Seed of the shuffle and the initial factors.

    Returns
    -------
    NumbaMF
        The fitted model, with ``fit_seconds``, ``epoch_seconds`` and ``compile_seconds``.

    Raises
    ------
    ImportError
        If numba is not installed.
    ValueError
        If a code is out of range, the arrays differ in length, or ``n_threads`` is too big.
    """
    if importlib.util.find_spec("numba") is None:
        raise ImportError(available()["numba"])
    import numba

    for name, value in (("n_factors", n_factors), ("epochs", epochs)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}.")
    pool_size = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    if not 1 <= n_threads <= pool_size:
        raise ValueError(f"n_threads must be in 1..{pool_size} (numba's "
                         f"thread pool, set by NUMBA_NUM_THREADS); got {n_threads}.")
    threads_before = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        compile_seconds = _warm_up(n_threads)
        start = time.perf_counter()
        users, items, ratings = _check_codes(users, items, ratings, n_users, n_items)
        rng = np.random.default_rng(random_state)
        # One shuffled, contiguous copy: each shard then streams through memory in order.
        order = rng.permutation(len(ratings))
        users, items, ratings = users[order], items[order], ratings[order]
        del order
        global_mean = np.float32(ratings.mean(dtype=np.float64))
        user_bias, item_bias = np.zeros(n_users, np.float32), np.zeros(n_items, np.float32)
        user_factors = rng.normal(0, INIT_STD, (n_users, n_factors)).astype(np.float32)
        item_factors = rng.normal(0, INIT_STD, (n_items, n_factors)).astype(np.float32)
        kernel, epoch_seconds, epoch_cpu_seconds = _sgd_epoch_kernel(), [], []
        for epoch in range(epochs):
            epoch_start, epoch_cpu_start = time.perf_counter(), time.process_time()
            kernel(users, items, ratings, global_mean, user_bias, item_bias, user_factors,
                   item_factors, np.float32(learning_rate * lr_decay**epoch), np.float32(reg),
                   n_threads)
            epoch_seconds.append(time.perf_counter() - epoch_start)
            epoch_cpu_seconds.append(time.process_time() - epoch_cpu_start)
        rating_range = (float(ratings.min()), float(ratings.max()))
        fit_seconds = time.perf_counter() - start
    finally:
        numba.set_num_threads(threads_before)
    return NumbaMF(global_mean=float(global_mean), intercept=float(global_mean),
                   user_bias=user_bias, item_bias=item_bias, user_factors=user_factors,
                   item_factors=item_factors, rating_range=rating_range,
                   fit_seconds=fit_seconds, epoch_seconds=epoch_seconds,
                   epoch_cpu_seconds=epoch_cpu_seconds, compile_seconds=compile_seconds,
                   n_threads=n_threads)


def _spark_factors(frame: Any, count: int, n_factors: int) -> np.ndarray:
    """A Spark ``(id, features)`` factor frame as a dense array (rows of absent ids are 0)."""
    rows = frame.toPandas()
    factors = np.zeros((count, n_factors), dtype=np.float32)
    factors[rows["id"].to_numpy()] = np.stack(rows["features"].to_numpy())
    return factors


def fit_spark_als(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int,
                  n_items: int, *, n_factors: int = 32, iterations: int = 10,
                  reg: float = 0.05, n_threads: int = 2,
                  random_state: int = 0) -> SparkALS | None:
    """Fit Spark MLlib's ALS in a ``local[n_threads]`` session, if pyspark and Java are here.

    Parameters
    ----------
    users, items : ndarray of int of shape (n_ratings,)
        User and item codes, ``0..n_users-1`` and ``0..n_items-1``.
    ratings : ndarray of float of shape (n_ratings,)
        The ratings.
    n_users, n_items : int
        Numbers of users and items.
    n_factors : int, default=32
        ALS ``rank``.
    iterations : int, default=10
        ALS ``maxIter``.
    reg : float, default=0.05
        ALS ``regParam``.
    n_threads : int, default=2
        Cores of the local Spark master.
    random_state : int, default=0
        ALS ``seed``.

    Returns
    -------
    SparkALS or None
        The fitted model (``setup_seconds``: session start and data transfer; ``fit_seconds``:
        ALS and the factors' copy to NumPy), or ``None`` after printing why Spark cannot run.
    """
    reason = available()["spark"]
    if reason is not None:
        print(reason)
        return None
    import pandas as pd
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    users, items, ratings = _check_codes(users, items, ratings, n_users, n_items)
    start = time.perf_counter()
    spark = (SparkSession.builder.master(f"local[{n_threads}]").appName("mf_reference")
             .config("spark.driver.memory", "4g")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
    try:
        frame = spark.createDataFrame(pd.DataFrame(
            {"user": users, "item": items, "rating": ratings})).cache()
        frame.count()
        setup_seconds = time.perf_counter() - start
        start = time.perf_counter()
        als = ALS(rank=n_factors, maxIter=iterations, regParam=reg, userCol="user",
                  itemCol="item", ratingCol="rating", seed=random_state)
        model = als.fit(frame)
        user_factors = _spark_factors(model.userFactors, n_users, n_factors)
        item_factors = _spark_factors(model.itemFactors, n_items, n_factors)
        fit_seconds = time.perf_counter() - start
    finally:
        spark.stop()
    global_mean = float(ratings.mean(dtype=np.float64))
    return SparkALS(global_mean=global_mean, intercept=0.0,
                    user_bias=np.zeros(n_users, np.float32),
                    item_bias=np.zeros(n_items, np.float32), user_factors=user_factors,
                    item_factors=item_factors,
                    rating_range=(float(ratings.min()), float(ratings.max())),
                    fit_seconds=fit_seconds, epoch_seconds=[fit_seconds / iterations],
                    setup_seconds=setup_seconds)


# -- the command line --------------------------------------------------------------------------


def make_split(size: str, random_state: int = 0) -> dict[str, Any]:
    """``make_ratings`` data of a MovieLens shape, encoded to codes and split train / test.

    Parameters
    ----------
    size : {"1M", "10M", "25M"}
        The MovieLens release whose numbers of users, items and ratings to copy.
    random_state : int, default=0
        Seed of ``make_ratings``.

    Returns
    -------
    dict
        ``train`` and ``test``: ``(users, items, ratings)`` int32, int32, float32 arrays (the
        first ``n`` ratings, then the next 5 %; test codes of users or items absent from
        training are -1); ``n_users`` and ``n_items`` (distinct in training).
    """
    from skembedrec.datasets import make_ratings

    n_train, n_users, n_items = SIZES[size]
    n_test = round(n_train * TEST_FRACTION)
    X, y = make_ratings(n_users=n_users, n_items=n_items, n_ratings=n_train + n_test,
                        random_state=random_state, compact=True)
    user_ids, item_ids = X["user_id"].to_numpy(), X["item_id"].to_numpy()
    ratings = y.to_numpy(dtype=np.float32)
    del X, y
    (user_codes, n_users), (item_codes, n_items) = (_encode(user_ids, n_train),
                                                    _encode(item_ids, n_train))
    return {"train": (user_codes[:n_train], item_codes[:n_train], ratings[:n_train]),
            "test": (user_codes[n_train:], item_codes[n_train:], ratings[n_train:]),
            "n_users": n_users, "n_items": n_items}


def _encode(ids: np.ndarray, n_train: int) -> tuple[np.ndarray, int]:
    """Codes of ``ids`` in the sorted vocabulary of the first ``n_train`` (-1 if absent)."""
    vocabulary = np.unique(ids[:n_train])
    codes = np.searchsorted(vocabulary, ids).astype(np.int32)
    codes[vocabulary[np.minimum(codes, len(vocabulary) - 1)] != ids] = -1
    return codes, len(vocabulary)


def figures(model: MFModel, test_users: np.ndarray, test_items: np.ndarray,
            test_ratings: np.ndarray, n_train: int) -> dict[str, float]:
    """The figures of a fit, for a table next to the estimator's.

    Parameters
    ----------
    model : MFModel
        A model from :func:`fit_numba_mf` or :func:`fit_spark_als`.
    test_users, test_items : ndarray of int of shape (n_test,)
        Held-out codes (-1, or any code out of range, for an unknown user or item).
    test_ratings : ndarray of shape (n_test,)
        Held-out ratings.
    n_train : int
        Ratings the model was fitted on (for the throughputs).

    Returns
    -------
    dict
        ``test_rmse``; ``fit_s``; ``start_up_s`` (compilation or Spark set-up);
        ``epoch_s``: the median epoch's wall seconds (SGD) or the mean iteration's (ALS);
        ``ratings_per_s`` = ``n_train / epoch_s``; ``ratings_per_cpu_s`` from the median
        epoch's CPU seconds (NaN for ALS, whose work is in the JVM).
    """
    errors = model.predict(test_users, test_items) - np.asarray(test_ratings, np.float32)
    result = {"test_rmse": float(np.sqrt(np.mean(errors.astype(np.float64) ** 2))),
              "fit_s": model.fit_seconds, "start_up_s": float("nan"),
              "epoch_s": float(np.median(model.epoch_seconds)),
              "ratings_per_cpu_s": float("nan")}
    if isinstance(model, NumbaMF):
        result["start_up_s"] = model.compile_seconds
        result["ratings_per_cpu_s"] = n_train / float(np.median(model.epoch_cpu_seconds))
    elif isinstance(model, SparkALS):
        result["start_up_s"] = model.setup_seconds
    result["ratings_per_s"] = n_train / result["epoch_s"]
    return result


HEADER = ("| contender | ratings | users x items | threads | factors | epochs | compile / "
          "set-up s | fit s | s / epoch | ratings/s an epoch | ratings/CPU s | test RMSE | "
          "peak RSS GB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def _row(name: str, model: MFModel, split: dict[str, Any], threads: int, factors: int,
         epochs: int, peak_gb: float | None) -> str:
    n_train = len(split["train"][2])
    test_users, test_items, test_ratings = split["test"]
    got = figures(model, test_users, test_items, test_ratings, n_train)
    peak = f"{peak_gb:.2f}" if peak_gb is not None else "n/a"
    return (f"| {name} | {n_train:,} | {split['n_users']:,} x {split['n_items']:,} | {threads} "
            f"| {factors} | {epochs} | {got['start_up_s']:.1f} | {got['fit_s']:.1f} | "
            f"{got['epoch_s']:.3f} | {got['ratings_per_s'] / 1e6:.1f}M | "
            f"{got['ratings_per_cpu_s'] / 1e6:.1f}M | {got['test_rmse']:.4f} | {peak} |")


def main(argv: list[str] | None = None) -> None:
    """Generate the split, fit the contenders asked for, print one markdown row each."""
    from scale import _reset_peak_rss, _status_gb  # a sibling script (run from this folder)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="10M")
    parser.add_argument("--contender", choices=("numba", "spark", "all"), default="numba")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20, help="SGD epochs (numba)")
    parser.add_argument("--iterations", type=int, default=10, help="ALS iterations (spark)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    split = make_split(args.size)
    print(f"data: {time.perf_counter() - start:.1f} s, RSS {_status_gb('VmRSS') or 0:.2f} GB",
          file=sys.stderr)
    print(HEADER)
    names = ("numba", "spark") if args.contender == "all" else (args.contender,)
    users, items, ratings = split["train"]
    for name in names:
        _reset_peak_rss()
        model: MFModel | None
        if name == "numba":
            model = fit_numba_mf(users, items, ratings, split["n_users"], split["n_items"],
                                 n_factors=args.factors, epochs=args.epochs,
                                 n_threads=args.threads)
            rounds = args.epochs
        else:
            model = fit_spark_als(users, items, ratings, split["n_users"], split["n_items"],
                                  n_factors=args.factors, iterations=args.iterations,
                                  n_threads=args.threads)
            rounds = args.iterations
        if model is not None:
            print(_row(name, model, split, args.threads, args.factors, rounds,
                       _status_gb("VmHWM")), flush=True)
    peak_process = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(f"process peak RSS {peak_process:.2f} GB", file=sys.stderr)


if __name__ == "__main__":
    main()
