"""Recommender outputs: top-N items per user, nearest neighbours, embedding frames.

The functions take the pieces of a fitted estimator (its id encoder, the compiled serving
function, the embedding tables) so that the estimator's methods stay thin delegations.

Scores are computed for blocks of users at a time, ``_BLOCK_VALUES`` (user, item) pairs per
block, so memory stays bounded for large catalogues: a full users x items float64 matrix is
never built. The top ``n`` of each row is found with :func:`numpy.argpartition` (linear time)
and only those ``n`` are sorted.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import Any

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._arrays import distinct_pairs
from ._encoding import UNKNOWN, IdEncoder, describe_unknown
from ._network import MemberDots, predict_codes

# (user, item) pairs scored per block: 8 MiB of float64 scores plus 8 MiB of int32 codes.
_BLOCK_VALUES = 1 << 20

_NUMBER_KINDS = {"integer", "floating", "mixed-integer-float", "decimal"}


# -- input checks ----------------------------------------------------------------------------


def check_n(n: Any) -> int:
    """``n`` as an int >= 1, or a TypeError/ValueError naming the problem."""
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise TypeError(f"n must be an int >= 1; got {n!r} of type {type(n).__name__}.")
    if n < 1:
        raise ValueError(f"n must be an int >= 1; got {n}.")
    return int(n)


def _id_kind(ids: np.ndarray) -> str:
    """'number', 'str', 'bytes', 'bool' or the pandas-inferred name of a mixed column."""
    if ids.dtype.kind in "iuf":
        return "number"
    if ids.dtype.kind == "b":
        return "bool"
    inferred = pd.api.types.infer_dtype(ids, skipna=False)
    if inferred in _NUMBER_KINDS:
        return "number"
    return {"string": "str", "bytes": "bytes", "boolean": "bool"}.get(inferred, inferred)


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
    missing = pd.isna(ids)
    if missing.any():
        raise ValueError(
            f"{name} contains {int(missing.sum())} missing id(s) (None or NaN) at position(s) "
            f"{np.flatnonzero(missing)[:10].tolist()}."
        )
    expected, given = _id_kind(np.asarray(known_ids)), _id_kind(ids)
    if given != expected:
        raise TypeError(
            f"{name} must hold {expected} ids like those seen during fit (e.g. "
            f"{known_ids[0]!r}); got {given} ids (e.g. {ids[0]!r})."
        )
    return ids


def codes_of(encoder: IdEncoder, ids: np.ndarray, kind: str) -> np.ndarray:
    """Codes of user (``kind='user'``) or item ids; ``UNKNOWN`` (-1) where not seen at fit."""
    nothing = ids[:0]
    if kind == "user":
        return encoder.codes(ids, nothing)[0]
    return encoder.codes(nothing, ids)[1]


def _check_known(ids: np.ndarray, codes: np.ndarray, kind: str, advice: str) -> None:
    known = codes != UNKNOWN
    if not known.all():
        raise ValueError(describe_unknown(ids, known, kind) + advice)


# -- fitted state ----------------------------------------------------------------------------


def seen_matrix(
    user_codes: np.ndarray, item_codes: np.ndarray, n_users: int, n_items: int
) -> sp.csr_array:
    """The training (user code, item code) pairs as a boolean CSR array (n_users, n_items).

    Examples
    --------
    >>> import numpy as np
    >>> seen_matrix(np.array([0, 1, 0, 0]), np.array([2, 0, 2, 1]), 2, 3).toarray()
    array([[False,  True,  True],
           [ True, False, False]])
    """
    # A rating given twice is one seen pair: de-duplicate before building the matrix.
    rows, cols = distinct_pairs(np.column_stack([user_codes, item_codes])).T
    data = np.ones(rows.size, dtype=bool)
    return sp.csr_array((data, (rows, cols)), shape=(n_users, n_items))


# -- top-N -----------------------------------------------------------------------------------


def top_n_columns(scores: np.ndarray, n: int) -> np.ndarray:
    """Column indices of the ``n`` largest scores of each row, best first.

    Rows with fewer than ``n`` columns give all of them. ``-inf`` marks an excluded entry;
    it sorts last and is left to the caller to drop.

    Examples
    --------
    >>> import numpy as np
    >>> top_n_columns(np.array([[0.1, 0.9, 0.5], [3.0, -np.inf, 1.0]]), 2)
    array([[1, 2],
           [0, 2]])
    """
    k = min(n, scores.shape[1])
    if k < scores.shape[1]:
        candidates = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        candidates = np.broadcast_to(np.arange(k), (len(scores), k))
    best_first = np.argsort(-np.take_along_axis(scores, candidates, axis=1), axis=1, kind="stable")
    return np.take_along_axis(candidates, best_first, axis=1)


def _mask_seen(scores: np.ndarray, user_codes: np.ndarray, seen: sp.csr_array) -> None:
    """Set the scores of the items each user rated in training to -inf, in place."""
    # The reserved unknown-user code has no row in ``seen``: such users have seen nothing.
    known = np.flatnonzero(user_codes < seen.shape[0])
    rows = seen[user_codes[known]]
    per_row = np.diff(rows.indptr)
    scores[np.repeat(known, per_row), rows.indices] = -np.inf


def top_n_items(
    user_codes: np.ndarray,
    *,
    n: int,
    n_items: int,
    serve: Callable,
    seen: sp.csr_array | None = None,
    block_values: int = _BLOCK_VALUES,
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``n`` item codes for each user code, by the model's raw (unclipped) score.

    Ranking by the network output before de-standardisation and clipping orders items the
    same way as the predicted rating, but keeps apart items whose predicted rating is
    clipped to the same maximum.

    Returns
    -------
    positions : ndarray of int64
        Index into ``user_codes`` of each recommendation, grouped, in the order given.
    item_codes : ndarray of int32
        The recommended item codes, best first within each user.
    """
    # Each distinct code is scored once (e.g. every unknown user shares the reserved code).
    unique_codes, inverse = np.unique(user_codes, return_inverse=True)
    block_users = max(1, block_values // n_items)
    all_items = np.arange(n_items, dtype=np.int32)
    tops: list[np.ndarray] = []
    valid: list[np.ndarray] = []
    for start in range(0, len(unique_codes), block_users):
        block = unique_codes[start : start + block_users]
        codes = np.empty((len(block) * n_items, 2), dtype=np.int32)
        codes[:, 0] = np.repeat(block, n_items)
        codes[:, 1] = np.tile(all_items, len(block))
        scores = predict_codes(serve, codes).reshape(len(block), n_items)
        if seen is not None:
            _mask_seen(scores, block, seen)
        top = top_n_columns(scores, n)
        tops.append(top)
        valid.append(np.isfinite(np.take_along_axis(scores, top, axis=1)))
    top, is_valid = np.concatenate(tops)[inverse], np.concatenate(valid)[inverse]
    positions = np.broadcast_to(np.arange(len(user_codes))[:, None], top.shape)
    return positions[is_valid].astype(np.int64), top[is_valid].astype(np.int32)


def _ranks(positions: np.ndarray) -> np.ndarray:
    """1-based rank within each run of equal, grouped ``positions``."""
    if positions.size == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, positions[1:] != positions[:-1]])
    lengths = np.diff(np.r_[starts, positions.size])
    return np.arange(positions.size) - np.repeat(starts, lengths) + 1


def recommend(
    users: Any,
    *,
    n: int,
    exclude_seen: bool,
    encoder: IdEncoder,
    handle_unknown: str,
    seen: sp.csr_array,
    serve: Callable,
    rate_codes: Callable[[np.ndarray], np.ndarray],
) -> pd.DataFrame:
    """Top-``n`` recommendations as a DataFrame (see ``EmbeddingRatingRegressor.recommend``).

    ``rate_codes`` is the estimator's own code -> rating path, so ``predicted_rating`` is
    exactly what ``predict`` returns for the pair.
    """
    n = check_n(n)
    if not isinstance(exclude_seen, bool | np.bool_):
        raise TypeError(f"exclude_seen must be True or False; got {exclude_seen!r}.")
    users = check_query_ids(users, encoder.user_ids, "users")
    user_codes = codes_of(encoder, users, "user")
    if handle_unknown == "error":
        _check_known(
            users, user_codes, "user",
            ". Set handle_unknown='fallback' to recommend to them as to an average user.",
        )
    user_codes[user_codes == UNKNOWN] = encoder.n_users
    positions, item_codes = top_n_items(
        user_codes, n=n, n_items=encoder.n_items, serve=serve,
        seen=seen if exclude_seen else None,
    )
    ratings = rate_codes(np.column_stack([user_codes[positions], item_codes]))
    return pd.DataFrame(
        {
            "user": users[positions],
            "item": encoder.item_ids[item_codes],
            "predicted_rating": ratings,
            "rank": _ranks(positions),
        }
    )


# -- embeddings and neighbours ---------------------------------------------------------------


def embedding_table(model: Any, kind: str) -> np.ndarray:
    """The ``kind`` ('user' or 'item') factor vectors that predictions use, reserved row excluded.

    With ``dot_product`` these are the inputs of the network's dot products: the embedding
    row plus, where enabled, the implicit-feedback vector and the side-feature projection.
    The vectors of the ``n_estimators`` ensemble members are concatenated and scaled by
    ``1/sqrt(n_estimators)``, so the dot product of a user's and an item's vectors is the
    ensemble's averaged dot product. Without ``dot_product`` (the MLP tower alone) they are
    the raw embedding rows the tower reads.
    """
    table = model.get_layer(f"{kind}_embedding")
    n_rows = table.input_dim
    dots = [layer for layer in model.layers if isinstance(layer, MemberDots)]
    if not dots:
        return table.get_weights()[0][:-1]
    side = 0 if kind == "user" else 1
    factors = keras.Model(model.input, dots[0].input[side])
    codes = np.zeros((n_rows, 2), dtype=np.int32)
    codes[:, side] = np.arange(n_rows, dtype=np.int32)
    vectors = np.asarray(factors(codes, training=False)) / np.sqrt(dots[0].n_members)
    return vectors[:-1]


def embedding_frame(table: np.ndarray, ids: np.ndarray, kind: str) -> pd.DataFrame:
    """``table`` as a DataFrame indexed by the original ids, columns ``0..width-1``."""
    return pd.DataFrame(table, index=pd.Index(ids, name=kind), columns=range(table.shape[1]))


def nearest_neighbours(
    query_codes: np.ndarray, table: np.ndarray, *, n: int, block_values: int = _BLOCK_VALUES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``n`` rows of ``table`` most cosine-similar to each query row, itself excluded.

    Returns ``(positions, neighbour_codes, similarities)``, grouped by query position, most
    similar first. A zero row has similarity 0 to every row.

    Examples
    --------
    >>> import numpy as np
    >>> table = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> positions, codes, sims = nearest_neighbours(np.array([0]), table, n=1)
    >>> codes.tolist(), bool(sims[0] > 0.99)
    ([1], True)
    """
    table = np.asarray(table, dtype=np.float64)
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    unit = table / np.where(norms > 0, norms, 1.0)
    block_rows = max(1, block_values // len(table))
    tops, sims = [], []
    for start in range(0, len(query_codes), block_rows):
        block = query_codes[start : start + block_rows]
        similarity = unit[block] @ unit.T
        similarity[np.arange(len(block)), block] = -np.inf
        top = top_n_columns(similarity, n)
        tops.append(top)
        sims.append(np.take_along_axis(similarity, top, axis=1))
    top, sim = np.concatenate(tops), np.concatenate(sims)
    valid = np.isfinite(sim)
    positions = np.broadcast_to(np.arange(len(query_codes))[:, None], top.shape)
    return positions[valid].astype(np.int64), top[valid], sim[valid]


def similar(
    ids: Any, *, n: int, encoder: IdEncoder, table: np.ndarray, kind: str
) -> pd.DataFrame:
    """Most similar users or items (see ``EmbeddingRatingRegressor.similar_items``)."""
    n = check_n(n)
    known_ids = encoder.user_ids if kind == "user" else encoder.item_ids
    ids = check_query_ids(ids, known_ids, f"{kind}s")
    codes = codes_of(encoder, ids, kind)
    _check_known(ids, codes, kind, "; similarities exist only between ids seen during fit.")
    positions, neighbours, similarity = nearest_neighbours(codes, table, n=n)
    return pd.DataFrame(
        {
            kind: ids[positions],
            f"similar_{kind}": known_ids[neighbours],
            "similarity": similarity,
            "rank": _ranks(positions),
        }
    )
