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
(``FORMAT_VERSION``); a change that older readers cannot understand bumps it. Format 1
(skembedrec 0.1.0 before this layout) is not read: load such a file with that release and
save it again after upgrading, or refit.

Extending the format: fitted attributes other than the core ones (``encoder_``,
``regressor_``, handled by the estimator and here) are saved generically when the codec
can represent them; any other value makes ``save`` raise a ``ValueError`` naming it, so new
state is never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd

from ._archive import DEFAULT_LIMITS, Limits, npz_bytes, read_json, read_npz, read_zip, write_zip
from ._codec import Encoder, decode
from ._encoding import IdEncoder
from ._keras_file import load_model_bytes, model_bytes

FORMAT_NAME = "skembedrec.EmbeddingRatingRegressor"
FORMAT_VERSION = 2
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
    values (``_keras.fitted_regressor_state``) and ``model`` its Keras model.
    """
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


def load_state(path: str | os.PathLike, *, param_names: list[str],
               limits: Limits = DEFAULT_LIMITS) -> LoadedState:
    """Read a file written by :func:`save_state` within ``limits``; nothing is unpickled
    or run. Every problem is a ``ValueError`` naming the file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No skembedrec model file at {path!r}.")
    members = read_zip(path, path, _MEMBERS, limits)
    meta = _check_meta(read_json(members[_META], path, _META, limits), path)
    digests = meta["sha256"]
    for name in (_ARRAYS, _MODEL):
        if not isinstance(digests, dict) or digests.get(name) != hashlib.sha256(
                members[name]).hexdigest():
            raise ValueError(f"{path!r} is corrupted: the member {name!r} does not match the "
                             f"SHA-256 digest recorded in {_META}.")
    arrays = read_npz(members[_ARRAYS], path, _ARRAYS, limits)
    if sorted(arrays) != meta.get("arrays"):
        raise ValueError(f"{path!r} is corrupted: {_ARRAYS} holds {sorted(arrays)[:10]}, "
                         f"the manifest lists {str(meta.get('arrays'))[:200]}.")
    try:
        encoder = _rebuild_encoder(_decode_ids(meta["ids"]["user"], arrays),
                                   _decode_ids(meta["ids"]["item"], arrays))
        params = decode(meta["params"], arrays)
        if not isinstance(params, dict):
            raise ValueError("the parameters are not a mapping")
        unknown = sorted(set(params) - set(param_names))
        if unknown:
            raise ValueError(f"the file sets parameter(s) {unknown} that this estimator does "
                             "not have")
        if not isinstance(meta["fitted"], dict):
            raise ValueError("the fitted attributes are not a mapping")
        fitted = {str(name): decode(value, arrays) for name, value in meta["fitted"].items()}
        regressor = decode(meta["regressor"], arrays)
        network = regressor["network"]
        if (network["n_users"], network["n_items"]) != (encoder.n_users, encoder.n_items):
            raise ValueError("the network's vocabulary sizes do not match the stored ids")
    except (LookupError, TypeError, AttributeError, ValueError, OverflowError,
            ImportError) as exc:  # ImportError: a pandas dtype naming a missing backend
        raise _inconsistent(path, exc) from exc
    id_rows = (encoder.n_users + 1, encoder.n_items + 1)
    model = load_model_bytes(members[_MODEL], path, id_rows=id_rows, limits=limits)
    return LoadedState(params=params, encoder=encoder, fitted=fitted, regressor=regressor,
                       model=model)


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
        IdEncoder().fit(ids, ids[:1])  # refuses a column mixing strings and numbers
    return IdEncoder.from_vocabulary(user_ids, item_ids)

