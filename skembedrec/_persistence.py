"""The safe file format of a fitted :class:`EmbeddingRatingRegressor`: one zip, no pickle.

``save`` writes one zip archive holding exactly three members:

``skembedrec.json``
    Format name and version, the package version, the estimator parameters
    (``get_params``; side-feature DataFrames keep their index, column names and dtypes,
    ``RandomState`` its state), the fitted scalars (``rating_min_``, ``history_``, ...),
    the user and item vocabularies (ids keep their exact type: int, float, str, bytes,
    bool) and a manifest of the arrays below.
``arrays.npz``
    Named numeric arrays (``np.savez``): numeric id vocabularies with their exact dtype, the
    target scaler, and fitted attributes added by other parts of the package. It is read
    with ``allow_pickle=False``, so an object array in it is refused, never unpickled.
``model.keras``
    The Keras model (config and weights, optimizer state included). Its ``config.json`` is
    checked against an allowlist of the classes the package builds (a ``Lambda`` layer, the
    usual carrier of code in a Keras file, is refused) and then loaded with
    ``keras.saving.load_model(..., safe_mode=True)``.

Nothing in a file is ever unpickled or executed, and a file with any other member is
refused. Loading a file written by a newer format version, or a truncated or corrupted
file, raises a ``ValueError`` that names the file.

Extending the format. Fitted attributes other than the core ones (see ``_CORE``), for
instance a sparse matrix of training pairs or side features added later, are saved
generically when they are JSON scalars (None, bool, int, float, str), numeric numpy arrays
or scipy sparse CSR/CSC/COO matrices/arrays; they come back under the same name with the
same type. An attribute of any other type makes ``save`` raise a ``ValueError`` naming it,
so new state is never silently dropped: store it as one of those types, extend
``_save_extra``/``_load_extra``, or, for a cache rebuilt on demand, list it in
``_TRANSIENT``. A change that old readers cannot understand must bump ``FORMAT_VERSION``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import tempfile
import zipfile
from collections import defaultdict
from typing import Any

import keras
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ._encoding import IdEncoder, _learn

FORMAT_NAME = "skembedrec.EmbeddingRatingRegressor"
FORMAT_VERSION = 1

_META = "skembedrec.json"
_ARRAYS = "arrays.npz"
_MODEL = "model.keras"
_MEMBERS = frozenset({_META, _ARRAYS, _MODEL})
_KERAS_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5"})

# Fitted attributes written by dedicated code below; everything else goes through
# ``_save_extra``.
_CORE = frozenset(
    {
        "encoder_", "regressor_", "n_users_", "n_items_", "rating_min_", "rating_max_",
        "history_", "n_features_in_", "feature_names_in_",
    }
)
# Caches rebuilt on first use after loading; never written.
_TRANSIENT = frozenset({"_serve"})

# The Keras classes a skembedrec network may contain, by config ``module``. Anything else,
# ``Lambda`` first of all, is refused before Keras sees the config.
_ALLOWED_KERAS_CLASSES = {
    "keras": {"DTypePolicy", "FloatDTypePolicy"},
    "keras.layers": {
        "InputLayer", "Dense", "Dropout", "Concatenate", "Dot", "Add", "Multiply",
        "Flatten", "Reshape", "Embedding", "Activation", "BatchNormalization",
        "LayerNormalization",
    },
    "keras.src.models.functional": {"Functional"},
    "keras.initializers": {
        "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "RandomUniform",
        "RandomNormal", "TruncatedNormal", "Zeros", "Ones", "Constant",
    },
    "keras.optimizers": {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Nadam"},
    "keras.optimizers.schedules": {"ExponentialDecay", "CosineDecay", "InverseTimeDecay"},
    "keras.losses": {"MeanSquaredError", "MeanAbsoluteError", "Huber"},
    "keras.metrics": {"MeanSquaredError", "RootMeanSquaredError", "MeanAbsoluteError"},
    "keras.regularizers": {"L1", "L2", "L1L2"},
    "keras.constraints": {"MaxNorm", "NonNeg", "UnitNorm"},
    None: {"__keras_tensor__"},
}
_PACKAGE_PREFIX = "skembedrec>"


def save_estimator(estimator: Any, path: str | os.PathLike) -> None:
    """Write a fitted estimator to ``path`` in the safe format (see the module docstring).

    The file is written next to ``path`` and renamed into place, so an interrupted save
    never leaves a half-written file under ``path``.
    """
    check_is_fitted(estimator)
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": _package_version(),
        "keras_version": keras.__version__,
        "params": _encode_value(estimator.get_params(deep=False), "the parameters", arrays,
                                "params"),
        "fitted": _core_state(estimator, arrays),
        "extra": _extra_state(estimator, arrays),
    }
    meta["arrays"] = sorted(arrays)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, _MODEL)
        estimator.model_.save(model_path)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        directory = os.path.dirname(os.path.abspath(path))
        fd, partial = tempfile.mkstemp(prefix=".skembedrec-", suffix=".partial", dir=directory)
        try:
            with os.fdopen(fd, "wb") as out, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(_META, json.dumps(meta, allow_nan=False))
                zf.writestr(_ARRAYS, buffer.getvalue())
                zf.write(model_path, _MODEL)
            os.replace(partial, path)
        except BaseException:
            if os.path.exists(partial):
                os.remove(partial)
            raise


def load_estimator(cls: type, path: str | os.PathLike) -> Any:
    """Read an estimator written by :func:`save_estimator`; nothing is unpickled or run."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No skembedrec model file at {path!r}.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(
            f"{path!r} is not a skembedrec model file (not a zip archive written by "
            f"EmbeddingRatingRegressor.save; it may be truncated or corrupted): {exc}"
        ) from exc
    with archive:
        names = set(archive.namelist())
        if names != _MEMBERS:
            unexpected = sorted(names - _MEMBERS)
            missing = sorted(_MEMBERS - names)
            raise ValueError(
                f"Refusing to load {path!r}: it is not a file written by "
                f"EmbeddingRatingRegressor.save (unexpected member(s) {unexpected}, missing "
                f"member(s) {missing}). Nothing was loaded."
            )
        meta = _read_meta(archive, path)
        arrays = _read_arrays(archive, path, meta)
        model_bytes = _read_member(archive, _MODEL, path)
    model = _load_keras_model(model_bytes, path)
    try:
        return _rebuild(cls, meta, arrays, model)
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
        raise ValueError(
            f"{path!r} is corrupted or inconsistent; could not rebuild the estimator: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


# -- writing ------------------------------------------------------------------------------


def _package_version() -> str:
    from . import __version__  # late: this module is imported while the package initialises

    return __version__


def _core_state(estimator: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    regressor = estimator.regressor_
    scaler = regressor.transformer_
    for name in ("mean_", "var_", "scale_", "n_samples_seen_"):
        arrays[f"scaler/{name}"] = np.asarray(getattr(scaler, name))
    keras_regressor = regressor.regressor_
    # Array-valued KerasRegressor parameters (the training pairs of the implicit-feedback
    # layers) are restored exactly, so the inner regressor's parameters match the original.
    keras_array_params = []
    for name, value in keras_regressor.get_params(deep=False).items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            arrays[f"keras_params/{name}"] = value
            keras_array_params.append(name)
    names = getattr(estimator, "feature_names_in_", None)
    return {
        "keras_array_params": keras_array_params,
        "user_ids": _encode_ids(estimator.encoder_.user_ids, "user", arrays),
        "item_ids": _encode_ids(estimator.encoder_.item_ids, "item", arrays),
        "n_users_": int(estimator.n_users_),
        "n_items_": int(estimator.n_items_),
        "rating_min_": float(estimator.rating_min_),
        "rating_max_": float(estimator.rating_max_),
        "history_": _encode_value(dict(estimator.history_), "history_", arrays, "history"),
        "n_features_in_": int(estimator.n_features_in_),
        "feature_names_in_": None if names is None else _encode_value(
            list(names), "feature_names_in_", arrays, "feature_names"),
        "keras_seed": _encode_value(keras_regressor.random_state, "the Keras seed", arrays,
                                    "keras_seed"),
        "keras_history": _encode_value(dict(keras_regressor.history_), "the Keras history",
                                       arrays, "keras_history"),
    }


def _encode_ids(ids: np.ndarray, kind: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if ids.dtype.kind in "biuf":
        arrays[f"{kind}_ids"] = ids
        return {"array": f"{kind}_ids"}
    if ids.dtype.kind != "O":
        raise ValueError(f"Cannot save the {kind} ids: unsupported dtype {ids.dtype}.")
    if all(type(v) is str for v in ids):
        return {"str": list(ids)}
    for value in ids:
        if not isinstance(value, _SCALARS) or value is None:
            raise ValueError(
                f"Cannot save the {kind} id {value!r} of type {type(value).__name__}: the safe "
                "format stores ids of type int, float, str, bytes or bool only. Convert the "
                "ids (e.g. with .astype(str)) and fit again, or use joblib for trusted storage."
            )
    return {"tagged": [_tag_value(v, f"the {kind} ids") for v in ids]}


_SCALARS = (type(None), bool, np.bool_, int, np.integer, float, np.floating, str, bytes)
_CONTAINERS = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}


def _tag_value(value: Any, what: str) -> list:
    """A scalar (or list/tuple/set of them) as ``[type tag, JSON value]``; exact type back."""
    if value is None:
        return ["none", None]
    if isinstance(value, bool | np.bool_):  # before int: bool is an int subclass
        return ["bool", bool(value)]
    if isinstance(value, int | np.integer):
        return ["int", int(value)]
    if isinstance(value, float | np.floating):
        return ["float", float(value) if np.isfinite(value) else repr(float(value))]
    if isinstance(value, str):
        return ["str", str(value)]
    if isinstance(value, bytes):
        return ["bytes", base64.b64encode(value).decode("ascii")]
    for tag, kind in _CONTAINERS.items():
        if type(value) is kind:
            items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
            return [tag, [_tag_value(v, what) for v in items]]
    raise ValueError(
        f"Cannot save {what}: the value {value!r} of type {type(value).__name__} has no safe "
        "representation (None, bool, int, float, str, bytes, and lists/tuples/sets of them). "
        "Use joblib for trusted storage."
    )


def _untag_value(tagged: list) -> Any:
    tag, value = tagged
    if tag == "none":
        return None
    if tag == "float":
        return float(value)
    if tag in ("bool", "int", "str"):
        return {"bool": bool, "int": int, "str": str}[tag](value)
    if tag == "bytes":
        return base64.b64decode(value.encode("ascii"))
    return _CONTAINERS[tag](_untag_value(v) for v in value)


def _encode_column(values: Any, what: str, arrays: dict[str, np.ndarray], key: str) -> dict:
    """A Series or Index with its exact dtype: numpy dtypes in ``arrays``, the rest JSON."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        arrays[key] = np.asarray(values.codes if isinstance(values, pd.Index)
                                 else values.cat.codes)
        return {"category": _encode_column(dtype.categories, what, arrays, f"{key}/categories"),
                "codes": key, "ordered": bool(dtype.ordered)}
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        arrays[key] = values.to_numpy()
        return {"array": key}
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "biuf":
        missing = np.asarray(values.isna())
        arrays[key] = values.to_numpy(dtype=dtype.numpy_dtype, na_value=0)
        arrays[f"{key}/mask"] = missing
        return {"masked": str(dtype), "values": key, "mask": f"{key}/mask"}
    if isinstance(dtype, pd.StringDtype):
        objects = np.array(values.astype(object), dtype=object)  # a writable copy
        objects[np.asarray(values.isna())] = None
        na = "NA" if dtype.na_value is pd.NA else "nan"
        return {"objects": [_tag_value(v, what) for v in objects],
                "string": {"storage": dtype.storage, "na_value": na}}
    if not (isinstance(dtype, np.dtype) and dtype.kind == "O"):
        raise ValueError(f"Cannot save {what}: the dtype {dtype} has no safe representation.")
    return {"objects": [_tag_value(v, what) for v in np.asarray(values, dtype=object)]}


def _decode_column(spec: dict, arrays: dict[str, np.ndarray]) -> Any:
    if "category" in spec:
        categories = _decode_column(spec["category"], arrays)
        return pd.Categorical.from_codes(arrays[spec["codes"]], categories=categories,
                                         ordered=spec["ordered"])
    if "array" in spec:
        return arrays[spec["array"]]
    if "masked" in spec:
        values = pd.array(arrays[spec["values"]], dtype=spec["masked"])
        values[arrays[spec["mask"]]] = pd.NA
        return values
    values = np.empty(len(spec["objects"]), dtype=object)
    values[:] = [_untag_value(v) for v in spec["objects"]]
    if "string" in spec:
        na_value = pd.NA if spec["string"]["na_value"] == "NA" else np.nan
        return pd.array(values, dtype=pd.StringDtype(spec["string"]["storage"], na_value))
    return values


def _encode_frame(frame: pd.DataFrame, what: str, arrays: dict[str, np.ndarray],
                  key: str) -> dict:
    if not frame.columns.is_unique:
        raise ValueError(f"Cannot save {what}: its column names repeat.")
    return {
        "index": _encode_column(frame.index, f"the index of {what}", arrays, f"{key}/index"),
        "index_name": _encode_value(frame.index.name, what, arrays, f"{key}/index_name"),
        "columns": _encode_column(frame.columns, f"the columns of {what}", arrays,
                                  f"{key}/columns"),
        "columns_name": _encode_value(frame.columns.name, what, arrays, f"{key}/columns_name"),
        "data": [_encode_column(frame.iloc[:, i], f"column {c!r} of {what}", arrays,
                                f"{key}/{i}") for i, c in enumerate(frame.columns)],
    }


def _decode_frame(spec: dict, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    index = pd.Index(_decode_column(spec["index"], arrays),
                     name=_decode_value(spec["index_name"], arrays))
    columns = pd.Index(_decode_column(spec["columns"], arrays),
                       name=_decode_value(spec["columns_name"], arrays))
    data = {i: _decode_column(col, arrays) for i, col in enumerate(spec["data"])}
    frame = pd.DataFrame(data, index=index, copy=False)
    frame.columns = columns
    return frame


def _encode_value(value: Any, what: str, arrays: dict[str, np.ndarray], key: str) -> Any:
    """JSON for a parameter/attribute value; tuples, dicts and RandomStates are tagged."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return {"__float__": repr(float(value))}
        return float(value)
    if isinstance(value, list):
        return [_encode_value(v, what, arrays, f"{key}/{i}") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode_value(v, what, arrays, f"{key}/{i}")
                              for i, v in enumerate(value)]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode_value(v, what, arrays, f"{key}/{k}")
                             for k, v in value.items()}}
    if isinstance(value, pd.DataFrame):
        return {"__frame__": _encode_frame(value, f"{what} ({key})", arrays, key)}
    if isinstance(value, np.random.RandomState):
        name, keys, pos, has_gauss, cached = value.get_state()
        arrays[f"{key}/mt19937"] = keys  # type: ignore[assignment]
        return {"__random_state__": {"array": f"{key}/mt19937", "name": name, "pos": int(pos),
                                     "has_gauss": int(has_gauss), "cached": float(cached)}}
    raise ValueError(
        f"Cannot save {what}: the value {value!r} of type {type(value).__name__} (at "
        f"{key!r}) has no safe representation (JSON scalars, lists, tuples, dicts with str "
        "keys, DataFrames and RandomState only). Use joblib for trusted storage."
    )


def _extra_state(estimator: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    params = set(estimator.get_params(deep=False))
    extra = {}
    for name, value in vars(estimator).items():
        if name in params or name in _CORE or name in _TRANSIENT:
            continue
        extra[name] = _save_extra(name, value, arrays)
    return extra


def _save_extra(name: str, value: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if value is None or isinstance(value, bool | int | float | str | np.generic):
        return {"json": _encode_value(value, name, arrays, f"extra/{name}")}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        arrays[f"extra/{name}"] = value
        return {"array": f"extra/{name}"}
    sparse_format = _sparse_format(value)
    if sparse_format in ("csr", "csc"):
        for part in ("data", "indices", "indptr"):
            arrays[f"extra/{name}/{part}"] = getattr(value, part)
        return {"sparse": sparse_format, "kind": _sparse_kind(value), "shape": list(value.shape)}
    if sparse_format == "coo":
        arrays[f"extra/{name}/data"] = value.data
        arrays[f"extra/{name}/row"] = value.row
        arrays[f"extra/{name}/col"] = value.col
        return {"sparse": "coo", "kind": _sparse_kind(value), "shape": list(value.shape)}
    raise ValueError(
        f"Cannot save the fitted attribute {name!r} of type {type(value).__name__}: the safe "
        "format stores JSON scalars, numeric numpy arrays and scipy sparse CSR/CSC/COO "
        "matrices. Extend skembedrec/_persistence.py (_save_extra/_load_extra, or _TRANSIENT "
        "for a cache), or use joblib for trusted storage."
    )


def _sparse_format(value: Any) -> str | None:
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - scipy is a scikit-learn dependency
        return None
    return value.format if sp.issparse(value) else None


def _sparse_kind(value: Any) -> str:
    import scipy.sparse as sp

    return "matrix" if sp.isspmatrix(value) else "array"


# -- reading ------------------------------------------------------------------------------


def _read_member(archive: zipfile.ZipFile, name: str, path: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{path!r} is truncated or corrupted: its member {name!r} cannot be read ({exc})."
        ) from exc
    except Exception as exc:  # zlib.error and friends
        raise ValueError(
            f"{path!r} is truncated or corrupted: its member {name!r} cannot be read "
            f"({type(exc).__name__}: {exc})."
        ) from exc


def _read_meta(archive: zipfile.ZipFile, path: str) -> dict[str, Any]:
    raw = _read_member(archive, _META, path)
    try:
        meta = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path!r} is corrupted: {_META} is not valid JSON ({exc}).") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ValueError(
            f"{path!r} is not a skembedrec model file: its format is "
            f"{meta.get('format') if isinstance(meta, dict) else None!r}, expected "
            f"{FORMAT_NAME!r}."
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{path!r} has an unknown format version {version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written by skembedrec {meta.get('package_version')!r} in format "
            f"version {version}; this skembedrec ({_package_version()}) reads format versions "
            f"up to {FORMAT_VERSION}. Upgrade skembedrec to load it."
        )
    return meta


def _read_arrays(archive: zipfile.ZipFile, path: str, meta: dict) -> dict[str, np.ndarray]:
    raw = _read_member(archive, _ARRAYS, path)
    arrays = {}
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            for name in npz.files:
                arrays[name] = npz[name]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ValueError(
                f"Refusing to load {path!r}: {_ARRAYS} holds pickled Python objects (an object "
                "array), which could run code when unpickled; files written by "
                "EmbeddingRatingRegressor.save never do. Nothing was unpickled."
            ) from exc
        raise ValueError(f"{path!r} is corrupted: {_ARRAYS} cannot be read ({exc}).") from exc
    except Exception as exc:  # zipfile/zlib/EOF errors inside the npz
        raise ValueError(
            f"{path!r} is corrupted: {_ARRAYS} cannot be read ({type(exc).__name__}: {exc})."
        ) from exc
    if sorted(arrays) != meta.get("arrays"):
        raise ValueError(
            f"{path!r} is corrupted: {_ARRAYS} holds {sorted(arrays)}, the manifest lists "
            f"{meta.get('arrays')}."
        )
    return arrays


def _load_keras_model(model_bytes: bytes, path: str) -> keras.Model:
    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as inner:
            names = set(inner.namelist())
            config = json.loads(inner.read("config.json"))
    except Exception as exc:
        raise ValueError(
            f"{path!r} is corrupted: its Keras model cannot be read ({type(exc).__name__}: "
            f"{exc})."
        ) from exc
    if names != _KERAS_MEMBERS:
        raise ValueError(
            f"Refusing to load {path!r}: its Keras model has the members {sorted(names)}, "
            f"expected {sorted(_KERAS_MEMBERS)}."
        )
    _check_keras_config(config, path)
    from . import _network  # noqa: F401  registers the custom layers before loading

    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, _MODEL)
        with open(model_path, "wb") as out:
            out.write(model_bytes)
        try:
            return keras.saving.load_model(model_path, compile=True, safe_mode=True)
        except Exception as exc:
            raise ValueError(
                f"Could not load the Keras model stored in {path!r} (corrupted, or written by "
                f"an incompatible Keras): {type(exc).__name__}: {exc}"
            ) from exc


def _check_keras_config(config: Any, path: str) -> None:
    """Refuse any class a skembedrec network never contains, before Keras reads the config."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if "class_name" in node or "module" in node:
            module = node.get("module")
            class_name = node.get("class_name")
            registered = node.get("registered_name")
            if not (
                class_name in _ALLOWED_KERAS_CLASSES.get(module, ())
                or _is_package_class(module, class_name, registered)
            ):
                raise ValueError(
                    f"Refusing to load {path!r}: its Keras model config contains the class "
                    f"{class_name!r} (module {module!r}), which skembedrec networks never use"
                    + (" (a Lambda layer carries arbitrary Python code)"
                       if class_name == "Lambda" else "")
                    + ". Nothing was loaded or run."
                )
        if node.get("function_type") == "lambda" or "__lambda__" in node.values():
            raise ValueError(
                f"Refusing to load {path!r}: its Keras model config contains a serialised "
                "Python lambda. Nothing was loaded or run."
            )
        stack.extend(node.values())


def _is_package_class(module: Any, class_name: Any, registered: Any) -> bool:
    if not (isinstance(module, str) and module.startswith("skembedrec.")):
        return False
    if registered != f"{_PACKAGE_PREFIX}{class_name}":
        return False
    cls = keras.saving.get_registered_object(registered)
    return cls is not None and getattr(cls, "__module__", None) == module


def _decode_value(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode_value(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(_decode_value(v, arrays) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode_value(v, arrays) for k, v in value["__dict__"].items()}
    if "__float__" in value:
        return float(value["__float__"])
    if "__frame__" in value:
        return _decode_frame(value["__frame__"], arrays)
    if "__random_state__" in value:
        state = value["__random_state__"]
        rng = np.random.RandomState()
        rng.set_state((state["name"], arrays[state["array"]], state["pos"], state["has_gauss"],
                       state["cached"]))
        return rng
    raise ValueError(f"unknown tagged value {sorted(value)}")


def _decode_ids(spec: dict, arrays: dict[str, np.ndarray]) -> np.ndarray:
    if "array" in spec:
        return arrays[spec["array"]]
    if "str" in spec:
        values = spec["str"]
    else:
        values = [_untag_value(v) for v in spec["tagged"]]
    ids = np.empty(len(values), dtype=object)
    ids[:] = values
    return ids


def _rebuild_encoder(user_ids: np.ndarray, item_ids: np.ndarray) -> IdEncoder:
    # Codes are positions in the vocabularies (append-only after partial_fit, so not always
    # sorted): the encoder gets them back verbatim, after the checks fit would have made.
    for kind, ids in (("user", user_ids), ("item", item_ids)):
        if len(ids) == 0 or not pd.Index(ids).is_unique:
            raise ValueError(f"the stored {kind} ids are empty or repeat an id")
        _learn(ids)  # refuses a column mixing strings and numbers
    encoder = IdEncoder()
    encoder.vocabulary_ = [user_ids, item_ids]
    encoder._indexes = None
    return encoder


def _rebuild(cls: type, meta: dict, arrays: dict[str, np.ndarray], model: keras.Model) -> Any:
    params = _decode_value(meta["params"], arrays)
    if not isinstance(params, dict):
        raise ValueError("the parameters are not a mapping")
    random_state = params.pop("random_state", None)
    unknown = sorted(set(params) - set(cls._get_param_names()))  # type: ignore[attr-defined]
    if unknown:
        raise ValueError(
            f"the file sets parameter(s) {unknown} that this {cls.__name__} does not have"
        )
    estimator = cls(**params)
    estimator._validate_params()
    fitted = meta["fitted"]
    encoder = _rebuild_encoder(_decode_ids(fitted["user_ids"], arrays),
                               _decode_ids(fitted["item_ids"], arrays))
    n_users, n_items = encoder.n_users, encoder.n_items
    if (n_users, n_items) != (fitted["n_users_"], fitted["n_items_"]):
        raise ValueError("the id vocabularies do not match n_users_/n_items_")
    for layer, n in (("user_embedding", n_users), ("item_embedding", n_items)):
        if model.get_layer(layer).input_dim != n + 1:
            raise ValueError(f"the Keras layer {layer!r} does not match the {n} stored ids")

    # The regressor is built exactly as fit builds it, then given the fitted parts. Its
    # seed comes from the file: deriving it again would draw from a RandomState parameter.
    regressor = estimator._make_regressor(n_users, n_items)
    regressor.regressor.set_params(
        random_state=_decode_value(fitted["keras_seed"], arrays),
        **{name: arrays[f"keras_params/{name}"] for name in fitted["keras_array_params"]},
    )
    regressor.transformer_ = clone(regressor.transformer)
    for name in ("mean_", "var_", "scale_"):
        setattr(regressor.transformer_, name, arrays[f"scaler/{name}"])
    regressor.transformer_.n_samples_seen_ = arrays["scaler/n_samples_seen_"][()]
    regressor.transformer_.n_features_in_ = 1
    regressor._training_dim = 1
    regressor.regressor_ = clone(regressor.regressor)
    n_samples = int(regressor.transformer_.n_samples_seen_)
    _mark_keras_regressor_fitted(
        regressor.regressor_, model, _decode_value(fitted["keras_history"], arrays), n_samples
    )

    estimator.set_params(random_state=random_state)
    estimator.encoder_ = encoder
    estimator.regressor_ = regressor
    estimator.n_users_ = n_users
    estimator.n_items_ = n_items
    estimator.rating_min_ = float(fitted["rating_min_"])
    estimator.rating_max_ = float(fitted["rating_max_"])
    estimator.history_ = _decode_value(fitted["history_"], arrays)
    estimator.n_features_in_ = int(fitted["n_features_in_"])
    if fitted["feature_names_in_"] is not None:
        names = _decode_value(fitted["feature_names_in_"], arrays)
        estimator.feature_names_in_ = np.array(names, dtype=object)
    for name, spec in meta["extra"].items():
        setattr(estimator, name, _load_extra(spec, name, arrays))
    estimator._serve = None
    return estimator


def _mark_keras_regressor_fitted(keras_regressor: Any, model: keras.Model, history: dict,
                                 n_samples: int) -> None:
    """Give an unfitted scikeras ``KerasRegressor`` a loaded model and the fitted metadata.

    Mirrors scikeras 0.13 ``BaseWrapper._initialize`` without building a new model: the
    metadata comes from scikeras' own validation and encoders run on one dummy row with the
    dtypes fit sees (int32 codes, float64 standardised ratings).
    """
    dummy_X = np.zeros((1, 2), dtype=np.int32)
    dummy_y = np.array([0.5])
    keras_regressor._random_state = keras_regressor.random_state
    dummy_X, dummy_y = keras_regressor._validate_data(dummy_X, dummy_y, reset=True)
    keras_regressor.X_shape_ = (n_samples, 2)
    keras_regressor.target_encoder_ = keras_regressor.target_encoder.fit(dummy_y)
    vars(keras_regressor).update(getattr(keras_regressor.target_encoder_, "get_metadata",
                                         dict)())
    keras_regressor.feature_encoder_ = keras_regressor.feature_encoder.fit(dummy_X)
    keras_regressor.model_ = model
    keras_regressor._initialize_callbacks()
    keras_regressor.history_ = defaultdict(list, history)


def _load_extra(spec: dict, name: str, arrays: dict[str, np.ndarray]) -> Any:
    if "json" in spec:
        return _decode_value(spec["json"], arrays)
    if "array" in spec:
        return arrays[spec["array"]]
    if "sparse" in spec:
        import scipy.sparse as sp

        shape = tuple(spec["shape"])
        kind = spec["kind"]
        if spec["sparse"] == "coo":
            make = sp.coo_matrix if kind == "matrix" else sp.coo_array
            parts = (arrays[f"extra/{name}/data"],
                     (arrays[f"extra/{name}/row"], arrays[f"extra/{name}/col"]))
            return make(parts, shape=shape)
        makers = {("csr", "matrix"): sp.csr_matrix, ("csr", "array"): sp.csr_array,
                  ("csc", "matrix"): sp.csc_matrix, ("csc", "array"): sp.csc_array}
        make = makers[spec["sparse"], kind]
        parts = tuple(  # type: ignore[assignment]
            arrays[f"extra/{name}/{p}"] for p in ("data", "indices", "indptr")
        )
        return make(parts, shape=shape)
    raise ValueError(f"unknown saved form for the attribute {name!r}")
