"""Training runs of :class:`EmbeddingRatingRegressor`: a new model, or more epochs on one.

``train_new`` is a fit from scratch; ``train_more`` continues a fitted estimator
(``warm_start=True`` or ``partial_fit``): new user and item ids are appended to the id
vocabulary, the embedding tables grow by one row per new id (initialised to the reserved
"unknown" row, the average of the learned rows, so a new id starts at the fallback
prediction), every learned weight and the Adam state are copied over, and the target scaler
is kept (the weights are in its units). Both share:

* sample weights: rows of weight 0 are dropped before anything is learned from them (ids,
  scaler, implicit feedback), so they have no influence at all;
* the target scaler, fitted with the sample weights on the training rows only;
* early stopping on a validation slice carved from the given ratings with ``random_state``,
  the best epoch's weights restored;
* ``history_`` bookkeeping, each Keras log multiplied by the scaler's variance.

Each function returns a :class:`Trained` record; the estimator stores it as fitted
attributes. Nothing here mutates the estimator or the model of a previous fit, so a failed
run leaves the estimator as it was.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import _check_sample_weight, check_random_state

from . import _recommend
from ._encoding import IdEncoder
from ._features import (
    FeatureEncoder,
    FeatureLookup,
    check_feature_frame,
    n_side_features,
    set_feature_table,
    side_vocabulary,
)
from ._keras import train_epochs
from ._network import fill_unknown_rows, id_tables


@dataclass
class Trained:
    """The outcome of a training run, stored by the estimator as fitted attributes."""

    encoder: IdEncoder
    regressor: TransformedTargetRegressor
    rating_min: float
    rating_max: float
    seen: Any
    best_epoch: int | None


def drop_zero_weight(users, items, ratings, sample_weight):
    """Validate ``sample_weight`` and drop the rows whose weight is 0.

    Returns ``(users, items, ratings, weights)``; ``weights`` is None without weights.
    """
    if sample_weight is None:
        return users, items, ratings, None
    weights = _check_sample_weight(sample_weight, ratings, ensure_non_negative=True)
    keep = weights > 0
    if not keep.any():
        raise ValueError(
            "All sample weights are zero: there is nothing to learn from. Give at least one "
            "rating a positive weight."
        )
    if keep.all():
        return users, items, ratings, weights
    return users[keep], items[keep], ratings[keep], weights[keep]


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


def train_new(estimator, users, items, ratings, weights, *, epochs: int,
              early_stopping: bool) -> Trained:
    """Fit a new model on the ratings (weight-0 rows already dropped)."""
    frames = {
        "user": check_feature_frame(estimator.user_features, "user_features"),
        "item": check_feature_frame(estimator.item_features, "item_features"),
    }
    encoder = _fit_vocabulary(users, items, frames)
    codes = np.column_stack(encoder.transform(users, items))
    train, validation = _split(estimator, len(codes), early_stopping)
    scaler = fit_target_scaler(ratings[train], _take(weights, train))
    tables = {
        kind: None if frame is None else
        FeatureEncoder().fit(frame).table(frame, encoder.user_ids if kind == "user"
                                          else encoder.item_ids)
        for kind, frame in frames.items()
    }
    regressor = estimator._make_regressor(
        encoder.n_users, encoder.n_items, rated_pairs=codes[train],
        n_user_features=_width(tables["user"]), n_item_features=_width(tables["item"]),
    )
    scaled = scaler.transform(ratings.reshape(-1, 1))[:, 0]
    keras_regressor = clone(regressor.regressor)
    keras_regressor.initialize(codes[train], scaled[train])
    keras_regressor.history_ = defaultdict(list)
    for kind, table in tables.items():
        set_feature_table(keras_regressor.model_, kind, table)
    best_epoch = _run_epochs(estimator, keras_regressor, codes, scaled, weights, train,
                             validation, epochs=epochs, variance=float(scaler.scale_[0] ** 2))
    fill_untrained_rows(
        keras_regressor.model_,
        np.bincount(codes[train, 0], minlength=encoder.n_users + 1)[:-1] > 0,
        np.bincount(codes[train, 1], minlength=encoder.n_items + 1)[:-1] > 0,
    )
    return Trained(
        encoder=encoder,
        regressor=_assemble(regressor, scaler, keras_regressor),
        rating_min=float(ratings.min()),
        rating_max=float(ratings.max()),
        seen=_recommend.seen_matrix(codes[:, 0], codes[:, 1], encoder.n_users, encoder.n_items),
        best_epoch=best_epoch,
    )


def train_more(estimator, users, items, ratings, weights, *, epochs: int,
               early_stopping: bool) -> Trained:
    """Continue training the fitted estimator's model; new ids grow the tables."""
    previous = estimator.regressor_
    old_model = previous.regressor_.model_
    encoder = estimator.encoder_.extended(users, items)
    codes = np.column_stack(encoder.transform(users, items))
    train, validation = _split(estimator, len(codes), early_stopping)
    scaler = previous.transformer_
    old_seen = getattr(estimator, "seen_", None)
    old_pairs = (np.empty((0, 2), dtype=np.int64) if old_seen is None
                 else np.column_stack(old_seen.nonzero()))
    regressor = estimator._make_regressor(
        encoder.n_users, encoder.n_items,
        rated_pairs=np.concatenate([old_pairs, codes[train]]),
        n_user_features=n_side_features(old_model, "user"),
        n_item_features=n_side_features(old_model, "item"),
    )
    scaled = scaler.transform(ratings.reshape(-1, 1))[:, 0]
    keras_regressor = clone(regressor.regressor)
    keras_regressor.initialize(codes[train], scaled[train])
    copy_learned_state(old_model, keras_regressor.model_)
    keras_regressor.history_ = _copy_history(previous.regressor_.history_)
    best_epoch = _run_epochs(estimator, keras_regressor, codes, scaled, weights, train,
                             validation, epochs=epochs, variance=float(scaler.scale_[0] ** 2))
    _refresh_caches(keras_regressor.model_)
    return Trained(
        encoder=encoder,
        regressor=_assemble(regressor, scaler, keras_regressor),
        rating_min=min(float(estimator.rating_min_), float(ratings.min())),
        rating_max=max(float(estimator.rating_max_), float(ratings.max())),
        seen=_grow_seen(old_seen, codes, encoder),
        best_epoch=best_epoch,
    )


# -- pieces ---------------------------------------------------------------------------------


def _fit_vocabulary(users, items, frames) -> IdEncoder:
    # Ids listed in a feature frame get a code even without ratings: their features then
    # drive their predictions.
    side = {kind: side_vocabulary(frame, f"{kind}_features") for kind, frame in frames.items()}
    try:
        return IdEncoder().fit(_concat(users, side["user"]), _concat(items, side["item"]))
    except TypeError as exc:
        raise ValueError(
            "The index of user_features/item_features holds ids of another kind (strings vs "
            f"numbers) than the user/item ids of X: {exc}"
        ) from exc


def _concat(ids: np.ndarray, extra: np.ndarray) -> np.ndarray:
    if not len(extra):
        return ids
    if ids.dtype != extra.dtype and (ids.dtype.kind == "O" or extra.dtype.kind == "O"):
        return np.concatenate([ids.astype(object), extra.astype(object)])
    return np.concatenate([ids, extra])


def _split(estimator, n: int, early_stopping: bool):
    if not early_stopping:
        return np.arange(n), None
    return validation_split(n, estimator.validation_fraction, estimator.random_state)


def _take(weights: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if weights is None else weights[rows]


def _width(table: np.ndarray | None) -> int:
    return 0 if table is None else table.shape[1]


def _run_epochs(estimator, keras_regressor, codes, scaled, weights, train, validation, *,
                epochs: int, variance: float) -> int | None:
    """Train ``epochs`` epochs (fewer when stopping early); returns the best epoch or None."""
    before = len(keras_regressor.history_.get("loss", []))
    callbacks: list = []
    validation_data: tuple | None = None
    stopper = None
    if validation is not None:
        stopper = BestWeights(n_iter_no_change=estimator.n_iter_no_change,
                              tol=estimator.tol / variance, verbose=estimator.verbose)
        callbacks.append(stopper)
        validation_data = (codes[validation], scaled[validation])
        if weights is not None:
            validation_data = (*validation_data, weights[validation])
    logs = train_epochs(keras_regressor, codes[train], scaled[train], _take(weights, train),
                        epochs=epochs, callbacks=callbacks, validation_data=validation_data)
    _align_history(keras_regressor.history_, set(logs), before, len(logs.get("loss", [])))
    return None if stopper is None else stopper.best_epoch


def _align_history(history, logged: set[str], before: int, added: int) -> None:
    # A key logged in only some runs (val_* with early stopping) is padded with NaN, so
    # every list has one value per epoch and the curves can be plotted against each other.
    for key, values in history.items():
        if key not in logged:
            values.extend([math.nan] * added)
        elif len(values) == added:
            values[:0] = [math.nan] * before


def _copy_history(history) -> Any:
    return defaultdict(list, {key: list(values) for key, values in history.items()})


def _assemble(regressor: TransformedTargetRegressor, scaler: StandardScaler,
              keras_regressor) -> TransformedTargetRegressor:
    """Give the unfitted ``regressor`` its fitted parts, as its own ``fit`` would.

    Its ``fit`` cannot be used: it would refit the scaler without the sample weights (and
    on ``partial_fit`` data), and route ``sample_weight`` through metadata routing.
    """
    regressor.transformer_ = scaler
    regressor.regressor_ = keras_regressor
    regressor._training_dim = 1  # what TransformedTargetRegressor.fit records for a 1-D y
    return regressor


def fill_untrained_rows(model: keras.Model, trained_users: np.ndarray,
                        trained_items: np.ndarray) -> None:
    """Give every id without training ratings the reserved unknown row.

    That covers ids known only from the side features or only from the validation slice:
    their rows never learned anything, so they predict as an unknown id does (plus what
    their features say). The unknown row is the average of the trained rows.
    """
    masks = {"user": trained_users, "item": trained_items}
    tables = [(table, masks[table.name.split("_")[0]]) for table in id_tables(model)
              if table.name.split("_")[0] in masks]
    tables = [(table, mask) for table, mask in tables if mask.any() and not mask.all()]
    for table, mask in tables:
        values = table.embeddings.numpy()
        values[:-1][~mask] = values[:-1][mask].mean(axis=0)
        table.embeddings.assign(values)
    fill_unknown_rows(model)
    for table, mask in tables:
        values = table.embeddings.numpy()
        values[:-1][~mask] = values[-1]
        table.embeddings.assign(values)


def _refresh_caches(model: keras.Model) -> None:
    # Layers that cache derived tables for serving (implicit feedback) recompute them from
    # the trained weights; the first fit does this in fill_unknown_rows.
    for layer in model.layers:
        if hasattr(layer, "refresh_cache"):
            layer.refresh_cache()


def copy_learned_state(old: keras.Model, new: keras.Model) -> None:
    """Copy the weights and Adam state of ``old`` into ``new``, whose id tables may be larger.

    A grown table keeps its rows and codes; the new ids' rows (inserted before the reserved
    last row) start as copies of that unknown row, with zero optimizer moments. Weights
    derived from the training pairs (implicit feedback) are kept as ``new`` built them.
    Adam's step count and second moments carry over; its first moments (momentum) start
    at zero, so that ids absent from the new ratings do not keep drifting along their last
    gradients (on MovieLens this halves how far known users' predictions move in a
    ``partial_fit`` of new users).
    """
    old_layers = {layer.name: layer for layer in old.layers if layer.weights}
    new_layers = {layer.name: layer for layer in new.layers if layer.weights}
    if set(old_layers) != set(new_layers):
        raise ValueError(_ARCHITECTURE_CHANGED)
    for name, old_layer in old_layers.items():
        grows = isinstance(old_layer, FeatureLookup)
        for old_weight, new_weight in zip(old_layer.weights, new_layers[name].weights,
                                          strict=True):
            value = old_weight.numpy()
            shape = tuple(new_weight.shape)
            if value.shape == shape:
                new_weight.assign(value)
            elif old_weight.trainable or grows:
                if value.shape[1:] != shape[1:] or value.shape[0] > shape[0]:
                    raise ValueError(_ARCHITECTURE_CHANGED)
                new_weight.assign(_insert_rows(value, shape[0] - value.shape[0], value[-1]))
    _copy_optimizer_state(old.optimizer, new.optimizer, new.trainable_variables)


_ARCHITECTURE_CHANGED = (
    "warm_start=True and partial_fit continue the fitted network, but its architecture "
    "parameters (n_factors, hidden_units, use_bias, dot_product, implicit) changed since "
    "the last fit. Restore them, or fit from scratch with warm_start=False."
)


def _copy_optimizer_state(old, new, variables) -> None:
    # The step count and second moments continue; momentum restarts at zero (see
    # copy_learned_state); the learning rate is the current parameter.
    if not getattr(old, "built", False):
        return
    new.build(variables)
    old_values = {v.path.split("/", 1)[-1]: v for v in old.variables}
    for variable in new.variables:
        key = variable.path.split("/", 1)[-1]
        if key == "learning_rate" or key not in old_values or key.endswith("_momentum"):
            continue
        value = old_values[key].numpy()
        shape = tuple(variable.shape)
        if value.shape == shape:
            variable.assign(value)
        elif value.shape[1:] == shape[1:] and value.shape[0] <= shape[0]:
            zeros = np.zeros_like(value[-1])
            variable.assign(_insert_rows(value, shape[0] - value.shape[0], zeros))


def _insert_rows(values: np.ndarray, n_new: int, row: np.ndarray) -> np.ndarray:
    """``values`` with ``n_new`` copies of ``row`` inserted before its last row."""
    return np.concatenate([values[:-1], np.repeat(row[None], n_new, axis=0), values[-1:]])


def _grow_seen(seen, codes: np.ndarray, encoder: IdEncoder):
    """The seen (user, item) pairs in the grown code space, plus those of ``codes``."""
    if seen is None:
        return None
    old_users, old_items = seen.nonzero()
    return _recommend.seen_matrix(
        np.concatenate([old_users, codes[:, 0]]), np.concatenate([old_items, codes[:, 1]]),
        encoder.n_users, encoder.n_items,
    )
