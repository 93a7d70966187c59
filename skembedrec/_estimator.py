"""EmbeddingRatingRegressor: parameters, fit/predict/score and delegation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _features, _persistence, _recommend, _training
from ._encoding import UNKNOWN, check_id_kinds, encode_query, id_columns
from ._keras import keras_model
from ._network import (
    additive_form,
    factor_table,
    make_serving_function,
    predict_codes,
    with_days,
)
from ._time import day_numbers
from ._validation import (
    check_architecture,
    check_feature_names,
    check_jit_compile,
    check_ratings,
    check_rows,
    check_time_col,
    column_names,
    fitted_feature_names,
)


class EmbeddingRatingRegressor(RegressorMixin, BaseEstimator):
    """Rating prediction from user and item embeddings, as a scikit-learn regressor.

    Ids are encoded internally (any hashable ids: ints, strings), ratings are standardised
    by a :class:`~sklearn.compose.TransformedTargetRegressor`, and a Keras network learns a
    user and an item embedding. Predictions are in the original rating units, clipped to the
    range seen in training.

    Parameters
    ----------
    user_col : str or int, default="user_id"
        Column of X holding the user ids when X is a DataFrame. For arrays, column 0.
    item_col : str or int, default="item_id"
        Column of X holding the item ids when X is a DataFrame. For arrays, column 1.
    time_col : str, int or None, default=None
        Column of X holding the time of each rating when X is a DataFrame; for arrays,
        column 2. Times are unix seconds (ints or floats), ``datetime64`` values or pandas
        Timestamps (timezone-aware ones converted to UTC), read as UTC days. The network
        then adds timeSVD++'s time terms to its biases: each user's bias drifts with the
        distance of the rating from the user's mean training day, and each time bin (up
        to 30 over the training period) has a rating level shared by all ratings. Every
        method that takes X then needs the times (``is_known`` aside), and
        :meth:`recommend` takes the time to recommend at. A time outside the training
        period holds each user's drift at its value at the nearest end of the period
        (not extrapolated) and takes the mean level of the training ratings (the level
        of an unseen period is unknown); ``partial_fit`` with later times trains the
        level of the days after the period (not of those before it). A missing time is
        an error. Needs ``use_bias``. None: times are ignored.
        See the Time-aware ratings guide.
    n_factors : int, default=32
        Size of the user and item embeddings (of each ensemble member).
    hidden_units : tuple of int, default=()
        Sizes of the relu layers of the MLP tower over the concatenated embeddings (the seed
        notebook's network is ``(32,)``). An empty tuple removes the tower: on MovieLens the
        tower overfits within a few epochs and adds nothing to the dot product.
    dropout : float, default=0.5
        Dropout after each hidden layer.
    embedding_dropout : float, default=0.1
        Dropout on the concatenated embeddings entering the MLP tower.
    use_bias : bool, default=True
        Add a learned bias per user and per item. From 30,000 training ratings on, the
        biases start at the damped-bias baseline of the training ratings (``b_i`` shrunk
        by 25 ratings, then ``b_u`` by 10); below, at zero (see ``l2``).
    dot_product : bool, default=True
        Add the dot product of the user and item embeddings (matrix factorisation).
    implicit : bool or "auto", default="auto"
        With ``dot_product``: add to each user's factors the normalised sum of learned
        vectors of the items the user rated in training, and to each item's factors the same
        over its raters (SVD++'s implicit feedback, on both sides). No effect without
        ``dot_product``. ``"auto"``: on from 30,000 up to 1,000,000 training ratings, off
        outside (below, it overfits the few ratings; from 1M on, plain factorisation in
        compiled epochs was both better and faster, see the Scaling guide); resolved in
        ``implicit_``. A
        warm start or ``partial_fit`` keeps the fitted value.
    n_estimators : int or "auto", default="auto"
        With ``dot_product``: train this many independently initialised sets of
        embedding (and implicit) factors side by side in the columns of one network's
        tables, each with its own loss, and average their dot products. Averaging removes
        much of the seed-to-seed noise of a single model; each member adds ``n_factors``
        columns to the tables (side features enter the first member only). ``"auto"``:
        2 below 1,000,000 training ratings, 1 from there (the noise averaged away is small
        there, and a second member doubles the cost of every step); resolved in
        ``n_estimators_``. A warm start or ``partial_fit`` keeps the fitted value.
    l2 : float or "auto", default="auto"
        L2 penalty on the embedding and implicit vectors that each batch uses, per rating
        (in standardised rating units). The biases are not penalised. ``"auto"``: 0.1
        up to 90,000 training ratings, then ``0.1 * sqrt(90000 / n_ratings)`` up to
        1,000,000 (ids have more ratings each), 0.04 from there, 1.0 below 30,000. Below
        30,000 ratings the ``"auto"`` settings form a small-data regime that learns the
        biases well and little else (``l2=1.0``, no implicit term, 10 epochs of batches
        from 128, learning rate 0.01): on samples of MovieLens 100K the ML-100K defaults
        lost to a damped-bias baseline there. Resolved in ``l2_``.
    learning_rate : float or "auto", default="auto"
        Adam learning rate. ``"auto"``: 0.01 at the automatic batch size (4,096, or
        65,536 from 1,000,000 ratings), scaled by Adam's square-root rule for a batch size
        set by hand (``0.01 * sqrt(batch_size / 4096)``); 0.005 at 4,096 with ``time_col``
        or side features (see ``epochs``); 0.007 at 65,536 beyond 4,000,000 ratings (0.014
        at the 262,144 of 16,000,000 on); 0.01 below 30,000 ratings; resolved in
        ``learning_rate_``.
    batch_size : int or "auto", default="auto"
        Ratings per gradient step. ``"auto"``: 4,096 below 1,000,000 ratings, 65,536
        from there (per rating, a larger step costs less), 262,144 from 16,000,000; below
        30,000 ratings about 24 steps per epoch, from 128 up; resolved in ``batch_size_``.
        With Keras' ``fit``, tables of more than 65,536 rows (and more rows than a batch has
        ratings) are updated only where the batch touches them; compiled epochs update
        whole tables in one fused pass (see the Scaling guide).
    epochs : int or "auto", default="auto"
        Passes over the training ratings. ``"auto"``: 4 (tuned on a validation slice of the
        MovieLens 100K training ratings, where more epochs start to overfit), 10 below
        30,000 ratings (the small-data regime, see ``l2``), 8 from 1,000,000 to 4,000,000
        (batches of 65,536 give few steps per epoch there); from 30,000 to 1,000,000
        ratings with ``time_col`` or side features, 6 epochs at half the rate (on
        MovieLens 100K's validation folds 0.0015-0.0035 lower RMSE for 1.35x the fit
        time); resolved in ``epochs_``.
    handle_unknown : {"fallback", "error"}, default="fallback"
        What ``predict`` does with user or item ids not seen during fit. ``"fallback"``
        predicts from what is known: the item for an unknown user, the user for an unknown
        item, the global mean when both are unknown. ``"error"`` raises a ValueError that
        names the unknown ids.
    random_state : int, RandomState instance or None, default=None
        Seed for weight initialisation, dropout and shuffling. An int gives identical
        predictions for two fits on the same data on the same machine. While such a fit
        runs, TensorFlow op determinism is on for the whole process and the global
        Python/NumPy/TensorFlow seeds are set (and restored afterwards). See Notes for the
        limits (threads, other machines, GPU).
    verbose : int, default=0
        0 prints nothing. 1 prints one line per epoch: its number, seconds, training
        ratings per second and the logged values in squared rating units (stars², as
        ``history_``). 2 also shows Keras' progress bar within each epoch; its loss is in
        standardised rating units (the scaled target the network trains on), so it is the
        stars² figure divided by the rating variance. From 1, ``fit`` and ``partial_fit``
        also print their set-up steps (with seconds) before the first epoch and their
        finishing step after the last, and ``recommend``, ``iter_recommend`` and
        ``similar_*`` keep a progress line on stderr when they answer more than one block
        of 4,096 ids.
    warm_start : bool, default=False
        When True, ``fit`` on a fitted estimator continues training its network for
        ``epochs`` more epochs instead of starting anew, as :meth:`partial_fit` does (new
        ids are added, the target scaling of the first fit is kept). The architecture
        parameters must not change in between.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the ratings given to ``fit`` (drawn with
        ``random_state``), stop when the validation MSE has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the weights of the best epoch (also when
        ``epochs`` run out first). The held-out ratings are not trained on and stay out of
        the implicit-feedback term, but they count as rated (``seen_``); their ids are
        still encoded (an id that appears only there predicts as an unknown id would, plus
        its side features). Not used by :meth:`partial_fit`.
    validation_fraction : float, default=0.1
        Share of the ratings held out for early stopping; only with ``early_stopping``.
    n_iter_no_change : int, default=5
        Epochs without an improvement of at least ``tol`` before stopping early.
    tol : float, default=1e-4
        Smallest decrease of the validation MSE, in squared rating units, that counts as
        an improvement for early stopping.
    user_features : DataFrame or None, default=None
        Side features of users (e.g. age, gender, occupation), one row per user id: the
        ids come from the column named ``user_col`` when there is one (it is then the key,
        not a feature), else from the index (``users.set_index("user_id")``); a default
        ``RangeIndex`` is no key and raises a ValueError. A polars DataFrame (no index)
        needs the ``user_col`` column. Numeric and bool columns are standardised (a missing
        value is the mean), other columns one-hot encoded, columns of lists/tuples/sets
        multi-hot encoded (e.g. genres split into lists with ``.str.split()``). The
        encoded features are projected to ``n_factors`` and added to the user embedding,
        with a feature bias under ``use_bias``. Users listed here but absent from the
        ratings are known to the model (``is_known`` is True): their predictions come from
        their features; a UserWarning says when no id of the table is among the ratings'
        ids (a likely wrong key). The encoding is fixed at the first fit (``partial_fit``
        and warm starts keep it); after a fit, a table set with ``set_params`` that lists
        further users makes them known to ``predict``, ``recommend`` and ``is_known``,
        predicted from their features through the trained projection (their own embedding
        and bias are the average user's), without retraining or changing the fitted model
        (see the Cold start guide). A model fitted without user features ignores a table
        set later.
    item_features : DataFrame or None, default=None
        Side features of items (e.g. year, genres), keyed by ``item_col`` or the index;
        as ``user_features``.
    distribute : {"mirrored"} or None, default=None
        Train with a ``tf.distribute`` strategy: ``"mirrored"`` splits each batch across
        all GPUs of the machine (without GPUs, across its logical CPU devices) and sums
        the gradients; ``batch_size`` stays the global batch. None trains on TensorFlow's
        default device. A plain string, so the estimator stays cloneable and picklable.
    jit_compile : bool or "auto", default="auto"
        Train in compiled epochs: several batches per call, each call one XLA computation
        (about 4x the ratings per second of Keras' ``fit`` at ML-10M scale, seeded fits
        included). ``"auto"``: from 1,000,000 training ratings on (below, XLA's compile
        time costs more than it saves). True: at any size, and networks that the compiled
        epochs cannot run (implicit feedback on its refresh schedule, ``distribute``) train
        Keras' step under XLA instead (refused with a ``random_state`` under
        ``distribute``: TensorFlow does not use XLA while a seed holds op determinism).
        False: Keras' ``fit`` without XLA.
    callbacks : list of keras.callbacks.Callback or None, default=None
        Keras callbacks for the training epochs (e.g. logging, custom stopping rules). Each
        fit uses deep copies of them, so the estimator stays cloneable and picklable and the
        objects given here are never attached to a model; read what a callback recorded
        from ``history_`` or have it write somewhere outside itself.

    Attributes
    ----------
    n_features_in_ : int
        Number of columns used from X: 2 (user, item), 3 with ``time_col``.
    feature_names_in_ : ndarray of shape (2,) or (3,)
        The user, item (and time) column names, when X was a DataFrame.
    encoder_ : IdEncoder
        The fitted id encoder.
    regressor_ : TransformedTargetRegressor
        The fitted target scaler and Keras regressor.
    n_users_ : int
        Number of distinct users seen during fit.
    n_items_ : int
        Number of distinct items seen during fit.
    rating_min_ : float
        Smallest rating seen during fit; predictions are clipped to it.
    rating_max_ : float
        Largest rating seen during fit; predictions are clipped to it.
    history_ : dict of list of float
        One value per epoch, in squared rating units (stars²), for plotting learning
        curves: ``"loss"``, the training objective (MSE plus the L2 penalty); ``"mse"``, the
        training MSE alone (sample-weighted, as measured during the epoch with dropout on);
        with ``early_stopping``, ``"val_loss"`` and ``"val_mse"``, the MSE on the validation
        slice. Epochs accumulate over warm-start fits and :meth:`partial_fit` calls (a key
        missing from some of them holds NaN there).
    n_iter_ : int
        Number of epochs trained so far (``len(history_["loss"])``).
    best_epoch_ : int or None
        With ``early_stopping``: the epoch (1-based, counted as in ``history_``) whose
        weights were kept; None when the last training run had no validation slice.
    batch_size_ : int
        The batch size of the last fit (``batch_size`` resolved for its number of ratings).
    learning_rate_ : float
        The learning rate of the last fit (``learning_rate`` resolved).
    n_estimators_ : int
        The number of ensemble members of the network (``n_estimators`` resolved; 1
        without ``dot_product``, whose network has one set of embedding columns).
    implicit_ : bool
        Whether the network has implicit feedback (``implicit`` resolved; False without
        ``dot_product``).
    l2_ : float
        The L2 penalty of the last fit (``l2`` resolved).
    epochs_ : int
        The epochs of the last fit (``epochs`` resolved; 1 for ``partial_fit``).
    seen_ : scipy.sparse.csr_array of bool, shape (n_users, n_items)
        Every (user code, item code) pair given to ``fit`` (the early-stopping validation
        slice included), ``partial_fit`` and warm starts: the items each user rated, which
        ``recommend`` and the exported model's ``recommend`` skip.
    feature_encoders_ : dict or None
        How each side's features were encoded at fit (``"user"``, ``"item"``: column
        specs, ``feature_names``, ``mean_row``), used to encode ids listed after fit.
    time_max_ : float or None
        With ``time_col``: the latest time trained on, in unix seconds (UTC), which
        :meth:`recommend` uses by default; None without.

    Notes
    -----
    **Reproducibility.** With an int ``random_state``, two fits on the same data give
    identical predictions, in one process or in two processes on the same machine. Limits:
    the seeding is process-wide (scikeras' mechanism): while a seeded fit runs, TensorFlow
    op determinism is on for the whole process and the global Python, NumPy and TensorFlow
    seeds are reset (all restored afterwards), so code running in other threads meanwhile is
    affected, and seeded fits running in parallel *threads* are not reproducible; run
    parallel searches in processes (joblib's default backend). Another machine, CPU
    instruction set, TensorFlow/oneDNN version or thread count may change the last digits,
    and on a GPU an op without a deterministic kernel raises an error during a seeded fit.
    A ``RandomState`` instance gives each fit a new seed drawn from it.

    **Threads.** ``predict`` (and the other read-only methods) may be called from many
    threads at once on a fitted estimator; do not call them while ``fit`` runs on the same
    estimator.

    **Saving.** :meth:`save` and :meth:`load` use a format with no pickle, safe for files of
    unknown origin. joblib and pickle work too, but loading a joblib or pickle file can run
    arbitrary code: load those only from trusted sources.

    Examples
    --------
    >>> from skembedrec import EmbeddingRatingRegressor
    >>> from skembedrec.datasets import make_ratings
    >>> X, y = make_ratings(n_users=50, n_items=40, n_ratings=2000, random_state=0)
    >>> est = EmbeddingRatingRegressor(n_factors=8, epochs=3, random_state=0).fit(X, y)
    >>> est.predict(X.head(3)).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "user_col": [str, Integral],
        "item_col": [str, Integral],
        "time_col": [str, Integral, None],
        "n_factors": [Interval(Integral, 1, None, closed="left")],
        "hidden_units": [tuple, list],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "embedding_dropout": [Interval(Real, 0, 1, closed="left")],
        "use_bias": ["boolean"],
        "dot_product": ["boolean"],
        "implicit": ["boolean", StrOptions({"auto"})],
        "n_estimators": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "l2": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "handle_unknown": [StrOptions({"fallback", "error"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "user_features": [pd.DataFrame, HasMethods(["to_pandas"]), None],  # pandas, polars
        "item_features": [pd.DataFrame, HasMethods(["to_pandas"]), None],
        "distribute": [StrOptions({"mirrored"}), None],
        "jit_compile": ["boolean", StrOptions({"auto"})],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        *,
        user_col: str | int = "user_id",
        item_col: str | int = "item_id",
        time_col: str | int | None = None,
        n_factors: int = 32,
        hidden_units: tuple[int, ...] = (),
        dropout: float = 0.5,
        embedding_dropout: float = 0.1,
        use_bias: bool = True,
        dot_product: bool = True,
        implicit: bool | str = "auto",
        n_estimators: int | str = "auto",
        l2: float | str = "auto",
        learning_rate: float | str = "auto",
        batch_size: int | str = "auto",
        epochs: int | str = "auto",
        handle_unknown: str = "fallback",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        tol: float = 1e-4,
        user_features: pd.DataFrame | None = None,
        item_features: pd.DataFrame | None = None,
        distribute: str | None = None,
        jit_compile: bool | str = "auto",
        callbacks: list | None = None,
    ):
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col
        self.n_factors = n_factors
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.use_bias = use_bias
        self.dot_product = dot_product
        self.implicit = implicit
        self.n_estimators = n_estimators
        self.l2 = l2
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.handle_unknown = handle_unknown
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.user_features = user_features
        self.item_features = item_features
        self.distribute = distribute
        self.jit_compile = jit_compile
        self.callbacks = callbacks

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> EmbeddingRatingRegressor:
        """Fit the model to ratings.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_ratings, 2) or (n_ratings, 3)
            The (user id, item id) pairs, with their times under ``time_col``; see
            ``user_col``, ``item_col`` and ``time_col``.
        y : array-like of shape (n_ratings,)
            The ratings.
        sample_weight : array-like of shape (n_ratings,), default=None
            Relative weight of each rating in the loss and in the target scaling. Ratings
            of weight 0 are dropped first and have no influence at all: an id whose only
            ratings have weight 0 stays unknown. The other weights are scaled to a mean of 1
            over the ratings of the call, so only their ratios matter: multiplying every
            weight by a constant leaves the model unchanged, and ``l2`` and the damped-bias
            shrinkage keep their meaning (per rating of weight 1). Routed by scikit-learn
            metadata routing (``set_fit_request(sample_weight=True)``).

        Returns
        -------
        self : EmbeddingRatingRegressor
            The fitted estimator.
        """
        with _unchanged_on_failure(self):
            self._train(X, y, sample_weight, epochs=self.epochs, continue_=self.warm_start,
                        early_stopping=self.early_stopping)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> EmbeddingRatingRegressor:
        """Train one more epoch on the given ratings, adding their new users and items.

        Give it the new ratings alone: it learns them without undoing what the model
        knew. New ids get the next codes and new embedding rows, which start as the
        reserved unknown-id row, their biases moved by the damped mean of what the fitted
        model misses on their ratings; then one epoch trains the rows of the ids in X
        (and shared weights such as an MLP tower). The implicit-feedback vectors stay as
        fitted (a new id's is zero): trained on a batch they move the predictions of ids
        absent from it. The ratings are scaled as in the first fit; ``"auto"`` settings
        keep their fitted values (``l2_``, ``batch_size_``, ``learning_rate_``, not
        those of a fit on X alone). Adam's step count and second moments carry over, its
        momentum restarts at zero: ids absent from X do not move. On MovieLens 100K by
        time (``benchmarks/partial_fit.py``) the old users' RMSE stays at 0.968 after one
        call on the next 10 % and after three, the new users' falls from 0.954 (the
        unknown-id fallback) to 0.899. On an unfitted estimator this is a first fit of one
        epoch. Early stopping is not used. A call costs in proportion to X, not to the
        history (the rated pairs are merged, not rebuilt): 100,000 ratings into a model of
        25M took 1.1 s (``benchmarks/large_catalogue.py``); feed ratings in batches. See
        the Training guide.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_ratings, 2) or (n_ratings, 3)
            As in :meth:`fit`. With ``time_col``, the time grid of the first fit is kept:
            later times count as outside the training period.
        y : array-like of shape (n_ratings,)
            The ratings.
        sample_weight : array-like of shape (n_ratings,), default=None
            Relative weight of each rating in the loss, as in :meth:`fit`: ratings of
            weight 0 are dropped first and have no influence at all; the other weights are
            scaled to a mean of 1 over the ratings of the call, so only their ratios matter:
            multiplying every weight by a constant leaves the update unchanged.

        Returns
        -------
        self : EmbeddingRatingRegressor
            The updated estimator.

        Examples
        --------
        >>> from skembedrec import EmbeddingRatingRegressor
        >>> from skembedrec.datasets import make_ratings
        >>> X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
        >>> est = EmbeddingRatingRegressor(n_factors=8, epochs=2, random_state=0)
        >>> est = est.fit(X[X.user_id < 25], y[X.user_id < 25])
        >>> bool(est.is_known([[27, 0]])[0, 0])
        False
        >>> est = est.partial_fit(X[X.user_id >= 25], y[X.user_id >= 25])
        >>> bool(est.is_known([[27, 0]])[0, 0]), est.n_users_, est.n_iter_
        (True, 30, 3)
        """
        with _unchanged_on_failure(self):
            self._train(X, y, sample_weight, epochs=1, continue_="partial", early_stopping=False)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predict ratings for (user, item) pairs.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_pairs, 2) or (n_pairs, 3)
            The (user id, item id) pairs, with their times when fitted with ``time_col``.
            A frame (pandas, polars, pyarrow, ...) is read by column name, its other
            columns ignored; an array by position, with exactly those columns.

        Returns
        -------
        ratings : ndarray of shape (n_pairs,)
            Predicted ratings in the original units, within ``[rating_min_, rating_max_]``.

        Warns
        -----
        UserWarning
            When the user or item ids are of another kind than at fit (str and int: none
            can be known; a ValueError under ``handle_unknown="error"``); when X is an
            array and the model was fitted on a frame, or the reverse (as scikit-learn
            does); when X is an array whose two columns look swapped on strong evidence
            (see ``_encoding.warn_if_columns_swapped``).
        """
        check_is_fitted(self)
        users, items, seconds = self._check_rows(X, reset=False)
        codes = encode_query(self._current().encoder, users, items,
                             handle_unknown=self.handle_unknown,
                             columns=id_columns(X, self.user_col, self.item_col))
        days = None if seconds is None else day_numbers(seconds)
        return self._predict_from_codes(with_days(codes, days))

    def is_known(self, X: Any) -> np.ndarray:
        """Which users and items of X were seen during fit.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_pairs, 2) or (n_pairs, 3)
            The (user id, item id) pairs; a time column is allowed and not needed.

        Returns
        -------
        known : ndarray of bool, shape (n_pairs, 2)
            Column 0: the user is known; column 1: the item is known. A row with a False
            is a cold-start prediction. Ids listed in ``user_features``/``item_features``
            (also in a table set after fit, see ``user_features``)
            are known even without ratings; ids added by ``partial_fit`` are known.

        Warns
        -----
        UserWarning
            When the ids are of another kind than at fit (str and int; a ValueError under
            ``handle_unknown="error"``), or X is an array and the model was fitted on a
            frame, or the reverse.
        """
        check_is_fitted(self)
        users, items, _ = self._check_rows(X, reset=False, time_required=False)
        encoder = self._current().encoder
        check_id_kinds(encoder, users, items, handle_unknown=self.handle_unknown,
                       columns=id_columns(X, self.user_col, self.item_col))
        user_codes, item_codes = encoder.codes(users, items)
        return np.column_stack([user_codes != UNKNOWN, item_codes != UNKNOWN])

    @property
    def model_(self):
        """The fitted ``keras.Model``."""
        check_is_fitted(self)
        return keras_model(self.regressor_)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        return _features.repr_with_short_tables(self, BaseEstimator.__repr__, N_CHAR_MAX)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.target_tags.required = True
        return tags

    def __getstate__(self) -> dict:
        # The Keras model travels as the bytes of a .keras file, loaded back in safe mode,
        # not as its object graph: skops can then serialise the estimator (a short list of
        # trusted types, see the Serving guide) and pickle does not rely on the Keras
        # wrapper's import-time patch of keras.Model.__reduce__.
        from ._keras import fitted_regressor_state, keras_model
        from ._keras_file import model_bytes

        # A copy without the caches: pickling must not change self.
        state = {name: value for name, value in super().__getstate__().items()
                 if name not in ("_serve", "_scores", "_grown")}
        if "regressor_" in state:
            regressor = state["regressor_"]
            state["regressor_"] = {"state": fitted_regressor_state(regressor),
                                   "keras": model_bytes(keras_model(regressor))}
        return state

    def __setstate__(self, state: dict) -> None:
        from ._archive import DEFAULT_LIMITS
        from ._keras import restore_fitted_regressor
        from ._keras_file import load_model_bytes

        state = dict(state)
        packed = state.get("regressor_")
        if isinstance(packed, dict):
            encoder = state["encoder_"]
            model = load_model_bytes(
                packed["keras"], "the pickled EmbeddingRatingRegressor",
                id_rows=(encoder.n_users + 1, encoder.n_items + 1), limits=DEFAULT_LIMITS)
            state["regressor_"] = restore_fitted_regressor(packed["state"], model)
            state["_serve"] = state["_scores"] = None
        super().__setstate__(state)

    def recommend(self, users: Any, n: int = 10, *, exclude_seen: bool = True,
                  at: Any = None) -> pd.DataFrame:
        """The ``n`` items with the highest predicted rating for each user.

        Parameters
        ----------
        users : array-like of shape (n_users,) or a single id
            User ids, of the same kind (numbers or strings) as those seen during fit.
            A repeated id is answered once, where it first appears.
        n : int, default=10
            Items per user.
        exclude_seen : bool, default=True
            Leave out the items the user rated in training (``seen_``). A user with fewer
            than ``n`` items left gets only those.
        at : time or None, default=None
            With ``time_col``: the time to recommend at (unix seconds, a ``datetime64`` or
            a Timestamp), the same for every user; None, the latest time trained on
            (``time_max_``). Without ``time_col`` it must be None.

        Returns
        -------
        recommendations : DataFrame
            Columns ``user_col`` (the user), ``item_col`` (the item; by default
            ``user_id`` and ``item_id``, as in X, so that the pairs can be passed to
            :meth:`predict` as they are), ``predicted_rating`` and ``rank`` (1 = best): up
            to ``n`` rows per user, best first, one block per distinct user in the order
            given. ``predicted_rating`` is what :meth:`predict` returns for the pair; items
            whose rating is clipped to ``rating_max_`` are ordered by the model's unclipped
            score. For many users, :meth:`iter_recommend` gives the same rows in blocks.

        Raises
        ------
        ValueError
            If ``n < 1``, ``users`` is empty, ``at`` is not a time (or is given to a model
            fitted without times), or (under ``handle_unknown="error"``) a user
            was not seen during fit. Under ``handle_unknown="fallback"`` an unknown user
            gets the ranking of an average user (the mean of the learned user embeddings
            and biases): the items with the best predicted rating overall.
        TypeError
            If ``n`` is not an int, or the ids are of another kind than those seen in fit.

        Examples
        --------
        >>> from skembedrec import EmbeddingRatingRegressor
        >>> from skembedrec.datasets import make_ratings
        >>> X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
        >>> est = EmbeddingRatingRegressor(n_factors=8, epochs=2, random_state=0).fit(X, y)
        >>> top = est.recommend([3, 7], n=5)
        >>> top.columns.tolist(), top["rank"].tolist()
        (['user_id', 'item_id', 'predicted_rating', 'rank'], [1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
        """
        return _recommend.concat_blocks(self.iter_recommend(users, n, exclude_seen=exclude_seen,
                                                            at=at))

    def iter_recommend(self, users: Any, n: int = 10, *, batch_size: int = 4096,
                       exclude_seen: bool = True, at: Any = None) -> Iterator[pd.DataFrame]:
        """:meth:`recommend`, one DataFrame per ``batch_size`` distinct users.

        For many users: each block can be written out (CSV, parquet) and dropped before the
        next is computed, so the lists of every user are never held at once. The blocks,
        concatenated, are :meth:`recommend`'s frame (up to float rounding of the last
        digits); each holds the users ``batch_size * k`` to ``batch_size * (k + 1) - 1`` of
        the distinct users in the order given. Everything is checked when this is called,
        before any block is computed. With ``verbose``, a progress line is kept on stderr.

        Parameters
        ----------
        users, n, exclude_seen, at
            As in :meth:`recommend`.
        batch_size : int, default=4096
            Distinct users per block.

        Yields
        ------
        block : DataFrame
            The columns of :meth:`recommend`, with a fresh ``RangeIndex`` per block.

        Raises
        ------
        ValueError, TypeError
            As :meth:`recommend`, and if ``batch_size`` is not an int >= 1.

        Examples
        --------
        >>> import os, tempfile
        >>> from skembedrec import EmbeddingRatingRegressor
        >>> from skembedrec.datasets import make_ratings
        >>> X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
        >>> est = EmbeddingRatingRegressor(n_factors=8, epochs=2, random_state=0).fit(X, y)
        >>> path = os.path.join(tempfile.mkdtemp(), "top.csv")
        >>> for k, block in enumerate(est.iter_recommend(range(30), n=5, batch_size=8)):
        ...     block.to_csv(path, mode="a", header=k == 0, index=False)
        >>> len(open(path).readlines())  # a header and 5 items for each of 30 users
        151
        """
        check_is_fitted(self)
        check_time_col(self.time_col, getattr(self, "time_max_", None))
        day = _recommend.recommend_day(at, getattr(self, "time_max_", None))
        return _recommend.recommend_blocks(
            users, n=n, exclude_seen=exclude_seen, encoder=self._current().encoder,
            handle_unknown=self.handle_unknown, seen=self._current().seen,
            columns=(self.user_col, self.item_col), batch_size=batch_size,
            verbose=self.verbose,
            # Built on first use: nothing is computed or cached for a request that fails.
            score=lambda user_codes: self._item_scores(day)(user_codes),
            rate_codes=lambda codes: self._predict_from_codes(with_days(codes, day)),
        )

    def similar_items(self, items: Any, n: int = 10) -> pd.DataFrame:
        """The ``n`` items whose learned embeddings are closest (cosine) to each item.

        Parameters
        ----------
        items : array-like of shape (n_queries,) or a single id
            Item ids seen during fit.
        n : int, default=10
            Neighbours per item (fewer when the catalogue is smaller).

        Returns
        -------
        neighbours : DataFrame
            Columns ``item``, ``similar_item``, ``similarity`` (cosine, in [-1, 1]) and
            ``rank`` (1 = most similar), items in the order given. An item is never its
            own neighbour.

        Raises
        ------
        ValueError
            If ``n < 1``, ``items`` is empty or holds ids not seen during fit, or the model
            has biases only (``dot_product=False, hidden_units=()``: no item vectors).
        TypeError
            If ``n`` is not an int, or the ids are of another kind than those seen in fit.

        Examples
        --------
        >>> from skembedrec import EmbeddingRatingRegressor
        >>> from skembedrec.datasets import make_ratings
        >>> X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
        >>> est = EmbeddingRatingRegressor(n_factors=8, epochs=2, random_state=0).fit(X, y)
        >>> est.similar_items([0], n=3).columns.tolist()
        ['item', 'similar_item', 'similarity', 'rank']
        """
        check_is_fitted(self)
        table = factor_table(self.model_, "item")
        return _recommend.similar(items, n=n, encoder=self.encoder_, table=table, kind="item",
                                  verbose=self.verbose)

    def similar_users(self, users: Any, n: int = 10) -> pd.DataFrame:
        """The ``n`` users whose learned embeddings are closest (cosine) to each user.

        Parameters
        ----------
        users : array-like of shape (n_queries,) or a single id
            User ids seen during fit.
        n : int, default=10
            Neighbours per user (fewer when there are fewer other users).

        Returns
        -------
        neighbours : DataFrame
            Columns ``user``, ``similar_user``, ``similarity`` (cosine, in [-1, 1]) and
            ``rank`` (1 = most similar), users in the order given. A user is never their
            own neighbour.

        Raises
        ------
        ValueError
            If ``n < 1``, ``users`` is empty or holds ids not seen during fit, or the model
            has biases only (``dot_product=False, hidden_units=()``: no user vectors).
        TypeError
            If ``n`` is not an int, or the ids are of another kind than those seen in fit.

        Examples
        --------
        >>> from skembedrec import EmbeddingRatingRegressor
        >>> from skembedrec.datasets import make_ratings
        >>> X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
        >>> est = EmbeddingRatingRegressor(n_factors=8, epochs=2, random_state=0).fit(X, y)
        >>> est.similar_users([0, 1], n=2)["rank"].tolist()
        [1, 2, 1, 2]
        """
        check_is_fitted(self)
        table = factor_table(self.model_, "user")
        return _recommend.similar(users, n=n, encoder=self.encoder_, table=table, kind="user",
                                  verbose=self.verbose)

    @property
    def user_embeddings_(self) -> pd.DataFrame:
        """The learned user factor vectors that predictions use, one row per known user id.

        Indexed by the original user ids (index name ``"user"``). With ``dot_product``:
        the embedding plus the implicit-feedback and side-feature terms, the
        ``n_estimators`` members side by side scaled by ``1/sqrt(n_estimators)`` (so
        ``n_factors * n_estimators`` columns, and the dot product of a user row and an item
        row is the model's interaction term); otherwise the raw embedding rows;
        the reserved row for unknown users is not included. A model with biases only
        (``dot_product=False, hidden_units=()``) has no vectors: reading this raises a
        ValueError.

        Examples
        --------
        >>> from skembedrec import EmbeddingRatingRegressor
        >>> from skembedrec.datasets import make_ratings
        >>> X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
        >>> est = EmbeddingRatingRegressor(n_factors=8, epochs=1, random_state=0).fit(X, y)
        >>> est.user_embeddings_.shape
        (30, 16)
        """
        check_is_fitted(self)
        table = factor_table(self.model_, "user")
        return _recommend.embedding_frame(table, self.encoder_.user_ids, "user")

    @property
    def item_embeddings_(self) -> pd.DataFrame:
        """The learned item factor vectors that predictions use, one row per known item id.

        Indexed by the original item ids (index name ``"item"``); the columns are those of
        :attr:`user_embeddings_` (the dot product of a user row and an item row is the
        model's interaction term). The reserved row for unknown items is not included. A
        model with biases only raises a ValueError, as :attr:`user_embeddings_`.

        Examples
        --------
        >>> from skembedrec import EmbeddingRatingRegressor
        >>> from skembedrec.datasets import make_ratings
        >>> X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
        >>> est = EmbeddingRatingRegressor(n_factors=8, epochs=1, random_state=0).fit(X, y)
        >>> est.item_embeddings_.shape
        (40, 16)
        """
        check_is_fitted(self)
        table = factor_table(self.model_, "item")
        return _recommend.embedding_frame(table, self.encoder_.item_ids, "item")

    def save(self, path: str | os.PathLike) -> None:
        """Save the fitted estimator to one file in a safe format (no pickle).

        The file is a zip holding the Keras model (``.keras``: config and weights), the
        parameters, id vocabularies, target scaler and other fitted attributes as JSON and
        numeric arrays. :meth:`load` reads it without unpickling or running anything from
        it, so a file of unknown origin can be loaded. joblib and pickle also work, but a
        joblib or pickle file can run arbitrary code when loaded: load those only from
        trusted sources.

        Parameters
        ----------
        path : str or path-like
            Where to write the file; an existing file is replaced once the new one is
            complete.

        Raises
        ------
        ValueError
            If a parameter or fitted attribute has no safe representation (e.g. ids that
            are not int, float, str, bytes or bool).
        IsADirectoryError
            If ``path`` is an existing directory.

        Examples
        --------
        >>> import tempfile, os
        >>> import numpy as np
        >>> from skembedrec import EmbeddingRatingRegressor
        >>> from skembedrec.datasets import make_ratings
        >>> X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
        >>> est = EmbeddingRatingRegressor(n_factors=8, epochs=1, random_state=0).fit(X, y)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.skembedrec")
        >>> est.save(path)
        >>> loaded = EmbeddingRatingRegressor.load(path)
        >>> bool(np.array_equal(loaded.predict(X), est.predict(X)))
        True
        """
        from ._keras import fitted_regressor_state

        check_is_fitted(self)
        params = self.get_params(deep=False)
        # Caches (``_serve``) are rebuilt on first use; the encoder and regressor have
        # dedicated representations.
        fitted = {name: value for name, value in vars(self).items()
                  if name not in params and not name.startswith("_")
                  and name not in ("encoder_", "regressor_")}
        _persistence.save_state(path, params=params, encoder=self.encoder_, fitted=fitted,
                                regressor=fitted_regressor_state(self.regressor_),
                                model=self.model_)

    @classmethod
    def load(cls, path: str | os.PathLike, *,
             limits: dict | None = None) -> EmbeddingRatingRegressor:
        """Load an estimator written by :meth:`save`; it predicts exactly as the saved one.

        Nothing in the file is unpickled or executed: the Keras model is loaded with
        ``safe_mode=True`` after its config is checked against the classes this package
        builds, and numeric arrays are read from their headers (no pickle).

        Loading is bounded: before anything is allocated, the file and each of its
        members are checked against ``limits``, and every layer size in the Keras config
        against the vocabularies stored in the file (an embedding table must have one row
        per stored id plus the reserved row), so a hostile file is refused instead of
        exhausting memory. The defaults hold a model fitted on MovieLens 25M (162,541
        users x 59,047 items, 25M ratings, default parameters) with room to spare:

        ================  ==========  ===============================================
        limit             default     what it bounds
        ================  ==========  ===============================================
        ``file_bytes``    16 GiB      the file on disk
        ``members``       10,000      members of each zip (file, ``.npz``, ``.keras``)
        ``member_bytes``  8 GiB       the declared decompressed size of one member
        ``total_bytes``   16 GiB      the decompressed size of all members of a zip
        ``ratio``         200         decompressed / compressed size (members > 1 MiB)
        ``json_bytes``    256 MiB     each JSON member
        ``json_depth``    64          nesting depth of each JSON member
        ``width``         65,536      columns of any table (factors, feature widths)
        ================  ==========  ===============================================

        A member is decompressed in chunks that stop as soon as it passes its declared
        size, so no size written in the file is trusted.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.
        limits : dict, default=None
            Limits to change from the defaults above, e.g. ``{"member_bytes": 2**34}`` for
            a larger model.

        Returns
        -------
        estimator : EmbeddingRatingRegressor
            The fitted estimator.

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        ValueError
            If the file is not a skembedrec model file, is truncated or corrupted, was
            written in a newer format version, or carries anything that could run code
            (a pickle, a Keras ``Lambda`` layer), or is over a limit; the message names
            the file and the limit.
        """
        from ._archive import DEFAULT_LIMITS
        from ._keras import restore_fitted_regressor

        state = _persistence.load_state(path, defaults=cls().get_params(deep=False),
                                        constraints=cls._parameter_constraints,
                                        limits=DEFAULT_LIMITS.updated(limits))
        try:
            estimator = cls(**state.params)
            estimator.encoder_ = state.encoder
            estimator.regressor_ = restore_fitted_regressor(state.regressor, state.model)
            for name, value in state.fitted.items():
                if not (name.isidentifier() and name.endswith("_") and name[0] != "_"
                        and not hasattr(cls, name)):
                    raise ValueError(f"the file sets the attribute {name!r}, which is not a "
                                     "fitted attribute")
                setattr(estimator, name, value)
        except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
            raise _persistence.inconsistent(path, exc) from exc
        estimator._serve = None
        return estimator

    def export(self, path: str | os.PathLike) -> None:
        """Write the fitted model as a TensorFlow SavedModel that serves raw ids.

        The directory ``path`` holds the network itself (one definition, its weights),
        the user and item vocabularies as in-graph hash tables (int or str ids), the same
        unknown-id fallback as :meth:`predict` (or, under ``handle_unknown="error"``, an
        error naming the problem), the rating scale and clipping, the training pairs that
        :meth:`recommend` excludes and the item vectors of :meth:`similar_items`. Serving it
        needs TensorFlow only (TF Serving, ``tf.saved_model.load``); see the Serving guide.

        Signatures: ``predict`` (inputs ``user``, ``item`` -> ``rating`` in stars),
        ``recommend`` (``user``, ``k`` -> ``items``, ``ratings``, ``valid``, best first,
        training items excluded) and ``similar_items`` (``item``, ``k`` -> ``items``,
        ``similarities``); ``serving_default`` is ``predict``. With ``time_col``,
        ``predict`` and ``recommend`` also take ``time``: float64 unix seconds (UTC), one
        per pair for ``predict`` and one per user for ``recommend`` (the time to recommend
        at; pass ``time_max_`` to match ``recommend``'s default). A model with biases
        only (``dot_product=False, hidden_units=()``) has no item vectors: its
        ``similar_items`` signature returns similarity 0 for every pair.

        Parameters
        ----------
        path : str or path-like
            The directory to write (created if needed).

        Raises
        ------
        ValueError
            If the ids are neither ints nor strings (a SavedModel looks up int64 or string
            keys).

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> import tensorflow as tf
        >>> from skembedrec import EmbeddingRatingRegressor
        >>> from skembedrec.datasets import make_ratings
        >>> X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
        >>> est = EmbeddingRatingRegressor(n_factors=8, epochs=1, random_state=0).fit(X, y)
        >>> path = os.path.join(tempfile.mkdtemp(), "served")
        >>> est.export(path)
        >>> served = tf.saved_model.load(path).signatures["predict"]
        >>> out = served(user=tf.constant([0, 10**6], tf.int64), item=tf.constant([1, 2], tf.int64))
        >>> bool(np.allclose(out["rating"].numpy(), est.predict([[0, 1], [10**6, 2]])))
        True
        """
        from ._export import export_saved_model
        from ._keras import fitted_regressor_state

        check_is_fitted(self)
        scaler = fitted_regressor_state(self.regressor_)["scaler"]
        export_saved_model(
            path, model=self.model_, user_ids=self.encoder_.user_ids,
            item_ids=self.encoder_.item_ids, target_mean=float(scaler["mean_"][0]),
            target_scale=float(scaler["scale_"][0]), rating_min=self.rating_min_,
            rating_max=self.rating_max_, seen=self.seen_,
            item_vectors=factor_table(self.model_, "item", empty_if_biases_only=True),
            handle_unknown=self.handle_unknown,
        )

    # -- private helpers -------------------------------------------------------------------

    def _check_rows(self, X: Any, *, reset: bool, time_required: bool = True
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Users, items and (with ``time_col``) unix seconds of X; see ``check_rows``."""
        if not reset:
            check_time_col(self.time_col, getattr(self, "time_max_", None))
        columns = (self.user_col, self.item_col, self.time_col)
        rows = check_rows(X, user_col=columns[0], item_col=columns[1], time_col=columns[2],
                          time_required=time_required)
        if not reset:
            check_feature_names(X, getattr(self, "feature_names_in_", None), type(self).__name__)
        if reset:
            self.n_features_in_ = len(column_names(*columns))
            self.__dict__.pop("feature_names_in_", None)
            if (names := fitted_feature_names(X, *columns)) is not None:
                self.feature_names_in_ = names
        return rows

    def _train(self, X: Any, y: Any, sample_weight: Any, *, epochs: int | str,
               continue_: bool | str, early_stopping: bool) -> None:
        """Fit anew, or continue the fitted network (``continue_``: True for a warm start,
        "partial" for ``partial_fit``); see :mod:`._training`."""
        continuing = continue_ and hasattr(self, "regressor_")
        if not self.use_bias and self.time_col is not None:
            raise ValueError(
                "time_col adds time terms to the user and item biases, so it needs "
                "use_bias=True; set use_bias=True, or time_col=None."
            )
        users, items, seconds = self._check_rows(X, reset=not continuing)
        ratings = check_ratings(y, len(users))
        users, items, ratings, weights, seconds = _training.drop_zero_weight(
            users, items, ratings, sample_weight, seconds
        )
        settings = _training.resolve_settings(
            {"batch_size": self.batch_size, "learning_rate": self.learning_rate,
             "n_estimators": self.n_estimators, "implicit": self.implicit, "l2": self.l2,
             "dot_product": self.dot_product, "epochs": epochs,
             "jit_compile": self.jit_compile}, len(ratings),
            {name: getattr(self, f"{name}_") for name in _training.KEPT_SETTINGS}
            if continuing else None, incremental=continue_ == "partial",
            extra_terms=seconds is not None or self.user_features is not None
            or self.item_features is not None)
        check_architecture(self.n_factors, settings["epochs"], settings["batch_size"],
                           self.hidden_units)
        # Keras' step under XLA: for what compiled epochs cannot run.
        keras_xla = self.jit_compile is True and bool(
            settings["implicit"] or self.distribute is not None)
        check_jit_compile(keras_xla, self.random_state)
        config = self._training_config(early_stopping=early_stopping, settings=settings,
                                       keras_xla=keras_xla)
        days = None if seconds is None else day_numbers(seconds)
        if continuing:
            trained = _training.train_more(self._fitted_state(), users, items, ratings,
                                           weights, config, days=days)
        else:
            trained = _training.train_new(users, items, ratings, weights, config, days=days)

        for name, value in _training.fitted_attributes(trained).items():
            setattr(self, name, value)
        self.batch_size_ = int(settings["batch_size"])
        self.learning_rate_ = float(settings["learning_rate"])
        self.n_estimators_ = int(settings["n_estimators"])
        self.implicit_ = bool(settings["implicit"])
        self.l2_ = float(settings["l2"])
        self.epochs_ = int(settings["epochs"])
        self.time_max_ = _training.latest_time(
            seconds, getattr(self, "time_max_", None) if continuing else None)
        self._serve = None

    def _training_config(self, *, early_stopping: bool, settings: dict[str, Any],
                         keras_xla: bool) -> _training.TrainingConfig:
        return _training.TrainingConfig(
            architecture={
                "n_factors": int(self.n_factors),  # Keras refuses numpy ints (np.arange grids)
                "hidden_units": tuple(int(u) for u in self.hidden_units),
                "dropout": float(self.dropout),
                "embedding_dropout": float(self.embedding_dropout),
                "use_bias": bool(self.use_bias),
                "dot_product": bool(self.dot_product),
                "implicit": bool(settings["implicit"]),
                "n_estimators": int(settings["n_estimators"]),
                "l2": float(settings["l2"]),
                "learning_rate": float(settings["learning_rate"]),
                "jit_compile": keras_xla,
            },
            epochs=int(settings["epochs"]),
            batch_size=int(settings["batch_size"]),
            random_state=self.random_state,
            verbose=self.verbose,
            distribute=self.distribute,
            callbacks=list(self.callbacks or []),
            early_stopping=early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            **_features.feature_tables(self.user_features, self.item_features,
                                       self.user_col, self.item_col),
            incremental=settings["incremental"], compiled=bool(settings["jit_compile"]))

    def _fitted_state(self) -> _training.Trained:
        return _training.trained_from(self.__dict__)

    def _current(self) -> _training.Trained:
        """The fitted state grown by the ids that only the current feature tables list
        (see ``user_features``); rebuilt after a fit or when a table is replaced."""
        key = (id(self.regressor_), id(self.user_features), id(self.item_features))
        if getattr(self, "_grown", (None,))[0] != key:
            self._grown = (key, _features.with_feature_ids(
                self._fitted_state(), self.user_features, self.item_features, self.user_col,
                self.item_col))
            self._serve = None
        return self._grown[1]

    def _serving_function(self):
        model = keras_model(self._current().regressor)  # first: a new table drops _serve
        if getattr(self, "_serve", None) is None:
            self._serve = make_serving_function(model)
        return self._serve

    def _item_scores(self, day: int | None):
        """Scores of every item for blocks of user codes (for ``recommend``): from the
        additive form of a tower-less network, else from the network itself. Cached with the
        serving function it is read from and the day."""
        serve = self._serving_function()
        cached = getattr(self, "_scores", None)
        if cached is None or cached[:2] != (serve, day):
            tables = additive_form(keras_model(self._current().regressor), day)
            n_items = self._current().encoder.n_items
            score = (_recommend.network_scores(serve, n_items, day) if tables is None
                     else _recommend.additive_scores(tables, n_items))
            self._scores = (serve, day, score)
        return self._scores[2]

    def _predict_from_codes(self, codes: np.ndarray) -> np.ndarray:
        scaled = predict_codes(self._serving_function(), codes)
        scaler = self.regressor_.transformer_
        # StandardScaler.inverse_transform, without its ~90 us of validation per call.
        ratings = scaled * scaler.scale_[0] + scaler.mean_[0]
        return np.clip(ratings, self.rating_min_, self.rating_max_)


@contextmanager
def _unchanged_on_failure(estimator: BaseEstimator):
    """Restore the estimator's attributes if the block raises (errors, KeyboardInterrupt).

    A failed or interrupted fit then leaves a fitted estimator with its old model and a
    never-fitted one unfitted, never half-updated.
    """
    saved = dict(vars(estimator))
    try:
        yield
    except BaseException:
        vars(estimator).clear()
        vars(estimator).update(saved)
        raise
