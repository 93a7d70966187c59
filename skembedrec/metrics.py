"""Ranking metrics over held-out ratings, and scorers for model selection.

Each metric ranks, per user, that user's held-out items by predicted rating, compares the
top ``k`` with the true ratings, and averages over users. All four share one signature,
``metric(users, y_true, y_pred, *, k=10, threshold=...)``, where the three arrays are aligned
row by row (one row per held-out rating), so the rows of a test split and the output of
``predict`` on them can be passed directly.

Definitions, for a user ``u`` with ``n_u`` held-out ratings, of which ``R_u`` are relevant
(``y_true >= threshold``), and whose ``m = min(k, n_u)`` rows with the highest ``y_pred``
form the top (ties in ``y_pred`` keep the row order):

* precision@k: relevant rows in the top / ``m``. Every user counts; a user with no relevant
  held-out item scores 0.
* recall@k: relevant rows in the top / ``R_u``. Users with ``R_u = 0`` are left out.
* MAP@k: the mean over users of AP@k = sum, over relevant rows at positions ``i <= k``, of
  precision@i, divided by ``min(k, R_u)``. Users with ``R_u = 0`` are left out.
* NDCG@k: DCG@k / ideal DCG@k with DCG@k = sum over positions ``i <= k`` of
  ``gain_i / log2(i + 1)``. Gains are the true ratings (graded, as in
  :func:`sklearn.metrics.ndcg_score`), or 0/1 relevance when ``threshold`` is given. Users
  whose ideal DCG is 0 are left out.

When no user is left to average over, the metric is NaN and an
:class:`~sklearn.exceptions.UndefinedMetricWarning` is issued.

``sample_weight`` (one weight per row, >= 0) weights users, not rows: a ranking is scored
per user, as :func:`sklearn.metrics.ndcg_score` scores each query and weights the
queries. A user's weight is the mean weight of their rows (with one weight per user
repeated on each of their rows, that weight), and the metric is the weighted mean over the
users it averages over. Every row is still ranked: a row of weight 0 is not dropped.

The scorers (:func:`make_ranking_scorer`) take ``sample_weight`` as scikit-learn's
scorers do: under metadata routing, only after ``scorer.set_score_request(sample_weight=
True)``; routed weights that the scorer neither requested nor declined
(``set_score_request(sample_weight=False)``) are refused with scikit-learn's
``UnsetMetadataPassedError``, never silently ignored.

Relation to scikit-learn: ``ndcg_at_k(users, y_true, y_pred, k=k)`` is the mean over users
of ``sklearn.metrics.ndcg_score([y_true_u], [y_pred_u], k=k)`` for users with at least two
held-out ratings (scikit-learn refuses a single one), and 1.0 for a user with one, provided
``y_pred`` has no ties within a user (scikit-learn averages the gains of tied rows).
"""

from __future__ import annotations

import warnings
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn import get_config
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.utils.metadata_routing import MetadataRequest

from ._validation import (
    check_no_missing,
    check_positive_int,
    check_rows,
    column,
    finite_numbers,
)

__all__ = [
    "make_ranking_scorer",
    "map_at_k",
    "ndcg_at_10_scorer",
    "ndcg_at_k",
    "precision_at_10_scorer",
    "precision_at_k",
    "recall_at_k",
]


class _Ranked:
    """The held-out rows grouped by user and sorted by ``y_pred`` within each user.

    ``order`` sorts the rows by user, best prediction first (ties keep the row order);
    ``ideal_order`` sorts them by user, best true rating first. Both give each user the same
    block of positions, so gains taken in either order line up position by position.
    """

    def __init__(self, users: Any, y_true: Any, y_pred: Any, k: Any, name: str,
                 sample_weight: Any = None):
        k = check_positive_int(k, "k")
        users = column(users, "users")
        y_true = finite_numbers(y_true, "y_true")
        y_pred = finite_numbers(y_pred, "y_pred")
        lengths = {"users": len(users), "y_true": len(y_true), "y_pred": len(y_pred)}
        if sample_weight is not None:
            sample_weight = finite_numbers(sample_weight, "sample_weight")
            lengths["sample_weight"] = len(sample_weight)
            if (sample_weight < 0).any():
                raise ValueError(f"{name}: sample_weight must be >= 0; got a negative weight.")
        if len(set(lengths.values())) > 1:
            raise ValueError(f"users, y_true, y_pred (and sample_weight) must have the same "
                             f"length; got {lengths}.")
        if len(users) == 0:
            raise ValueError(f"{name} needs at least one held-out rating; got 0 rows.")
        check_no_missing(users, "users")
        group, _ = pd.factorize(users)
        self.k = int(k)
        self.y_true = y_true
        self.order = np.lexsort((-y_pred, group))
        self.ideal_order = np.lexsort((-y_true, group))
        self.group = group[self.order]
        self.n_rows = np.bincount(group)
        self.starts = np.cumsum(self.n_rows) - self.n_rows
        # 0-based position of each sorted row within its user's ranking.
        self.position = np.arange(len(group)) - np.repeat(self.starts, self.n_rows)
        self.in_top = self.position < self.k
        # Each user's weight: the mean weight of their rows (None: unweighted).
        self.user_weight = None if sample_weight is None else (
            np.bincount(group, weights=sample_weight) / self.n_rows)

    def per_user(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` (given in sorted order) for each user."""
        return np.bincount(self.group, weights=values, minlength=len(self.n_rows))

    def cumulative(self, values: np.ndarray) -> np.ndarray:
        """Running sum of ``values`` (in sorted order) within each user's ranking."""
        total = np.cumsum(values, dtype=np.float64)
        before = np.r_[0.0, total[:-1]][self.starts]
        return total - np.repeat(before, self.n_rows)

    def discount(self) -> np.ndarray:
        """``1 / log2(position + 1)`` (1-based) inside the top ``k``, 0 below it."""
        return np.where(self.in_top, 1.0 / np.log2(self.position + 2.0), 0.0)


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, Real):
        raise TypeError(f"threshold must be a number; got {threshold!r}.")
    return float(threshold)


def _mean_over(values: np.ndarray, included: np.ndarray, name: str, reason: str,
               weights: np.ndarray | None) -> float:
    if included.any() and weights is not None and not weights[included].sum() > 0:
        included = np.zeros_like(included)
        reason = "the users it averages over have a total sample_weight of 0"
    if not included.any():
        warnings.warn(
            f"{name} is undefined: {reason}; returning NaN.", UndefinedMetricWarning, stacklevel=3
        )
        return float("nan")
    if weights is None:
        return float(values[included].mean())
    return float(np.average(values[included], weights=weights[included]))


def precision_at_k(
    users: Any, y_true: Any, y_pred: Any, *, k: int = 10, threshold: float = 4.0,
    sample_weight: Any = None,
) -> float:
    """Precision@k: the share of relevant items among each user's top ``k``, averaged.

    See the module docstring for the exact definition.

    Parameters
    ----------
    users : array-like of shape (n_ratings,)
        The user id of each held-out rating.
    y_true : array-like of shape (n_ratings,)
        The true ratings.
    y_pred : array-like of shape (n_ratings,)
        The predicted ratings (or any score; only the order within a user matters).
    k : int, default=10
        Length of each user's ranking. A user with fewer than ``k`` held-out ratings is
        scored on those (the denominator is ``min(k, n_u)``).
    threshold : float, default=4.0
        A held-out item is relevant when its true rating is ``>= threshold``.
    sample_weight : array-like of shape (n_ratings,), default=None
        Weight of each row (>= 0); a user weighs the mean weight of their rows in the
        average over users (see the module docstring). None: users weigh the same.

    Returns
    -------
    precision : float
        In [0, 1], averaged over all users (those without a relevant item count as 0).

    Examples
    --------
    >>> precision_at_k([1, 1, 1, 2, 2], [5, 2, 4, 1, 5], [4.5, 4.0, 3.0, 3.5, 3.0], k=2)
    0.5
    """
    ranked = _Ranked(users, y_true, y_pred, k, "precision_at_k", sample_weight)
    relevant = (ranked.y_true >= _check_threshold(threshold))[ranked.order]
    hits = ranked.per_user(relevant & ranked.in_top)
    every_user = np.ones(len(hits), dtype=bool)
    return _mean_over(hits / np.minimum(ranked.k, ranked.n_rows), every_user, "precision_at_k",
                      "no user", ranked.user_weight)


def recall_at_k(
    users: Any, y_true: Any, y_pred: Any, *, k: int = 10, threshold: float = 4.0,
    sample_weight: Any = None,
) -> float:
    """Recall@k: the share of each user's relevant items found in their top ``k``, averaged.

    See the module docstring for the exact definition.

    Parameters
    ----------
    users : array-like of shape (n_ratings,)
        The user id of each held-out rating.
    y_true : array-like of shape (n_ratings,)
        The true ratings.
    y_pred : array-like of shape (n_ratings,)
        The predicted ratings.
    k : int, default=10
        Length of each user's ranking.
    threshold : float, default=4.0
        A held-out item is relevant when its true rating is ``>= threshold``.
    sample_weight : array-like of shape (n_ratings,), default=None
        Weight of each row (>= 0); a user weighs the mean weight of their rows in the
        average over users (see the module docstring). None: users weigh the same.

    Returns
    -------
    recall : float
        In [0, 1], averaged over the users with at least one relevant held-out item (the
        others are left out); NaN, with a warning, when there is none.

    Examples
    --------
    >>> recall_at_k([1, 1, 1, 2, 2], [5, 2, 4, 1, 5], [4.5, 4.0, 3.0, 3.5, 3.0], k=2)
    0.75
    """
    ranked = _Ranked(users, y_true, y_pred, k, "recall_at_k", sample_weight)
    relevant = (ranked.y_true >= _check_threshold(threshold))[ranked.order]
    hits = ranked.per_user(relevant & ranked.in_top)
    n_relevant = ranked.per_user(relevant)
    included = n_relevant > 0
    recall = np.divide(hits, n_relevant, out=np.zeros_like(hits), where=included)
    return _mean_over(recall, included, "recall_at_k", f"no true rating is >= {threshold}",
                      ranked.user_weight)


def map_at_k(
    users: Any, y_true: Any, y_pred: Any, *, k: int = 10, threshold: float = 4.0,
    sample_weight: Any = None,
) -> float:
    """MAP@k: mean over users of the average precision of their top ``k``.

    See the module docstring for the exact definition.

    Parameters
    ----------
    users : array-like of shape (n_ratings,)
        The user id of each held-out rating.
    y_true : array-like of shape (n_ratings,)
        The true ratings.
    y_pred : array-like of shape (n_ratings,)
        The predicted ratings.
    k : int, default=10
        Length of each user's ranking.
    threshold : float, default=4.0
        A held-out item is relevant when its true rating is ``>= threshold``.
    sample_weight : array-like of shape (n_ratings,), default=None
        Weight of each row (>= 0); a user weighs the mean weight of their rows in the
        average over users (see the module docstring). None: users weigh the same.

    Returns
    -------
    map : float
        In [0, 1], averaged over the users with at least one relevant held-out item (the
        others are left out); NaN, with a warning, when there is none.

    Examples
    --------
    >>> map_at_k([1, 1, 1, 2, 2], [5, 2, 4, 1, 5], [4.5, 4.0, 3.0, 3.5, 3.0], k=3)
    0.6666666666666666
    """
    ranked = _Ranked(users, y_true, y_pred, k, "map_at_k", sample_weight)
    relevant = (ranked.y_true >= _check_threshold(threshold))[ranked.order]
    precision_here = ranked.cumulative(relevant) / (ranked.position + 1.0)
    summed = ranked.per_user(np.where(relevant & ranked.in_top, precision_here, 0.0))
    n_relevant = ranked.per_user(relevant)
    included = n_relevant > 0
    average_precision = summed / np.maximum(np.minimum(ranked.k, n_relevant), 1.0)
    return _mean_over(average_precision, included, "map_at_k",
                      f"no true rating is >= {threshold}", ranked.user_weight)


def ndcg_at_k(
    users: Any, y_true: Any, y_pred: Any, *, k: int = 10, threshold: float | None = None,
    sample_weight: Any = None,
) -> float:
    """NDCG@k: discounted gain of each user's top ``k`` relative to the best order, averaged.

    See the module docstring for the exact definition and the correspondence with
    :func:`sklearn.metrics.ndcg_score`.

    Parameters
    ----------
    users : array-like of shape (n_ratings,)
        The user id of each held-out rating.
    y_true : array-like of shape (n_ratings,)
        The true ratings, used as graded gains (they must be >= 0).
    y_pred : array-like of shape (n_ratings,)
        The predicted ratings.
    k : int, default=10
        Length of each user's ranking.
    threshold : float or None, default=None
        None: the gain of an item is its true rating. A number: the gain is 1 when the
        true rating is ``>= threshold`` and 0 otherwise (binary relevance).
    sample_weight : array-like of shape (n_ratings,), default=None
        Weight of each row (>= 0); a user weighs the mean weight of their rows in the
        average over users (see the module docstring). None: users weigh the same.

    Returns
    -------
    ndcg : float
        In [0, 1], averaged over the users with a positive ideal DCG; NaN, with a warning,
        when there is none.

    Examples
    --------
    >>> round(ndcg_at_k([1, 1, 2, 2], [5, 1, 1, 5], [4.0, 3.0, 4.0, 3.0], k=2), 4)
    0.8689
    """
    ranked = _Ranked(users, y_true, y_pred, k, "ndcg_at_k", sample_weight)
    if threshold is None:
        if (ranked.y_true < 0).any():
            raise ValueError(
                "ndcg_at_k uses y_true as gains, which must be >= 0; got negative ratings. "
                "Shift the ratings or pass threshold= for binary relevance."
            )
        gains = ranked.y_true
    else:
        gains = (ranked.y_true >= _check_threshold(threshold)).astype(np.float64)
    discount = ranked.discount()
    dcg = ranked.per_user(gains[ranked.order] * discount)
    ideal = ranked.per_user(gains[ranked.ideal_order] * discount)
    included = ideal > 0
    ndcg = np.divide(dcg, ideal, out=np.zeros_like(dcg), where=included)
    return _mean_over(ndcg, included, "ndcg_at_k", "no user has a positive gain",
                      ranked.user_weight)


_METRICS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "map": map_at_k,
    "ndcg": ndcg_at_k,
}


class _RankingScorer:
    """``scorer(estimator, X, y, sample_weight=None)``: a ranking metric of
    ``estimator.predict(X)`` against y.

    The user of each row of X is read the way the estimator reads it: the column named by
    the estimator's ``user_col`` for a DataFrame, column 0 for an array. Under metadata
    routing it requests ``sample_weight`` as scikit-learn's scorers do (see
    :meth:`set_score_request`).
    """

    def __init__(self, metric: str, k: int, threshold: float | None):
        self.metric = metric
        self.k = k
        self.threshold = threshold

    def __call__(self, estimator: Any, X: Any, y_true: Any, sample_weight: Any = None
                 ) -> float:
        final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        user_col = getattr(final, "user_col", "user_id")
        item_col = getattr(final, "item_col", "item_id")
        users, _, _ = check_rows(X, user_col=user_col, item_col=item_col,
                                 time_col=getattr(final, "time_col", None), time_required=False)
        options = {} if self.threshold is None else {"threshold": self.threshold}
        metric = _METRICS[self.metric]
        return metric(users, y_true, estimator.predict(X), k=self.k,
                      sample_weight=sample_weight, **options)

    def set_score_request(self, *, sample_weight: bool | str | None = None) -> _RankingScorer:
        """Whether the scorer takes ``sample_weight`` under metadata routing.

        As scikit-learn's scorers: ``True`` to weight the users by the routed weights
        (see the module docstring), ``False`` to score without them, a string to read them
        from metadata of that name. Until this is called, routed ``sample_weight`` is
        refused with scikit-learn's ``UnsetMetadataPassedError``.

        Parameters
        ----------
        sample_weight : bool, str or None, default=None
            The request; None leaves it unset.

        Returns
        -------
        self : scorer
            The scorer, with the request set.

        Raises
        ------
        RuntimeError
            If metadata routing is not enabled
            (``sklearn.set_config(enable_metadata_routing=True)``).
        """
        if not get_config()["enable_metadata_routing"]:
            raise RuntimeError(
                "set_score_request is only available when metadata routing is enabled; "
                "enable it with sklearn.set_config(enable_metadata_routing=True)."
            )
        self._weight_request = sample_weight
        return self

    def get_metadata_routing(self) -> MetadataRequest:
        """The metadata this scorer requests (scikit-learn's routing protocol)."""
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="sample_weight",
                                  alias=getattr(self, "_weight_request", None))
        return request

    def __repr__(self) -> str:
        threshold = "" if self.threshold is None else f", threshold={self.threshold!r}"
        return f"make_ranking_scorer({self.metric!r}, k={self.k}{threshold})"


def make_ranking_scorer(
    metric: str, *, k: int = 10, threshold: float | None = None
) -> _RankingScorer:
    """A scorer for ``scoring=`` in ``GridSearchCV``, ``cross_validate`` and the like.

    Greater is better for all four metrics, so the scorer returns the metric itself.

    Parameters
    ----------
    metric : {"precision", "recall", "map", "ndcg"}
        Which of :func:`precision_at_k`, :func:`recall_at_k`, :func:`map_at_k` and
        :func:`ndcg_at_k` to compute.
    k : int, default=10
        Length of each user's ranking.
    threshold : float or None, default=None
        Passed to the metric; None keeps the metric's default (4.0 for precision, recall
        and MAP; graded gains for NDCG).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sample_weight=None)``, which reads the user of each row
        from X (the estimator's ``user_col`` for a DataFrame, column 0 for an array),
        predicts X, and computes the metric over the rows of X (weighting the users by
        ``sample_weight``, see the module docstring). Under metadata routing, routed
        ``sample_weight`` needs ``scorer.set_score_request(sample_weight=True)`` (or
        ``False`` to ignore it); unrequested, scikit-learn refuses it.

    Examples
    --------
    >>> from sklearn.model_selection import cross_validate
    >>> from skembedrec import EmbeddingRatingRegressor
    >>> from skembedrec.datasets import make_ratings
    >>> X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
    >>> est = EmbeddingRatingRegressor(n_factors=8, epochs=1, random_state=0)
    >>> scoring = {"rmse": "neg_root_mean_squared_error",
    ...            "map@5": make_ranking_scorer("map", k=5)}
    >>> result = cross_validate(est, X, y, cv=2, scoring=scoring)
    >>> sorted(result)
    ['fit_time', 'score_time', 'test_map@5', 'test_rmse']
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}; got {metric!r}.")
    k = check_positive_int(k, "k")
    if threshold is not None:
        threshold = _check_threshold(threshold)
    return _RankingScorer(metric, int(k), threshold)


#: NDCG@10 with graded gains, for ``scoring=``.
ndcg_at_10_scorer = make_ranking_scorer("ndcg", k=10)
#: Precision@10 with relevance ``rating >= 4``, for ``scoring=``.
precision_at_10_scorer = make_ranking_scorer("precision", k=10, threshold=4.0)
