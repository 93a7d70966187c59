"""The custom Keras layers of the rating network (the graph is assembled in :mod:`._network`).

Every class here is registered with Keras under the ``skembedrec`` package, so a saved model
names them and :func:`keras.saving.load_model` finds them; :data:`LAYER_CLASSES` lists them
(the load allow-list is built from it).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ._arrays import distinct_pairs

_PACKAGE = "skembedrec"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PenalizedEmbedding(keras.layers.Embedding):
    """An Embedding whose L2 penalty applies only to the rows a batch looks up.

    This is the regularisation of classic SGD matrix factorisation: each rating pulls its
    user and item rows towards zero, so rarely-rated ids are shrunk more than popular ones,
    and the cost per step does not grow with the size of the table.
    """

    def __init__(self, input_dim: int, output_dim: int, *, l2: float = 0.0, **kwargs):
        super().__init__(input_dim, output_dim, **kwargs)
        self.l2 = float(l2)

    def call(self, inputs, training=None):
        rows = super().call(inputs)
        if training and self.l2 > 0:
            self.add_loss(self.l2 * ops.mean(ops.sum(ops.square(rows), axis=-1)))
        return rows

    def get_config(self) -> dict:
        return {**super().get_config(), "l2": self.l2}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ImplicitFeedback(keras.layers.Layer):
    """SVD++'s implicit signal: for each id, the normalised sum of the learned vectors of the
    ids it was paired with in training, ``|N(u)|^-1/2 * sum_{j in N(u)} y_j``.

    "Which items did this user rate" is known for every training user whatever the ratings
    were, and it shrinks the user's factors towards users with similar tastes; used on both
    sides (items described by their raters too) it is what takes the model below the plain
    matrix factorisation plateau on MovieLens. Rows with no pairs (such as the reserved
    unknown-id row) get a zero vector.

    The pairs are not weights of the layer: the estimator stores the training pairs once
    (``seen_``) and hands them over with :meth:`set_pairs` before training. A saved or
    pickled model serves from :attr:`cached_vectors`, the vector of every row stored by
    :meth:`refresh_cache` at the end of training; any training step marks that cache stale,
    so an inference call during training (validation) computes the vectors afresh.

    Training multiplies the pair matrix, held as a CSR sparse matrix, by the vector table
    each step and looks the batch's rows up in the product. The gradient goes through a
    second CSR matrix, the transpose, built once in :meth:`set_pairs`: TensorFlow's own
    gradient of the CSR product (a transposed product) sums in a thread-dependent order, so
    two seeded fits would differ in the last bits; this one is deterministic and about twice
    as fast. XLA cannot compile the CSR product, so with ``xla=True`` a small, dense pair
    matrix (at most 2**24 cells and denser than 1/64) is multiplied as a dense matrix, and
    larger ones are gathered.
    """

    _MAX_DENSE_CELLS = 2**24

    def __init__(self, n_rows: int, n_columns: int, output_dim: int, *,
                 l2: float = 0.0, xla: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.xla = bool(xla)
        self.n_rows = int(n_rows)
        self.n_columns = int(n_columns)
        self.output_dim = int(output_dim)
        self.l2 = float(l2)
        self.set_pairs(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.n_columns, self.output_dim), name="embeddings",
            initializer=keras.initializers.RandomUniform(-0.05, 0.05),
        )
        self.cached_vectors = self.add_weight(
            shape=(self.n_rows, self.output_dim), initializer="zeros", trainable=False,
            name="cached_vectors",
        )
        self.cache_is_fresh = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="cache_is_fresh",
        )

    def set_pairs(self, rows: np.ndarray, columns: np.ndarray) -> None:
        """Use the (row code, column code) training pairs; repeated pairs count once."""
        pairs = distinct_pairs(np.column_stack([rows, columns]))
        counts = np.bincount(pairs[:, 0], minlength=self.n_rows)
        weights = (1.0 / np.sqrt(counts[pairs[:, 0]])).astype("float32")
        transposed = np.lexsort((pairs[:, 0], pairs[:, 1]))
        # Plain attributes, set around Keras' tracking: they are not weights to be saved.
        object.__setattr__(self, "_pairs", (
            tf.constant(pairs), tf.constant(weights),
            tf.constant(pairs[transposed][:, ::-1].copy()), tf.constant(weights[transposed]),
        ))

    def refresh_cache(self) -> None:
        """Store the vector of every row for inference (after training)."""
        self.cached_vectors.assign(self._all_rows(tf.convert_to_tensor(self.embeddings)))
        self.cache_is_fresh.assign(1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def call(self, codes, training=None):
        codes = tf.cast(codes, tf.int64)
        embeddings = tf.convert_to_tensor(self.embeddings)
        if not training:
            vectors = tf.cond(
                self.cache_is_fresh > 0,
                lambda: tf.gather(tf.convert_to_tensor(self.cached_vectors), codes),
                lambda: self._fresh_rows(codes, embeddings),
            )
        else:
            self.cache_is_fresh.assign(0.0)
            vectors = self._fresh_rows(codes, embeddings)
        if training and self.l2 > 0:
            self.add_loss(self.l2 * ops.mean(ops.sum(ops.square(vectors), axis=-1)))
        return vectors

    def _fresh_rows(self, codes, embeddings):
        """The vectors of ``codes`` computed from the current weights (see the class doc)."""
        if not self.xla:
            return tf.gather(self._all_rows(embeddings), codes)
        indices, weights = self._pairs[:2]
        cells = self.n_rows * self.n_columns
        if cells <= min(64 * int(indices.shape[0]), self._MAX_DENSE_CELLS):
            dense = tf.scatter_nd(indices, weights, (self.n_rows, self.n_columns))
            return tf.gather(tf.matmul(dense, embeddings), codes)
        return _gathered_rows(codes, indices, weights, embeddings)

    def _all_rows(self, embeddings):
        indices, weights, transposed_indices, transposed_weights = self._pairs
        shape = (self.n_rows, self.n_columns)

        @tf.custom_gradient
        def product(table):
            def gradient(upstream):
                return _csr_product(transposed_indices, transposed_weights, shape[::-1],
                                    tf.convert_to_tensor(upstream))
            return _csr_product(indices, weights, shape, table), gradient

        return product(embeddings)

    def get_config(self) -> dict:
        return {
            **super().get_config(), "n_rows": self.n_rows, "n_columns": self.n_columns,
            "output_dim": self.output_dim, "l2": self.l2, "xla": self.xla,
        }


def _csr_product(indices, weights, shape, dense):
    """The sparse matrix ``(indices, weights)`` of ``shape`` times ``dense``; indices sorted."""
    matrix = tf.raw_ops.SparseTensorToCSRSparseMatrix(
        indices=indices, values=weights, dense_shape=tf.constant(shape, tf.int64))
    return tf.raw_ops.SparseMatrixMatMul(a=matrix, b=dense)


def _gathered_rows(codes, indices, weights, embeddings):
    # Pairs are sorted by row, so each distinct code's pairs are one contiguous range.
    distinct, position = tf.unique(codes)
    rows = indices[:, 0]
    ranges = tf.ragged.range(tf.searchsorted(rows, distinct, side="left"),
                             tf.searchsorted(rows, distinct, side="right"))
    pairs = ranges.flat_values
    terms = tf.gather(embeddings, tf.gather(indices[:, 1], pairs))
    terms *= tf.gather(weights, pairs)[:, None]
    sums = tf.math.unsorted_segment_sum(terms, ranges.value_rowids(), tf.size(distinct))
    return tf.gather(sums, position)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MemberDots(keras.layers.Layer):
    """Each ensemble member's dot product of its user and item factors.

    Both inputs hold the ``n_members`` members side by side, member ``m`` in columns
    ``[m * k, (m + 1) * k)``; the output has one column per member.
    """

    def __init__(self, n_members: int, **kwargs):
        super().__init__(**kwargs)
        self.n_members = int(n_members)

    def call(self, inputs):
        users, items = inputs
        width = users.shape[-1] // self.n_members
        # A batched matrix product per row (as keras.layers.Dot does), not a reduce_sum: its
        # result for a row does not depend on the batch around it, so ``recommend``
        # (all items at once) and ``predict`` (a few pairs) agree to the last bit.
        users = ops.reshape(users, (-1, self.n_members, 1, width))
        items = ops.reshape(items, (-1, self.n_members, width, 1))
        return ops.reshape(ops.matmul(users, items), (-1, self.n_members))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.n_members)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_members": self.n_members}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class EnsembleMean(keras.layers.Layer):
    """The mean of several members' predictions (one column each), each member trained as
    if it were alone.

    The loss sees only the mean, ``(y - mean f)^2``; adding the members' spread,
    ``mean_t (f_t - mean f)^2``, makes it ``mean_t (y - f_t)^2`` exactly, the sum of the
    members' own losses. So the members are an ensemble of independently trained models
    (averaging away the seed-to-seed noise of each), not one wider model, and they still
    share one graph, one optimiser and one serving call. The spread term is not weighted by
    ``sample_weight``.
    """

    def call(self, predictions, training=None):
        mean = ops.mean(predictions, axis=-1, keepdims=True)
        if training:
            self.add_loss(ops.mean(ops.square(predictions - mean)))
        return mean

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IdColumn(keras.layers.Layer):
    """Select one column of the ``(n, 2)`` id input as an int32 vector."""

    def __init__(self, column: int, **kwargs):
        super().__init__(**kwargs)
        self.column = int(column)

    def call(self, inputs):
        return ops.cast(inputs[:, self.column], "int32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    def get_config(self) -> dict:
        return {**super().get_config(), "column": self.column}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FeatureLookup(keras.layers.Layer):
    """A non-trainable table of encoded side features, indexed by user or item code."""

    def __init__(self, n_rows: int, n_features: int, **kwargs):
        super().__init__(**kwargs)
        self.n_rows = int(n_rows)
        self.n_features = int(n_features)

    def build(self, input_shape):
        self.table = self.add_weight(
            shape=(self.n_rows, self.n_features), initializer="zeros", trainable=False,
            name="table",
        )

    def call(self, codes):
        return ops.take(self.table, ops.cast(codes, "int32"), axis=0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_features)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_rows": self.n_rows, "n_features": self.n_features}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PadColumns(keras.layers.Layer):
    """Pad a ``(n, k)`` input with zero columns on the right to ``(n, width)``."""

    def __init__(self, width: int, **kwargs):
        super().__init__(**kwargs)
        self.width = int(width)

    def call(self, inputs):
        return ops.pad(inputs, [[0, 0], [0, self.width - inputs.shape[-1]]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.width)

    def get_config(self) -> dict:
        return {**super().get_config(), "width": self.width}


LAYER_CLASSES = (PenalizedEmbedding, ImplicitFeedback, MemberDots, EnsembleMean, IdColumn,
                 FeatureLookup, PadColumns)
