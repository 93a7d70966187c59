"""How the rating network takes a training step: cost in proportion to the batch, not the tables.

Two things made a step of the first version cost in proportion to the *data*:

* Keras' Adam updates every row of every table (and its two moments) at every step, although
  a batch looks up a few thousand rows: a step cost ∝ the table sizes.
* The implicit-feedback term (:class:`~._layers.ImplicitFeedback`) multiplied the whole
  matrix of training pairs by its vector table at every step: an epoch cost ∝ ratings² /
  batch size.

:class:`RowSparseAdam` updates only the rows a batch touches ("lazy" Adam: each row keeps its
own moments, which move when the row is used). :class:`RatingModel` takes the implicit term
from its layer's stored sums, which stay exact for the current vector table because that
table only changes at a *refresh*: the gradient reaching the sums is collected row by row,
and every few steps (at least at the end of each epoch) it is sent through the transposed
pair matrix in one sparse product, the table takes one Adam step with it, and the sums are
recomputed. With a refresh at every step this is the exact gradient; a refresh every ``k``
steps makes an epoch cost ∝ ratings (see :func:`refresh_interval`).

The network itself is defined once (:func:`~._network.build_network`); this module only
changes how a step updates it.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from ._layers import ImplicitFeedback

_PACKAGE = "skembedrec"

# Refreshes of the implicit sums per epoch: every step while an epoch's refreshes cost less
# than products over REFRESH_BUDGET pairs in all, and at least MIN_REFRESHES_PER_EPOCH.
# Each refresh costs a few sparse products over all training pairs, so their number per
# epoch must stop growing with the data for an epoch to cost ∝ ratings; on MovieLens 100K
# anything less than a refresh per step costs accuracy (RMSE 0.8932 -> 0.8965 at every 6
# steps), so small data keeps them all.
REFRESH_BUDGET = 1 << 25
MIN_REFRESHES_PER_EPOCH = 4


def refresh_interval(n_ratings: int, batch_size: int) -> int:
    """Steps between two refreshes of the implicit sums, for epochs of ``n_ratings``.

    An epoch of ``steps`` steps gets ``min(steps, max(4, ceil(2**25 / n_ratings)))``
    refreshes, evenly spaced (plus one at its end): every step for MovieLens 100K (22
    steps), every other step at 1M ratings in batches of 16,384, and 4 per epoch from 8.4M
    ratings on, so refreshing costs at most as much as products over ``max(4 * n_ratings,
    2**25)`` pairs per epoch.

    Examples
    --------
    >>> refresh_interval(90_000, 4096), refresh_interval(10_000_000, 65_536)
    (1, 39)
    """
    steps = max(1, math.ceil(n_ratings / batch_size))
    refreshes = min(steps, max(MIN_REFRESHES_PER_EPOCH, math.ceil(REFRESH_BUDGET / n_ratings)))
    return math.ceil(steps / refreshes)


# Tables up to this many rows (or no more rows than the batch has lookups) take Keras' dense
# Adam step (see RowSparseAdam).
DENSE_ROWS = 1 << 16


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RowSparseAdam(keras.optimizers.Adam):
    """Adam whose step on a table costs ∝ the batch, not the table ("lazy" Adam).

    An embedding lookup's gradient is row-sparse (``tf.IndexedSlices``). Keras' Adam makes
    it dense and moves every row of the table (and decays both moments of every row) at
    every step. Here, when a table has more rows than :data:`DENSE_ROWS` and than the batch
    has lookups, only the rows the batch uses are updated, each with its own first and
    second moments; the other rows and their moments stay as they are. Smaller tables take
    Keras' dense Adam step, which then costs at most as much as a step over 65,536 rows (or
    the batch) and keeps Adam's trajectory, rows outside the batch coasting on their
    momentum: MovieLens 100K and 1M, ``partial_fit`` of a few ratings into them, and the
    item tables of 10M and 25M ratings train exactly as with Keras' Adam (the row-sparse
    update lost 0.04 of the RMSE gain of a ``partial_fit`` of new MovieLens 100K users).
    Where it applies it matters: at 25M ratings (162,541 users, batches of 65,536) the dense
    update of the user tables halved the training speed (299,000 against 649,000-694,000
    ratings/s per epoch, ``benchmarks/scale.py --defaults``).

    Repeated rows in a batch are summed; their squared gradients are summed per lookup, as
    Keras' Adam computes them from a row-sparse gradient (this is what the defaults were
    tuned with). The bias correction uses the global step count (as TensorFlow Addons'
    ``LazyAdam``). Dense gradients (the MLP tower, side-feature projections) get Keras' Adam
    step.
    """

    def __init__(self, learning_rate=0.001, *, row_sparse: bool = True, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.row_sparse = bool(row_sparse)

    def get_config(self) -> dict:
        return {**super().get_config(), "row_sparse": self.row_sparse}

    def update_step(self, gradient, variable, learning_rate):
        if self._var_key(variable) in getattr(self, "_held", ()):
            return None
        # XLA cannot compile the row-sparse update (tf.unique has no static shape); under
        # jit_compile Keras' dense update is used, which XLA fuses.
        if not isinstance(gradient, tf.IndexedSlices) or not self.row_sparse:
            return super().update_step(gradient, variable, learning_rate)
        if self._var_key(variable) in getattr(self, "_row_sparse_only", ()):
            return self._row_update(gradient, variable, learning_rate)
        n_rows = int(variable.shape[0])
        if n_rows <= DENSE_ROWS:
            return super().update_step(gradient, variable, learning_rate)

        def dense():
            super(RowSparseAdam, self).update_step(gradient, variable, learning_rate)
            return tf.constant(True)

        def sparse():
            self._row_update(gradient, variable, learning_rate)
            return tf.constant(False)

        n_lookups = tf.shape(gradient.indices, out_type=tf.int64)[0]
        tf.cond(n_rows <= n_lookups, dense, sparse)

    def update_rows_only(self, variables) -> None:
        """Always give these tables the row-sparse update, whatever their size: rows without
        a gradient must not move (the implicit vector tables, which change only when their
        sums are refreshed)."""
        object.__setattr__(self, "_row_sparse_only", {self._var_key(v) for v in variables})

    def hold(self, variables) -> None:
        """Leave these variables as they are: their gradients are ignored (``partial_fit``
        holds the implicit vector tables, see :func:`~._training.hold_implicit_tables`)."""
        object.__setattr__(self, "_held", {self._var_key(v) for v in variables})

    def _row_update(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        rows, position = tf.unique(gradient.indices)
        values = tf.cast(gradient.values, dtype)
        grad = tf.math.unsorted_segment_sum(values, position, tf.shape(rows)[0])
        grad_squares = tf.math.unsorted_segment_sum(values**2, position, tf.shape(rows)[0])
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        alpha = (tf.cast(learning_rate, dtype) * tf.sqrt(1 - tf.pow(beta_2, step))
                 / (1 - tf.pow(beta_1, step)))
        index = self._get_variable_index(variable)
        momentum, velocity = self._momentums[index], self._velocities[index]
        momentum_rows = beta_1 * tf.gather(momentum.value, rows) + (1 - beta_1) * grad
        velocity_rows = beta_2 * tf.gather(velocity.value, rows) + (1 - beta_2) * grad_squares
        self.assign(momentum, tf.IndexedSlices(momentum_rows, rows))
        self.assign(velocity, tf.IndexedSlices(velocity_rows, rows))
        moves = alpha * momentum_rows / (tf.sqrt(velocity_rows) + self.epsilon)
        self.assign_sub(variable, tf.IndexedSlices(moves, rows))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RatingModel(keras.Model):
    """The functional rating network with a training step for scheduled implicit sums.

    Without implicit layers on a schedule (:meth:`ImplicitFeedback.schedule`) the step is
    Keras' own. With them, the forward pass reads each layer's stored sums; their gradient
    is collected by the layer, which every few steps turns it into the gradient of its
    vector table (applied here by the optimizer with the other gradients) and recomputes the
    sums (see the module docstring).
    """

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        scheduled = [layer for layer in self.layers
                     if isinstance(layer, ImplicitFeedback) and layer.is_scheduled]
        if not scheduled:
            return super().train_step(data)
        sums = [layer.cached_vectors.value for layer in scheduled]
        tables = [layer.embeddings for layer in scheduled]
        table_ids = {id(table) for table in tables}
        others = [v for v in self.trainable_variables if id(v) not in table_ids]
        if isinstance(self.optimizer, RowSparseAdam):
            self.optimizer.update_rows_only(tables)
        with tf.GradientTape() as tape:
            tape.watch(sums)
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        gradients = tape.gradient(loss, others + sums)
        collected = [layer.collect(gradient) for layer, gradient
                     in zip(scheduled, gradients[len(others):], strict=True)]
        due = [is_due for is_due, _ in collected]
        table_gradients = [gradient for _, gradient in collected]
        self.optimizer.apply(list(gradients[: len(others)]) + table_gradients,
                             others + tables)
        for layer, is_due in zip(scheduled, due, strict=True):
            layer.refresh_if(is_due)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss, sample_weight=tf.shape(x)[0])
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


KERAS_CLASSES = (RowSparseAdam, RatingModel)
