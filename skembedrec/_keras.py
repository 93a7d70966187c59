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
  op determinism for the whole process *while* ``fit`` runs, restoring them afterwards.
"""

from __future__ import annotations

from typing import Any

from scikeras.wrappers import KerasRegressor

from ._network import build_network


def make_keras_regressor(
    *,
    network_params: dict[str, Any],
    epochs: int,
    batch_size: int,
    random_state: int | None,
    verbose: int,
    callbacks: list | None = None,
) -> KerasRegressor:
    """A ``KerasRegressor`` that builds the rating network from ``network_params``."""
    routed = {f"model__{name}": value for name, value in network_params.items()}
    return KerasRegressor(
        model=build_network,
        epochs=epochs,
        batch_size=batch_size,
        random_state=random_state,
        verbose=verbose,
        shuffle=True,
        callbacks=callbacks,
        **routed,
    )


def keras_model(keras_regressor: KerasRegressor):
    """The fitted ``keras.Model`` inside a fitted ``KerasRegressor``."""
    return keras_regressor.model_
