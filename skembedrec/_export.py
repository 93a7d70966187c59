"""A fitted model as a self-contained TensorFlow SavedModel that serves raw ids.

The SavedModel holds the fitted Keras network itself (its variables, called inside each
signature: one network definition), the user and item vocabularies as in-graph hash tables
(int64 or string keys; an unknown id maps to the reserved row, the fallback of
``predict``), the target scaling and clipping, the training pairs that ``recommend``
excludes and the item factor vectors that ``similar_items`` compares. Serving needs
TensorFlow only: neither skembedrec nor its Keras wrapper nor scikit-learn.

Signatures (inputs -> outputs):

``predict``
    ``user`` (n,), ``item`` (n,) [, ``time`` (n,)] -> ``rating`` (n,) float64, in stars, as
    :meth:`EmbeddingRatingRegressor.predict`.
``recommend``
    ``user`` (n,), ``k`` () int32 [, ``time`` (n,)] -> ``items`` (n, k'), ``ratings``
    (n, k') float64 and ``valid`` (n, k') bool, best first, with ``k' = min(k, n_items)``.
    Items the user rated in training are excluded, as
    :meth:`EmbeddingRatingRegressor.recommend` does; when fewer than ``k'`` are left, the
    row ends with entries whose ``valid`` is False.
``similar_items``
    ``item`` (n,), ``k`` () int32 -> ``items`` (n, k'), ``similarities`` (n, k') float64,
    cosine, most similar first, the item itself excluded, ``k' = min(k, n_items - 1)``.

``recommend`` and ``similar_items`` score the rows of a request in blocks, one after the
other, so their memory does not grow with ``n``: blocks of ``_BLOCK_VALUES // n_items`` rows
(a 64 MiB float64 score matrix) from the factor tables of a network without a tower, as
``predict`` does, or of ``_NETWORK_BLOCK_VALUES // n_items`` users whose (user, item) pairs
run through the network (a tower, or time terms).

A model fitted with ``time_col`` has the ``time`` input in ``predict`` (the time of each
pair) and ``recommend`` (the time to recommend each user row at, as ``recommend``'s ``at``):
float64 unix seconds, UTC, turned in the graph into the UTC day numbers the network takes.
Times outside the training period predict as in ``predict`` (each user's drift held at the
nearest end of the period, the mean level of the training ratings). A model
fitted without times has no ``time`` input.

``serving_default`` is ``predict``. Under ``handle_unknown="error"`` an unknown id makes the
call fail with an ``InvalidArgumentError`` naming it, instead of falling back. A ``time``
that is not finite or not plausible unix seconds (beyond 1e11 either way, as milliseconds
are) fails the same way, as :meth:`EmbeddingRatingRegressor.predict` refuses it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from ._network import additive_form, set_training_pairs, time_grid
from ._time import MAX_SECONDS, SECONDS_PER_DAY

_INT64 = np.iinfo(np.int64)
# Scores computed at once by recommend and similar_items: a block of rows of the float64
# (rows, n_items) score matrix, 64 MiB, whatever the number of rows requested.
_BLOCK_VALUES = 1 << 23
# (user, item) pairs run through the network at once (a tower, or time terms): the
# activations of every layer for each pair, as the estimator's own recommend scores them.
_NETWORK_BLOCK_VALUES = 1 << 20


def export_saved_model(
    path: str | os.PathLike,
    *,
    model: Any,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    target_mean: float,
    target_scale: float,
    rating_min: float,
    rating_max: float,
    seen: sp.csr_array,
    item_vectors: np.ndarray,
    handle_unknown: str = "fallback",
) -> None:
    """Write the SavedModel described in the module docstring to the directory ``path``.

    ``model`` is the fitted Keras network (codes of shape (n, 2), or (n, 3) with the UTC day
    number when it has time terms -> standardised ratings);
    ``target_mean``/``target_scale`` undo the standardisation; ``seen`` holds the training
    (user code, item code) pairs; ``item_vectors`` the factor vector of each known item.
    """
    with _serving_from_caches(model, seen):
        _save(path, _ServingModule(
            model=model, user_ids=user_ids, item_ids=item_ids, target_mean=target_mean,
            target_scale=target_scale, rating_min=rating_min, rating_max=rating_max,
            seen=seen, item_vectors=item_vectors, handle_unknown=handle_unknown,
        ))


@contextmanager
def _serving_from_caches(model, seen: sp.csr_array):
    """Leave the training pairs out of the traced graph while the block runs.

    A fitted network serves its implicit-feedback vectors from cached tables (weights,
    saved); the pairs only feed a fallback branch for a stale cache, which a fitted model
    never takes, and as graph constants they would add gigabytes to a large export (past
    protobuf's 2 GiB limit). They are handed back afterwards: they are ``seen_``'s pairs.
    """
    empty = np.zeros(0, dtype=np.int64)
    set_training_pairs(model, empty, empty)
    try:
        yield
    finally:
        set_training_pairs(model, *sp.csr_array(seen).nonzero())


def _save(path: str | os.PathLike, module: _ServingModule) -> None:
    user_spec = tf.TensorSpec([None], module.user_dtype, name="user")
    item_spec = tf.TensorSpec([None], module.item_dtype, name="item")
    k_spec = tf.TensorSpec([], tf.int32, name="k")
    time_specs = [tf.TensorSpec([None], tf.float64, name="time")] if module.has_time else []
    predict = module.predict.get_concrete_function(user_spec, item_spec, *time_specs)
    signatures = {
        "serving_default": predict,
        "predict": predict,
        "recommend": module.recommend.get_concrete_function(user_spec, k_spec, *time_specs),
        "similar_items": module.similar_items.get_concrete_function(item_spec, k_spec),
    }
    # Serving never differentiates: the network's custom gradients are left out.
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    tf.saved_model.save(module, os.fspath(path), signatures=signatures, options=options)


def _keys(ids: np.ndarray, kind: str) -> tuple[np.ndarray, tf.DType]:
    """The ids as int64 or str hash-table keys, or a ValueError for other kinds."""
    ids = np.asarray(ids)
    if ids.dtype.kind == "O":
        if all(type(v) is str or isinstance(v, np.str_) for v in ids):
            return ids.astype(str), tf.string
        if all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)
               for v in ids):
            ids = np.array([int(v) for v in ids], dtype=object)
            if min(ids) < _INT64.min or max(ids) > _INT64.max:
                raise ValueError(f"Cannot export: a {kind} id does not fit in int64.")
            return ids.astype(np.int64), tf.int64
    elif ids.dtype.kind in "iu":
        if ids.dtype.kind == "u" and ids.max() > _INT64.max:
            raise ValueError(f"Cannot export: a {kind} id does not fit in int64.")
        return ids.astype(np.int64), tf.int64
    elif ids.dtype.kind in "US":
        return ids.astype(str), tf.string
    raise ValueError(
        f"Cannot export: the {kind} ids are of dtype {ids.dtype} "
        f"(e.g. {ids[0]!r}); a SavedModel looks up int or str ids only. Convert the ids "
        "(e.g. with .astype(str)) and fit again."
    )


def _table(keys: np.ndarray, dtype: tf.DType) -> tf.lookup.StaticHashTable:
    # Unknown ids get the reserved code len(keys), the fallback row of every table.
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, dtype=dtype), tf.range(len(keys), dtype=tf.int64))
    return tf.lookup.StaticHashTable(initializer, default_value=len(keys))


class _ServingModule(tf.Module):
    """The exported object: tables and variables tracked, signatures as tf.functions."""

    def __init__(self, *, model, user_ids, item_ids, target_mean, target_scale, rating_min,
                 rating_max, seen, item_vectors, handle_unknown):
        super().__init__(name="skembedrec_serving")
        user_keys, self.user_dtype = _keys(user_ids, "user")
        item_keys, self.item_dtype = _keys(item_ids, "item")
        # Not tracked (its optimizer would be saved too): its variables are, below.
        object.__setattr__(self, "_model", model)
        # Tracked so the SavedModel holds the network's weights (not its optimizer state).
        self.model_variables = list(model.variables)
        self.user_table = _table(user_keys, self.user_dtype)
        self.item_table = _table(item_keys, self.item_dtype)
        self.n_users, self.n_items = len(user_keys), len(item_keys)
        self.item_keys = tf.Variable(item_keys, dtype=self.item_dtype, trainable=False)
        seen = sp.csr_array(seen)
        self.seen_indptr = tf.Variable(seen.indptr.astype(np.int64), trainable=False)
        self.seen_indices = tf.Variable(seen.indices.astype(np.int64), trainable=False)
        vectors = np.asarray(item_vectors, dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.unit_items = tf.Variable(vectors / np.where(norms > 0, norms, 1.0),
                                      trainable=False)
        self._scaling = (float(target_scale), float(target_mean), float(rating_min),
                         float(rating_max))
        # Without an MLP tower, predict scores from four tables read off the network
        # (_network.additive_form): a handful of ops per call instead of every layer. With
        # time terms the user terms depend on the day of each pair: the network scores them.
        self.has_time = time_grid(model) is not None
        tables = None if self.has_time else additive_form(model)
        self._additive = tables is not None
        if tables is not None:
            # The one-id terms and the rating scale folded into the factor rows: a rating
            # is then one dot product, scale * (u.v + a_u + b_i) + mean = u'.v'.
            users, items, user_terms, item_terms = tables
            ones_u, ones_i = np.ones((len(users), 1)), np.ones((len(items), 1))
            self.user_rows = tf.Variable(np.float32(target_scale) * np.hstack(
                [users, user_terms[:, None], ones_u]).astype(np.float32), trainable=False)
            self.item_rows = tf.Variable(np.hstack(
                [items, ones_i, (item_terms + target_mean / target_scale)[:, None]]
            ).astype(np.float32), trainable=False)
            # recommend ranks by the raw score in float64, as the estimator's own additive
            # scores do: float32 rows would reorder items whose scores differ by ~1e-7.
            self.ranking_user_rows = tf.Variable(
                np.hstack([users, user_terms[:, None], ones_u]), trainable=False)
            self.ranking_item_rows = tf.Variable(
                np.hstack([items, ones_i, item_terms[:, None]])[: self.n_items],
                trainable=False)
        self._strict = handle_unknown == "error"

    def _codes(self, ids, table, n: int, kind: str):
        codes = table.lookup(ids)
        if self._strict:
            tf.debugging.assert_less(
                codes, tf.constant(n, tf.int64),
                message=f"unknown {kind} id(s) not seen during fit (handle_unknown='error')")
        return codes

    def _stars(self, raw):
        scale, mean, low, high = self._scaling
        return tf.clip_by_value(tf.cast(raw, tf.float64) * scale + mean, low, high)

    @staticmethod
    def _days(time, rows, row: str):
        """UTC day numbers of ``time`` (float64 unix seconds), one per entry of ``rows``."""
        checks = [
            tf.debugging.assert_equal(tf.size(time), tf.size(rows),
                                      message=f"time must hold one value per {row}"),
            # Also false for NaN and infinities.
            tf.debugging.assert_less_equal(
                tf.abs(time), tf.constant(float(MAX_SECONDS), tf.float64),
                message="time must be finite unix seconds (UTC), not milliseconds or "
                "nanoseconds: |time| <= 1e11"),
        ]
        with tf.control_dependencies(checks):
            return tf.cast(tf.math.floor(time / SECONDS_PER_DAY), tf.int32)

    def _scores(self, user_codes, item_codes, days=None):
        columns = [tf.cast(user_codes, tf.int32), tf.cast(item_codes, tf.int32)]
        codes = tf.stack(columns + ([] if days is None else [days]), axis=1)
        return self._model(codes, training=False)[:, 0]

    @tf.function(autograph=False)
    def predict(self, user, item, time=None):
        users = self._codes(user, self.user_table, self.n_users, "user")
        items = self._codes(item, self.item_table, self.n_items, "item")
        if not self._additive:
            days = None if time is None else self._days(time, users, "pair")
            return {"rating": self._stars(self._scores(users, items, days))}
        _, _, low, high = self._scaling
        stars = tf.reduce_sum(tf.gather(self.user_rows, users)
                              * tf.gather(self.item_rows, items), axis=1)
        return {"rating": tf.cast(tf.clip_by_value(stars, low, high), tf.float64)}

    @tf.function(autograph=False)
    def recommend(self, user, k, time=None):
        users = self._codes(user, self.user_table, self.n_users, "user")
        days = None if time is None else self._days(time, users, "user")
        k = tf.minimum(k, self.n_items)

        def best_of_block(block):
            codes, block_days = block
            if self._additive:
                scores = tf.matmul(tf.gather(self.ranking_user_rows, codes),
                                   self.ranking_item_rows, transpose_b=True)
            else:
                scores = self._block_scores(codes, block_days)
            top = tf.math.top_k(self._without_seen(scores, codes), k)
            return top.indices, top.values

        block_days = tf.zeros_like(users, tf.int32) if days is None else days
        indices, values = _in_blocks(
            best_of_block, (users, block_days), self.n_items,
            _BLOCK_VALUES if self._additive else _NETWORK_BLOCK_VALUES, (self.n_users, 0))
        # Ranked by the unclipped score, as recommend does: clipped ratings stay apart.
        return {"items": tf.gather(self.item_keys, indices), "ratings": self._stars(values),
                "valid": tf.math.is_finite(values)}

    def _block_scores(self, codes, days):
        """The network's raw scores of every item for a block of user codes (and days)."""
        rows = tf.shape(codes, out_type=tf.int64)[0]
        pair_days = None if not self.has_time else tf.repeat(days, self.n_items)
        scores = self._scores(tf.repeat(codes, self.n_items),
                              tf.tile(tf.range(self.n_items, dtype=tf.int64), [rows]),
                              pair_days)
        return tf.reshape(tf.cast(scores, tf.float64), [rows, self.n_items])

    def _without_seen(self, scores, codes):
        """``scores`` with -inf for the training items of each known user (a CSR row);
        unknown users, and the padding of a block, have seen none."""
        known = codes < self.n_users
        row = tf.minimum(codes, self.n_users - 1)
        starts = tf.gather(self.seen_indptr, row)
        ends = tf.where(known, tf.gather(self.seen_indptr, row + 1), starts)
        ranges = tf.ragged.range(starts, ends)
        seen = tf.stack([ranges.value_rowids(),
                         tf.gather(self.seen_indices, ranges.flat_values)], axis=1)
        return tf.tensor_scatter_nd_update(
            scores, seen, tf.fill([tf.shape(seen)[0]], tf.constant(-np.inf, scores.dtype)))

    @tf.function(autograph=False)
    def similar_items(self, item, k):
        codes = self._codes(item, self.item_table, self.n_items, "item")
        tf.debugging.assert_less(codes, tf.constant(self.n_items, tf.int64),
                                 message="unknown item id(s): similarities exist only "
                                 "between ids seen during fit")
        k = tf.minimum(k, self.n_items - 1)

        def nearest_of_block(blocks):
            (block,) = blocks
            similarity = tf.matmul(tf.gather(self.unit_items, block), self.unit_items,
                                   transpose_b=True)
            itself = tf.stack([tf.range(tf.shape(block, out_type=tf.int64)[0]), block], axis=1)
            similarity = tf.tensor_scatter_nd_update(
                similarity, itself,
                tf.fill([tf.shape(block)[0]], tf.constant(-np.inf, tf.float64)))
            top = tf.math.top_k(similarity, k)
            return top.indices, top.values

        indices, values = _in_blocks(nearest_of_block, (codes,), self.n_items, _BLOCK_VALUES,
                                     (0,))
        return {"items": tf.gather(self.item_keys, indices), "similarities": values}


def _in_blocks(best_of_block, rows: tuple, n_columns: int, block_values: int,
               padding: tuple):
    """``best_of_block`` (a block of rows -> top-k indices and values) over all ``rows``.

    The rows (a tuple of tensors of one length) are cut into blocks of at most
    ``block_values // n_columns`` rows, scored one after the other (a while loop), so a
    request's memory is one block's score matrix whatever its number of rows. The blocks
    are of equal size, the last one padded with ``padding`` (one value per tensor), and the
    padding's results dropped.
    """
    n = tf.shape(rows[0])[0]
    most_rows = max(1, block_values // n_columns)
    # Blocks of equal size pad fewer than n_blocks rows; an empty request gets one block.
    n_blocks = tf.maximum((n + most_rows - 1) // most_rows, 1)
    block_rows = tf.maximum((n + n_blocks - 1) // n_blocks, 1)
    padded = tuple(
        tf.reshape(tf.concat([part, tf.fill([n_blocks * block_rows - n],
                                            tf.cast(value, part.dtype))], axis=0),
                   [n_blocks, block_rows])
        for part, value in zip(rows, padding, strict=True))
    # One block at a time: parallel iterations would hold several score matrices at once.
    indices, values = tf.map_fn(
        best_of_block, padded, parallel_iterations=1,
        fn_output_signature=(tf.TensorSpec([None, None], tf.int32),
                             tf.TensorSpec([None, None], tf.float64)))
    k = tf.shape(indices)[2]
    return (tf.reshape(indices, [-1, k])[:n], tf.reshape(values, [-1, k])[:n])
