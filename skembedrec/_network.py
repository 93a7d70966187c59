"""The Keras graph: its configuration, one definition, and every operation on a built model.

The network takes one int32 input of shape ``(n, 2)`` (user code, item code), or ``(n, 3)``
with the UTC day number of each rating when it has time terms, and returns a
prediction of shape ``(n, 1)`` in standardised rating units. Keeping the output ``(n, 1)``
matters: Keras 3 broadcasts an ``(n, 1, 1)`` output against an ``(n,)`` target into an
``(n, 1, n)`` loss, which is why the seed notebook's network never learns on Keras 3.

Everything that knows the graph lives here: layer names, the reserved last row of each id
table, how tables grow for new ids, the optimizer's variables, the factor vectors that
predictions use and the compiled serving call. The layers themselves are in
:mod:`._layers`; other modules call the functions below and never look inside a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ._layers import (
    DampedBias,
    EnsembleMean,
    FeatureLookup,
    IdColumn,
    ImplicitFeedback,
    MemberDots,
    PadColumns,
    PenalizedEmbedding,
    TimeBinBias,
    UserDrift,
)
from ._optimization import RatingModel, RowSparseAdam, refresh_interval
from ._time import TimeGrid

# Embedding tables beyond this many float32 values (8 GiB) are refused before allocation.
MAX_TABLE_VALUES = 2**31

# The id-indexed tables and the side ("user" or "item") whose codes index them.
_ID_TABLES = {"user_embedding": "user", "user_bias": "user",
              "item_embedding": "item", "item_bias": "item"}


# The damped-bias baseline's shrinkage, in ratings (Koren 2010; see set_damped_biases).
DAMPING = {"user": 10.0, "item": 25.0}

# L2 penalty of the users' drift (per rating, standardised units): on validation folds of
# MovieLens 100K anything from 0 to 0.01 did as well; 1.0 lost half the drift's gain.
TIME_L2 = 0.01


@dataclass(frozen=True)
class NetworkConfig:
    """What :func:`build_network` builds: the vocabulary sizes and the architecture.

    ``n_users`` and ``n_items`` count the known ids (each table gets one more row, reserved
    for ids unseen at fit); ``n_user_features``/``n_item_features`` are the widths of the
    encoded side features (0: none); ``time_grid`` the training period when the network has
    time terms (None: no time input). The other fields are the estimator's parameters of the
    same names.
    """

    n_users: int
    n_items: int
    n_factors: int = 32
    hidden_units: tuple[int, ...] = ()
    dropout: float = 0.5
    embedding_dropout: float = 0.1
    use_bias: bool = True
    dot_product: bool = True
    implicit: bool = False
    n_estimators: int = 1
    l2: float = 0.0
    learning_rate: float = 0.01
    n_user_features: int = 0
    n_item_features: int = 0
    jit_compile: bool = False
    time_grid: TimeGrid | None = None
    time_l2: float = TIME_L2

    def __post_init__(self) -> None:
        for kind, n in (("users", self.n_users), ("items", self.n_items)):
            if (n + 1) * self.n_factors * self.n_estimators > MAX_TABLE_VALUES:
                raise ValueError(
                    f"n_factors={self.n_factors} with {n} {kind} needs an embedding table of "
                    f"{(n + 1) * self.n_factors * self.n_estimators * 4 / 2**30:.1f} GiB; use "
                    "a smaller n_factors (or n_estimators)."
                )

    @property
    def has_implicit(self) -> bool:
        """Whether the network has implicit-feedback layers (they need the training pairs)."""
        return self.implicit and self.dot_product


def build_network(config: NetworkConfig) -> keras.Model:
    """Build and compile the rating network described by ``config``.

    The prediction is the sum of the enabled parts: the MLP tower over the concatenated
    embeddings (the seed notebook's network), the dot product of the two embeddings (matrix
    factorisation) and per-user and per-item biases.

    With ``implicit`` (and ``dot_product``), the dot product's user factors also get the
    SVD++ implicit term over the items the user rated, and the item factors the same over the
    users who rated the item (:class:`~._layers.ImplicitFeedback`); the training pairs are
    handed over by :func:`set_training_pairs`. The MLP tower sees the plain embeddings only,
    so the notebook's network (``dot_product=False``) never contains implicit layers. The L2
    penalty applies to the vectors a batch uses; the biases are not penalised. With
    ``n_estimators`` > 1 the dot product is an ensemble: that many independently initialised
    sets of columns of the tables (:class:`~._layers.MemberDots`), each trained as if alone
    (:class:`~._layers.EnsembleMean`), averaged. The MLP tower reads all the columns.

    With side features, a non-trainable table of encoded features is looked up by the same
    code, projected and added to the first member's embedding columns, plus a feature bias
    (the table is written by :func:`set_feature_table`). ``jit_compile`` builds only layers
    that XLA can compile. Besides the loss, the model reports the plain (sample-weighted)
    MSE as the metric ``"mse"``: the loss also holds the L2 penalty.

    Examples
    --------
    >>> model = build_network(NetworkConfig(n_users=3, n_items=4, n_factors=8,
    ...                                     hidden_units=(16,)))
    >>> model.output_shape
    (None, 1)
    """
    grid = config.time_grid
    ids = keras.Input(shape=(2 if grid is None else 3,), dtype="int32", name="ids")
    codes = {"user": IdColumn(0, name="user_code")(ids),
             "item": IdColumn(1, name="item_code")(ids)}
    sizes = {"user": config.n_users + 1, "item": config.n_items + 1}
    features = {"user": config.n_user_features, "item": config.n_item_features}
    # The ensemble members of the dot product are side by side in the same tables: member m
    # owns columns [m * n_factors, (m + 1) * n_factors) (one lookup, one optimizer update
    # and one implicit product per table, whatever the number of members). Each member's
    # share of the ensemble loss is 1/n_estimators of its own loss (see EnsembleMean), so
    # its penalty is scaled alike to keep each member's optimum.
    members = config.n_estimators if config.dot_product else 1
    width = config.n_factors * members
    member_l2 = config.l2 / members
    vectors, feature_biases = {}, []
    for kind in ("user", "item"):
        embedded = PenalizedEmbedding(sizes[kind], width, l2=member_l2,
                                      name=f"{kind}_embedding")(codes[kind])
        vectors[kind], bias = _with_side_features(
            codes[kind], embedded, n_rows=sizes[kind], n_features=features[kind], kind=kind,
            use_bias=config.use_bias, n_columns=config.n_factors)
        feature_biases += [bias] if bias is not None else []

    parts = []
    if config.hidden_units:
        x = keras.layers.Concatenate(name="concat")([vectors["user"], vectors["item"]])
        x = keras.layers.Dropout(config.embedding_dropout, name="embedding_dropout")(x)
        for depth, units in enumerate(config.hidden_units):
            x = keras.layers.Dense(units, activation="relu", name=f"hidden_{depth}")(x)
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{depth}")(x)
        parts.append(keras.layers.Dense(1, name="mlp_output")(x))
    if config.dot_product:
        factors = dict(vectors)
        if config.implicit:
            for kind, other in (("user", "item"), ("item", "user")):
                implicit = ImplicitFeedback(sizes[kind], sizes[other], width, l2=member_l2,
                                            xla=config.jit_compile, name=f"{kind}_implicit")
                factors[kind] = keras.layers.Add(name=f"{kind}_factors")(
                    [vectors[kind], implicit(codes[kind])])
        dots = MemberDots(members, name="dot")([factors["user"], factors["item"]])
        parts.append(dots if members == 1 else EnsembleMean(name="dot_mean")(dots))
    if config.use_bias:
        for kind in ("user", "item"):
            parts.append(DampedBias(sizes[kind], name=f"{kind}_bias")(codes[kind]))
        parts.extend(feature_biases)
    if grid is not None:
        parts.extend(_time_terms(codes, IdColumn(2, name="day")(ids), sizes, grid,
                                 config.time_l2))
    if not parts:
        raise ValueError(
            "The network has no output: set hidden_units to a non-empty tuple, or enable "
            "dot_product or use_bias."
        )
    rating = parts[0] if len(parts) == 1 else keras.layers.Add(name="rating")(parts)
    model = RatingModel(ids, rating, name="embedding_rating_network")
    model.compile(optimizer=RowSparseAdam(config.learning_rate,
                                          row_sparse=not config.jit_compile), loss="mse",
                  weighted_metrics=[keras.metrics.MeanSquaredError(name="mse")])
    return model


def _time_terms(codes: dict, days, sizes: dict[str, int], grid: TimeGrid, l2: float) -> list:
    """timeSVD++'s bias terms that MovieLens supports: each user's drift, each bin's level.

    Chosen on five validation folds of MovieLens 100K's training ratings (the notebook
    split's; ``benchmarks/time_terms.py``): the drift and the level each lowered the RMSE
    by about 0.002, together by 0.004 (0.8964 against 0.9004), while a bias per item and
    bin (timeSVD++'s ``b_i,Bin(t)``, about 4 ratings per item and bin) overfit at an L2 of
    1.0 (0.9024) and added nothing at 30 (0.8965), and a bias per user and day added
    nothing over the drift (a ridge model on the same folds). The factors do not depend on
    time, so a fitted model keeps its additive form (:func:`additive_form`) at any given
    day.
    """
    drift = UserDrift(sizes["user"], grid.first_day, grid.last_day, l2=l2, name="user_drift")
    level = TimeBinBias(grid.n_bins, grid.first_day, grid.last_day, grid.days_per_bin,
                        name="time_bias")
    return [drift([codes["user"], days]), level(days)]


def _with_side_features(codes, vectors, *, n_rows: int, n_features: int, kind: str,
                        use_bias: bool, n_columns: int):
    """Add a learned projection of the side features to the first ``n_columns`` columns.

    With an ensemble of dot products that is the first member's columns. Measured on
    MovieLens 100K (``benchmarks/side_features.py``, 3 seeds), adding it to every member
    overfits the warm users (RMSE 0.905 with user features against 0.900 without) for the
    same cold-start gain; on the first member alone it does not. Returns the new vectors and
    a feature bias (``None`` without ``use_bias`` or without features).
    """
    if not n_features:
        return vectors, None
    width = vectors.shape[-1]
    features = FeatureLookup(n_rows, n_features, name=f"{kind}_features")(codes)
    projection = keras.layers.Dense(
        n_columns, use_bias=False, name=f"{kind}_feature_factors",
        kernel_initializer=keras.initializers.RandomUniform(-0.05, 0.05),
    )(features)
    if n_columns < width:
        projection = PadColumns(width, name=f"{kind}_feature_padding")(projection)
    vectors = keras.layers.Add(name=f"{kind}_vectors")([vectors, projection])
    bias = None
    if use_bias:
        bias = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                                  name=f"{kind}_feature_bias")(features)
    return vectors, bias


# -- data that lives in the graph -------------------------------------------------------------


def set_training_pairs(model: keras.Model, user_codes: np.ndarray, item_codes: np.ndarray, *,
                       epoch: tuple[int, int] | None = None) -> None:
    """Give the implicit-feedback layers (if any) the training (user, item) code pairs.

    With ``epoch`` = ``(n_ratings, batch_size)`` of the coming training epochs, the layers
    are also put on the training schedule of :mod:`._optimization`: their sums are
    refreshed every :func:`~._optimization.refresh_interval` steps and at the end of each
    epoch. Without it (distributed training) training computes the sums at every step.
    """
    for kind, rows, columns in (("user", user_codes, item_codes),
                                ("item", item_codes, user_codes)):
        layer = _layer(model, f"{kind}_implicit")
        if layer is not None:
            layer.set_pairs(rows, columns)
            if epoch is not None:
                n_ratings, batch_size = epoch
                layer.schedule(refresh_interval(n_ratings, batch_size),
                               steps_per_epoch=max(1, -(-n_ratings // batch_size)))


def set_feature_table(model: keras.Model, kind: str, table: np.ndarray | None) -> None:
    """Write the encoded side features of ``kind`` ('user'/'item') into the model."""
    if table is not None:
        model.get_layer(f"{kind}_features").table.assign(table)


def feature_table(model: keras.Model, kind: str) -> np.ndarray | None:
    """The encoded side features of ``kind`` in the model (None without side features)."""
    layer = _layer(model, f"{kind}_features")
    return layer.table.numpy() if isinstance(layer, FeatureLookup) else None


def set_user_mean_days(model: keras.Model, user_codes: np.ndarray, days: np.ndarray, *,
                       first_new: int = 0) -> None:
    """Write the mean training day of the users from code ``first_new`` on into the drift
    layer (no-op without time terms); the rows of earlier users are kept.

    A user without ratings here (or the reserved row) gets the mean of all ``days``: with
    zero drift it does not matter, and the table stays finite.
    """
    layer = _layer(model, "user_drift")
    if layer is None:
        return
    table = layer.mean_day.numpy()
    counts = np.bincount(user_codes, minlength=len(table))
    sums = np.bincount(user_codes, weights=days, minlength=len(table))
    new_rows = np.arange(len(table)) >= first_new
    table[new_rows] = days.mean()
    rated = new_rows & (counts > 0)
    table[rated] = sums[rated] / counts[rated]
    layer.mean_day.assign(table)


def set_damped_biases(model: keras.Model, user_codes: np.ndarray, item_codes: np.ndarray,
                      ratings: np.ndarray, weights: np.ndarray | None = None, *, scale: float,
                      user_shrinkage: float = DAMPING["user"],
                      item_shrinkage: float = DAMPING["item"], penalty: float = 1.0) -> None:
    """Give the user and item biases the damped-bias baseline of the ratings as their prior.

    Items first, ``b_i = sum(w (r - mu)) / (sum(w) + 25)``, then users on what is left,
    ``b_u = sum(w (r - mu - b_i)) / (sum(w) + 10)``; ``mu`` is the weighted mean of the
    ratings. These are written as the fixed :attr:`~._layers.DampedBias.prior` of each id,
    and the learned deviation from it is penalised per id by ``penalty`` times the same
    shrinkage (:attr:`~._layers.DampedBias.penalty` ``= penalty * shrinkage / sum(w)``):
    damping as a penalty, so that training moves an id with few ratings little from its
    damped estimate. The network's units are ratings standardised by ``scale`` (the
    standard deviation of the target scaler): the priors are written divided by it, with no
    standardised copy of the ratings. Ids without ratings (and the reserved rows) get the
    mean prior of the ids with ratings, and no penalty: they predict as an unknown id does.
    The reserved row's penalty, never used in training, holds ``penalty`` for
    :func:`add_to_biases`. No-op without biases. When it is used, and what it buys:
    :func:`~._defaults.damped_biases_for` and :func:`~._defaults.bias_penalty_for`.
    """
    if _layer(model, "user_bias") is None:
        return
    weights = np.ones(len(ratings)) if weights is None else weights.astype(np.float64)
    residual = ratings.astype(np.float64) - np.average(ratings, weights=weights)
    for kind, codes, shrinkage in (("item", item_codes, item_shrinkage),
                                   ("user", user_codes, user_shrinkage)):
        layer = model.get_layer(f"{kind}_bias")
        bias, counts = damped_means(codes, residual, weights, layer.input_dim, shrinkage)
        residual = residual - bias[codes]
        rated = counts > 0
        bias[~rated] = bias[rated].mean()
        layer.prior.assign((bias / scale).astype(np.float32))
        per_id = _per_id_penalty(penalty, shrinkage, counts)
        per_id[-1] = penalty
        layer.penalty.assign(per_id.astype(np.float32))
        object.__setattr__(layer, "penalised", penalty > 0)


def damped_means(codes: np.ndarray, values: np.ndarray, weights: np.ndarray, n_rows: int,
                 shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row (code), the damped weighted mean of ``values``, ``sum(w v) / (sum(w) +
    shrinkage)``, and the weighted count ``sum(w)``: the damped-bias baseline's estimate."""
    counts = np.bincount(codes, weights=weights, minlength=n_rows)
    return np.bincount(codes, weights=weights * values, minlength=n_rows) / (
        counts + shrinkage), counts


def _per_id_penalty(scale: float, shrinkage: float, counts: np.ndarray) -> np.ndarray:
    """Each row's penalty on its bias's deviation: ``scale * shrinkage / count`` where it
    has ratings (an id pays ``scale * shrinkage * deviation**2`` per epoch), else 0."""
    return np.where(counts > 0, scale * shrinkage / np.maximum(counts, 1e-12), 0.0)


def fill_outside_level(model: keras.Model, days: np.ndarray) -> None:
    """Set the level of days before and after the training period to the mean level of the
    training ratings' ``days`` (no-op without time terms)."""
    layer = _layer(model, "time_bias")
    if layer is None:
        return
    table = layer.table.numpy()
    table[-2:] = np.asarray(layer(days)).mean()
    layer.table.assign(table)


def time_grid(model: keras.Model) -> TimeGrid | None:
    """The training period of a model with time terms (None without)."""
    drift, bins = _layer(model, "user_drift"), _layer(model, "time_bias")
    if drift is None or bins is None:
        return None
    return TimeGrid(drift.first_day, drift.last_day, bins.days_per_bin)


def n_side_features(model: keras.Model, kind: str) -> int:
    """How many encoded features of ``kind`` the model has (0 without side features)."""
    layer = _layer(model, f"{kind}_features")
    return layer.n_features if isinstance(layer, FeatureLookup) else 0


def _layer(model: keras.Model, name: str):
    return next((layer for layer in model.layers if layer.name == name), None)


def _id_tables(model: keras.Model) -> list[tuple[keras.layers.Embedding, str]]:
    """The embedding layers indexed by user or item code, with their side."""
    return [(layer, _ID_TABLES[layer.name]) for layer in model.layers
            if layer.name in _ID_TABLES]


def implicit_tables(model: keras.Model) -> list[tuple[keras.Variable, str]]:
    """The vector tables of the implicit-feedback layers (none without them), each with the
    side ('user' or 'item') whose codes index its rows: the items a user rated, the users
    who rated an item."""
    layers = ((_layer(model, f"{kind}_implicit"), other)
              for kind, other in (("user", "item"), ("item", "user")))
    return [(layer.embeddings, other) for layer, other in layers if layer is not None]


def add_to_biases(model: keras.Model, kind: str, shift: np.ndarray,
                  counts: np.ndarray | None = None) -> None:
    """Add ``shift`` (one value per row, standardised units) to the ``kind`` ('user' or
    'item') biases; no-op without biases.

    With a prior (:class:`~._layers.DampedBias`) the shift goes into the prior, and the
    rows with ``counts`` > 0 (weighted numbers of ratings, one per row) get the penalty
    :func:`set_damped_biases` gives that many ratings, at the fit's scale (which the
    reserved row holds). Biases of files written before the prior existed take the shift
    themselves.
    """
    layer = _layer(model, f"{kind}_bias")
    if layer is None:
        return
    if not isinstance(layer, DampedBias):
        layer.embeddings.assign_add(shift[:, None].astype(np.float32))
        return
    layer.prior.assign_add(shift.astype(np.float32))
    if counts is not None:
        penalty = layer.penalty.numpy()
        rated = counts > 0
        penalty[rated] = _per_id_penalty(penalty[-1], DAMPING[kind], counts)[rated]
        layer.penalty.assign(penalty)


# -- the reserved rows -------------------------------------------------------------------------


def fill_unknown_rows(model: keras.Model) -> None:
    """Set each table's reserved last row to the mean of the learned rows.

    An unknown user then looks like an average user, so the prediction falls back on what is
    known of the item (and vice versa, and on the global mean when both are unknown).
    An unknown id has no implicit feedback (its implicit vector is zero), so the mean of the
    known ids' implicit vectors goes into its embedding row instead. Refreshes the
    implicit layers' serving caches.
    """
    for table, kind in _id_tables(model):
        weights = table.embeddings.numpy()
        weights[-1] = weights[:-1].mean(axis=0)
        implicit = _layer(model, f"{kind}_implicit") if table.name.endswith("_embedding") \
            else None
        if isinstance(implicit, ImplicitFeedback):
            implicit.refresh_cache()
            weights[-1] += implicit.cached_vectors.numpy()[:-1].mean(axis=0)
        table.embeddings.assign(weights)


def fill_untrained_rows(model: keras.Model, trained_users: np.ndarray,
                        trained_items: np.ndarray) -> None:
    """Give every id without training ratings the reserved unknown row (see below).

    That covers ids known only from the side features or only from the validation slice:
    their rows never learned anything, so they predict as an unknown id does (plus what
    their features say). The unknown row is the average of the trained rows. The masks are
    boolean, one value per known user (item) code.
    """
    masks = {"user": trained_users, "item": trained_items}
    tables = [(table, masks[kind]) for table, kind in _id_tables(model)]
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


def refresh_caches(model: keras.Model) -> None:
    """Recompute the implicit layers' serving caches from the trained weights."""
    for layer in model.layers:
        if isinstance(layer, ImplicitFeedback):
            layer.refresh_cache()


# -- growing a model for new ids ----------------------------------------------------------------

ARCHITECTURE_CHANGED = (
    "warm_start=True and partial_fit continue the fitted network, but its architecture "
    "parameters (n_factors, hidden_units, use_bias, dot_product, implicit, n_estimators, "
    "time_col) changed since the last fit. Restore them, or fit from scratch with warm_start=False."
)


def copy_learned_state(old: keras.Model, new: keras.Model) -> None:
    """Copy the weights and Adam state of ``old`` into ``new``, whose id tables may be larger.

    A grown table keeps its rows and codes; the new ids' rows (inserted before the reserved
    last row) start as copies of that unknown row, with zero optimizer moments; derived
    weights (the implicit layers' serving caches) are left as ``new`` built them. Adam's step
    count and second moments carry over; its first moments (momentum) start at zero, so
    that ids absent from the new ratings do not keep drifting along their last gradients (on
    MovieLens this halves how far known users' predictions move in a ``partial_fit`` of new
    users). Raises a ValueError (:data:`ARCHITECTURE_CHANGED`) if the graphs differ.
    """
    old_layers = {layer.name: layer for layer in old.layers if layer.weights}
    new_layers = {layer.name: layer for layer in new.layers if layer.weights}
    if set(old_layers) != set(new_layers):
        raise ValueError(ARCHITECTURE_CHANGED)
    for name, old_layer in old_layers.items():
        grows = isinstance(old_layer, (FeatureLookup, UserDrift, DampedBias))
        new_weights = new_layers[name].weights
        if isinstance(new_layers[name], DampedBias) and not isinstance(old_layer, DampedBias):
            new_weights = new_weights[:1]  # a bias saved before the prior: none, unpenalised
        for old_weight, new_weight in zip(old_layer.weights, new_weights, strict=True):
            value = old_weight.numpy()
            shape = tuple(new_weight.shape)
            if value.shape == shape:
                new_weight.assign(value)
            elif old_weight.trainable or grows:
                if value.shape[1:] != shape[1:] or value.shape[0] > shape[0]:
                    raise ValueError(ARCHITECTURE_CHANGED)
                new_weight.assign(_insert_rows(value, shape[0] - value.shape[0], value[-1]))
    _copy_optimizer_state(old.optimizer, new.optimizer, new.trainable_variables)


def _copy_optimizer_state(old, new, variables) -> None:
    # The step count and second moments continue; momentum restarts at zero (see
    # copy_learned_state); the learning rate is the current parameter. Keras names each
    # slot after its variable's path ("adam/user_embedding_embeddings_velocity").
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


# -- reading a fitted model ---------------------------------------------------------------------


def factor_table(model: keras.Model, kind: str, *, empty_if_biases_only: bool = False
                 ) -> np.ndarray:
    """The ``kind`` ('user' or 'item') factor vectors that predictions use, reserved row excluded.

    With ``dot_product`` these are the inputs of the network's dot products: the embedding
    row plus, where enabled, the implicit-feedback vector and the side-feature projection.
    The vectors of the ``n_estimators`` ensemble members are concatenated and scaled by
    ``1/sqrt(n_estimators)``, so the dot product of a user's and an item's vectors is the
    ensemble's averaged dot product. Without ``dot_product`` (the MLP tower alone) they are
    the raw embedding rows the tower reads.

    A network with neither (``dot_product=False, hidden_units=()``) has biases only: no
    factors. Then a ValueError (:data:`BIASES_ONLY`) is raised, or with
    ``empty_if_biases_only`` a table with no columns is returned (one row per id).
    """
    if not has_factors(model):
        if empty_if_biases_only:
            return np.zeros((model.get_layer(f"{kind}_bias").input_dim - 1, 0), np.float32)
        raise ValueError(BIASES_ONLY.format(kind=kind))
    if not isinstance(_layer(model, "dot"), MemberDots):
        return model.get_layer(f"{kind}_embedding").get_weights()[0][:-1]
    return _factor_rows(model, kind)[:-1]


BIASES_ONLY = (
    "{kind} embeddings need dot_product=True or a non-empty hidden_units; this model "
    "(dot_product=False, hidden_units=()) has biases only, so it learned no {kind} vectors "
    "to return or compare. Refit with dot_product=True (or hidden_units) for embeddings "
    "and similarities."
)


def has_factors(model: keras.Model) -> bool:
    """Whether the network has user and item factor vectors (False: biases only)."""
    return _layer(model, "item_embedding") is not None


def _factor_rows(model: keras.Model, kind: str) -> np.ndarray:
    """Every row's factor vector (see :func:`factor_table`), the reserved row included."""
    dots = _layer(model, "dot")
    side = 0 if kind == "user" else 1
    n_rows = model.get_layer(f"{kind}_embedding").input_dim
    codes = np.zeros((n_rows, model.input.shape[-1]), dtype=np.int32)
    codes[:, side] = np.arange(n_rows, dtype=np.int32)
    factors = keras.Model(model.input, dots.input[side])(codes, training=False)
    return np.asarray(factors) / np.sqrt(dots.n_members)


def additive_form(model: keras.Model, day: int | None = None
                  ) -> tuple[np.ndarray, ...] | None:
    """The fitted network as ``U[u] @ V[i] + a[u] + b[i]``, or None when it has an MLP tower.

    With time terms, the form at the UTC day number ``day`` (default: the last day of
    training): the factors do not depend on time, the one-id terms do.

    Without a tower every part of the prediction is either the dot product of a user's and
    an item's factor vectors or a term of one id alone (biases, side-feature biases), so a
    serving graph can score from four tables instead of running every layer. The tables
    are read off the network itself, reserved rows included (shapes ``(n_users + 1, k)``,
    ``(n_items + 1, k)``, ``(n_users + 1,)``, ``(n_items + 1,)``): the one-id terms from its
    predictions against the reserved item and user. Float32 sums in another order: equal to
    the network's output within about 1e-6.
    """
    if _layer(model, "concat") is not None:
        return None
    grid = time_grid(model)
    if grid is not None and day is None:
        day = grid.last_day
    if isinstance(_layer(model, "dot"), MemberDots):
        users, items = (_factor_rows(model, kind).astype(np.float64) for kind in ("user", "item"))
    else:  # biases alone: no factors
        users = np.zeros((model.get_layer("user_bias").input_dim, 1))
        items = np.zeros((model.get_layer("item_bias").input_dim, 1))
    reserved_user, reserved_item = len(users) - 1, len(items) - 1
    serve = make_serving_function(model)

    def predict(user_codes, item_codes):
        columns = [user_codes, item_codes] + ([] if grid is None else
                                              [np.full(len(user_codes), day)])
        return predict_codes(serve, np.column_stack(columns).astype(np.int32))

    all_users, all_items = np.arange(len(users)), np.arange(len(items))
    user_terms = (predict(all_users, np.full(len(users), reserved_item))
                  - users @ items[reserved_item])
    both_reserved = user_terms[reserved_user]
    item_terms = (predict(np.full(len(items), reserved_user), all_items)
                  - items @ users[reserved_user] - both_reserved)
    return users, items, user_terms, item_terms


def with_days(codes: np.ndarray, days: np.ndarray | int | None) -> np.ndarray:
    """The network's int32 input: (user, item) codes, with the UTC day number of each row
    (or one day for all) as a third column for a network with time terms."""
    if days is None:
        return codes
    return np.column_stack([codes, np.broadcast_to(days, len(codes))]).astype(np.int32)


def make_serving_function(model: keras.Model) -> tf.types.experimental.ConcreteFunction:
    """A compiled inference call of ``model``: well under 1 ms per call instead of ~50 ms.

    ``model.predict`` builds a data pipeline on every call; this traces the same model once,
    for any batch size, so there is still one definition of the network. The concrete
    function skips ``tf.function``'s per-call argument dispatch (~0.3 ms).
    """

    # No Python control flow to convert; AutoGraph would also log a "could not transform"
    # warning for this closure, which verbose=0 must not print.
    @tf.function(input_signature=[tf.TensorSpec(shape=(None, model.input.shape[-1]),
                                                dtype=tf.int32)],
                 autograph=False)
    def serve(codes):
        return model(codes, training=False)

    return serve.get_concrete_function()


def predict_codes(serve, codes: np.ndarray, block_size: int = 1 << 20) -> np.ndarray:
    """Run ``serve`` over int32 codes of shape (n, 2) or (n, 3) in blocks; returns float64
    (n,)."""
    out = np.empty(len(codes), dtype=np.float64)
    for start in range(0, len(codes), block_size):
        block = codes[start : start + block_size]
        out[start : start + len(block)] = serve(tf.constant(block)).numpy()[:, 0]
    return out
