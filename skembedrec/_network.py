"""The Keras graph: one definition, used for training, serving and saving.

The network takes one int32 input of shape ``(n, 2)`` (user code, item code) and returns a
prediction of shape ``(n, 1)`` in standardised rating units. Keeping the output ``(n, 1)``
matters: Keras 3 broadcasts an ``(n, 1, 1)`` output against an ``(n,)`` target into an
``(n, 1, n)`` loss, which is why the seed notebook's network never learns on Keras 3.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ._arrays import distinct_pairs
from ._features import with_side_features

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
    matrix factorisation plateau on MovieLens. The pairs are non-trainable weights, so they
    are saved with the model. Rows with no pairs (such as the reserved unknown-id row) get a
    zero vector.

    Training multiplies the whole pair matrix, held as a CSR sparse matrix, by the vector
    table each step, and looks the batch's rows up in the product. Per step and side, with
    64 columns: 2.9 ms on MovieLens 100K, 22 ms at 1M ratings, 230-410 ms at 10M; gathering
    and summing only the pairs of the batch's distinct ids costs 16x more at 1M and 6-11x
    more at 10M (tf.ragged and segment sums), and a dense matrix 3-4x more on MovieLens.
    XLA cannot compile the CSR product, so with ``xla=True`` a small, dense pair matrix (at
    most 2**24 cells and denser than 1/64) is multiplied as a dense matrix, and larger ones
    are gathered.

    Serving reads a cached table instead: :meth:`refresh_cache` (called at the end of fit by
    :func:`fill_unknown_rows`) stores every row's vector, and any training step marks the
    cache stale again, so an inference call during training (validation) computes the
    vectors afresh rather than reading old ones.
    """

    _MAX_DENSE_CELLS = 2**24

    def __init__(self, n_rows: int, n_columns: int, output_dim: int, n_pairs: int, *,
                 l2: float = 0.0, xla: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.xla = bool(xla)
        self.n_rows = int(n_rows)
        self.n_columns = int(n_columns)
        self.output_dim = int(output_dim)
        self.n_pairs = int(n_pairs)
        self.l2 = float(l2)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.n_columns, self.output_dim), name="embeddings",
            initializer=keras.initializers.RandomUniform(-0.05, 0.05),
        )
        self.pair_indices = self.add_weight(
            shape=(self.n_pairs, 2), dtype="int64", initializer="zeros", trainable=False,
            name="pair_indices",
        )
        self.pair_weights = self.add_weight(
            shape=(self.n_pairs,), initializer="zeros", trainable=False, name="pair_weights",
        )
        self.cached_vectors = self.add_weight(
            shape=(self.n_rows, self.output_dim), initializer="zeros", trainable=False,
            name="cached_vectors",
        )
        self.cache_is_fresh = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="cache_is_fresh",
        )

    def refresh_cache(self) -> None:
        """Store the vector of every row for inference (after training)."""
        self.cached_vectors.assign(self._all_rows(
            tf.convert_to_tensor(self.pair_indices), tf.convert_to_tensor(self.pair_weights),
            tf.convert_to_tensor(self.embeddings)))
        self.cache_is_fresh.assign(1.0)

    def set_pairs(self, rows: np.ndarray, columns: np.ndarray) -> None:
        """Store the distinct (row code, column code) training pairs."""
        pairs = distinct_pairs(np.column_stack([rows, columns]))
        counts = np.bincount(pairs[:, 0], minlength=self.n_rows)
        self.pair_indices.assign(pairs)
        self.pair_weights.assign((1.0 / np.sqrt(counts[pairs[:, 0]])).astype("float32"))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def call(self, codes, training=None):
        codes = tf.cast(codes, tf.int64)
        indices = tf.convert_to_tensor(self.pair_indices)
        weights = tf.convert_to_tensor(self.pair_weights)
        embeddings = tf.convert_to_tensor(self.embeddings)
        if not training:
            vectors = tf.cond(
                self.cache_is_fresh > 0,
                lambda: tf.gather(tf.convert_to_tensor(self.cached_vectors), codes),
                lambda: self._fresh_rows(codes, indices, weights, embeddings),
            )
        else:
            self.cache_is_fresh.assign(0.0)
            vectors = self._fresh_rows(codes, indices, weights, embeddings)
        if training and self.l2 > 0:
            self.add_loss(self.l2 * ops.mean(ops.sum(ops.square(vectors), axis=-1)))
        return vectors

    def _fresh_rows(self, codes, indices, weights, embeddings):
        """The vectors of ``codes`` computed from the current weights (see the class doc)."""
        if not self.xla:
            return tf.gather(self._all_rows(indices, weights, embeddings), codes)
        cells = self.n_rows * self.n_columns
        if cells <= min(64 * self.n_pairs, self._MAX_DENSE_CELLS):
            dense = tf.scatter_nd(indices, weights, (self.n_rows, self.n_columns))
            return tf.gather(tf.matmul(dense, embeddings), codes)
        return self._gathered_rows(codes, indices, weights, embeddings)

    def _all_rows(self, indices, weights, embeddings):
        shape = tf.constant((self.n_rows, self.n_columns), tf.int64)
        matrix = tf.raw_ops.SparseTensorToCSRSparseMatrix(
            indices=indices, values=weights, dense_shape=shape)
        return tf.raw_ops.SparseMatrixMatMul(a=matrix, b=embeddings)

    @staticmethod
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

    def get_config(self) -> dict:
        return {
            **super().get_config(), "n_rows": self.n_rows, "n_columns": self.n_columns,
            "output_dim": self.output_dim, "n_pairs": self.n_pairs, "l2": self.l2,
            "xla": self.xla,
        }


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


def build_network(
    *,
    n_users: int,
    n_items: int,
    n_factors: int,
    hidden_units: Sequence[int],
    dropout: float,
    embedding_dropout: float,
    use_bias: bool,
    dot_product: bool,
    l2: float,
    learning_rate: float,
    implicit: bool = False,
    rated_pairs: np.ndarray | None = None,
    n_estimators: int = 1,
    n_user_features: int = 0,
    n_item_features: int = 0,
    jit_compile: bool = False,
) -> keras.Model:
    """Build and compile the rating network.

    ``n_users`` and ``n_items`` count the known ids; each table gets one more row for ids
    unseen at fit. The prediction is the sum of the enabled parts: the MLP tower over the
    concatenated embeddings (the seed notebook's network), the dot product of the two
    embeddings (matrix factorisation) and per-user and per-item biases.

    With ``implicit`` (and ``dot_product``), the dot product's user factors also get the
    SVD++ implicit term over the items the user rated, and the item factors the same over the
    users who rated the item (:class:`ImplicitFeedback`); ``rated_pairs`` holds the training
    (user code, item code) pairs. The MLP tower sees the plain embeddings only, so the
    notebook's network (``dot_product=False``) never contains implicit layers.
    The L2 penalty applies to the vectors a batch uses; the biases are not penalised.
    With ``n_estimators`` > 1 the dot product is an ensemble: that many independently
    initialised sets of columns of the tables (:class:`MemberDots`), each trained as if
    alone (:class:`EnsembleMean`), averaged. The MLP tower reads all the columns.

    With ``n_user_features`` (``n_item_features``) > 0, a non-trainable table of encoded
    side features is looked up by the same code, projected to ``n_factors`` and added to the
    embedding, plus a feature bias (see :mod:`skembedrec._features`; the table is written
    after building). ``jit_compile`` builds only layers that XLA can compile. Besides the
    loss, the model reports the plain (sample-weighted) MSE as the metric ``"mse"``: the loss
    also holds the L2 penalty.

    Examples
    --------
    >>> model = build_network(n_users=3, n_items=4, n_factors=8, hidden_units=(16,),
    ...                       dropout=0.5, embedding_dropout=0.1, use_bias=True,
    ...                       dot_product=True, l2=0.0, learning_rate=1e-3)
    >>> model.output_shape
    (None, 1)
    """
    ids = keras.Input(shape=(2,), dtype="int32", name="ids")
    users = IdColumn(0, name="user_code")(ids)
    items = IdColumn(1, name="item_code")(ids)
    # The ensemble members of the dot product are side by side in the same tables: member m
    # owns columns [m * n_factors, (m + 1) * n_factors) (one lookup, one optimizer update
    # and one implicit product per table, whatever the number of members). Each member's
    # share of the ensemble loss is 1/n_estimators of its own loss (see EnsembleMean), so
    # its penalty is scaled alike to keep each member's optimum.
    width = n_factors * n_estimators if dot_product else n_factors
    member_l2 = l2 / n_estimators if dot_product else l2
    user_vectors = PenalizedEmbedding(n_users + 1, width, l2=member_l2,
                                      name="user_embedding")(users)
    item_vectors = PenalizedEmbedding(n_items + 1, width, l2=member_l2,
                                      name="item_embedding")(items)
    user_vectors, user_feature_bias = with_side_features(
        users, user_vectors, n_rows=n_users + 1, n_features=n_user_features, kind="user",
        use_bias=use_bias, n_columns=n_factors)
    item_vectors, item_feature_bias = with_side_features(
        items, item_vectors, n_rows=n_items + 1, n_features=n_item_features, kind="item",
        use_bias=use_bias, n_columns=n_factors)

    parts = []
    if hidden_units:
        x = keras.layers.Concatenate(name="concat")([user_vectors, item_vectors])
        x = keras.layers.Dropout(embedding_dropout, name="embedding_dropout")(x)
        for depth, units in enumerate(hidden_units):
            x = keras.layers.Dense(units, activation="relu", name=f"hidden_{depth}")(x)
            x = keras.layers.Dropout(dropout, name=f"dropout_{depth}")(x)
        parts.append(keras.layers.Dense(1, name="mlp_output")(x))
    if dot_product:
        pairs = distinct_pairs(rated_pairs if implicit else None)
        user_factors, item_factors = user_vectors, item_vectors
        if implicit:
            user_implicit = ImplicitFeedback(n_users + 1, n_items + 1, width, len(pairs),
                                             l2=member_l2, xla=jit_compile,
                                             name="user_implicit")
            item_implicit = ImplicitFeedback(n_items + 1, n_users + 1, width, len(pairs),
                                             l2=member_l2, xla=jit_compile,
                                             name="item_implicit")
            user_factors = keras.layers.Add(name="user_factors")(
                [user_vectors, user_implicit(users)])
            item_factors = keras.layers.Add(name="item_factors")(
                [item_vectors, item_implicit(items)])
            user_implicit.set_pairs(pairs[:, 0], pairs[:, 1])
            item_implicit.set_pairs(pairs[:, 1], pairs[:, 0])
        dots = MemberDots(n_estimators, name="dot")([user_factors, item_factors])
        parts.append(dots if n_estimators == 1 else EnsembleMean(name="dot_mean")(dots))
    if use_bias:
        for name, codes, size in (("user_bias", users, n_users), ("item_bias", items, n_items)):
            bias = PenalizedEmbedding(size + 1, 1, embeddings_initializer="zeros", name=name)
            parts.append(bias(codes))
        parts.extend(b for b in (user_feature_bias, item_feature_bias) if b is not None)
    if not parts:
        raise ValueError(
            "The network has no output: set hidden_units to a non-empty tuple, or enable "
            "dot_product or use_bias."
        )
    rating = parts[0] if len(parts) == 1 else keras.layers.Add(name="rating")(parts)
    model = keras.Model(ids, rating, name="embedding_rating_network")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse",
                  weighted_metrics=[keras.metrics.MeanSquaredError(name="mse")])
    return model


def id_tables(model: keras.Model) -> list[keras.layers.Embedding]:
    """The embedding layers indexed by user or item code (vectors and biases)."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]


def fill_unknown_rows(model: keras.Model) -> None:
    """Set each table's reserved last row to the mean of the learned rows.

    An unknown user then looks like an average user, so the prediction falls back on what is
    known of the item (and vice versa, and on the global mean when both are unknown).
    An unknown id has no implicit feedback (its implicit vector is zero), so the mean of the
    known ids' implicit vectors goes into its embedding row instead.
    """
    layers = {layer.name: layer for layer in model.layers}
    for table in id_tables(model):
        weights = table.embeddings.numpy()
        weights[-1] = weights[:-1].mean(axis=0)
        # "user_embedding" pairs with "user_implicit" (the bias tables have no implicit part).
        implicit = layers.get(table.name.replace("_embedding", "_implicit"))
        if isinstance(implicit, ImplicitFeedback):
            implicit.refresh_cache()
            weights[-1] += implicit.cached_vectors.numpy()[:-1].mean(axis=0)
        table.embeddings.assign(weights)


def make_serving_function(model: keras.Model) -> tf.types.experimental.ConcreteFunction:
    """A compiled inference call of ``model``: well under 1 ms per call instead of ~50 ms.

    ``model.predict`` builds a data pipeline on every call; this traces the same model once,
    for any batch size, so there is still one definition of the network. The concrete
    function skips ``tf.function``'s per-call argument dispatch (~0.3 ms).
    """

    # No Python control flow to convert; AutoGraph would also log a "could not transform"
    # warning for this closure, which verbose=0 must not print.
    @tf.function(input_signature=[tf.TensorSpec(shape=(None, 2), dtype=tf.int32)],
                 autograph=False)
    def serve(codes):
        return model(codes, training=False)

    return serve.get_concrete_function()


def predict_codes(serve, codes: np.ndarray, block_size: int = 1 << 20) -> np.ndarray:
    """Run ``serve`` over int32 codes of shape (n, 2) in blocks; returns float64 (n,)."""
    out = np.empty(len(codes), dtype=np.float64)
    for start in range(0, len(codes), block_size):
        block = codes[start : start + block_size]
        out[start : start + len(block)] = serve(tf.constant(block)).numpy()[:, 0]
    return out
