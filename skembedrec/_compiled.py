"""Compiled epochs: the training loop of networks that XLA compiles, several steps per call.

Keras' ``fit`` spends most of a large step outside the arithmetic: its data adapter shuffles
and slices the ratings in ``tf.data`` (about 20 ms of a 65,536-rating batch on this
project's 2-core machines), its step is not compiled (``jit_compile`` is off while a seed
holds TensorFlow's op determinism on), and the row-sparse Adam step of
:class:`~._optimization.RowSparseAdam` gathers and scatters rows one op at a time. Here an
epoch is a NumPy permutation of the rows, cut into chunks of :data:`STEPS_PER_CALL` batches,
and each chunk runs as one XLA computation: forward pass, the loss Keras would compute
(``model.compute_loss``: the sample-weighted MSE plus the layers' penalties), gradients,
and the optimizer's dense Adam step, which XLA fuses into one pass over each table (the
embedding gradients are summed per row into a table-sized buffer first). Measured on
10M MovieLens-shaped ratings: 110-130 ms per step with Keras' ``fit``, 19-30 ms here
(``benchmarks/RESULTS.md``, "The model at scale").

What stays Keras': the ``keras.Model`` (its layers, weights, optimizer and saved form), the
callbacks (a :class:`keras.callbacks.CallbackList` with the history and, at ``verbose``,
the progress bar: batch hooks run once per chunk, as with Keras' ``steps_per_execution``),
``model.stop_training`` and the logs (``loss``, ``mse``, and ``val_loss``/``val_mse`` with
validation data), so early stopping and the estimator's progress lines work unchanged.

Two differences from ``fit``, both for static shapes: every batch is full (the last batch of
an epoch is completed with the first rows of the epoch's order, so up to ``batch_size - 1``
ratings are seen twice in it), and the optimizer moves every row of a table at every step
(Keras' own Adam, rows outside the batch coasting on their momentum) where
:class:`~._optimization.RowSparseAdam` moves only the batch's rows.

Networks with implicit-feedback layers on a schedule (their refresh is a sparse product that
XLA cannot compile) and distributed training keep Keras' ``fit`` (:func:`compiles`).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

# Batches per XLA call: Python's share of a step falls with it.
STEPS_PER_CALL = 8
# Rows per call when predicting the validation slice.
_VALIDATION_BLOCK = 1 << 18


def compiles(model: keras.Model, *, distributed: bool) -> bool:
    """Whether ``model`` trains with compiled epochs: every layer supports XLA, none is
    refreshed on a schedule (scheduled implicit sums) and training is not distributed."""
    if distributed:
        return False
    for layer in model.layers:
        if not getattr(layer, "supports_jit", True) or getattr(layer, "is_scheduled", False):
            return False
    return True


def fit(model: keras.Model, codes: np.ndarray, targets: np.ndarray,
        sample_weight: np.ndarray | None, *, batch_size: int, epochs: int,
        initial_epoch: int = 0, shuffle_seed: int | None = None, verbose: int = 0,
        callbacks: list | None = None, validation_data: tuple | None = None,
        ) -> dict[str, list[float]]:
    """Train ``model`` for epochs ``initial_epoch`` .. ``epochs - 1``, as ``model.fit``
    would with the same arguments, in compiled chunks of batches; returns the history.

    ``shuffle_seed`` seeds each epoch's order (epoch ``e`` uses ``(shuffle_seed, e)``), so a
    seeded fit is reproducible; None draws fresh orders.
    """
    n = len(targets)
    batch_size = int(batch_size)
    steps = max(1, math.ceil(n / batch_size))
    weights = (np.ones(n, dtype=np.float32) if sample_weight is None
               else np.asarray(sample_weight, dtype=np.float32))
    run = _chunk_runner(model, min(STEPS_PER_CALL, steps))
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, model=model, verbose=verbose,
        epochs=epochs, steps=steps)
    model.stop_training = False
    callback_list.on_train_begin()
    logs: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        order = _epoch_order(n, steps * batch_size, shuffle_seed, epoch)
        totals = np.zeros(3)  # loss x batches, weighted squared errors, weights
        for first in range(0, steps, run.steps_per_call):
            count = min(run.steps_per_call, steps - first)
            callback_list.on_train_batch_begin(first)
            rows = order[first * batch_size:(first + count) * batch_size]
            totals += run(run.inputs(codes, targets, weights, rows, batch_size), count)
            logs = _logs(totals, first + count)
            callback_list.on_train_batch_end(first + count - 1, logs)
        if validation_data is not None:
            logs = {**logs, **_validation_logs(model, *validation_data)}
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    history = next(callback for callback in callback_list.callbacks
                   if isinstance(callback, keras.callbacks.History))
    return {key: list(values) for key, values in history.history.items()}


def _logs(totals: np.ndarray, n_batches: int) -> dict[str, float]:
    return {"loss": float(totals[0] / n_batches), "mse": float(totals[1] / totals[2])}


def _epoch_order(n: int, n_slots: int, seed: int | None, epoch: int) -> np.ndarray:
    """The epoch's row order, ``n_slots`` long: a permutation of the ``n`` rows, completed by
    its own first rows (repeated if ``n`` is smaller than the batch)."""
    rng = np.random.default_rng(None if seed is None else (seed, epoch))
    order = rng.permutation(n).astype(np.int64)
    if n_slots > n:
        order = np.concatenate([order, np.resize(order, n_slots - n)])
    return order


class _ChunkRunner:
    """One XLA computation training up to ``steps_per_call`` batches of a chunk."""

    def __init__(self, model: keras.Model, steps_per_call: int):
        self.model = model
        self.steps_per_call = steps_per_call
        self._compiled = tf.function(self._steps, jit_compile=True, reduce_retracing=True)

    def inputs(self, codes, targets, weights, rows, batch_size) -> tuple:
        """The chunk's codes, targets and weights, shaped ``(steps_per_call, batch_size,
        ...)``; a last, shorter chunk is padded (its padding is not trained on)."""
        shape = (self.steps_per_call, batch_size)
        padded = np.zeros(self.steps_per_call * batch_size, dtype=np.int64)
        padded[:len(rows)] = rows
        return (codes[padded].reshape(*shape, codes.shape[1]), targets[padded].reshape(shape),
                weights[padded].reshape(shape))

    def __call__(self, inputs: tuple, count: int) -> np.ndarray:
        """Train the first ``count`` batches of ``inputs``; their loss and error sums."""
        return np.asarray(self._compiled(*inputs, tf.constant(count)), dtype=np.float64)

    def _steps(self, x, y, w, count):
        # A loop, not unrolled steps: XLA compiles the step once (compile time is paid by
        # every fit; unrolling eight steps doubled it for no faster step).
        def body(k, totals):
            return k + 1, totals + self._step(x[k], y[k], w[k])

        _, totals = tf.while_loop(lambda k, _: k < count, body,
                                  (tf.constant(0), tf.zeros(3, tf.float64)))
        return totals

    def _step(self, x, y, w):
        model = self.model
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            predicted = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=predicted, sample_weight=w)
        gradients = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                     for g in tape.gradient(loss, variables)]
        model.optimizer.apply(gradients, variables)
        squared = tf.reduce_sum(w * tf.square(predicted[:, 0] - y))
        return tf.cast(tf.stack([loss, squared, tf.reduce_sum(w)]), tf.float64)


def _chunk_runner(model: keras.Model, steps_per_call: int) -> _ChunkRunner:
    # One runner (and one compiled function) per model and chunk length: warm starts and
    # partial_fit train the same model again without tracing anew.
    runners = model.__dict__.setdefault("_skembedrec_chunk_runners", {})
    if steps_per_call not in runners:
        runners[steps_per_call] = _ChunkRunner(model, steps_per_call)
    return runners[steps_per_call]


def _validation_logs(model: keras.Model, codes: np.ndarray, targets: np.ndarray,
                     weights: np.ndarray | None = None) -> dict[str, float]:
    """``val_loss`` and ``val_mse`` as Keras' ``evaluate`` reports them (no penalty
    outside training): the weighted squared error over the rows, and over the weights."""
    predicted = np.concatenate([
        np.asarray(model(codes[start:start + _VALIDATION_BLOCK], training=False))[:, 0]
        for start in range(0, len(codes), _VALIDATION_BLOCK)])
    weights = np.ones(len(targets)) if weights is None else np.asarray(weights, np.float64)
    squared = float(np.sum(weights * (predicted.astype(np.float64) - targets) ** 2))
    return {"val_loss": squared / len(targets), "val_mse": squared / float(weights.sum())}
