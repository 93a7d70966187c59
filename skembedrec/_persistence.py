"""The safe file format of a fitted :class:`EmbeddingRatingRegressor`: one zip, no pickle.

``save`` writes one zip archive holding exactly three members:

``skembedrec.json``
    Format name and version, the package and Keras versions, the estimator parameters
    (``get_params``; side-feature DataFrames keep their index, column names and dtypes,
    ``RandomState`` its state), the user and item vocabularies (ids keep their exact type:
    int, float, str, bytes, bool), the fitted attributes and the inner regressor's settings
    (network configuration, target scaler), all through one value codec
    (:mod:`skembedrec._codec`), and the list of the arrays below.
``arrays.npz``
    Named numeric arrays: numeric id vocabularies with their exact dtype, the target
    scaler, ``seen_`` and other array-valued attributes. Read from each array's header with
    the shape checked against the bytes present; an object array (a pickle) is refused.
``model.keras``
    The Keras model (config and weights, optimizer state included), loaded with
    ``keras.saving.load_model(..., safe_mode=True)`` after its config is checked against an
    allow-list of the classes the package builds and every layer size is checked against
    the vocabularies stored here (:mod:`skembedrec._keras_file`).

Nothing in a file is ever unpickled or executed, a file with any other member is refused,
and reading is bounded (:class:`skembedrec._archive.Limits`). Loading a file written by a
newer format version, or a truncated, corrupted or oversized file, raises a ``ValueError``
that names the file.

Compatibility: a release reads every format version from 2 up to its own
(``FORMAT_VERSION``); a change that older readers cannot understand bumps it. Format 3
stores a boolean sparse array whose values are all True (``seen_``) without its values,
rebuilt at load (:mod:`skembedrec._codec`); format 2 files are read as before. Format 1
(skembedrec 0.1.0 before this layout) is not read: load such a file with that release and
save it again after upgrading, or refit.

Extending the format: fitted attributes other than the core ones (``encoder_``,
``regressor_``, handled by the estimator and here) are saved generically when the codec
can represent them; any other value makes ``save`` raise a ``ValueError`` naming it, so new
state is never silently dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd

from ._archive import (
    DEFAULT_LIMITS,
    Limits,
    ZipReader,
    npz_bytes,
    read_json,
    read_npz,
    write_zip,
)
from ._codec import Encoder, decode
from ._encoding import IdEncoder
from ._features import feature_tables
from ._keras_file import load_model_bytes, model_bytes
from ._network import NetworkConfig
from ._validation import column_names

FORMAT_NAME = "skembedrec.EmbeddingRatingRegressor"
FORMAT_VERSION = 3
OLDEST_FORMAT_VERSION = 2

_META = "skembedrec.json"
_ARRAYS = "arrays.npz"
_MODEL = "model.keras"
_MEMBERS = frozenset({_META, _ARRAYS, _MODEL})
_ID_TYPES = (bool, np.bool_, int, np.integer, float, np.floating, str, bytes)


@dataclass
class LoadedState:
    """What a model file holds, as plain values for the estimator to assemble."""

    params: dict[str, Any]
    encoder: IdEncoder
    fitted: dict[str, Any]
    regressor: dict[str, Any]
    model: keras.Model


def save_state(path: str | os.PathLike, *, params: dict[str, Any], encoder: IdEncoder,
               fitted: dict[str, Any], regressor: dict[str, Any], model: keras.Model) -> None:
    """Write a fitted estimator's state to ``path`` (see the module docstring).

    ``params`` are the estimator parameters, ``fitted`` its fitted attributes other than
    the encoder and the regressor, ``regressor`` the inner regressor's settings as plain
    values (``_keras.fitted_regressor_state``) and ``model`` its Keras model. An existing
    file at ``path`` is replaced once the new one is complete; a directory is refused
    (``IsADirectoryError``).
    """
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"Cannot save to {os.fspath(path)!r}: it is a directory. save writes one file; "
            f"pass a file path such as {os.path.join(os.fspath(path), 'model.skembedrec')!r}.")
    encoder_ = Encoder()
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": _package_version(),
        "keras_version": keras.__version__,
        "params": encoder_.encode(dict(params), "the parameters", "params"),
        "ids": {kind: _encode_ids(ids, kind, encoder_)
                for kind, ids in (("user", encoder.user_ids), ("item", encoder.item_ids))},
        "fitted": {name: _encode_attribute(name, value, encoder_)
                   for name, value in fitted.items()},
        "regressor": encoder_.encode(dict(regressor), "the inner regressor", "regressor"),
    }
    meta["arrays"] = sorted(encoder_.arrays)
    members = {_ARRAYS: npz_bytes(encoder_.arrays), _MODEL: model_bytes(model)}
    # Each member is internally consistent on its own: the digests tie them together, so
    # members swapped or replaced between files are refused rather than mixed.
    meta["sha256"] = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    write_zip(os.fspath(path), {_META: json.dumps(meta, allow_nan=False).encode(), **members})


def load_state(path: str | os.PathLike, *, defaults: dict[str, Any],
               constraints: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> LoadedState:
    """Read a file written by :func:`save_state` within ``limits``; nothing is unpickled
    or run. Every problem is a ``ValueError`` naming the file.

    ``defaults`` are the estimator's default parameters (a file may omit any) and
    ``constraints`` its ``_parameter_constraints``. Everything the manifest holds is
    checked (types, ranges, consistency between the parts) before the Keras model is
    built; the returned ``params`` are complete.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No skembedrec model file at {path!r}.")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory, not a skembedrec model file.")
    with ZipReader(path, path, _MEMBERS, limits) as reader:
        meta = _check_meta(read_json(reader.read(_META), path, _META, limits), path)
        # Each member is checked against its digest over exactly the bytes used (that check
        # stands in for the zip's CRC of a stored member).
        members = {name: reader.read(name, sha256=_digest(meta["sha256"], name, path))
                   for name in (_ARRAYS, _MODEL)}
    arrays = read_npz(members.pop(_ARRAYS), path, _ARRAYS, limits, verified=True)
    if sorted(arrays) != meta.get("arrays"):
        raise ValueError(f"{path!r} is corrupted: {_ARRAYS} holds {sorted(arrays)[:10]}, "
                         f"the manifest lists {str(meta.get('arrays'))[:200]}.")
    try:
        encoder = _rebuild_encoder(_decode_ids(_mapping(meta["ids"], "ids")["user"], arrays),
                                   _decode_ids(meta["ids"]["item"], arrays))
        params = _check_params(decode(meta["params"], arrays), defaults, constraints)
        fitted = {str(name): decode(value, arrays)
                  for name, value in _mapping(meta["fitted"], "the fitted attributes").items()}
        regressor = _check_regressor(decode(meta["regressor"], arrays), encoder, limits)
        fitted = _check_fitted(fitted, params, encoder, regressor)
    except (LookupError, TypeError, AttributeError, ValueError, OverflowError,
            ImportError) as exc:  # ImportError: a pandas dtype naming a missing backend
        raise _inconsistent(path, exc) from exc
    id_rows = (encoder.n_users + 1, encoder.n_items + 1)
    model = load_model_bytes(members.pop(_MODEL), path, id_rows=id_rows, limits=limits,
                             input_width=fitted["n_features_in_"], verified=True)
    return LoadedState(params=params, encoder=encoder, fitted=fitted, regressor=regressor,
                       model=model)


def _digest(digests: Any, name: str, path: str) -> str:
    """The SHA-256 digest (hex) the manifest records for the member ``name``."""
    digest = digests.get(name) if isinstance(digests, dict) else None
    if not isinstance(digest, str) or len(digest) != 64:
        raise ValueError(f"{path!r} is corrupted: {_META} records no SHA-256 digest for the "
                         f"member {name!r}.")
    return digest


def inconsistent(path: str | os.PathLike, exc: BaseException) -> ValueError:
    """The ValueError for a file whose parts do not fit together."""
    return _inconsistent(os.fspath(path), exc)


def _inconsistent(path: str, exc: BaseException) -> ValueError:
    return ValueError(f"{path!r} is corrupted or inconsistent; could not rebuild the "
                      f"estimator: {type(exc).__name__}: {exc}")


def _package_version() -> str:
    from . import __version__  # late: this module is imported while the package initialises

    return __version__


def _check_meta(meta: Any, path: str) -> dict[str, Any]:
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
            f"{OLDEST_FORMAT_VERSION} up to {FORMAT_VERSION}. Upgrade skembedrec to load it."
        )
    if version < OLDEST_FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written by skembedrec {meta.get('package_version')!r} in format "
            f"version {version}, which this skembedrec ({_package_version()}) no longer reads "
            f"(it reads versions {OLDEST_FORMAT_VERSION} up to {FORMAT_VERSION}); refit the "
            "model, or load it with that release and save it as joblib for trusted storage."
        )
    missing = sorted({"params", "ids", "fitted", "regressor", "arrays", "sha256"} - set(meta))
    if missing:
        raise ValueError(f"{path!r} is corrupted: {_META} lacks {missing}.")
    return meta


def _encode_ids(ids: np.ndarray, kind: str, encoder: Encoder) -> Any:
    if ids.dtype.kind == "O":
        for value in ids:
            if not isinstance(value, _ID_TYPES):
                raise ValueError(
                    f"Cannot save the {kind} id {value!r} of type {type(value).__name__}: the "
                    "safe format stores ids of type int, float, str, bytes or bool only. "
                    "Convert the ids (e.g. with .astype(str)) and fit again, or use joblib "
                    "for trusted storage."
                )
    elif ids.dtype.kind not in "biuf":
        raise ValueError(f"Cannot save the {kind} ids: unsupported dtype {ids.dtype}.")
    return encoder.encode(ids, f"the {kind} ids", f"{kind}_ids")


def _decode_ids(spec: Any, arrays: dict[str, np.ndarray]) -> np.ndarray:
    ids = decode(spec, arrays)
    if not isinstance(ids, np.ndarray) or ids.ndim != 1:
        raise ValueError("the stored ids are not a 1-D array")
    if ids.dtype.kind == "O" and not all(isinstance(v, _ID_TYPES) for v in ids):
        raise ValueError("the stored ids hold values that are not ids")
    return ids


def _encode_attribute(name: str, value: Any, encoder: Encoder) -> Any:
    try:
        return encoder.encode(value, f"the fitted attribute {name!r}", f"fitted/{name}")
    except ValueError as exc:
        raise ValueError(
            f"Cannot save the fitted attribute {name!r} of type {type(value).__name__}: {exc} "
            "Store it as a value the codec supports (skembedrec/_codec.py), or use joblib for "
            "trusted storage."
        ) from exc


def _rebuild_encoder(user_ids: np.ndarray, item_ids: np.ndarray) -> IdEncoder:
    # Codes are positions in the vocabularies (append-only after partial_fit, so not always
    # sorted): the encoder gets them back verbatim, after the checks fit would have made.
    for kind, ids in (("user", user_ids), ("item", item_ids)):
        if len(ids) == 0 or not pd.Index(ids).is_unique:
            raise ValueError(f"the stored {kind} ids are empty or repeat an id")
        if ids.dtype.kind not in "biuf":  # a numeric column cannot mix strings and numbers
            IdEncoder().fit(ids, ids[:1])  # which this refuses
    return IdEncoder.from_vocabulary(user_ids, item_ids)



# -- checking the manifest -------------------------------------------------------------------
# Each check raises a ValueError saying which value is wrong; load_state adds the file.

_CALLER = FORMAT_NAME.rsplit(".", 1)[-1]
# Fitted attributes every format-2 file holds...
_FITTED_CORE = ("n_features_in_", "n_users_", "n_items_", "rating_min_", "rating_max_",
                "history_", "n_iter_", "best_epoch_", "seen_")
# ... and the resolved settings written since they exist; a file without any of them
# (written before) gets them from its network and regressor settings.
_FITTED_RESOLVED = ("batch_size_", "learning_rate_", "n_estimators_", "implicit_", "l2_",
                    "epochs_", "time_max_")
_REGRESSOR_KEYS = frozenset({"network", "distribute", "epochs", "batch_size", "seed",
                             "verbose", "n_samples", "scaler"})
_SCALER_KEYS = frozenset({"mean_", "var_", "scale_", "n_samples_seen_"})
_INT64 = 2**63


def _mapping(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} are not a mapping but {type(value).__name__}")
    return value


def _int(value: Any, what: str, low: int = 0, high: int = _INT64 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{what} is {_short(value)}, not an integer")
    if not low <= value <= high:
        raise ValueError(f"{what} is {value}, outside {low}..{high}")
    return int(value)


def _real(value: Any, what: str, low: float = -math.inf, high: float = math.inf, *,
          low_open: bool = False, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{what} is {_short(value)}, not a number")
    number = float(value)
    if math.isnan(number):
        if finite:
            raise ValueError(f"{what} is NaN")
        return number
    if (finite and math.isinf(number)) or not low <= number <= high or (
            low_open and number == low):
        raise ValueError(f"{what} is {number}, outside {'(' if low_open else '['}{low}, "
                         f"{high}]")
    return number


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{what} is {_short(value)}, not a bool")
    return bool(value)


def _short(value: Any) -> str:
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def _check_params(params: Any, defaults: dict[str, Any],
                  constraints: dict[str, Any]) -> dict[str, Any]:
    """The complete parameters: the file's over ``defaults``, checked as ``fit`` checks."""
    from sklearn.utils._param_validation import validate_parameter_constraints

    params = _mapping(params, "the parameters")
    unknown = sorted(map(str, set(params) - set(defaults)))
    if unknown:
        raise ValueError(f"the file sets parameter(s) {unknown[:10]} that this estimator does "
                         "not have")
    params = {**defaults, **params}
    validate_parameter_constraints(constraints, params, caller_name=_CALLER)
    # The feature tables as predict checks them (ids present, unique; some columns).
    feature_tables(params["user_features"], params["item_features"], params["user_col"],
                   params["item_col"])
    return params


def _check_regressor(regressor: Any, encoder: IdEncoder, limits: Limits) -> dict[str, Any]:
    """The inner regressor's settings (``_keras.fitted_regressor_state``), checked."""
    regressor = _mapping(regressor, "the inner regressor's settings")
    missing = sorted(_REGRESSOR_KEYS - set(regressor))
    if missing or len(regressor) != len(_REGRESSOR_KEYS):
        raise ValueError(f"the inner regressor's settings lack {missing} or hold unknown keys")
    _check_network(_mapping(regressor["network"], "the network settings"), encoder, limits)
    if regressor["distribute"] not in (None, "mirrored"):
        raise ValueError(f"the regressor's distribute is {_short(regressor['distribute'])}")
    _int(regressor["epochs"], "the regressor's epochs")
    _int(regressor["batch_size"], "the regressor's batch_size", 1)
    if regressor["seed"] is not None:
        _int(regressor["seed"], "the regressor's seed", -_INT64)
    if not isinstance(regressor["verbose"], bool):
        _int(regressor["verbose"], "the regressor's verbose")
    _int(regressor["n_samples"], "the regressor's n_samples", 1)
    scaler = _mapping(regressor["scaler"], "the target scaler's attributes")
    if set(scaler) != _SCALER_KEYS:
        raise ValueError(f"the target scaler holds {sorted(scaler)}, expected "
                         f"{sorted(_SCALER_KEYS)}")
    for name in ("mean_", "var_", "scale_", "n_samples_seen_"):
        value = scaler[name]
        shape = () if name == "n_samples_seen_" else (1,)  # as StandardScaler sets them
        if not isinstance(value, np.ndarray) or value.shape != shape or (
                value.dtype.kind not in "iuf"):
            raise ValueError(f"the target scaler's {name} is not one number")
        _real(value.ravel()[0], f"the target scaler's {name}",
              low=0 if name != "mean_" else -math.inf, low_open=name == "scale_")
    return regressor


def _check_network(network: dict, encoder: IdEncoder, limits: Limits) -> None:
    names = {field.name for field in dataclasses.fields(NetworkConfig)}
    unknown = sorted(map(str, set(network) - names))
    if unknown or not {"n_users", "n_items"} <= set(network):
        raise ValueError(f"the network settings hold unknown keys {unknown[:10]} or lack "
                         "n_users/n_items")
    if (network["n_users"], network["n_items"]) != (encoder.n_users, encoder.n_items):
        raise ValueError("the network's vocabulary sizes do not match the stored ids")
    width = limits.width
    checks = {
        "n_factors": lambda v, w: _int(v, w, 1, width),
        "dropout": lambda v, w: _real(v, w, 0, 1),
        "embedding_dropout": lambda v, w: _real(v, w, 0, 1),
        "n_estimators": lambda v, w: _int(v, w, 1, width),
        "l2": lambda v, w: _real(v, w, 0),
        "time_l2": lambda v, w: _real(v, w, 0),
        "learning_rate": lambda v, w: _real(v, w, 0, low_open=True),
        "n_user_features": lambda v, w: _int(v, w, 0, width),
        "n_item_features": lambda v, w: _int(v, w, 0, width),
    }
    for name, value in network.items():
        what = f"the network's {name}"
        if name in checks:
            checks[name](value, what)
        elif name in ("use_bias", "dot_product", "implicit", "jit_compile"):
            _bool(value, what)
        elif name == "hidden_units":
            if not isinstance(value, tuple | list):
                raise ValueError(f"{what} is {_short(value)}, not a tuple")
            for units in value:
                _int(units, what, 1, width)
        elif name == "time_grid" and value is not None:
            grid = _mapping(value, what)
            if set(grid) != {"first_day", "last_day", "days_per_bin"}:
                raise ValueError(f"{what} holds {sorted(map(str, grid))}")
            first = _int(grid["first_day"], f"{what}'s first_day", -(2**31), 2**31 - 1)
            _int(grid["last_day"], f"{what}'s last_day", first, 2**31 - 1)
            _int(grid["days_per_bin"], f"{what}'s days_per_bin", 1, 2**31 - 1)


def _check_fitted(fitted: dict[str, Any], params: dict[str, Any], encoder: IdEncoder,
                  regressor: dict[str, Any]) -> dict[str, Any]:
    """The fitted attributes, each present, typed, in range and consistent with the rest."""
    fitted = dict(fitted)
    missing = [name for name in _FITTED_CORE if name not in fitted]
    resolved = [name for name in _FITTED_RESOLVED if name in fitted]
    if not resolved:
        network = regressor["network"]
        fitted.update(batch_size_=regressor["batch_size"], epochs_=regressor["epochs"],
                      learning_rate_=network.get("learning_rate", 0.01),
                      n_estimators_=network.get("n_estimators", 1),
                      implicit_=network.get("implicit", False), l2_=network.get("l2", 0.0),
                      time_max_=None)
    else:
        missing += [name for name in _FITTED_RESOLVED if name not in fitted]
    if missing:
        raise ValueError(f"the fitted attribute(s) {missing} are missing")
    columns = column_names(params["user_col"], params["item_col"], params["time_col"])
    _int(fitted["n_features_in_"], "n_features_in_", len(columns), len(columns))
    if "feature_names_in_" in fitted:
        names = fitted["feature_names_in_"]
        if not isinstance(names, np.ndarray) or names.ndim != 1 or list(names) != columns:
            raise ValueError(f"feature_names_in_ is {_short(names)}, not the columns {columns} "
                             "of user_col, item_col and time_col")
    _int(fitted["n_users_"], "n_users_", encoder.n_users, encoder.n_users)
    _int(fitted["n_items_"], "n_items_", encoder.n_items, encoder.n_items)
    low = _real(fitted["rating_min_"], "rating_min_")
    _real(fitted["rating_max_"], "rating_max_", low)
    n_iter = _int(fitted["n_iter_"], "n_iter_")
    history = _mapping(fitted["history_"], "history_")
    for name, values in history.items():
        if not isinstance(values, list):
            raise ValueError(f"history_[{name!r}] is {_short(values)}, not a list")
        for value in values:
            _real(value, f"a value of history_[{name!r}]", finite=False)
    if len(history.get("loss", ())) != n_iter:
        raise ValueError(f"history_ holds {len(history.get('loss', ()))} losses, n_iter_ is "
                         f"{n_iter}")
    if fitted["best_epoch_"] is not None:
        _int(fitted["best_epoch_"], "best_epoch_", 0, n_iter)
    _check_seen(fitted["seen_"], encoder)
    _int(fitted["batch_size_"], "batch_size_", 1)
    _int(fitted["epochs_"], "epochs_")
    _real(fitted["learning_rate_"], "learning_rate_", 0, low_open=True)
    _real(fitted["l2_"], "l2_", 0)
    _bool(fitted["implicit_"], "implicit_")
    n_estimators = regressor["network"].get("n_estimators", 1)
    _int(fitted["n_estimators_"], "n_estimators_", n_estimators, n_estimators)
    time_max = fitted["time_max_"]
    if (time_max is None) != (params["time_col"] is None):
        raise ValueError(f"time_max_ is {_short(time_max)} but time_col is "
                         f"{params['time_col']!r}")
    if time_max is not None:
        _real(time_max, "time_max_")
    return fitted


def _check_seen(seen: Any, encoder: IdEncoder) -> None:
    import scipy.sparse as sp

    shape = (encoder.n_users, encoder.n_items)
    if not sp.issparse(seen) or seen.format != "csr" or seen.shape != shape:
        raise ValueError(f"seen_ is {_short(seen)}, not a CSR matrix of shape {shape}")
    seen.check_format(full_check=True)
