"""Every input check of the package, with messages that name the problem.

(user, item) pairs, ratings, query ids, counts and the architecture parameters that
scikit-learn's parameter constraints cannot express; :mod:`skembedrec.metrics` uses the same
column checks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning
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


def frame_columns(X: Any) -> list | None:
    """The column names of X when it is a frame read by name, else None (X is an array).

    Frames are pandas, polars and pyarrow ones (detected by module name, as scikit-learn
    does, so that neither is imported here) and any other frame narwhals reads, when
    narwhals is installed (scikit-learn >= 1.8 depends on it).

    Examples
    --------
    >>> frame_columns(pd.DataFrame({"user_id": [1], "item_id": [2]}))
    ['user_id', 'item_id']
    >>> frame_columns(np.zeros((1, 2))) is None
    True
    """
    reader = _frame_reader(X)
    return None if reader is None else reader[0]


def _frame_reader(X: Any) -> tuple[list, Callable[[Any], Any]] | None:
    """(column names, ``name -> column``) of a frame; None for anything else."""
    if isinstance(X, pd.DataFrame):
        return list(X.columns), X.__getitem__  # a Series: times keep their timezone
    library = type(X).__module__.partition(".")[0]
    if library == "polars" and hasattr(X, "get_column"):  # not a LazyFrame
        return list(X.columns), lambda name: X.get_column(name).to_numpy()
    if library == "pyarrow" and hasattr(X, "column_names"):
        return list(X.column_names), lambda name: X.column(name).to_numpy()
    if not any(hasattr(X, protocol) for protocol in _FRAME_PROTOCOLS):
        return None
    try:
        import narwhals
    except ImportError:
        return None
    frame = narwhals.from_native(X, eager_only=True, pass_through=True)
    if not isinstance(frame, narwhals.DataFrame):
        return None
    return list(frame.columns), lambda name: frame.get_column(name).to_numpy()


# What other dataframe libraries expose (the interchange and Arrow stream protocols).
_FRAME_PROTOCOLS = ("__dataframe__", "__arrow_c_stream__", "__narwhals_dataframe__")


def _select_columns(X: Any, names: list, getter: Callable[[Any], Any], user_col: Any,
                    item_col: Any) -> tuple[np.ndarray, np.ndarray]:
    missing = [col for col in (user_col, item_col) if col not in names]
    if missing:
        raise ValueError(
            f"X is missing the column(s) {missing}; it has columns {names}. "
            "Name the user and item columns with user_col= and item_col=."
        )
    if user_col == item_col:
        raise ValueError(f"user_col and item_col must differ; both are {user_col!r}.")
    # is_unique is cached by pandas: comparing every column name costs ~0.1 ms per call, a
    # quarter of a single-pair predict.
    unique = X.columns.is_unique if isinstance(X, pd.DataFrame) else len(set(names)) == len(
        names)
    repeated = [] if unique else [col for col in (user_col, item_col) if names.count(col) > 1]
    if repeated:
        raise ValueError(
            f"X has several columns named {repeated}; the user and item columns must be "
            "unique."
        )
    return _to_numpy(getter(user_col)), _to_numpy(getter(item_col))


def _to_numpy(values: Any) -> np.ndarray:
    return values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)


def _check_id_column(ids: np.ndarray, kind: str) -> np.ndarray:
    check_no_missing(ids, "X", kind, f"; every rating needs a {kind} id")
    if ids.dtype.kind in "iub":
        return ids
    if ids.dtype.kind == "f":
        if not np.isfinite(ids).all():
            raise ValueError(f"X contains infinite {kind} ids; ids must be finite.")
        return _whole_numbers(ids, kind)
    inferred = id_kind(ids)
    if inferred is None:
        kinds = sorted({type(v).__name__ for v in ids[:10_000]})
        raise ValueError(
            f"The {kind} ids mix types {kinds}; ids of one column must all be strings or all "
            f"numbers, e.g. convert them with .astype(str)."
        )
    if inferred == "number" and pd.api.types.infer_dtype(ids) != "integer":
        return _check_id_column(ids.astype(np.float64), kind)
    if ids.dtype.kind in "US":
        ids = ids.astype(object)
    return ids


def _whole_numbers(ids: np.ndarray, kind: str) -> np.ndarray:
    """Float ids as int64: 12.0 is the id 12 at fit, at predict and in an exported model."""
    whole = ids == np.trunc(ids)
    if not whole.all():
        row = int(np.flatnonzero(~whole)[0])
        raise ValueError(
            f"The {kind} ids must be ints or strings; got the number {float(ids[row])!r} at row "
            f"{row}. Float ids are read as ints when they are whole numbers (12.0 is the id "
            "12); convert other ids to strings, e.g. with .astype(str)."
        )
    largest = float(np.abs(ids).max())
    if largest >= 2.0**63:
        raise ValueError(
            f"The {kind} ids are floats beyond the int64 range (e.g. {largest!r}); pass "
            "them as ints or strings."
        )
    return ids.astype(np.int64)


def column_names(user_col: Any, item_col: Any, time_col: Any = None) -> list:
    """The columns of X the estimator reads, in array order: user, item (and time)."""
    return [user_col, item_col] + ([] if time_col is None else [time_col])


def accepted_input(names: list) -> str:
    """What X may be, for error messages."""
    return (
        f"Pass a DataFrame (pandas, polars, pyarrow, ...) with the columns {names} (other "
        f"columns are ignored; set user_col=, item_col= and time_col= to use other names), "
        f"or an array-like of shape (n_pairs, {len(names)}) with the columns in that order."
    )


def check_rows(X: Any, *, user_col: Any, item_col: Any, time_col: Any = None,
               time_required: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate X and return its user ids, item ids and (with ``time_col``) unix seconds.

    A frame (see :func:`frame_columns`) is read by column name: ``user_col`` and
    ``item_col`` (and ``time_col``) in any order, other columns ignored; only those columns
    are converted, without a copy of the frame, so single-row predictions stay cheap. Any
    other X is an array-like read by position: column 0 the user, column 1 the item and,
    with ``time_col``, column 2 the time; it must have exactly those columns (a third
    column without ``time_col`` is refused, not guessed at). With ``time_required`` False
    the times are ignored (a frame need not hold ``time_col``, an array may have 2 or 3
    columns). Without ``time_col``, the times are None. Whole-number float ids become
    int64 (12.0 is the id 12); other float ids are refused.
    """
    if X is None:
        raise ValueError("X (the user and item ids) is required; got None.")
    names = column_names(user_col, item_col, time_col)
    if isinstance(X, (list, tuple)) and len(X) and not hasattr(X[0], "shape"):
        # Rows given as Python sequences: let pandas infer each column's type, so that
        # [["ann", 1]] keeps 1 an int (numpy would make every value a string).
        X = _rows_frame(X, names)
    reader = _frame_reader(X)
    times = None
    if reader is not None:
        columns, getter = reader
        users, items = _select_columns(X, columns, getter, user_col, item_col)
        if len(users) == 0:
            raise ValueError("X is empty: it has 0 rows; at least 1 (user, item) pair is needed.")
        if time_col is not None and time_required:
            if time_col not in columns:
                raise ValueError(
                    f"X has no time column {time_col!r} (time_col); it has columns "
                    f"{columns}. The model uses the time of each rating: add the "
                    "column, or fit with time_col=None."
                )
            times = getter(time_col)
    else:
        X = _check_array(X, names)
        allowed = {2} if time_col is None else {3} if time_required else {2, 3}
        if X.shape[1] not in allowed:
            described = ("exactly 2 columns (user id, item id)" if time_col is None else
                         f"3 columns (user id, item id, time; time_col={time_col!r})")
            raise ValueError(
                f"X must have {described}; got {X.shape[1]} feature(s). An array is read "
                f"by position, so other columns are refused rather than guessed at. "
                + accepted_input(names)
            )
        users, items = X[:, 0], X[:, 1]
        if time_col is not None and time_required:
            times = X[:, 2]
    if times is not None:
        times = unix_seconds(times, time_col)
    return _check_id_column(users, "user"), _check_id_column(items, "item"), times


def _rows_frame(rows: list | tuple, names: list) -> Any:
    frame = pd.DataFrame(list(rows))
    width = frame.shape[1]
    return frame.set_axis(names[:width], axis=1) if width in (2, len(names)) else frame.to_numpy()


def _check_array(X: Any, names: list) -> np.ndarray:
    """X as a 2-D array, or an error saying what X may be (sparse data: sklearn's error)."""
    array_like = (isinstance(X, (list, tuple)) or hasattr(X, "__array__")
                  or hasattr(X, "__array_interface__") or sp.issparse(X)
                  ) and getattr(X, "shape", None) != ()  # not a numpy scalar
    if not array_like:
        hint = (" Call .collect() on a LazyFrame first." if hasattr(X, "collect") else "")
        raise TypeError(
            f"X must be a table of (user, item) pairs; got a {type(X).__name__}."
            f"{hint} {accepted_input(names)}"
        )
    X = check_array(X, dtype=None, ensure_all_finite=False, accept_sparse=False,
                    input_name="X", ensure_2d=False, allow_nd=True)
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D; got an array of shape {X.shape}. {accepted_input(names)}"
        )
    return X


def fitted_feature_names(X: Any, user_col: Any, item_col: Any,
                         time_col: Any = None) -> np.ndarray | None:
    """``feature_names_in_`` for a fit on X: the columns read, when X is a frame."""
    if frame_columns(X) is None:
        return None
    return np.array(column_names(user_col, item_col, time_col), dtype=object)


def check_feature_names(X: Any, fitted_names: np.ndarray | None, estimator: str) -> None:
    """Warn as scikit-learn's ``_check_feature_names`` does when X is a frame and the model
    was fitted on an array, or the reverse. A frame is read by name, so its other columns
    do not matter, and a missing column is refused by :func:`check_rows`, naming it."""
    named = frame_columns(X) is not None
    if named and fitted_names is None:
        warnings.warn(f"X has feature names, but {estimator} was fitted without feature "
                      "names", UserWarning, stacklevel=4)
    elif not named and fitted_names is not None:
        warnings.warn(f"X does not have valid feature names, but {estimator} was fitted "
                      "with feature names", UserWarning, stacklevel=4)


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
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples,), for example using ravel().",
            DataConversionWarning, stacklevel=5,
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


def check_jit_compile(keras_xla: bool, random_state: Any) -> None:
    """Keras' step under XLA (``keras_xla``: ``jit_compile=True`` for implicit feedback or
    ``distribute``, which compiled epochs cannot run) and a seeded fit exclude each other:
    Keras trains without XLA while op determinism (turned on by a seed) holds."""
    if keras_xla and random_state is not None:
        raise ValueError(
            "jit_compile=True cannot be combined with random_state (got "
            f"{random_state!r}) for a network with implicit feedback or with distribute: "
            "these train Keras' own step, and seeded fits turn on TensorFlow op "
            "determinism, under which Keras does not compile with XLA. Set "
            "random_state=None, or jit_compile='auto' for a reproducible fit."
        )
