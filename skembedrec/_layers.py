"""The custom Keras layers of the rating network (the graph is assembled in :mod:`._network`).

Every class here is registered with Keras under the ``skembedrec`` package, so a saved model
names them and :func:`keras.saving.load_model` finds them; :data:`LAYER_CLASSES` lists them
(the load allow-list is built from it).
"""

from __future__ import annotations

from dataclasses import dataclass

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

    With ``A`` the normalised pair matrix and ``Y`` the vector table (:attr:`embeddings`),
    the sums are ``A @ Y``, stored in :attr:`cached_vectors`. The pairs are not weights of
    the layer: the estimator stores the training pairs once (``seen_``) and hands them over
    with :meth:`set_pairs`; :meth:`schedule` (or :meth:`refresh_cache`) computes the sums. A
    saved or pickled model serves from the stored sums.

    Training has two modes. On a :meth:`schedule` (what ``fit`` uses) the layer reads its
    stored sums, exact for the current ``Y`` because ``Y`` only changes at a refresh:
    :meth:`collect` gathers the gradient reaching the sums row by row and, when a refresh is
    due, returns the gradient of ``Y``, ``A.T @ collected`` (one sparse product), for the
    optimizer to apply; :meth:`refresh_if` then recomputes the sums. Without a schedule
    (distributed training) each training call computes ``A @ Y`` afresh and differentiates
    through it, and an inference call after it computes the sums again
    (:attr:`cache_is_fresh`).

    The products use CSR matrices built once in :meth:`set_pairs`, one for ``A`` and one for
    its transpose: TensorFlow's gradient of the CSR product sums in a thread-dependent
    order, so two seeded fits would differ in the last bits. XLA cannot compile the CSR
    product, so with ``xla=True`` a small, dense pair matrix (at most 2**24 cells and denser
    than 1/64) is multiplied as a dense matrix, and larger ones are gathered and summed by
    segment (memory ∝ pairs x ``output_dim`` while it runs).
    """

    def __init__(self, n_rows: int, n_columns: int, output_dim: int, *,
                 l2: float = 0.0, xla: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.xla = bool(xla)
        self.n_rows = int(n_rows)
        self.n_columns = int(n_columns)
        self.output_dim = int(output_dim)
        self.l2 = float(l2)
        object.__setattr__(self, "_schedule", None)
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
        matrices = ((pairs, weights, (self.n_rows, self.n_columns)),
                    (pairs[transposed][:, ::-1], weights[transposed],
                     (self.n_columns, self.n_rows)))
        # Plain attributes, set around Keras' tracking: they are not weights to be saved.
        object.__setattr__(self, "_pairs", tuple(
            _PairMatrix(indices, values, shape, csr=not self.xla)
            for indices, values, shape in matrices))

    def schedule(self, every: int, steps_per_epoch: int) -> None:
        """Train on the stored sums (computed now from the pairs of :meth:`set_pairs`),
        refreshed every ``every`` steps and at the end of each epoch of ``steps_per_epoch``."""
        object.__setattr__(self, "_schedule", _Schedule(
            every=int(every), steps_per_epoch=int(steps_per_epoch),
            collected=tf.Variable(tf.zeros((self.n_rows, self.output_dim)), trainable=False),
            step=tf.Variable(tf.constant(0, tf.int64), trainable=False),
        ))
        self.refresh_cache()

    @property
    def is_scheduled(self) -> bool:
        """Whether training reads the stored sums (see :meth:`schedule`)."""
        return self._schedule is not None

    def collect(self, gradient) -> tuple[tf.Tensor, tf.IndexedSlices]:
        """Add one step's gradient of the stored sums; returns whether a refresh is due and
        the gradient of the vector table (every row when due, no row otherwise)."""
        schedule = self._schedule
        if isinstance(gradient, tf.IndexedSlices):
            schedule.collected.scatter_add(gradient)
        else:
            schedule.collected.assign_add(gradient)
        position = (schedule.step.assign_add(1) - 1) % schedule.steps_per_epoch + 1
        due = tf.logical_or(position % schedule.every == 0,
                            position == schedule.steps_per_epoch)
        values, rows = tf.cond(
            due,
            lambda: (self._pairs[1].times(tf.convert_to_tensor(schedule.collected)),
                     tf.range(self.n_columns, dtype=tf.int64)),
            lambda: (tf.zeros((0, self.output_dim)), tf.zeros((0,), tf.int64)),
        )
        return due, tf.IndexedSlices(values, rows, (self.n_columns, self.output_dim))

    def refresh_if(self, due) -> None:
        """After the optimizer step: recompute the sums and clear the collected gradient
        when ``due``."""
        def refresh():
            self.refresh_cache()
            self._schedule.collected.assign(tf.zeros((self.n_rows, self.output_dim)))
            return tf.constant(True)

        tf.cond(due, refresh, lambda: tf.constant(False))

    def refresh_cache(self) -> None:
        """Store the vector of every row (after training, or after the table changed)."""
        self.cached_vectors.assign(self._pairs[0].times(tf.convert_to_tensor(self.embeddings)))
        self.cache_is_fresh.assign(1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def call(self, codes, training=None):
        codes = tf.cast(codes, tf.int64)
        if training and self.is_scheduled:
            vectors = tf.gather(tf.convert_to_tensor(self.cached_vectors), codes)
        elif training:
            self.cache_is_fresh.assign(0.0)
            vectors = tf.gather(self._all_rows(tf.convert_to_tensor(self.embeddings)), codes)
        else:
            vectors = tf.cond(
                self.cache_is_fresh > 0,
                lambda: tf.gather(tf.convert_to_tensor(self.cached_vectors), codes),
                # Inference needs no custom gradient: one left in the graph would make
                # loading an exported SavedModel warn that it was not saved.
                lambda: tf.gather(self._pairs[0].times(tf.convert_to_tensor(self.embeddings)),
                                  codes),
            )
        if training and self.l2 > 0:
            self.add_loss(self.l2 * ops.mean(ops.sum(ops.square(vectors), axis=-1)))
        return vectors

    def _all_rows(self, embeddings):
        """``A @ embeddings``, differentiable (its gradient is the transposed product)."""
        forward, backward = self._pairs

        @tf.custom_gradient
        def product(table):
            def gradient(upstream):
                return backward.times(tf.convert_to_tensor(upstream))
            return forward.times(table), gradient

        return product(embeddings)

    def get_config(self) -> dict:
        return {
            **super().get_config(), "n_rows": self.n_rows, "n_columns": self.n_columns,
            "output_dim": self.output_dim, "l2": self.l2, "xla": self.xla,
        }


@dataclass(frozen=True)
class _Schedule:
    every: int
    steps_per_epoch: int
    collected: tf.Variable
    step: tf.Variable


class _PairMatrix:
    """A sparse matrix, given by its (row-sorted) indices and values, times dense tables."""

    _MAX_DENSE_CELLS = 2**24

    def __init__(self, indices: np.ndarray, values: np.ndarray, shape: tuple[int, int], *,
                 csr: bool):
        self.shape = shape
        self.indices = tf.constant(indices.astype(np.int64, copy=False))
        self.values = tf.constant(values)
        self.csr = csr

    def times(self, table):
        """This matrix times ``table`` (shape ``(shape[1], k)``)."""
        if self.csr:
            # Built in the graph each time: a CSR matrix built eagerly and captured loses
            # the shape information the product needs.
            matrix = tf.raw_ops.SparseTensorToCSRSparseMatrix(
                indices=self.indices, values=self.values,
                dense_shape=tf.constant(self.shape, tf.int64))
            return tf.raw_ops.SparseMatrixMatMul(a=matrix, b=table)
        n_pairs = int(self.indices.shape[0])
        if self.shape[0] * self.shape[1] <= min(64 * n_pairs, self._MAX_DENSE_CELLS):
            return tf.matmul(tf.scatter_nd(self.indices, self.values, self.shape), table)
        terms = tf.gather(table, self.indices[:, 1]) * self.values[:, None]
        return tf.math.unsorted_segment_sum(terms, self.indices[:, 0], self.shape[0])


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
    """Select one column of the int32 input (user code, item code[, day]) as a vector."""

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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class UserDrift(keras.layers.Layer):
    """timeSVD++'s drift of a user's bias: ``alpha_u * dev_u(t)``.

    ``dev_u(t) = sign(t - t_u) |t - t_u|^exponent`` (Koren 2009), with ``t`` the day of the
    rating and ``t_u`` the mean day of the user's training ratings (the non-trainable
    :attr:`mean_day`, written after the network is built), divided by its largest possible
    value so that it lies in [-1, 1]. Days outside ``[first_day, last_day]`` (the training
    period) count as its nearest end: the drift is held, not extrapolated. ``alpha`` starts
    at zero; rows no rating reaches (the reserved unknown row) stay at zero drift. The L2
    penalty applies to the rows a batch uses, as in :class:`PenalizedEmbedding`.
    """

    def __init__(self, n_rows: int, first_day: int, last_day: int, *, exponent: float = 0.4,
                 l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.n_rows = int(n_rows)
        self.first_day = int(first_day)
        self.last_day = int(last_day)
        self.exponent = float(exponent)
        self.l2 = float(l2)

    def build(self, input_shape):
        self.drift = self.add_weight(shape=(self.n_rows, 1), initializer="zeros",
                                     name="drift")
        self.mean_day = self.add_weight(shape=(self.n_rows,), initializer="zeros",
                                        trainable=False, name="mean_day")

    def call(self, inputs, training=None):
        codes, days = inputs
        held = ops.cast(ops.clip(days, self.first_day, self.last_day), "float32")
        distance = held - ops.take(self.mean_day, codes, axis=0)
        span = float(max(1, self.last_day - self.first_day)) ** self.exponent
        deviation = ops.sign(distance) * ops.power(ops.abs(distance), self.exponent) / span
        rows = ops.take(self.drift, codes, axis=0)
        if training and self.l2 > 0:
            self.add_loss(self.l2 * ops.mean(ops.square(rows)))
        return rows * ops.expand_dims(deviation, -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_rows": self.n_rows, "first_day": self.first_day,
                "last_day": self.last_day, "exponent": self.exponent, "l2": self.l2}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TimeBinBias(keras.layers.Layer):
    """A learned bias per time bin shared by every rating: the period's rating level.

    Takes the day numbers of the ratings. Bins are ``days_per_bin`` days wide from
    ``first_day``; there are ``n_bins`` of them, covering the training period up to
    ``last_day``. Days before the period take the reserved entry ``n_bins`` of the table,
    days after it the entry ``n_bins + 1``; the network's owner sets both to the mean
    level of the training ratings (:func:`~._network.fill_outside_level`): the level of an
    unseen period is unknown, as the bias of an unseen user is. Ratings after the period
    (``partial_fit``) then train the "after" entry alone. Starts at zero, not penalised
    (each bin has many ratings).
    """

    def __init__(self, n_bins: int, first_day: int, last_day: int, days_per_bin: int,
                 **kwargs):
        super().__init__(**kwargs)
        self.n_bins = int(n_bins)
        self.first_day = int(first_day)
        self.last_day = int(last_day)
        self.days_per_bin = int(days_per_bin)

    def build(self, input_shape):
        self.table = self.add_weight(shape=(self.n_bins + 2,), initializer="zeros",
                                     name="table")

    def call(self, days):
        bins = ops.where(days < self.first_day, self.n_bins,
                         ops.where(days > self.last_day, self.n_bins + 1,
                                   (days - self.first_day) // self.days_per_bin))
        return ops.expand_dims(ops.take(self.table, bins, axis=0), -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_bins": self.n_bins, "first_day": self.first_day,
                "last_day": self.last_day, "days_per_bin": self.days_per_bin}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DampedBias(keras.layers.Layer):
    """A per-id bias with a prior: a fixed damped estimate plus a learned, penalised deviation.

    The bias of row ``r`` is ``prior[r] + embeddings[r]``. :attr:`prior` (non-trainable) is
    the damped-bias baseline's estimate; :attr:`embeddings` (trainable, one column, so that
    the layer reads like the one-column embedding it replaces) starts at zero and is pulled
    back to it with a penalty per id, not per rating: each lookup of row ``r`` adds
    ``penalty[r] * embeddings[r]**2`` to the loss (averaged over the batch like the squared
    errors), with ``penalty[r] = shrinkage / count[r]``, so that over an epoch every id pays
    ``shrinkage * deviation**2`` however many ratings it has: the damped bias's ridge
    (``b = sum(residual) / (count + shrinkage)``) of the deviation. An id with one rating
    stays near its prior; one with hundreds follows its ratings. Both tables are written by
    the network's owner (:func:`~._network.set_damped_biases`); left at zero they make an
    unpenalised bias started at zero (the plain bias of earlier versions).
    """

    def __init__(self, n_rows: int, **kwargs):
        super().__init__(**kwargs)
        self.n_rows = int(n_rows)
        # Whether training adds the penalty (a plain attribute, not saved: a loaded layer
        # adds it); set_damped_biases turns it off when every row's penalty is zero, which
        # saves two lookups per step at scale.
        object.__setattr__(self, "penalised", True)

    @property
    def input_dim(self) -> int:
        """The number of rows (the reserved unknown-id row included), as an Embedding's."""
        return self.n_rows

    def build(self, input_shape):
        self.embeddings = self.add_weight(shape=(self.n_rows, 1), initializer="zeros",
                                          name="embeddings")
        self.prior = self.add_weight(shape=(self.n_rows,), initializer="zeros",
                                     trainable=False, name="prior")
        self.penalty = self.add_weight(shape=(self.n_rows,), initializer="zeros",
                                       trainable=False, name="penalty")

    def call(self, codes, training=None):
        codes = ops.cast(codes, "int32")
        deviation = ops.take(self.embeddings, codes, axis=0)
        if training and self.penalised:
            weights = ops.take(self.penalty, codes, axis=0)
            self.add_loss(ops.mean(weights * ops.square(deviation[:, 0])))
        return deviation + ops.expand_dims(ops.take(self.prior, codes, axis=0), -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_rows": self.n_rows}


LAYER_CLASSES = (PenalizedEmbedding, ImplicitFeedback, MemberDots, EnsembleMean, IdColumn,
                 FeatureLookup, PadColumns, UserDrift, TimeBinBias, DampedBias)
