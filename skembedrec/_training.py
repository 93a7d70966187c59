"""Training runs: a new model, or more epochs on a fitted one. No estimator in sight.

``train_new`` is a fit from scratch; ``train_more`` continues a previous fit
(``warm_start=True`` or ``partial_fit``): new user and item ids are appended to the id
vocabulary, the embedding tables grow by one row per new id (initialised to the reserved
"unknown" row, the average of the learned rows, so a new id starts at the fallback
prediction), every learned weight and the Adam state are copied over, and the target scaler
is kept (the weights are in its units). Both take arrays and a :class:`TrainingConfig`
(plain values from the estimator's parameters) and share:

* sample weights: rows of weight 0 are dropped before anything is learned from them (ids,
  scaler, implicit feedback), so they have no influence at all; the others are relative
  (scaled to a mean of 1, see :func:`drop_zero_weight`);
* the target scaler, fitted with the sample weights on the training rows only;
* early stopping on a validation slice carved from the given ratings with ``random_state``,
  the best epoch's weights restored; the slice's pairs are not trained on and never enter
  the implicit term, but they are in ``seen`` (the user rated them: ``recommend`` must
  not suggest them);
* the pairs, stored once: ``seen``, every pair given to fit (``partial_fit``, warm
  starts). The implicit layers get the training pairs: those of this run's training rows
  plus the previous ``seen`` (a previous fit's validation pairs count as trained on once
  a later run continues it);
* the history, kept once, in squared rating units (each Keras log times the scaler's
  variance).

``partial_fit`` (``TrainingConfig.incremental``) learns the new ratings without moving what
the fitted model knew about other ids: see :func:`fold_in_biases` and
:func:`hold_implicit_tables`.

Each function returns a :class:`Trained` record; the estimator stores it as fitted
attributes. Nothing here mutates the previous fit or its model, so a failed run leaves the
estimator as it was.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.compose import TransformedTargetRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import _check_sample_weight, check_random_state

from . import _defaults
from ._encoding import IdEncoder
from ._features import FeatureEncoder, check_feature_frame, side_vocabulary, warn_if_no_overlap
from ._keras import (
    finish_training,
    keras_model,
    make_regressor,
    start_training,
    train_epochs,
)
from ._network import (
    ARCHITECTURE_CHANGED,
    DAMPING,
    NetworkConfig,
    add_to_biases,
    copy_learned_state,
    damped_means,
    fill_outside_level,
    fill_untrained_rows,
    implicit_tables,
    make_serving_function,
    n_side_features,
    predict_codes,
    refresh_caches,
    set_damped_biases,
    set_feature_table,
    set_training_pairs,
    set_user_mean_days,
    time_grid,
    with_days,
)
from ._progress import EpochReport, StepReport
from ._recommend import seen_matrix, seen_pairs, seen_with_pairs
from ._time import TimeGrid


@dataclass(frozen=True)
class TrainingConfig:
    """The estimator's parameters as plain values, for one training run.

    ``architecture`` holds the :class:`~._network.NetworkConfig` fields other than the
    vocabulary sizes and feature widths (which come from the data).
    """

    architecture: dict[str, Any]
    epochs: int
    batch_size: int
    random_state: Any = None
    verbose: int = 0
    distribute: str | None = None
    callbacks: list = field(default_factory=list)
    early_stopping: bool = False
    validation_fraction: float = 0.1
    n_iter_no_change: int = 5
    tol: float = 1e-4
    user_features: pd.DataFrame | None = None
    item_features: pd.DataFrame | None = None
    incremental: bool = False
    compiled: bool = True


@dataclass
class Trained:
    """The outcome of a training run, stored by the estimator as fitted attributes."""

    encoder: IdEncoder
    regressor: TransformedTargetRegressor
    rating_min: float
    rating_max: float
    seen: sp.csr_array
    history: dict[str, list[float]]
    best_epoch: int | None
    # FeatureEncoder.state() of each side with features: encodes ids listed after fit.
    feature_encoders: dict[str, Any] | None = None


def fitted_attributes(trained: Trained) -> dict[str, Any]:
    """The estimator's fitted attributes that a training run sets, by name."""
    return {"encoder_": trained.encoder, "regressor_": trained.regressor,
            "n_users_": trained.encoder.n_users, "n_items_": trained.encoder.n_items,
            "rating_min_": trained.rating_min, "rating_max_": trained.rating_max,
            "history_": trained.history, "n_iter_": len(trained.history["loss"]),
            "best_epoch_": trained.best_epoch, "seen_": trained.seen,
            "feature_encoders_": trained.feature_encoders}


def trained_from(attributes: dict[str, Any]) -> Trained:
    """The :class:`Trained` record of an estimator's fitted attributes (the inverse of
    :func:`fitted_attributes`); files saved before ``feature_encoders_`` existed lack it."""
    return Trained(encoder=attributes["encoder_"], regressor=attributes["regressor_"],
                   rating_min=attributes["rating_min_"], rating_max=attributes["rating_max_"],
                   seen=attributes["seen_"], history=attributes["history_"],
                   best_epoch=attributes["best_epoch_"],
                   feature_encoders=attributes.get("feature_encoders_"))


# The settings a continued fit keeps from the fit it continues, unless set explicitly.
KEPT_SETTINGS = ("n_estimators", "implicit", "l2", "batch_size", "learning_rate")


def resolve_settings(params: dict[str, Any], n_ratings: int,
                     fitted: dict[str, Any] | None = None, *,
                     incremental: bool = False, extra_terms: bool = False) -> dict[str, Any]:
    """The ``"auto"`` values of ``params`` resolved for ``n_ratings`` (:mod:`._defaults`;
    ``extra_terms``: the network has time terms or side features), plus ``incremental``
    (a ``partial_fit``).

    A continued fit (``fitted``: the previous fit's resolved :data:`KEPT_SETTINGS`) keeps
    them: the architecture of the fitted network stays, and so do the penalty, batch size
    and learning rate its weights were trained with (resolved for a batch of new ratings
    alone they would be the small-data regime's: a three times stronger penalty and two
    dozen small steps that pull every row the batch touches away from what it learned).
    """
    settings = _defaults.resolve(params, n_ratings, extra_terms=extra_terms)
    for name, value in (fitted or {}).items():
        if params[name] == _defaults.AUTO:
            settings[name] = value
    settings["incremental"] = bool(incremental)
    return settings


def drop_zero_weight(users, items, ratings, sample_weight, times=None):
    """Validate ``sample_weight``, drop the rows whose weight is 0 and scale the others to
    a mean of 1.

    Weights are relative: the L2 penalty (per rating) and the damped-bias shrinkage (in
    ratings) are then on the scale of unit weights whatever the scale of the given ones,
    so multiplying every weight by a constant leaves the model unchanged. Returns
    ``(users, items, ratings, weights, times)``; ``weights`` is None without weights,
    ``times`` None without times. The caller's array is never modified.
    """
    if sample_weight is None:
        return users, items, ratings, None, times
    weights = _check_sample_weight(sample_weight, ratings, ensure_non_negative=True)
    keep = weights > 0
    if not keep.any():
        raise ValueError(
            "All sample weights are zero: there is nothing to learn from. Give at least one "
            "rating a positive weight."
        )
    if keep.all():
        return users, items, ratings, weights / weights.mean(), times
    return (users[keep], items[keep], ratings[keep], weights[keep] / weights[keep].mean(),
            None if times is None else times[keep])


def latest_time(seconds: np.ndarray | None, previous: float | None) -> float | None:
    """The latest training time so far (unix seconds), None for a model without times."""
    if seconds is None:
        return None
    latest = float(seconds.max())
    return latest if previous is None else max(latest, previous)


def validation_split(n: int, fraction: float, random_state: Any) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices: a seeded random ``fraction`` for validation."""
    n_validation = math.ceil(fraction * n)
    if n_validation >= n:
        raise ValueError(
            f"early_stopping with validation_fraction={fraction} leaves no training ratings "
            f"out of {n}; lower validation_fraction or pass more ratings."
        )
    order = check_random_state(random_state).permutation(n)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def fit_target_scaler(ratings: np.ndarray, weights: np.ndarray | None) -> StandardScaler:
    """A StandardScaler of the ratings, weighted like the loss."""
    return StandardScaler().fit(ratings.reshape(-1, 1), sample_weight=weights)


class BestWeights(keras.callbacks.Callback):
    """Early stopping on the validation loss, restoring the best epoch's weights at the end.

    As in scikit-learn's ``MLPRegressor``: training stops once the validation loss has not
    improved by at least ``tol`` for ``n_iter_no_change`` consecutive epochs; the weights
    kept are those of the epoch with the lowest validation loss (also when the epochs run
    out before stopping).
    """

    def __init__(self, *, n_iter_no_change: int, tol: float, verbose: int = 0):
        super().__init__()
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.verbose = verbose
        self.best_loss = math.inf
        self.reference_loss = math.inf
        self.best_weights = None
        self.best_epoch = None
        self.n_no_change = 0

    def on_epoch_end(self, epoch, logs=None):
        loss = float(logs["val_loss"])
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_epoch = epoch + 1
            self.best_weights = self.model.get_weights()
        if loss < self.reference_loss - self.tol:
            self.reference_loss = loss
            self.n_no_change = 0
        else:
            self.n_no_change += 1
        if self.n_no_change >= self.n_iter_no_change:
            self.model.stop_training = True
            if self.verbose:
                print(
                    f"Early stopping after epoch {epoch + 1}: the validation loss did not "
                    f"improve by tol for {self.n_iter_no_change} epochs; restoring the "
                    f"weights of epoch {self.best_epoch}."
                )

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def train_new(users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
              weights: np.ndarray | None, config: TrainingConfig, *,
              days: np.ndarray | None = None) -> Trained:
    """Fit a new model on the ratings (weight-0 rows already dropped).

    With ``days`` (the UTC day number of each rating), the network has time terms over the
    training ratings' period.
    """
    steps = StepReport(config.verbose)
    frames = {
        "user": check_feature_frame(config.user_features, "user_features"),
        "item": check_feature_frame(config.item_features, "item_features"),
    }
    encoder = _fit_vocabulary(users, items, frames)
    codes = with_days(encoder.encode(users, items), days)
    train, validation = _split(len(codes), config)
    scaler = fit_target_scaler(ratings[train], _take(weights, train))
    feature_encoders = {kind: FeatureEncoder().fit(frame) for kind, frame in frames.items()
                        if frame is not None}
    tables = {kind: None if kind not in feature_encoders else feature_encoders[kind].table(
        frame, encoder.user_ids if kind == "user" else encoder.item_ids)
        for kind, frame in frames.items()}
    seen = seen_matrix(codes[:, 0], codes[:, 1], encoder.n_users, encoder.n_items)
    steps.done(_encoded(len(ratings), encoder))
    network = NetworkConfig(n_users=encoder.n_users, n_items=encoder.n_items,
                            n_user_features=_width(tables["user"]),
                            n_item_features=_width(tables["item"]),
                            time_grid=None if days is None else TimeGrid.spanning(days[train]),
                            **config.architecture)

    def write_tables(model):
        for kind, table in tables.items():
            set_feature_table(model, kind, table)
        side_features = any(t is not None for t in tables.values())
        if _defaults.damped_biases_for(len(ratings), side_features=side_features):
            damping = _defaults.prior_damping_for(len(ratings), side_features=side_features)
            set_damped_biases(model, codes[train, 0], codes[train, 1], ratings[train],
                              _take(weights, train), scale=float(scaler.scale_[0]),
                              user_shrinkage=damping * DAMPING["user"],
                              item_shrinkage=damping * DAMPING["item"],
                              penalty=_defaults.bias_penalty_for(len(ratings)))
        if days is not None:
            set_user_mean_days(model, codes[train, 0], days[train])

    regressor, history, best_epoch = _train_network(
        network, config, codes, ratings, weights, (train, validation), scaler=scaler,
        pairs=(codes[train, 0], codes[train, 1]), history={}, prepare=write_tables, steps=steps)
    fill_untrained_rows(
        keras_model(regressor),
        np.bincount(codes[train, 0], minlength=encoder.n_users + 1)[:-1] > 0,
        np.bincount(codes[train, 1], minlength=encoder.n_items + 1)[:-1] > 0,
    )
    if days is not None:
        fill_outside_level(keras_model(regressor), days[train])
    steps.done("Finished: untrained rows filled, model stored")
    return Trained(
        encoder=encoder,
        regressor=regressor,
        rating_min=float(ratings.min()),
        rating_max=float(ratings.max()),
        seen=seen,
        history=history,
        best_epoch=best_epoch,
        feature_encoders={kind: fitted.state() for kind, fitted in feature_encoders.items()},
    )


def train_more(previous: Trained, users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
               weights: np.ndarray | None, config: TrainingConfig, *,
               days: np.ndarray | None = None) -> Trained:
    """Continue training ``previous``'s model; new ids grow the tables.

    ``days`` are required exactly when the model has time terms; its time grid is kept
    (later days are outside its period: they train the level of days outside it), and new
    users' drift is centred on their days here.
    """
    steps = StepReport(config.verbose)
    old_model = keras_model(previous.regressor)
    grid = time_grid(old_model)
    if (grid is None) != (days is None):
        raise ValueError(ARCHITECTURE_CHANGED)
    encoder = previous.encoder.extended(users, items)
    codes = with_days(encoder.encode(users, items), days)
    train, validation = _split(len(codes), config)
    scaler = previous.regressor.transformer_
    seen = seen_with_pairs(previous.seen, codes[:, 0], codes[:, 1], encoder.n_users,
                           encoder.n_items)
    steps.done(_encoded(len(ratings), encoder))
    network = NetworkConfig(n_users=encoder.n_users, n_items=encoder.n_items,
                            n_user_features=n_side_features(old_model, "user"),
                            n_item_features=n_side_features(old_model, "item"),
                            time_grid=grid, **config.architecture)
    # Only the implicit layers read the pairs: the history's are extracted for them alone.
    nothing = np.zeros(0, dtype=codes.dtype)
    old_users, old_items = (seen_pairs(previous.seen) if network.has_implicit
                            else (nothing, nothing))
    trained_pairs = (np.concatenate([old_users, codes[train, 0]]),
                     np.concatenate([old_items, codes[train, 1]]))

    def carry_over(model):
        copy_learned_state(old_model, model)
        if config.incremental:
            n_known = {"user": previous.encoder.n_users, "item": previous.encoder.n_items}
            fold_in_biases(old_model, model, codes[train], ratings[train],
                           _take(weights, train), n_known,
                           {"user": encoder.n_users, "item": encoder.n_items},
                           scale=float(scaler.scale_[0]), mean=float(scaler.mean_[0]))
            hold_implicit_tables(model, n_known)
        if days is not None:
            set_user_mean_days(model, codes[train, 0], days[train],
                               first_new=previous.encoder.n_users)

    regressor, history, best_epoch = _train_network(
        network, config, codes, ratings, weights, (train, validation), scaler=scaler,
        pairs=trained_pairs, history=previous.history, prepare=carry_over, steps=steps)
    refresh_caches(keras_model(regressor))
    steps.done("Finished: caches refreshed, model stored")
    return Trained(
        encoder=encoder,
        regressor=regressor,
        rating_min=min(previous.rating_min, float(ratings.min())),
        rating_max=max(previous.rating_max, float(ratings.max())),
        seen=seen,
        history=history,
        best_epoch=best_epoch,
        feature_encoders=previous.feature_encoders,
    )


# -- pieces ---------------------------------------------------------------------------------


def _train_network(network: NetworkConfig, config: TrainingConfig, codes: np.ndarray,
                   ratings: np.ndarray, weights: np.ndarray | None, split: tuple, *,
                   scaler: StandardScaler, pairs: tuple[np.ndarray, np.ndarray],
                   history: dict[str, list[float]],
                   prepare: Callable[[keras.Model], None], steps: StepReport,
                   ) -> tuple[TransformedTargetRegressor, dict[str, list[float]], int | None]:
    """Build the network, let ``prepare`` write what it needs (feature tables, a previous
    fit's weights), hand it the training (user code, item code) ``pairs`` for the implicit
    term and train it.

    Returns the fitted regressor, the history extended by this run and the best epoch.
    """
    train, validation = split
    regressor = _make_regressor(network, config)
    # float32, the dtype Keras trains in: no second copy of the ratings during training.
    scaled = scaler.transform(ratings.reshape(-1, 1))[:, 0].astype(np.float32)
    n_train = len(scaled[train])
    keras_regressor = start_training(regressor, codes[train], scaled[train])
    prepare(keras_regressor.model_)
    # Distributed and XLA training compute the implicit sums at every step (the refresh's
    # variable updates run per replica; XLA has no CSR product).
    scheduled = not (config.distribute or config.architecture.get("jit_compile"))
    epoch = (n_train, config.batch_size) if scheduled else None
    set_training_pairs(keras_regressor.model_, *pairs, epoch=epoch)
    steps.done(f"Built the network ({keras_regressor.model_.count_params():,} weights)")
    history, best_epoch = _run_epochs(keras_regressor, codes, scaled, weights, train,
                                      validation, config, scaler=scaler, history=history,
                                      steps=steps)
    return finish_training(regressor, scaler, keras_regressor), history, best_epoch


def _make_regressor(network: NetworkConfig, config: TrainingConfig) -> TransformedTargetRegressor:
    seed = config.random_state
    if seed is not None:
        seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
    # Keras' progress bar (standardised units) only at verbose=2; EpochReport prints the
    # per-epoch line in stars² from verbose=1.
    return make_regressor(network, epochs=config.epochs, batch_size=config.batch_size,
                          seed=seed, verbose=1 if config.verbose >= 2 else 0,
                          distribute=config.distribute)


def _fit_vocabulary(users, items, frames) -> IdEncoder:
    # Ids listed in a feature frame get a code even without ratings: their features then
    # drive their predictions.
    side = {kind: side_vocabulary(frame, f"{kind}_features") for kind, frame in frames.items()}
    try:
        encoder = IdEncoder().fit(_concat(users, side["user"]), _concat(items, side["item"]))
    except TypeError as exc:
        raise ValueError(
            "The index of user_features/item_features holds ids of another kind (strings vs "
            f"numbers) than the user/item ids of X: {exc}"
        ) from exc
    warn_if_no_overlap(side["user"], users, "user_features")
    warn_if_no_overlap(side["item"], items, "item_features")
    return encoder


def _concat(ids: np.ndarray, extra: np.ndarray) -> np.ndarray:
    if not len(extra):
        return ids
    if ids.dtype != extra.dtype and (ids.dtype.kind == "O" or extra.dtype.kind == "O"):
        return np.concatenate([ids.astype(object), extra.astype(object)])
    return np.concatenate([ids, extra])


def _split(n: int, config: TrainingConfig):
    # All rows as a slice: indexing with it gives views, not copies of the data.
    if not config.early_stopping:
        return slice(0, n), None
    return validation_split(n, config.validation_fraction, config.random_state)


def _encoded(n_ratings: int, encoder: IdEncoder) -> str:
    return (f"Encoded ids of {n_ratings:,} ratings ({encoder.n_users:,} users, "
            f"{encoder.n_items:,} items)")


def _take(weights: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if weights is None else weights[rows]


def _width(table: np.ndarray | None) -> int:
    return 0 if table is None else table.shape[1]


def _run_epochs(keras_regressor, codes, scaled, weights, train, validation,
                config: TrainingConfig, *, scaler: StandardScaler,
                history: dict[str, list[float]], steps: StepReport | None = None,
                ) -> tuple[dict[str, list[float]], int | None]:
    """Train ``config.epochs`` epochs (fewer when stopping early).

    Returns the history extended by this run (in squared rating units) and the best epoch
    (None without a validation slice). The user's callbacks are copied, so the estimator's
    parameter never holds a fitted model.
    """
    variance = float(scaler.scale_[0] ** 2)
    before = len(history.get("loss", []))
    callbacks = [copy.deepcopy(callback) for callback in config.callbacks]
    if config.verbose:
        callbacks.append(EpochReport(n_ratings=len(scaled[train]), variance=variance,
                                     last_epoch=before + config.epochs,
                                     after_progress_bar=config.verbose >= 2, steps=steps))
    validation_data: tuple | None = None
    stopper = None
    if validation is not None:
        stopper = BestWeights(n_iter_no_change=config.n_iter_no_change,
                              tol=config.tol / variance, verbose=config.verbose)
        callbacks.append(stopper)
        validation_data = (codes[validation], scaled[validation])
        if weights is not None:
            validation_data = (*validation_data, weights[validation])
    logs = train_epochs(keras_regressor, codes[train], scaled[train], _take(weights, train),
                        initial_epoch=before, epochs=config.epochs, callbacks=callbacks,
                        validation_data=validation_data, compiled=config.compiled)
    added = len(logs.get("loss", []))
    merged = {key: list(values) for key, values in history.items()}
    # A key logged in only some runs (val_* with early stopping) is padded with NaN, so
    # every list has one value per epoch and the curves can be plotted against each other.
    for key in set(merged) | set(logs):
        values = [v * variance for v in logs[key]] if key in logs else [math.nan] * added
        merged[key] = merged.get(key, [math.nan] * before) + values
    return merged, None if stopper is None else stopper.best_epoch



# -- partial_fit: learn the new ratings, keep what was learned ----------------------------------


def fold_in_biases(old_model: keras.Model, model: keras.Model, codes: np.ndarray,
                   ratings: np.ndarray, weights: np.ndarray | None, n_known: dict[str, int],
                   n_now: dict[str, int], *, scale: float, mean: float) -> None:
    """Start the biases of new ids at their damped mean residual under the fitted model.

    A new id starts as the unknown-id row; its bias is then moved by the damped mean of what
    the fitted model (``old_model``, which predicts it as an unknown id) misses on its
    ratings, items first (shrunk by 25 ratings) then users on what is left (by 10), as the
    damped-bias prior of a fit: with a prior (:class:`~._layers.DampedBias`) this is the
    new id's prior, and its learned deviation is penalised per id as in a fit (see
    :func:`~._network.add_to_biases`). One epoch of a few steps moves a row only a little, so
    without this a new user's bias stays near the fallback's; on MovieLens 100K by time the
    new users' RMSE is 0.899 with it, about 0.911 without (``benchmarks/partial_fit.py``).
    A new id's side features are not part of the fitted model's prediction here.
    ``n_known`` holds the numbers of users and items of the fitted model (codes from there
    on are new), ``n_now`` those of the grown one; ratings are in stars, ``scale`` and
    ``mean`` those of the target scaler.
    """
    as_unknown = codes.copy()
    for column, kind in enumerate(("user", "item")):
        as_unknown[as_unknown[:, column] >= n_known[kind], column] = n_known[kind]
    predicted = predict_codes(make_serving_function(old_model), as_unknown)
    residual = (ratings - mean) / scale - predicted
    weights = np.ones(len(residual)) if weights is None else weights
    for column, kind in ((1, "item"), (0, "user")):
        n_rows = n_now[kind] + 1  # the reserved row last, as in the tables
        shift, counts = damped_means(codes[:, column], residual, weights, n_rows,
                                     DAMPING[kind])
        shift[:n_known[kind]] = 0.0
        counts[:n_known[kind]] = 0.0
        add_to_biases(model, kind, shift, counts)
        residual = residual - shift[codes[:, column]]


def hold_implicit_tables(model: keras.Model, n_known: dict[str, int]) -> None:
    """Keep the implicit vector tables as fitted during a ``partial_fit``; new rows are zero.

    Each implicit sum mixes the vectors of many ids, so training them on a batch of new
    ratings moves the predictions of ids that are not in it: on MovieLens 100K by time one
    ``partial_fit`` of the next 10 % raised the RMSE of the old users from 0.968 to 0.984
    with the tables trained (the fitted settings kept; 1.018 with the settings of the batch
    alone), to 0.968 with them held (``benchmarks/partial_fit.py``). A new id's vector is zero:
    it adds nothing to the sums of the ids it rated (or was rated by), while its own sum
    reads the learned vectors of the other side.
    """
    tables = implicit_tables(model)
    for table, kind in tables:
        values = table.numpy()
        values[n_known[kind]:-1] = 0.0
        table.assign(values)
    model.optimizer.hold([table for table, _ in tables])
