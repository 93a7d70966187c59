"""Input checks for (user, item) pairs and ratings, with messages that name the problem."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_array, check_consistent_length

_ALLOWED_ID_KINDS = {
    "integer": "int",
    "floating": "float",
    "mixed-integer-float": "number",
    "string": "str",
    "bytes": "bytes",
    "boolean": "bool",
}


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
    missing = pd.isna(ids)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise ValueError(
            f"X contains {rows.size} missing {kind} id(s) (None or NaN) at row(s) "
            f"{rows[:10].tolist()}; every rating needs a {kind} id."
        )
    if ids.dtype.kind in "iub":
        return ids
    if ids.dtype.kind == "f":
        if not np.isfinite(ids).all():
            raise ValueError(f"X contains infinite {kind} ids; ids must be finite.")
        return ids
    inferred = pd.api.types.infer_dtype(ids, skipna=False)
    if inferred not in _ALLOWED_ID_KINDS:
        kinds = sorted({type(v).__name__ for v in ids[:10_000]})
        raise ValueError(
            f"The {kind} ids mix types {kinds}; ids of one column must all be strings or all "
            f"numbers, e.g. convert them with .astype(str)."
        )
    if ids.dtype.kind in "US":
        ids = ids.astype(object)
    return ids


def check_pairs(X: Any, *, user_col: Any, item_col: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate X and return its user ids and item ids as two 1-D arrays.

    X is a DataFrame holding ``user_col`` and ``item_col`` (other columns are ignored) or a
    2-column array-like, column 0 the user and column 1 the item. DataFrame columns are read
    directly, without a copy of the frame: single-row predictions stay cheap.
    """
    if X is None:
        raise ValueError("X (the user and item ids) is required; got None.")
    if isinstance(X, (list, tuple)) and len(X) and not hasattr(X[0], "shape"):
        # Rows given as Python sequences: let pandas infer each column's type, so that
        # [["ann", 1]] keeps 1 an int (numpy would make every value a string).
        X = pd.DataFrame(list(X))
        X = X.to_numpy() if X.shape[1] != 2 else X.set_axis([user_col, item_col], axis=1)
    if isinstance(X, pd.DataFrame):
        users, items = _select_columns(X, user_col, item_col)
        if len(users) == 0:
            raise ValueError("X is empty: it has 0 rows; at least 1 (user, item) pair is needed.")
    else:
        X = check_array(
            X, dtype=None, ensure_all_finite=False, accept_sparse=False, input_name="X"
        )
        if X.shape[1] != 2:
            raise ValueError(
                f"X must have exactly 2 columns (user id, item id); got {X.shape[1]} feature(s). "
                "Pass a "
                f"DataFrame with the columns {user_col!r} and {item_col!r} (set user_col= and "
                "item_col= to use other names), or a 2-column array."
            )
        users, items = X[:, 0], X[:, 1]
    return _check_id_column(users, "user"), _check_id_column(items, "item")


def check_ratings(y: Any, n_samples: int) -> np.ndarray:
    """Validate the ratings ``y``: 1-D, numeric, finite, one per row of X."""
    if y is None:
        raise ValueError(
            "EmbeddingRatingRegressor requires y to be passed, but the target y is None: pass "
            "the ratings."
        )
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y (the ratings) must be 1-D; got an array of shape {y.shape}.")
    check_consistent_length(np.empty(n_samples), y)
    try:
        y = y.astype(np.float64)
    except (TypeError, ValueError):
        bad = next(v for v in y if not _is_number(v))
        bad = bad.item() if isinstance(bad, np.generic) else bad
        raise ValueError(f"y (the ratings) must be numeric; got the value {bad!r}.") from None
    bad_rows = np.flatnonzero(~np.isfinite(y))
    if bad_rows.size:
        raise ValueError(
            f"y (the ratings) contains {bad_rows.size} NaN or infinite value(s) at row(s) "
            f"{bad_rows[:10].tolist()}."
        )
    return y


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return value is not None
