"""The only module that imports scikeras (unmaintained since 0.13; keep its surface small).

Known scikeras 0.13 behaviours this package relies on or works around:

* ``KerasRegressor`` lists ``RegressorMixin`` right of ``BaseEstimator``, so its tags say it
  is no regressor. It is only used inside :class:`EmbeddingRatingRegressor`, whose own tags
  are correct.
* It casts non-numeric X to float before any encoder runs, so ids are encoded to int32
  codes *before* they reach it.
* Importing it patches ``keras.Model.__reduce__`` for the whole process, which is what lets
  a fitted Keras model pickle (joblib, ``clone`` of fitted estimators, process pools).
* With an integer ``random_state`` it seeds Python, NumPy and TensorFlow and turns on TF
  op determinism for the whole process *while* ``fit`` runs, restoring them afterwards
  (after a fix below for its first use in a process).
  :func:`train_epochs` does the same around its own training loop.
* Training goes through :meth:`KerasRegressor.initialize` (builds the network and the
  fitted metadata) and :func:`train_epochs` (``keras.Model.fit`` plus the ``history_``
  bookkeeping), not ``KerasRegressor.fit``: that fit cannot take the callbacks and
  validation data of early stopping without touching its private state, and it rebuilds
  the model where warm starts and ``partial_fit`` must keep it.
"""

from __future__ import annotations

import inspect
import logging
from collections import defaultdict
from contextlib import contextmanager
from typing import Any

import numpy as np
from scikeras.utils.random_state import tensorflow_random_state
from scikeras.wrappers import KerasRegressor
from tensorflow.python.framework import config as _tf_config

from ._distribute import build_in_strategy
from ._network import build_network

# scikeras' seeding context sets TF_DETERMINISTIC_OPS=1 *before* asking TensorFlow whether op
# determinism was already on. TensorFlow reads that variable on the first query only, so in a
# fresh process the answer is "yes", the context never switches determinism off again, and
# every later unseeded fit fails ("Random ops require a seed to be set when determinism is
# enabled"). Asking once here, before any seeded fit, records the user's real setting.
_tf_config.is_op_determinism_enabled()


def make_keras_regressor(
    *,
    network_params: dict[str, Any],
    epochs: int,
    batch_size: int,
    random_state: int | None,
    verbose: int,
    callbacks: list | None = None,
    distribute: str | None = None,
    jit_compile: bool = False,
) -> KerasRegressor:
    """A ``KerasRegressor`` that builds the rating network from ``network_params``.

    ``distribute`` and ``jit_compile`` say where and how it trains (see :mod:`._distribute`).
    """
    routed = {f"model__{name}": value for name, value in network_params.items()}
    routed.update(model__distribute=distribute, model__jit_compile=jit_compile)
    return KerasRegressor(
        model=_build_network,
        epochs=epochs,
        batch_size=batch_size,
        random_state=random_state,
        verbose=verbose,
        shuffle=True,
        callbacks=callbacks,
        **routed,
    )


def _build_network(*, distribute: str | None, jit_compile: bool, **network_params):
    return build_in_strategy(build_network, network_params, distribute=distribute,
                             jit_compile=jit_compile)


# scikeras passes its own extras (meta, compile_kwargs, params) to a build function that takes
# **kwargs, and routes only the parameters its signature names: show it build_network's.
_build_network.__signature__ = inspect.signature(build_network).replace(  # type: ignore[attr-defined]
    parameters=[
        *inspect.signature(build_network).parameters.values(),
        inspect.Parameter("distribute", inspect.Parameter.KEYWORD_ONLY, default=None),
    ]
)


def keras_model(keras_regressor: KerasRegressor):
    """The fitted ``keras.Model`` inside a fitted ``KerasRegressor``."""
    return keras_regressor.model_


def train_epochs(
    keras_regressor: KerasRegressor,
    codes: np.ndarray,
    targets: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    epochs: int,
    callbacks: list | None = None,
    validation_data: tuple | None = None,
) -> dict[str, list[float]]:
    """Train the regressor's model for ``epochs`` more epochs; returns this run's history.

    The epochs are numbered on from those already in ``history_`` (so progress bars read
    "Epoch 21/40" on a warm start), and their logs are appended to ``history_``. The run is
    seeded by the regressor's integer ``random_state`` as scikeras' own fit is.
    """
    if not hasattr(keras_regressor, "history_"):
        keras_regressor.history_ = defaultdict(list)
    done = len(keras_regressor.history_.get("loss", []))
    seed = keras_regressor.random_state
    _build_optimizer(keras_regressor.model_)

    def run():
        return keras_regressor.model_.fit(
            codes, targets, sample_weight=sample_weight, batch_size=keras_regressor.batch_size,
            epochs=done + epochs, initial_epoch=done, shuffle=keras_regressor.shuffle,
            verbose=keras_regressor.verbose, callbacks=callbacks or [],
            validation_data=validation_data,
        )

    with quiet_tensorflow(keras_regressor.verbose):
        if seed is None:
            logs = run().history
        else:
            with tensorflow_random_state(seed):
                logs = run().history
    for key, values in logs.items():
        keras_regressor.history_[key] += [float(v) for v in values]
    return logs


def _build_optimizer(model) -> None:
    # Keras otherwise creates the optimizer's slots inside the first trace of the training
    # step, and tf.function then traces that step a second time: ~1.5 s of every fit.
    if not model.optimizer.built:
        with model.distribute_strategy.scope():
            model.optimizer.build(model.trainable_variables)


@contextmanager
def quiet_tensorflow(verbose: int = 0):
    """Silence TensorFlow's Python warnings (e.g. "triggered tf.function retracing", logged
    when ``partial_fit`` trains a new model per call) while the block runs, under
    ``verbose=0``. The ``tensorflow`` logger's level is restored afterwards.
    """
    logger = logging.getLogger("tensorflow")
    level = logger.level
    if not verbose:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
