"""Side features: user and item attribute frames, encoded into lookup tables of the network.

A feature frame is a pandas or polars DataFrame with one row per id (``user_features`` by
user id, ``item_features`` by item id), keyed by the column named ``user_col``/``item_col``
or else by its index (:func:`check_feature_frame`). Each column is encoded by its type:

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
the reserved unknown row, hold the average feature row. Ids that a table lists only after
fit get codes and rows in a grown copy of the model (:func:`with_feature_ids`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ._keras import fitted_regressor_state, keras_model, restore_fitted_regressor
from ._network import (
    NetworkConfig,
    build_network,
    copy_learned_state,
    feature_table,
    refresh_caches,
    set_feature_table,
    set_training_pairs,
    time_grid,
)
from ._recommend import seen_pairs, seen_with_pairs

_LIST_LIKE = (list, tuple, set, frozenset, np.ndarray)


def check_feature_frame(frame: Any, name: str, id_col: Any = None) -> pd.DataFrame | None:
    """A ``user_features``/``item_features`` parameter as a pandas frame indexed by id.

    The ids come from the column named ``id_col`` when there is one (that column is then
    the key, not a feature), else from the index; a default (unnamed) ``RangeIndex`` is no
    key and is refused. A polars frame, which has no index, is converted column by column
    and needs the id column. None passes through; the caller's frame is never modified.

    Examples
    --------
    >>> import pandas as pd
    >>> users = pd.DataFrame({"user_id": [7, 9], "age": [20, 40]})
    >>> keyed = check_feature_frame(users, "user_features", "user_id")
    >>> keyed.index.tolist(), keyed.columns.tolist(), users.columns.tolist()
    ([7, 9], ['age'], ['user_id', 'age'])
    """
    if frame is None:
        return None
    frame = _as_pandas(frame, name)
    if id_col is not None and id_col in frame.columns:
        frame = frame.set_index(id_col)  # a new frame: the caller's keeps its column
    elif isinstance(frame.index, pd.RangeIndex) and frame.index.name is None:
        raise ValueError(
            f"{name} must say which ids its rows describe, but it has neither a column named "
            f"{id_col!r} nor an index of ids (it has a default RangeIndex 0..{len(frame) - 1}, "
            f"which would give id 0 the first row). Index it by id, e.g. "
            f'{name}.set_index("{id_col}"), or name its id column {id_col!r} (user_col/'
            "item_col)."
        )
    if frame.shape[1] == 0:
        raise ValueError(f"{name} has no columns; pass None to use no {name}.")
    if frame.index.hasnans:
        raise ValueError(f"{name} has missing (NaN/None) ids in its index.")
    if not frame.index.is_unique:
        dupes = frame.index[frame.index.duplicated()].unique()[:5].tolist()
        raise ValueError(f"{name} has duplicated ids in its index, e.g. {dupes}; one row per id.")
    return frame


def _as_pandas(frame: Any, name: str) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    if type(frame).__module__.split(".")[0] == "polars":
        # Column by column: polars' own to_pandas needs pyarrow; list columns (genres)
        # become Python lists, which FeatureEncoder multi-hot encodes.
        return pd.DataFrame({
            column: frame[column].to_list() if frame[column].dtype.is_nested()
            else frame[column].to_numpy() for column in frame.columns
        })
    raise TypeError(
        f"{name} must be a pandas or polars DataFrame keyed by id, or None; got "
        f"{type(frame).__name__}."
    )


def warn_if_no_overlap(side_ids: np.ndarray, rating_ids: np.ndarray, name: str) -> None:
    """Warn when no id of a feature table is among the ratings' ids (a likely wrong key).

    Some ids without ratings are expected (cold start); none in common is not.
    """
    if len(side_ids) and not pd.Index(side_ids).isin(pd.unique(rating_ids)).any():
        warnings.warn(
            f"None of the {len(side_ids)} ids of {name} is among the ids of the ratings, so its "
            f"features describe no rated id (e.g. {list(side_ids[:3])}); is its key the right "
            "column? Index it by the ids used in X.",
            UserWarning, stacklevel=4,
        )


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

    def state(self) -> dict[str, Any]:
        """The fitted encoding as plain values (lists, tuples, numbers, an array): what a
        model file can hold, and what :meth:`from_state` rebuilds the encoder from."""
        return {"columns": [(column, *spec) for column, spec in self.columns_],
                "feature_names": list(self.feature_names_), "mean_row": self.mean_row_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureEncoder:
        encoder = cls()
        encoder.columns_ = [(column, tuple(spec)) for column, *spec in state["columns"]]
        encoder.feature_names_ = list(state["feature_names"])
        encoder.mean_row_ = np.asarray(state["mean_row"])
        return encoder

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

    def table(self, frame: pd.DataFrame, ids: Any) -> np.ndarray:
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


def unlisted_ids(frame: pd.DataFrame | None, known: np.ndarray) -> np.ndarray:
    """The ids of a feature table (checked, keyed by id) that are not among ``known``."""
    ids = side_vocabulary(frame, "")
    return ids[~pd.Index(ids).isin(known)]


def feature_tables(user_features: Any, item_features: Any, user_col: Any,
                   item_col: Any) -> dict[str, pd.DataFrame | None]:
    """The estimator's ``user_features``/``item_features`` checked and keyed by id (see
    :func:`check_feature_frame`), under their parameter names."""
    return {"user_features": check_feature_frame(user_features, "user_features", user_col),
            "item_features": check_feature_frame(item_features, "item_features", item_col)}


def with_feature_ids(fitted: Any, user_features: Any, item_features: Any, user_col: Any,
                     item_col: Any) -> Any:
    """``fitted`` grown by the ids that the current feature tables list and it does not know.

    ``fitted`` is a :class:`~._training.Trained` record, the other arguments the
    estimator's parameters of the same names (the current feature tables). Each new id
    gets a code after the known ones and, as in a warm start, the reserved unknown row of
    every learned table (its free embedding and bias are those of an average id); its
    feature row is its encoded features (with the fit's encoding), so
    its prediction comes from them through the trained projection. Nothing is trained, and
    the known ids keep their codes and rows, so their predictions do not change. Returns
    ``fitted`` itself when no table lists a new id or the model has no features of that
    side; ``fitted`` and its model are never modified.
    """
    encoders = fitted.feature_encoders or {}
    tables = feature_tables(user_features, item_features, user_col, item_col)
    known = {"user": fitted.encoder.user_ids, "item": fitted.encoder.item_ids}
    frames = {kind: tables.get(f"{kind}_features") if kind in encoders else None
              for kind in known}
    new = {kind: unlisted_ids(frames[kind], known[kind]) for kind in known}
    if not any(len(ids) for ids in new.values()):
        return fitted
    try:
        encoder = fitted.encoder.extended(new["user"], new["item"])
    except TypeError as exc:
        raise ValueError(f"user_features/item_features list ids that cannot be ids of this "
                         f"model: {exc}") from exc
    old_model = keras_model(fitted.regressor)
    state = fitted_regressor_state(fitted.regressor)
    network = NetworkConfig(**{**state["network"], "n_users": encoder.n_users,
                               "n_items": encoder.n_items, "time_grid": time_grid(old_model)})
    model = build_network(network)
    copy_learned_state(old_model, model)
    for kind, ids in new.items():
        table = feature_table(model, kind)
        if len(ids) and table is not None:
            first = len(known[kind])
            rows = FeatureEncoder.from_state(encoders[kind]).table(frames[kind], ids)
            table[first:first + len(ids)] = rows[:-1]
            set_feature_table(model, kind, table)
    no_pairs = np.empty(0, dtype=np.int64)
    seen = seen_with_pairs(fitted.seen, no_pairs, no_pairs, encoder.n_users, encoder.n_items)
    set_training_pairs(model, *seen_pairs(seen))
    refresh_caches(model)
    regressor = restore_fitted_regressor({**state, "network": vars(network)}, model)
    return dataclasses.replace(fitted, encoder=encoder, regressor=regressor, seen=seen)


class _TableSummary:
    """Stands for a feature table in an estimator's repr: its type and shape only."""

    def __init__(self, table: Any):
        rows, columns = table.shape
        self.text = f"<{type(table).__name__} {rows}x{columns}>"

    def __repr__(self) -> str:
        return self.text


def repr_with_short_tables(estimator: Any, base_repr: Callable[..., str], n_char_max: int) -> str:
    """``base_repr`` (scikit-learn's ``BaseEstimator.__repr__``) of ``estimator`` with each
    feature table shown as ``<DataFrame 943x3>`` instead of its rows.

    The repr is taken of a bare instance holding the parameters (not a copy of the
    estimator, which would serialise its fitted model).
    """
    shown = object.__new__(type(estimator))
    params = estimator.get_params(deep=False)
    vars(shown).update({name: _TableSummary(value) if name in _TABLE_PARAMS and value is not None
                        else value for name, value in params.items()})
    return base_repr(shown, N_CHAR_MAX=n_char_max)


_TABLE_PARAMS = ("user_features", "item_features")
