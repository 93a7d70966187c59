"""Every input check of the package, with messages that name the problem.

(user, item) pairs, ratings, query ids, counts and the architecture parameters that
scikit-learn's parameter constraints cannot express; :mod:`skembedrec.metrics` uses the same
column checks.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_array, check_consistent_length

from ._time import unix_seconds

# pandas' inferred dtype of an id column -> the kind of id it holds; anything else is mixed.
_ID_KINDS = {
    "integer": "number",
    "floating": "number",
    "mixed-integer-float": "number",
    "decimal": "number",
    "string": "str",
    "bytes": "bytes",
    "boolean": "bool",
}


def id_kind(ids: np.ndarray) -> str | None:
    """'number', 'str', 'bytes' or 'bool'; None for a column that mixes kinds.

    Examples
    --------
    >>> id_kind(np.array([1, 2])), id_kind(np.array(["a", 1], dtype=object))
    ('number', None)
    """
    if ids.dtype.kind in "iuf":
        return "number"
    if ids.dtype.kind == "b":
        return "bool"
    return _ID_KINDS.get(pd.api.types.infer_dtype(ids, skipna=False))


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1, or a TypeError/ValueError naming ``name``.

    Examples
    --------
    >>> check_positive_int(3, "n")
    3
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be an int >= 1; got {value!r} of type {type(value).__name__}."
        )
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value}.")
    return int(value)


def column(values: Any, name: str) -> np.ndarray:
    """``values`` as a 1-D array (an ``(n, 1)`` array or a Series is accepted)."""
    values = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got an array of shape {values.shape}.")
    return values


def finite_numbers(values: Any, name: str) -> np.ndarray:
    """``values`` as a 1-D float64 array with no NaN or infinite value."""
    values = column(values, name)
    try:
        values = values.astype(np.float64)
    except (TypeError, ValueError):
        bad = next((v for v in values if not _is_number(v)), None)
        bad = bad.item() if isinstance(bad, np.generic) else bad
        raise ValueError(f"{name} must be numeric; got the value {bad!r}.") from None
    bad_rows = np.flatnonzero(~np.isfinite(values))
    if bad_rows.size:
        raise ValueError(
            f"{name} contains {bad_rows.size} NaN or infinite value(s) at row(s) "
            f"{bad_rows[:10].tolist()}."
        )
    return values


def check_no_missing(ids: np.ndarray, what: str, kind: str = "", why: str = "") -> None:
    """Refuse None/NaN ids: "``what`` contains n missing ``kind`` id(s) ... ``why``"."""
    missing = pd.isna(ids)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise ValueError(
            f"{what} contains {rows.size} missing {kind + ' ' if kind else ''}id(s) (None or "
            f"NaN) at row(s) {rows[:10].tolist()}{why}."
        )


def check_query_ids(ids: Any, known_ids: np.ndarray, name: str) -> np.ndarray:
    """Validate the ids a user asks about; returns a 1-D array (a scalar becomes one id).

    The ids must be of the same kind (numbers, strings) as those seen during fit: a string
    ``"1"`` asked of a model fitted on integer ids would otherwise silently be "unknown".
    """
    ids = np.asarray(ids.to_numpy() if hasattr(ids, "to_numpy") else ids)
    if ids.ndim == 0:
        ids = ids.reshape(1)
    if ids.ndim != 1:
        raise ValueError(f"{name} must be a 1-D list of ids; got an array of shape {ids.shape}.")
    if ids.size == 0:
        raise ValueError(f"{name} is empty; pass at least one id.")
    if ids.dtype.kind in "US":
        ids = ids.astype(object)
    check_no_missing(ids, name)
    expected, given = id_kind(np.asarray(known_ids)), id_kind(ids)
    if given != expected:
        raise TypeError(
            f"{name} must hold {expected} ids like those seen during fit (e.g. "
            f"{known_ids[0]!r}); got {given or 'mixed'} ids (e.g. {ids[0]!r})."
        )
    return ids


def check_architecture(n_factors: Any, epochs: Any, batch_size: Any, hidden_units: Any) -> None:
    """What the parameter constraints let through: sklearn's ``Interval(Integral)`` accepts
    True, which Keras rejects obscurely, and it cannot check the items of a tuple."""
    for name, value in (("n_factors", n_factors), ("epochs", epochs),
                        ("batch_size", batch_size)):
        if isinstance(value, bool | np.bool_):
            raise InvalidParameterError(
                f"The {name!r} parameter of EmbeddingRatingRegressor must be an int, not a "
                f"bool. Got {value!r} instead."
            )
    if not all(isinstance(u, Integral) and not isinstance(u, bool) and int(u) > 0
               for u in hidden_units):
        raise InvalidParameterError(
            "The 'hidden_units' parameter of EmbeddingRatingRegressor must be a tuple of "
            f"positive ints. Got {hidden_units!r} instead."
        )


def _select_columns(X: pd.DataFrame, user_col: Any, item_col: Any) -> tuple[np.ndarray, np.ndarray]:
    missing = [col for col in (user_col, item_col) if col not in X.columns]
    if missing:
        raise ValueError(
            f"X is missing the column(s) {missing}; it has columns {list(X.columns)}. "
            "Name the user and item columns with user_col= and item_col=."
        )
    if user_col == item_col:
        raise ValueError(f"user_col and item_col must differ; both are {user_col!r}.")
    # is_unique is cached by pandas: comparing every column name costs ~0.1 ms per call, a
    # quarter of a single-pair predict.
    repeated = [] if X.columns.is_unique else [
        col for col in (user_col, item_col) if not isinstance(X.columns.get_loc(col), int)
    ]
    if repeated:
        raise ValueError(
            f"X has several columns named {repeated}; the user and item columns must be "
            "unique."
        )
    return X[user_col].to_numpy(), X[item_col].to_numpy()


def _check_id_column(ids: np.ndarray, kind: str) -> np.ndarray:
    check_no_missing(ids, "X", kind, f"; every rating needs a {kind} id")
    if ids.dtype.kind in "iub":
        return ids
    if ids.dtype.kind == "f":
        if not np.isfinite(ids).all():
            raise ValueError(f"X contains infinite {kind} ids; ids must be finite.")
        return ids
    if id_kind(ids) is None:
        kinds = sorted({type(v).__name__ for v in ids[:10_000]})
        raise ValueError(
            f"The {kind} ids mix types {kinds}; ids of one column must all be strings or all "
            f"numbers, e.g. convert them with .astype(str)."
        )
    if ids.dtype.kind in "US":
        ids = ids.astype(object)
    return ids


def column_names(user_col: Any, item_col: Any, time_col: Any = None) -> list:
    """The columns of X the estimator reads, in array order: user, item (and time)."""
    return [user_col, item_col] + ([] if time_col is None else [time_col])


def check_rows(X: Any, *, user_col: Any, item_col: Any, time_col: Any = None,
               time_required: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate X and return its user ids, item ids and (with ``time_col``) unix seconds.

    X is a DataFrame holding ``user_col`` and ``item_col`` (other columns are ignored) or an
    array-like, column 0 the user and column 1 the item. DataFrame columns are read
    directly, without a copy of the frame: single-row predictions stay cheap. With
    ``time_col`` set, a DataFrame must hold that column and an array a third column
    (column 2) of times, unless ``time_required`` is False (then the times are ignored and
    an array may have 2 or 3 columns). Without it, the times are None.
    """
    if X is None:
        raise ValueError("X (the user and item ids) is required; got None.")
    names = column_names(user_col, item_col, time_col)
    if isinstance(X, (list, tuple)) and len(X) and not hasattr(X[0], "shape"):
        # Rows given as Python sequences: let pandas infer each column's type, so that
        # [["ann", 1]] keeps 1 an int (numpy would make every value a string).
        X = pd.DataFrame(list(X))
        width = X.shape[1]
        X = X.set_axis(names[:width], axis=1) if width in (2, len(names)) else X.to_numpy()
    times = None
    if isinstance(X, pd.DataFrame):
        users, items = _select_columns(X, user_col, item_col)
        if len(users) == 0:
            raise ValueError("X is empty: it has 0 rows; at least 1 (user, item) pair is needed.")
        if time_col is not None and time_required:
            if time_col not in X.columns:
                raise ValueError(
                    f"X has no time column {time_col!r} (time_col); it has columns "
                    f"{list(X.columns)}. The model uses the time of each rating: add the "
                    "column, or fit with time_col=None."
                )
            times = X[time_col]
    else:
        X = check_array(
            X, dtype=None, ensure_all_finite=False, accept_sparse=False, input_name="X"
        )
        allowed = {2} if time_col is None else {3} if time_required else {2, 3}
        if X.shape[1] not in allowed:
            described = ("exactly 2 columns (user id, item id)" if time_col is None else
                         f"3 columns (user id, item id, time; time_col={time_col!r})")
            raise ValueError(
                f"X must have {described}; got {X.shape[1]} feature(s). Pass a DataFrame "
                f"with the columns {names} (set user_col=, item_col= and time_col= to use "
                f"other names), or an array with {len(names)} columns in that order."
            )
        users, items = X[:, 0], X[:, 1]
        if time_col is not None and time_required:
            times = X[:, 2]
    if times is not None:
        times = unix_seconds(times, time_col)
    return _check_id_column(users, "user"), _check_id_column(items, "item"), times


def check_time_col(time_col: Any, time_max: float | None) -> None:
    """Refuse a ``time_col`` that disagrees with how the model was fitted (``time_max``:
    its latest training time, None when fitted without times)."""
    if time_col is None and time_max is not None:
        raise ValueError(
            "The model was fitted with a time column, but time_col is now None: it needs "
            "the time of each rating. Set time_col back to the name it was fitted with."
        )
    if time_col is not None and time_max is None:
        raise ValueError(
            f"time_col={time_col!r}, but the model was fitted without times. Set "
            "time_col=None, or fit again with the time column."
        )


def check_ratings(y: Any, n_samples: int) -> np.ndarray:
    """Validate the ratings ``y``: 1-D, numeric, finite, one per row of X."""
    if y is None:
        raise ValueError(
            "EmbeddingRatingRegressor requires y to be passed, but the target y is None: pass "
            "the ratings."
        )
    y = column(y, "y (the ratings)")
    check_consistent_length(np.empty(n_samples), y)
    return finite_numbers(y, "y (the ratings)")


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return value is not None


def check_jit_compile(jit_compile: bool, random_state: Any) -> None:
    """XLA and a seeded fit exclude each other: a seed turns on TensorFlow op determinism,
    under which Keras silently trains without XLA."""
    if jit_compile and random_state is not None:
        raise ValueError(
            "jit_compile=True cannot be combined with random_state (got "
            f"{random_state!r}): seeded fits turn on TensorFlow op determinism, under which "
            "Keras does not compile with XLA. Set random_state=None, or jit_compile=False "
            "for a reproducible fit."
        )
