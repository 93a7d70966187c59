"""Time-aware cross-validation splitters for ratings, usable as ``cv=`` in scikit-learn.

They are not partitions (the first ratings by time are never tested), so scikit-learn's
``cross_val_predict`` refuses them; predict each split's test ratings instead (see the
Evaluating over time guide).

A random split (``KFold``, ``train_test_split``) lets a model train on ratings given after
the ones it is tested on, and puts almost every test user in training: both flatter a
recommender compared with its use, where it predicts the future of users it may never have
seen. The two splitters here keep time in order:

* :class:`GlobalTimeSplit` cuts the ratings at points in time: train on everything before
  a cut, test on the block after it (rolling origins, as
  :class:`~sklearn.model_selection.TimeSeriesSplit` but on a time column of ``X``).
* :class:`PerUserTimeSplit` holds out each user's last ratings (leave-last-k or a last
  fraction) and trains on that user's earlier ones.

Both read the columns they need from ``X`` and nothing else, so ``X`` can be the frame
given to :class:`~skembedrec.EmbeddingRatingRegressor`, which ignores columns other than
its user and item columns. They yield positions (row numbers) into ``X``, in row order.

Times may be unix seconds (ints or floats), ``datetime64`` values or pandas Timestamps;
timezone-aware times are converted to UTC. A missing (NaN, None, NaT) or non-time value, or
a column that mixes kinds (numbers and Timestamps, naive and aware Timestamps), raises a
``ValueError`` that names the column. ``X`` is never modified.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator
from sklearn.model_selection._split import GroupsConsumerMixin
from sklearn.utils.validation import check_consistent_length

from ._time import missing_error as _missing_error
from ._time import time_keys as _time_keys

__all__ = ["GlobalTimeSplit", "PerUserTimeSplit"]

# Where an array X keeps each column, as in the estimator (user, item) plus the time.
_USER_POSITION, _TIME_POSITION = 0, 2
# float products such as 0.1 * 30 = 3.0000000000000004 must not round up to 4 ratings.
_CEIL_SLACK = 1e-9


def _int_param(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be an int >= {minimum}; got {value!r} of type {type(value).__name__}."
        )
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}.")
    return int(value)


def _fraction_param(value: Any, name: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a float in (0, 1); got {value!r}.")
    if not 0 < float(value) < 1:
        raise ValueError(f"{name} must be a float in (0, 1); got {value}.")
    return float(value)


def _fraction_count(fraction: float, n: Any) -> Any:
    """ceil(fraction * n), for an int or an array of ints."""
    return np.ceil(np.multiply(fraction, n) - _CEIL_SLACK).astype(np.int64)


def _n_rows(X: Any) -> int:
    if X is None:
        raise ValueError("X is required: the splitters read the times (and users) from it.")
    if hasattr(X, "shape") and len(X.shape) == 2:
        return int(X.shape[0])
    return len(X)


def _column(X: Any, name: Any, position: int, param: str) -> pd.Series:
    """The column ``name`` of a DataFrame, or of an array the column at ``position`` (an int
    ``name`` picks the position instead). Read only: never a copy that is written to."""
    if isinstance(X, pd.DataFrame):
        if name not in X.columns:
            raise ValueError(
                f"X has no column {name!r} ({param}); it has columns {list(X.columns)}. "
                f"Name the column with {param}=."
            )
        values = X[name]
        if isinstance(values, pd.DataFrame):
            raise ValueError(f"X has several columns named {name!r} ({param}); it must be unique.")
        return values
    if hasattr(X, "tocsr") or hasattr(X, "todense"):
        raise TypeError("X must be a DataFrame or a dense 2-D array; got a sparse matrix.")
    if isinstance(X, pd.Series):
        raise ValueError("X must be 2-D (a DataFrame or a 2-D array); got a Series.")
    # A list of rows goes through pandas so that each column keeps its own type (numpy
    # would turn [["ann", 1, 1.5e9]] into strings).
    frame = pd.DataFrame(list(X)) if not hasattr(X, "shape") else None
    array = frame.to_numpy(dtype=object) if frame is not None else np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"X must be 2-D (a DataFrame or a 2-D array); got {array.ndim}-D.")
    index = int(name) if isinstance(name, Integral) and not isinstance(name, bool) else position
    if not 0 <= index < array.shape[1]:
        raise ValueError(
            f"X has {array.shape[1]} column(s), so it has no column {index} ({param}). Pass a "
            f"DataFrame with a {name!r} column, or an array whose column {index} holds it."
        )
    if frame is not None:
        return frame.iloc[:, index]
    return pd.Series(array[:, index], copy=False)


def _check_lengths(X: Any, y: Any, groups: Any) -> int:
    n_rows = _n_rows(X)
    check_consistent_length(np.empty(n_rows), y, groups)
    if n_rows == 0:
        raise ValueError("X is empty: it has 0 rows; a split needs ratings to split.")
    return n_rows


class _TimeSplitter(BaseCrossValidator):
    """What both splitters share: a fixed number of splits, known without the data."""

    n_splits: int

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Return the number of splits, ``n_splits``.

        Parameters
        ----------
        X, y, groups : object, default=None
            Ignored, exist for API compatibility.

        Returns
        -------
        n_splits : int
            The number of (train, test) pairs that ``split`` yields.
        """
        return _int_param(self.n_splits, "n_splits", 1)


class GlobalTimeSplit(_TimeSplitter):
    """Train on the ratings before a point in time, test on those after it.

    The ratings are sorted by time. Split ``i`` (of ``n_splits``) tests on the ``i``-th of
    the last ``n_splits`` blocks of ``test_size`` ratings and trains on every rating before
    that block, less ``gap`` ratings just before it: the origin rolls forward and each
    training set holds the previous one, as in
    :class:`~sklearn.model_selection.TimeSeriesSplit`. With ``n_splits=1,
    test_size=0.1`` it is the usual "first 90 % by time to train, last 10 % to test".

    Ratings that share a time are never separated by a cut: each cut moves back to the
    first rating with the cut's time, so those ratings all go to the later side (the test
    block, or the gap). Every test rating is therefore later than every training rating,
    and a block may be a few ratings larger than ``test_size``.

    Users and items are not looked at: a user whose first rating comes after the cut is
    only in the test set (about 71 % of the test ratings of MovieLens 100K's 90/10 cut).

    Parameters
    ----------
    n_splits : int, default=5
        Number of splits (rolling origins), at least 1.
    test_size : int or float, default=None
        Ratings per test block: an int is a count, a float in (0, 1) a fraction of all
        ratings, rounded up. None: ``n_samples // (n_splits + 1)``.
    time_col : str or int, default="timestamp"
        The time column: a column name of a DataFrame ``X``; for an array ``X``, column 2
        unless an int gives the position.
    gap : int, default=0
        Ratings left out of training just before each test block (so that training ends
        some time before the test period).

    See Also
    --------
    PerUserTimeSplit : Hold out each user's last ratings.

    Notes
    -----
    ``groups`` are accepted and ignored, with a warning, as scikit-learn's
    ``TimeSeriesSplit`` does.

    Examples
    --------
    >>> import pandas as pd
    >>> from skembedrec.model_selection import GlobalTimeSplit
    >>> X = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3], "item_id": [1, 2, 1, 3, 2, 3],
    ...                   "timestamp": [50, 10, 20, 40, 30, 60]})
    >>> for train, test in GlobalTimeSplit(n_splits=2, test_size=2).split(X):
    ...     print(train, test)
    [1 2] [3 4]
    [1 2 3 4] [0 5]
    >>> train, test = next(GlobalTimeSplit(n_splits=1, test_size=0.5).split(X))
    >>> print(train, test)
    [1 2 4] [0 3 5]
    """

    def __init__(self, n_splits: int = 5, *, test_size: int | float | None = None,
                 time_col: str | int = "timestamp", gap: int = 0):
        self.n_splits = n_splits
        self.test_size = test_size
        self.time_col = time_col
        self.gap = gap
        self._check_params()

    def _check_params(self) -> None:
        _int_param(self.n_splits, "n_splits", 1)
        _int_param(self.gap, "gap", 0)
        if self.test_size is None:
            return
        if isinstance(self.test_size, Integral) and not isinstance(self.test_size, bool):
            _int_param(self.test_size, "test_size", 1)
        elif isinstance(self.test_size, Real) and not isinstance(self.test_size, bool):
            _fraction_param(self.test_size, "test_size")
        else:
            raise TypeError(
                "test_size must be None, an int >= 1 or a float in (0, 1); got "
                f"{self.test_size!r}."
            )

    def split(self, X: Any, y: Any = None, groups: Any = None
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Generate the (train, test) positions of each split, oldest origin first.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The ratings, with a time column (see ``time_col``).
        y : array-like of shape (n_samples,), default=None
            Ignored; checked for its length only.
        groups : array-like of shape (n_samples,), default=None
            Ignored, with a UserWarning when given.

        Yields
        ------
        train : ndarray of int
            Positions of the training ratings, in row order.
        test : ndarray of int
            Positions of the test ratings, in row order.
        """
        if groups is not None:
            warnings.warn(
                "The groups parameter is ignored by GlobalTimeSplit: it cuts all ratings at "
                "one time. Use PerUserTimeSplit to split each user (or group) by time.",
                UserWarning, stacklevel=2,
            )
        return self._split(X, y, groups)

    def _split(self, X: Any, y: Any, groups: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        self._check_params()
        n_rows = _check_lengths(X, y, groups)
        times = _time_keys(_column(X, self.time_col, _TIME_POSITION, "time_col"), self.time_col)
        order = np.argsort(times, kind="stable")
        sorted_times = times[order]
        test_starts, test_size = self._test_starts(n_rows)

        def snap(position: int) -> int:
            # Back to the first rating sharing the time at ``position``: ties never straddle.
            if position >= n_rows:
                return n_rows
            return int(np.searchsorted(sorted_times, sorted_times[position], side="left"))

        bounds = [snap(start) for start in test_starts] + [n_rows]
        for i in range(self.n_splits):
            train_end = snap(test_starts[i] - self.gap)
            if train_end == 0 or bounds[i] == bounds[i + 1]:
                side = "training" if train_end == 0 else "test"
                raise ValueError(
                    f"Split {i} of GlobalTimeSplit would have an empty {side} set: the ratings "
                    f"around its cut all share one time. Use fewer splits (n_splits="
                    f"{self.n_splits}) or a larger test_size (now {test_size} ratings)."
                )
            yield np.sort(order[:train_end]), np.sort(order[bounds[i]:bounds[i + 1]])

    def _test_starts(self, n_rows: int) -> tuple[list[int], int]:
        n_splits, gap = self.n_splits, self.gap
        if self.test_size is None:
            test_size = n_rows // (n_splits + 1)
        elif isinstance(self.test_size, Integral):
            test_size = int(self.test_size)
        else:
            test_size = int(_fraction_count(self.test_size, n_rows))
        if test_size < 1 or n_rows - gap - n_splits * test_size <= 0:
            raise ValueError(
                f"Too many splits (n_splits={n_splits}) for {n_rows} ratings with "
                f"test_size={self.test_size} ({test_size} ratings per block) and gap={gap}: "
                "every split needs at least one training rating."
            )
        first = n_rows - n_splits * test_size
        return [first + i * test_size for i in range(n_splits)], test_size


class PerUserTimeSplit(GroupsConsumerMixin, _TimeSplitter):
    """Hold out each user's last ratings by time; train on the earlier ones.

    For each user, the ratings are sorted by time (equal times keep their row order) and the
    last ``last_k`` of them, or the last ``ceil(last_fraction * n_ratings)``, go to the test
    set. Every test rating of a user is then at least as late as each of that user's training
    ratings. Other users' ratings are not cut at the same time: a training rating of one
    user may be later than a test rating of another (use :class:`GlobalTimeSplit` to rule
    that out).

    A user takes part in a split only if at least ``min_train`` of its ratings stay in
    training; users with fewer ratings stay all in training, so every test user is known
    to the model (when ``min_train >= 1``).

    With ``n_splits > 1`` the origin rolls back per user: split ``i`` tests the block of
    ratings that ends ``n_splits - 1 - i`` blocks before the user's last rating, trains on
    the user's ratings before that block and leaves out the later ones (which would be the
    user's future). The last split is the plain leave-last-k split.

    Parameters
    ----------
    n_splits : int, default=1
        Number of successive per-user origins, at least 1.
    last_k : int, default=None
        Ratings per user in each test block, at least 1. Give this or ``last_fraction``.
    last_fraction : float, default=None
        Fraction in (0, 1) of each user's ratings per test block, rounded up (a user with
        any test rating has at least one); ``n_splits * last_fraction`` must be below 1.
    user_col : str or int, default="user_id"
        The user column: a column name of a DataFrame ``X``; for an array ``X``, column 0
        unless an int gives the position. Not read when ``groups`` are given.
    time_col : str or int, default="timestamp"
        The time column: a column name of a DataFrame ``X``; for an array ``X``, column 2
        unless an int gives the position.
    min_train : int, default=1
        Ratings of a user that must stay in training for the user to be tested, at least
        0 (0 lets a user's every rating be tested, as an unknown user).

    See Also
    --------
    GlobalTimeSplit : One cut in time for all users.

    Notes
    -----
    ``groups``, when given to ``split`` (or to ``GridSearchCV.fit(..., groups=...)``), are
    used in place of the user column: each group's last ratings are held out. ``X`` then
    needs no user column. The splitter requests ``groups`` under scikit-learn's metadata
    routing, as ``GroupKFold`` does.

    Examples
    --------
    >>> import pandas as pd
    >>> from skembedrec.model_selection import PerUserTimeSplit
    >>> X = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 3], "item_id": [1, 2, 3, 1, 2, 3],
    ...                   "timestamp": [30, 10, 20, 40, 50, 60]})
    >>> train, test = next(PerUserTimeSplit(last_k=1).split(X))
    >>> print(train, test)
    [1 2 3 5] [0 4]
    >>> for train, test in PerUserTimeSplit(n_splits=2, last_k=1).split(X):
    ...     print(train, test)
    [1 3 4 5] [2]
    [1 2 3 5] [0 4]
    """

    def __init__(self, n_splits: int = 1, *, last_k: int | None = None,
                 last_fraction: float | None = None, user_col: str | int = "user_id",
                 time_col: str | int = "timestamp", min_train: int = 1):
        self.n_splits = n_splits
        self.last_k = last_k
        self.last_fraction = last_fraction
        self.user_col = user_col
        self.time_col = time_col
        self.min_train = min_train
        self._check_params()

    def _check_params(self) -> None:
        _int_param(self.n_splits, "n_splits", 1)
        _int_param(self.min_train, "min_train", 0)
        if (self.last_k is None) == (self.last_fraction is None):
            raise ValueError(
                "PerUserTimeSplit needs exactly one of last_k (ratings per user to hold out) "
                f"and last_fraction (a fraction of each user's ratings); got last_k="
                f"{self.last_k!r} and last_fraction={self.last_fraction!r}."
            )
        if self.last_k is not None:
            _int_param(self.last_k, "last_k", 1)
        else:
            fraction = _fraction_param(self.last_fraction, "last_fraction")
            if self.n_splits * fraction >= 1:
                raise ValueError(
                    f"n_splits * last_fraction must be below 1 so that ratings remain to train "
                    f"on; got {self.n_splits} * {self.last_fraction}."
                )

    def split(self, X: Any, y: Any = None, groups: Any = None
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Generate the (train, test) positions of each split, earliest origin first.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The ratings, with a time column and, unless ``groups`` are given, a user column.
        y : array-like of shape (n_samples,), default=None
            Ignored; checked for its length only.
        groups : array-like of shape (n_samples,), default=None
            Used in place of the user column when given.

        Yields
        ------
        train : ndarray of int
            Positions of the training ratings, in row order.
        test : ndarray of int
            Positions of the test ratings, in row order.
        """
        self._check_params()
        _check_lengths(X, y, groups)
        user_name: str | int
        if groups is not None:
            users, user_name = pd.Series(np.asarray(groups), copy=False), "groups"
        else:
            users = _column(X, self.user_col, _USER_POSITION, "user_col")
            user_name = self.user_col
        missing = users.isna().to_numpy()
        if missing.any():
            raise _missing_error(missing, user_name, "user")
        times = _time_keys(_column(X, self.time_col, _TIME_POSITION, "time_col"), self.time_col)
        return self._split(pd.factorize(users)[0], times)

    def _split(self, codes: np.ndarray, times: np.ndarray
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # Rows sorted by user, then time; both sorts stable, so ties keep the row order.
        order = np.argsort(times, kind="stable")
        order = order[np.argsort(codes[order], kind="stable")]
        counts = np.bincount(codes)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size) - starts[codes[order]]
        n_user = counts[codes]
        block = (np.full_like(n_user, self.last_k) if self.last_k is not None
                 else _fraction_count(float(self.last_fraction), n_user))  # type: ignore[arg-type]
        for i in range(self.n_splits):
            test_start = n_user - (self.n_splits - i) * block
            tested = test_start >= self.min_train
            test = tested & (rank >= test_start) & (rank < test_start + block)
            train = ~tested | (rank < test_start)
            if not test.any():
                raise ValueError(
                    f"Split {i} of PerUserTimeSplit has no test rating: no user has enough "
                    f"ratings (the largest has {counts.max()}) to hold out "
                    f"{self._held_out()} while keeping min_train={self.min_train} in "
                    "training. Lower last_k, last_fraction, n_splits or min_train."
                )
            yield np.flatnonzero(train), np.flatnonzero(test)

    def _held_out(self) -> str:
        per_block = (f"last_k={self.last_k}" if self.last_k is not None
                     else f"last_fraction={self.last_fraction}")
        return f"{self.n_splits} block(s) of {per_block}"
