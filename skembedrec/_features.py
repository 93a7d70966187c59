"""Side features: user and item attribute frames, encoded into lookup tables of the network.

A feature frame is a :class:`pandas.DataFrame` indexed by id (``user_features`` by user id,
``item_features`` by item id). Each column is encoded by its type:

* numeric or bool columns (age, year) are standardised; a missing value becomes the mean;
* any other column (occupation, gender) is one-hot over its distinct values; a missing
  value gives an all-zero block;
* a column whose values are lists, tuples or sets (genres split into a list, e.g.
  ``items["genres"].str.split()``) is multi-hot over the distinct labels.

The encoded rows live inside the Keras model as a non-trainable table indexed by the same
code as the id embedding (``FeatureLookup``, built in :mod:`._network`), so the model keeps
its single ``(n, 2)`` code input and serving needs no frame. Ids that have features but no
ratings get a code too (their id embedding is the average row), which is what gives a user
unknown to the ratings a prediction from their features. Rows of ids without features, and
the reserved unknown row, hold the average feature row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_LIST_LIKE = (list, tuple, set, frozenset, np.ndarray)


def check_feature_frame(frame: Any, name: str) -> pd.DataFrame | None:
    """Validate a ``user_features``/``item_features`` parameter (None passes through)."""
    if frame is None:
        return None
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"{name} must be a pandas DataFrame indexed by id, or None; got "
            f"{type(frame).__name__}."
        )
    if frame.shape[1] == 0:
        raise ValueError(f"{name} has no columns; pass None to use no {name}.")
    if frame.index.hasnans:
        raise ValueError(f"{name} has missing (NaN/None) ids in its index.")
    if not frame.index.is_unique:
        dupes = frame.index[frame.index.duplicated()].unique()[:5].tolist()
        raise ValueError(f"{name} has duplicated ids in its index, e.g. {dupes}; one row per id.")
    return frame


class FeatureEncoder:
    """Encode the columns of one feature frame into a dense float32 matrix.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"age": [20, 40], "job": ["a", "b"],
    ...                       "genres": [["x", "y"], ["y"]]}, index=[1, 2])
    >>> enc = FeatureEncoder().fit(frame)
    >>> enc.feature_names_
    ['age', 'job=a', 'job=b', 'genres=x', 'genres=y']
    >>> enc.table(frame, [2, 3])
    array([[1. , 0. , 1. , 0. , 1. ],
           [0. , 0.5, 0.5, 0.5, 1. ],
           [0. , 0.5, 0.5, 0.5, 1. ]], dtype=float32)
    """

    def fit(self, frame: pd.DataFrame) -> FeatureEncoder:
        self.columns_: list[tuple[Any, tuple[Any, ...]]] = []
        self.feature_names_ = []
        for column in frame.columns:
            values = frame[column]
            spec: tuple[Any, ...]
            if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
                numbers = values.astype(np.float64)
                mean = float(numbers.mean()) if numbers.notna().any() else 0.0
                std = float(numbers.std(ddof=0)) if numbers.notna().sum() > 1 else 0.0
                spec = ("numeric", mean, std if std > 0 else 1.0)
                self.feature_names_.append(str(column))
            else:
                present = values.dropna()
                multi = len(present) > 0 and all(isinstance(v, _LIST_LIKE) for v in present)
                labels = (
                    [label for row in present for label in row] if multi else list(present)
                )
                categories = sorted(pd.unique(np.asarray(labels, dtype=object)), key=repr)
                spec = ("multi" if multi else "one", categories)
                self.feature_names_.extend(f"{column}={c}" for c in categories)
            self.columns_.append((column, spec))
        self.mean_row_ = self.transform(frame).mean(axis=0)
        return self

    @property
    def n_features(self) -> int:
        return len(self.feature_names_)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The encoded rows of ``frame`` (columns as seen at fit), float32."""
        blocks = []
        for column, spec in self.columns_:
            values = frame[column]
            if spec[0] == "numeric":
                _, mean, std = spec
                block = ((values.astype(np.float64) - mean) / std).fillna(0.0).to_numpy()
                blocks.append(block[:, None])
                continue
            position = {c: i for i, c in enumerate(spec[1])}
            block = np.zeros((len(values), len(position)))
            for row, value in enumerate(values):
                labels = value if spec[0] == "multi" and isinstance(value, _LIST_LIKE) else [value]
                for label in labels:
                    j = position.get(label) if not _is_missing(label) else None
                    if j is not None:
                        block[row, j] = 1.0
            blocks.append(block)
        return np.hstack(blocks).astype(np.float32)

    def table(self, frame: pd.DataFrame, ids: np.ndarray) -> np.ndarray:
        """Rows for ``ids`` in code order, plus the reserved unknown row (the mean row).

        Ids absent from ``frame`` get the mean row.
        """
        rows = np.tile(self.mean_row_, (len(ids) + 1, 1))
        where = frame.index.get_indexer(pd.Index(ids))
        present = where >= 0
        if present.any():
            rows[:-1][present] = self.transform(frame.iloc[where[present]])
        return rows.astype(np.float32)


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def side_vocabulary(frame: pd.DataFrame | None, name: str) -> np.ndarray:
    """The ids of a feature frame as a 1-D array (none when there is no frame)."""
    if frame is None:
        return np.empty(0, dtype=object)
    ids = frame.index.to_numpy()
    return ids.astype(object) if ids.dtype.kind in "US" else ids
