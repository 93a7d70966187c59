"""The seed notebook's Keras training loop, reproduced as the benchmark's reference.

The notebook encodes user and movie ids with ``LabelEncoder``, standardises the ratings with
``StandardScaler``, and trains two ``Embedding(n, 64)`` tables whose outputs are
concatenated and fed through ``Dropout(0.1) -> Dense(32, relu) -> Dropout(0.5) -> Dense(1)``
with Adam(1e-3), MSE loss, batch 64, 50 epochs.

One deliberate change: the embeddings are flattened so that the output has shape ``(n, 1)``.
With ``Input(shape=(1,))`` the notebook's output is ``(n, 1, 1)``; Keras 3 broadcasts that
against the ``(n,)`` target into an ``(n, 1, n)`` loss (every prediction compared with every
target in the batch), so the unmodified network never learns on Keras 3.
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.preprocessing import LabelEncoder, StandardScaler


class NotebookModel:
    """Fit/predict wrapper around the notebook's network and training loop.

    Ids unseen at fit are mapped to code 0 at predict (the notebook never meets them: its
    ``LabelEncoder`` is fitted on all ratings before the split; here it is fitted on the
    training ratings only, so that no test information leaks into training).
    """

    def __init__(self, *, epochs: int = 50, batch_size: int = 64, seed: int = 0, verbose: int = 0):
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.verbose = verbose

    def _network(self, n_users: int, n_items: int) -> keras.Model:
        user = keras.Input(shape=(1,), name="user")
        item = keras.Input(shape=(1,), name="item")
        user_vec = keras.layers.Flatten()(keras.layers.Embedding(n_users, 64)(user))
        item_vec = keras.layers.Flatten()(keras.layers.Embedding(n_items, 64)(item))
        x = keras.layers.Concatenate()([user_vec, item_vec])
        x = keras.layers.Dropout(0.1)(x)
        x = keras.layers.Dense(32, activation="relu")(x)
        x = keras.layers.Dropout(0.5)(x)
        out = keras.layers.Dense(1)(x)
        model = keras.Model([user, item], out)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        return model

    def _codes(self, encoder: LabelEncoder, ids: np.ndarray) -> np.ndarray:
        index = np.searchsorted(encoder.classes_, ids)
        index = np.clip(index, 0, len(encoder.classes_) - 1)
        return np.where(encoder.classes_[index] == ids, index, 0).astype("int32")

    def fit(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> NotebookModel:
        keras.utils.set_random_seed(self.seed)
        self.user_encoder_ = LabelEncoder().fit(users)
        self.item_encoder_ = LabelEncoder().fit(items)
        self.scaler_ = StandardScaler().fit(ratings.reshape(-1, 1))
        self.model_ = self._network(
            len(self.user_encoder_.classes_), len(self.item_encoder_.classes_))
        self.model_.fit(
            [self.user_encoder_.transform(users), self.item_encoder_.transform(items)],
            self.scaler_.transform(ratings.reshape(-1, 1)),
            batch_size=self.batch_size,
            epochs=self.epochs,
            verbose=self.verbose,
        )
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predict as the notebook does: ``model.predict``, then the inverse scaling."""
        scaled = self.model_.predict(
            [self._codes(self.user_encoder_, users), self._codes(self.item_encoder_, items)],
            batch_size=4096, verbose=0,
        )
        return self.scaler_.inverse_transform(scaled.reshape(-1, 1))[:, 0]
