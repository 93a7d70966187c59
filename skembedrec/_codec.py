"""One value codec for model files: Python values <-> JSON plus named numeric arrays.

Every value that JSON cannot hold exactly is written as a one-key dict whose key is a tag
``"__name__"``; a plain JSON object never appears, so a dict is always a tag. The JSON
scalars (None, bool, int, finite float, str) and lists are written as themselves, so their
Python types come back exactly. Numeric arrays go into ``arrays`` (written to an ``.npz``
and read with ``allow_pickle=False``) and the JSON holds their name.

=====================  =========================================================
tag                    value
=====================  =========================================================
``__float__``          a non-finite float (``"nan"``, ``"inf"``, ``"-inf"``)
``__bytes__``          bytes, base64
``__tuple__``          a tuple (``__set__``, ``__frozenset__``: sets, sorted by repr)
``__dict__``           a dict with str keys
``__array__``          a numeric numpy array, by name in ``arrays``
``__objects__``        an object array (ids of Python scalars), element by element
``__categorical__``    a pandas Categorical (codes array, categories, ordered)
``__masked__``         a pandas nullable numeric array (values and mask arrays)
``__string__``         a pandas StringDtype array
``__frame__``          a DataFrame (index, columns, each column with its dtype)
``__random_state__``   a ``numpy.random.RandomState`` with its exact state
``__sparse__``         a scipy sparse CSR/CSC/COO matrix or array (a boolean CSR/CSC
                       one whose values are all True without its ``data``: format 3)
=====================  =========================================================

Anything else raises a ``ValueError`` naming the value, so state is never silently dropped.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import pandas as pd

_SETS = {"__set__": set, "__frozenset__": frozenset}
_NUMERIC = "biufcmM"


class Encoder:
    """Encode values to JSON, collecting their numeric arrays in :attr:`arrays`.

    Examples
    --------
    >>> encoder = Encoder()
    >>> encoder.encode((1, float("inf"), b"x"), "a value", "v")
    {'__tuple__': [1, {'__float__': 'inf'}, {'__bytes__': 'eA=='}]}
    >>> spec = encoder.encode(np.arange(3), "an array", "a")
    >>> decode(spec, encoder.arrays)
    array([0, 1, 2])
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value: Any, what: str, key: str) -> Any:
        """JSON for ``value``; ``what`` names it in errors, ``key`` prefixes its arrays."""
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool | np.bool_):  # before int: bool is an int subclass
            return bool(value)
        if isinstance(value, int | np.integer):
            return int(value)
        if isinstance(value, float | np.floating):
            return float(value) if math.isfinite(value) else {"__float__": repr(float(value))}
        if isinstance(value, bytes):
            return {"__bytes__": base64.b64encode(value).decode("ascii")}
        if isinstance(value, list):
            return [self.encode(v, what, f"{key}/{i}") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, what, f"{key}/{i}")
                                  for i, v in enumerate(value)]}
        if isinstance(value, set | frozenset):
            tag = "__frozenset__" if isinstance(value, frozenset) else "__set__"
            return {tag: [self.encode(v, what, key) for v in sorted(value, key=repr)]}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self.encode(v, what, f"{key}/{k}") for k, v in value.items()}}
        if isinstance(value, np.ndarray | pd.Series | pd.Index):
            return self._column(value, what, key)
        if isinstance(value, pd.DataFrame):
            return {"__frame__": self._frame(value, what, key)}
        if isinstance(value, np.random.RandomState):
            name, keys, pos, has_gauss, cached = value.get_state()
            self.arrays[f"{key}/mt19937"] = keys  # type: ignore[assignment]
            return {"__random_state__": {"array": f"{key}/mt19937", "name": name,
                                         "pos": int(pos), "has_gauss": int(has_gauss),
                                         "cached": float(cached)}}
        sparse = _sparse_format(value)
        if sparse is not None:
            return {"__sparse__": self._sparse(value, sparse, what, key)}
        raise ValueError(
            f"Cannot save {what}: the value {_short_repr(value)} of type "
            f"{type(value).__name__} (at {key!r}) has no safe representation (None, bool, int, "
            "float, str, bytes, lists, tuples, sets, dicts with str keys, numeric arrays, "
            "DataFrames, RandomState and scipy sparse matrices only). Use joblib for trusted "
            "storage."
        )

    def _array(self, values: np.ndarray, key: str) -> dict:
        self.arrays[key] = np.asarray(values, order="C")  # 0-d arrays stay 0-d
        return {"__array__": key}

    def _column(self, values: Any, what: str, key: str) -> dict:
        """An ndarray, Series or Index with its exact dtype."""
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            codes = values.codes if isinstance(values, pd.Index) else values.cat.codes
            return {"__categorical__": {
                "codes": self._array(np.asarray(codes), key),
                "categories": self._column(dtype.categories, what, f"{key}/categories"),
                "ordered": bool(dtype.ordered)}}
        if isinstance(dtype, np.dtype) and dtype.kind in _NUMERIC:
            return self._array(np.asarray(values), key)
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "biuf":
            return {"__masked__": {
                "dtype": str(dtype),
                "values": self._array(values.to_numpy(dtype=dtype.numpy_dtype, na_value=0), key),
                "mask": self._array(np.asarray(values.isna()), f"{key}/mask")}}
        if isinstance(dtype, pd.StringDtype):
            objects = np.array(values.astype(object), dtype=object)  # a writable copy
            objects[np.asarray(values.isna())] = None
            return {"__string__": {
                "storage": dtype.storage, "na": "NA" if dtype.na_value is pd.NA else "nan",
                "values": [self.encode(v, what, key) for v in objects]}}
        if not (isinstance(dtype, np.dtype) and dtype.kind == "O"):
            raise ValueError(f"Cannot save {what}: the dtype {dtype} has no safe representation.")
        objects = np.asarray(values, dtype=object).ravel()
        return {"__objects__": [self._object(v, what, key) for v in objects]}

    def _object(self, value: Any, what: str, key: str) -> Any:
        if isinstance(value, np.ndarray | pd.Series | pd.Index | pd.DataFrame):
            raise ValueError(f"Cannot save {what}: an object array holds an array.")
        return self.encode(value, what, key)

    def _frame(self, frame: pd.DataFrame, what: str, key: str) -> dict:
        if not frame.columns.is_unique:
            raise ValueError(f"Cannot save {what}: its column names repeat.")
        return {
            "index": self._column(frame.index, f"the index of {what}", f"{key}/index"),
            "index_name": self.encode(frame.index.name, what, key),
            "columns": self._column(frame.columns, f"the columns of {what}", f"{key}/columns"),
            "columns_name": self.encode(frame.columns.name, what, key),
            "data": [self._column(frame.iloc[:, i], f"column {c!r} of {what}", f"{key}/{i}")
                     for i, c in enumerate(frame.columns)],
        }

    def _sparse(self, value: Any, form: str, what: str, key: str) -> dict:
        import scipy.sparse as sp

        parts: tuple[str, ...] = (("data", "row", "col") if form == "coo"
                                  else ("data", "indices", "indptr"))
        if form not in ("csr", "csc", "coo"):
            raise ValueError(f"Cannot save {what}: scipy sparse format {form!r} is not "
                             "supported (CSR, CSC and COO are).")
        if value.dtype == bool and form != "coo" and value.data.all():
            # A set of pairs (seen_): its data, all True, is rebuilt at decoding.
            parts = parts[1:]
        return {"format": form, "kind": "matrix" if sp.isspmatrix(value) else "array",
                "shape": [int(n) for n in value.shape],
                **{part: self._array(getattr(value, part), f"{key}/{part}") for part in parts}}


def decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The Python value of :meth:`Encoder.encode`'s JSON; a ValueError for anything else."""
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise ValueError(f"unknown tagged value {sorted(value)[:5]}")
    ((tag, payload),) = value.items()
    if tag == "__float__":
        if payload not in ("nan", "inf", "-inf"):
            raise ValueError(f"bad non-finite float {payload!r}")
        return float(payload)
    if tag == "__bytes__":
        return base64.b64decode(str(payload).encode("ascii"), validate=True)
    if tag == "__tuple__":
        return tuple(decode(v, arrays) for v in _list(payload))
    if tag in _SETS:
        return _SETS[tag](decode(v, arrays) for v in _list(payload))
    if tag == "__dict__":
        return {str(k): decode(v, arrays) for k, v in _mapping(payload).items()}
    if tag == "__frame__":
        return _decode_frame(_mapping(payload), arrays)
    if tag == "__random_state__":
        state = _mapping(payload)
        rng = np.random.RandomState()
        rng.set_state((state["name"], _array(arrays, state["array"]), state["pos"],
                       state["has_gauss"], state["cached"]))
        return rng
    if tag == "__sparse__":
        return _decode_sparse(_mapping(payload), arrays)
    return _decode_column(value, arrays)


def _decode_column(spec: dict, arrays: dict[str, np.ndarray]) -> Any:
    ((tag, payload),) = spec.items()
    if tag == "__array__":
        return _array(arrays, payload)
    if tag == "__objects__":
        values = np.empty(len(_list(payload)), dtype=object)
        values[:] = [decode(v, arrays) for v in payload]
        return values
    payload = _mapping(payload)
    if tag == "__categorical__":
        categories = _decode_column(_mapping(payload["categories"]), arrays)
        return pd.Categorical.from_codes(decode(payload["codes"], arrays),
                                         categories=categories, ordered=bool(payload["ordered"]))
    if tag == "__masked__":
        values = pd.array(decode(payload["values"], arrays), dtype=str(payload["dtype"]))
        values[decode(payload["mask"], arrays)] = pd.NA
        return values
    if tag == "__string__":
        values = np.empty(len(_list(payload["values"])), dtype=object)
        values[:] = [decode(v, arrays) for v in payload["values"]]
        na_value = pd.NA if payload["na"] == "NA" else np.nan
        return pd.array(values, dtype=_string_dtype(payload["storage"], na_value))
    raise ValueError(f"unknown tag {tag!r}")


def _string_dtype(storage: str, na_value: Any) -> Any:
    try:
        return pd.StringDtype(storage, na_value)
    except TypeError:
        # pandas < 2.3 has no NaN-valued string dtype (pandas 3's default "str"): there,
        # such a column is what pandas 2 makes of strings, an object column.
        return pd.StringDtype(storage) if na_value is pd.NA else object


def _decode_frame(spec: dict, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    index = pd.Index(_decode_column(_mapping(spec["index"]), arrays),
                     name=decode(spec["index_name"], arrays))
    columns = pd.Index(_decode_column(_mapping(spec["columns"]), arrays),
                       name=decode(spec["columns_name"], arrays))
    data = {i: _decode_column(_mapping(col), arrays) for i, col in enumerate(_list(spec["data"]))}
    if len(data) != len(columns):
        raise ValueError("a DataFrame's columns do not match its data")
    frame = pd.DataFrame(data, index=index, copy=False)
    frame.columns = columns
    return frame


def _decode_sparse(spec: dict, arrays: dict[str, np.ndarray]) -> Any:
    import scipy.sparse as sp

    form, kind = spec["format"], spec["kind"]
    shape = tuple(int(n) for n in _list(spec["shape"]))
    makers = {("csr", "matrix"): sp.csr_matrix, ("csr", "array"): sp.csr_array,
              ("csc", "matrix"): sp.csc_matrix, ("csc", "array"): sp.csc_array,
              ("coo", "matrix"): sp.coo_matrix, ("coo", "array"): sp.coo_array}
    make = makers[form, kind]
    if form == "coo":
        return make((decode(spec["data"], arrays),
                     (decode(spec["row"], arrays), decode(spec["col"], arrays))), shape=shape)
    indices, indptr = decode(spec["indices"], arrays), decode(spec["indptr"], arrays)
    if "data" in spec:
        data = decode(spec["data"], arrays)
    elif isinstance(indices, np.ndarray):  # written without its data: all True
        data = np.ones(indices.shape, dtype=bool)
    else:
        raise ValueError("a sparse matrix's indices are not an array")
    return make((data, indices, indptr), shape=shape)


def _array(arrays: dict[str, np.ndarray], name: Any) -> np.ndarray:
    if not isinstance(name, str) or name not in arrays:
        raise ValueError(f"the array {name!r} is missing")
    return arrays[name]


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


def _mapping(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {type(value).__name__}")
    return value


def _sparse_format(value: Any) -> str | None:
    import scipy.sparse as sp

    return value.format if sp.issparse(value) else None


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
