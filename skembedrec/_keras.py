"""The only module that touches scikeras, TransformedTargetRegressor or TensorFlow internals.

scikeras is unmaintained since 0.13; keep its surface small.

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
  fitted metadata, :func:`start_training`) and :func:`train_epochs` (``keras.Model.fit``),
  not ``KerasRegressor.fit``: that fit cannot take the callbacks and validation data of
  early stopping without touching its private state, and it rebuilds the model where warm
  starts and ``partial_fit`` must keep it.

The estimator keeps scikit-learn's ``TransformedTargetRegressor`` (rating scaling) around
the ``KerasRegressor``; its private ``_training_dim`` is set here only
(:func:`finish_training`). TensorFlow's private ``tensorflow.python`` API is imported here
only. ``tests/test_architecture.py`` checks that no other module touches these internals.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import numpy as np
from scikeras.utils.random_state import tensorflow_random_state
from scikeras.wrappers import KerasRegressor
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.preprocessing import StandardScaler
from tensorflow.python.framework import config as _tf_config

from . import _compiled
from ._distribute import build_in_strategy
from ._network import NetworkConfig, build_network

# scikeras' seeding context sets TF_DETERMINISTIC_OPS=1 *before* asking TensorFlow whether op
# determinism was already on. TensorFlow reads that variable on the first query only, so in a
# fresh process the answer is "yes", the context never switches determinism off again, and
# every later unseeded fit fails ("Random ops require a seed to be set when determinism is
# enabled"). Asking once here, before any seeded fit, records the user's real setting.
_tf_config.is_op_determinism_enabled()


def make_regressor(
    config: NetworkConfig,
    *,
    epochs: int,
    batch_size: int,
    seed: int | None,
    verbose: int,
    distribute: str | None = None,
) -> TransformedTargetRegressor:
    """An unfitted TransformedTargetRegressor (StandardScaler) around a ``KerasRegressor``
    that builds the rating network from ``config`` (see :mod:`._distribute` for
    ``distribute``)."""
    keras_regressor = KerasRegressor(
        model=_build_network,
        model__config=config,
        model__distribute=distribute,
        epochs=epochs,
        batch_size=batch_size,
        random_state=seed,
        verbose=verbose,
        shuffle=True,
    )
    return TransformedTargetRegressor(regressor=keras_regressor, transformer=StandardScaler())


def _build_network(config: NetworkConfig, distribute: str | None = None):
    return build_in_strategy(build_network, config, distribute=distribute)


def start_training(regressor: TransformedTargetRegressor, codes: np.ndarray,
                   targets: np.ndarray) -> KerasRegressor:
    """A fresh copy of ``regressor``'s ``KerasRegressor`` with its network built for data
    like ``codes``/``targets`` (scikeras' fitted metadata set), not trained yet.

    scikeras' own ``fit`` cannot be used: it cannot take the callbacks and validation data
    of early stopping, and it rebuilds the model where warm starts must keep it.
    """
    keras_regressor = clone(regressor.regressor)
    # scikeras validates (and casts to float) what it is given: one row is enough for its
    # metadata, and spares a float64 copy of all the codes.
    keras_regressor.initialize(codes[:1], np.asarray(targets[:1], dtype=np.float64))
    keras_regressor.X_shape_ = (len(codes), codes.shape[1])
    return keras_regressor


def finish_training(regressor: TransformedTargetRegressor, scaler: StandardScaler,
                    keras_regressor: KerasRegressor) -> TransformedTargetRegressor:
    """Give the unfitted ``regressor`` its fitted parts, as its own ``fit`` would.

    Its ``fit`` cannot be used: it would refit the scaler without the sample weights (and
    on ``partial_fit`` data), and route ``sample_weight`` through metadata routing.
    """
    regressor.transformer_ = scaler
    regressor.regressor_ = keras_regressor
    regressor._training_dim = 1  # what TransformedTargetRegressor.fit records for a 1-D y
    return regressor


def keras_model(regressor: TransformedTargetRegressor):
    """The fitted ``keras.Model`` inside a fitted regressor from :func:`make_regressor`."""
    return regressor.regressor_.model_


def train_epochs(
    keras_regressor: KerasRegressor,
    codes: np.ndarray,
    targets: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    initial_epoch: int,
    epochs: int,
    callbacks: list | None = None,
    validation_data: tuple | None = None,
    compiled: bool = True,
) -> dict[str, list[float]]:
    """Train the regressor's model for ``epochs`` more epochs; returns their Keras logs.

    The epochs are numbered on from ``initial_epoch`` (so progress bars read "Epoch 21/40"
    on a warm start). The run is seeded by the regressor's integer ``random_state`` as
    scikeras' own fit is. With ``compiled``, a network that XLA compiles trains with
    :mod:`._compiled`'s epochs, others with ``keras.Model.fit``.
    """
    seed = keras_regressor.random_state
    model = keras_regressor.model_
    _build_optimizer(model)

    def run():
        if compiled and _compiled.compiles(
                model, distributed=keras_regressor.model__distribute is not None):
            return _compiled.fit(
                model, codes, targets, sample_weight, batch_size=keras_regressor.batch_size,
                epochs=initial_epoch + epochs, initial_epoch=initial_epoch, shuffle_seed=seed,
                verbose=keras_regressor.verbose, callbacks=callbacks or [],
                validation_data=validation_data)
        return model.fit(
            codes, targets, sample_weight=sample_weight, batch_size=keras_regressor.batch_size,
            epochs=initial_epoch + epochs, initial_epoch=initial_epoch,
            shuffle=keras_regressor.shuffle, verbose=keras_regressor.verbose,
            callbacks=callbacks or [], validation_data=validation_data,
        ).history

    with quiet_tensorflow(keras_regressor.verbose):
        if seed is None:
            logs = run()
        else:
            with tensorflow_random_state(seed):
                logs = run()
    return {key: [float(v) for v in values] for key, values in logs.items()}


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


# -- persistence: a fitted regressor as plain values and back ------------------------------
# Model files (skembedrec._persistence) and pickles store these values, so scikeras' and
# TransformedTargetRegressor's fitted state is read and rebuilt here only.

_SCALER_ATTRIBUTES = ("mean_", "var_", "scale_", "n_samples_seen_")


def fitted_regressor_state(regressor: TransformedTargetRegressor) -> dict:
    """A fitted regressor of :func:`make_regressor`, Keras model aside, as plain values
    (dicts, numbers, arrays): what :func:`restore_fitted_regressor` rebuilds it from."""
    import dataclasses

    keras_regressor = regressor.regressor_
    params = keras_regressor.get_params(deep=False)
    scaler = regressor.transformer_
    return {
        "network": dataclasses.asdict(params["model__config"]),
        "distribute": params.get("model__distribute"),
        "epochs": params["epochs"],
        "batch_size": params["batch_size"],
        "seed": params["random_state"],
        "verbose": params["verbose"],
        "n_samples": int(keras_regressor.X_shape_[0]),
        "scaler": {name: np.asarray(getattr(scaler, name)) for name in _SCALER_ATTRIBUTES},
    }


def restore_fitted_regressor(state: dict, model) -> TransformedTargetRegressor:
    """The fitted regressor described by ``state`` (:func:`fitted_regressor_state`), with
    the loaded Keras ``model``; a ValueError or TypeError if ``state`` is malformed.

    Mirrors scikeras 0.13 ``BaseWrapper._initialize`` without building a new model: its
    fitted metadata comes from scikeras' own validation and encoders run on one dummy row
    with the dtypes fit sees (int32 codes, float64 standardised ratings).
    """
    regressor = make_regressor(
        NetworkConfig(**state["network"]), epochs=int(state["epochs"]),
        batch_size=int(state["batch_size"]), seed=state["seed"], verbose=state["verbose"],
        distribute=state["distribute"],
    )
    scaler = StandardScaler()
    for name in _SCALER_ATTRIBUTES:
        value = np.asarray(state["scaler"][name])
        shape = () if name == "n_samples_seen_" else (1,)  # as StandardScaler sets them
        if value.shape != shape or value.dtype.kind not in "iuf":
            raise ValueError(f"the target scaler's {name} is not one number")
        setattr(scaler, name, value[()] if name == "n_samples_seen_" else value)
    scaler.n_features_in_ = 1
    keras_regressor = clone(regressor.regressor)
    dummy_X, dummy_y = np.zeros((1, 2), dtype=np.int32), np.array([0.5])
    keras_regressor._random_state = keras_regressor.random_state
    dummy_X, dummy_y = keras_regressor._validate_data(dummy_X, dummy_y, reset=True)
    keras_regressor.X_shape_ = (int(state["n_samples"]), 2)
    keras_regressor.target_encoder_ = keras_regressor.target_encoder.fit(dummy_y)
    vars(keras_regressor).update(getattr(keras_regressor.target_encoder_, "get_metadata",
                                         dict)())
    keras_regressor.feature_encoder_ = keras_regressor.feature_encoder.fit(dummy_X)
    keras_regressor.model_ = model
    keras_regressor._initialize_callbacks()
    return finish_training(regressor, scaler, keras_regressor)
