"""Recommender outputs: top-N items per user, nearest neighbours, embedding frames.

The functions take the pieces of a fitted estimator (its id encoder, the compiled serving
function, the factor tables as arrays) so that the estimator's methods stay thin delegations;
nothing here knows the Keras graph.

Scores are computed for blocks of users at a time, ``_BLOCK_VALUES`` (user, item) pairs per
block, so memory stays bounded for large catalogues: a full users x items float64 matrix is
never built. The top ``n`` of each row is found with :func:`numpy.argpartition` (linear time)
and only those ``n`` are sorted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._arrays import distinct_pairs
from ._encoding import IdEncoder
from ._network import predict_codes
from ._progress import Progress
from ._time import day_numbers, unix_seconds
from ._validation import check_positive_int, check_query_ids

# (user, item) pairs scored per block: 8 MiB of float64 scores plus 8 MiB of int32 codes.
_BLOCK_VALUES = 1 << 20
# Query ids answered per block of results (and per step of the progress line): large enough
# that the per-block calls cost nothing, small enough that a block's frame stays small.
BLOCK_IDS = 4096

# -- fitted state ----------------------------------------------------------------------------


def seen_matrix(
    user_codes: np.ndarray, item_codes: np.ndarray, n_users: int, n_items: int
) -> sp.csr_array:
    """The training (user code, item code) pairs as a boolean CSR array (n_users, n_items).

    The array is canonical (sorted, distinct columns in each row) and compact: int32
    indices and index pointer while the catalogue fits (see :func:`seen_index_dtype`).

    Examples
    --------
    >>> import numpy as np
    >>> seen = seen_matrix(np.array([0, 1, 0, 0]), np.array([2, 0, 2, 1]), 2, 3)
    >>> seen.toarray()
    array([[False,  True,  True],
           [ True, False, False]])
    >>> seen.indices.dtype, seen.indptr.dtype
    (dtype('int32'), dtype('int32'))
    """
    # A rating given twice is one seen pair: de-duplicate before building the matrix.
    pairs = distinct_pairs(np.column_stack([user_codes, item_codes]))
    index_dtype = seen_index_dtype(len(pairs), n_users, n_items)
    indptr = np.zeros(n_users + 1, dtype=index_dtype)
    np.cumsum(np.bincount(pairs[:, 0], minlength=n_users), out=indptr[1:])
    return sp.csr_array((np.ones(len(pairs), dtype=bool), pairs[:, 1].astype(index_dtype),
                         indptr), shape=(n_users, n_items))


def seen_index_dtype(nnz: int, n_users: int, n_items: int) -> np.dtype:
    """int32 for the indices of a ``seen`` array that fits them, else int64.

    Examples
    --------
    >>> seen_index_dtype(25_000_000, 162_541, 59_047), seen_index_dtype(2**31, 10, 10)
    (dtype('int32'), dtype('int64'))
    """
    fits = max(nnz, n_users, n_items) < np.iinfo(np.int32).max
    return np.dtype(np.int32 if fits else np.int64)


def seen_with_pairs(seen: sp.csr_array, user_codes: np.ndarray, item_codes: np.ndarray,
                    n_users: int, n_items: int) -> sp.csr_array:
    """``seen`` grown to (n_users, n_items) (new ids get empty rows and columns), with the
    pairs added: equal to :func:`seen_matrix` of all the pairs, at the cost of one linear
    merge of the sorted rows instead of a sort of every pair. ``seen`` is not modified.

    Examples
    --------
    >>> import numpy as np
    >>> seen = seen_matrix(np.array([0, 1]), np.array([1, 0]), 2, 2)
    >>> seen_with_pairs(seen, np.array([2, 0]), np.array([2, 1]), 3, 3).toarray()
    array([[False,  True, False],
           [ True, False, False],
           [False, False,  True]])
    """
    added = seen_matrix(user_codes, item_codes, n_users, n_items)
    index_dtype = seen_index_dtype(seen.nnz + added.nnz, n_users, n_items)
    indptr = np.empty(n_users + 1, dtype=index_dtype)
    indptr[: len(seen.indptr)] = seen.indptr
    indptr[len(seen.indptr):] = seen.indptr[-1]
    # Shares seen's data and indices (no copy); scipy's sum of two canonical boolean CSR
    # arrays is their merged union, canonical again.
    grown = sp.csr_array((seen.data, seen.indices.astype(index_dtype, copy=False), indptr),
                         shape=(n_users, n_items))
    merged = grown + added.astype(bool, copy=False)
    if merged.indices.dtype != index_dtype:  # scipy picks its own index dtype for sums
        merged.indices = merged.indices.astype(index_dtype)
        merged.indptr = merged.indptr.astype(index_dtype)
    return merged


def seen_pairs(seen: sp.csr_array) -> tuple[np.ndarray, np.ndarray]:
    """The (user code, item code) pairs of ``seen``, by user then item."""
    rows = np.repeat(np.arange(seen.shape[0], dtype=seen.indices.dtype), np.diff(seen.indptr))
    return rows, seen.indices


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


def network_scores(serve: Callable, n_items: int,
                   day: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Scores of every item for a block of user codes, from the compiled network ``serve``
    (at the UTC day number ``day`` for a network with time terms)."""
    all_items = np.arange(n_items, dtype=np.int32)

    def score(block: np.ndarray) -> np.ndarray:
        codes = np.empty((len(block) * n_items, 2 if day is None else 3), dtype=np.int32)
        codes[:, 0] = np.repeat(block, n_items)
        codes[:, 1] = np.tile(all_items, len(block))
        if day is not None:
            codes[:, 2] = day
        return predict_codes(serve, codes).reshape(len(block), n_items)

    return score


def additive_scores(tables: tuple[np.ndarray, ...],
                    n_items: int) -> Callable[[np.ndarray], np.ndarray]:
    """Scores of every item for a block of user codes, from the network's additive form
    ``U[u] @ V[i] + a[u] + b[i]`` (:func:`._network.additive_form`): one matrix product per
    block instead of the network over every pair, equal to it within ~1e-6."""
    users, items, user_terms, item_terms = tables
    items_t = np.ascontiguousarray(items[:n_items].T)
    item_terms = item_terms[:n_items]

    def score(block: np.ndarray) -> np.ndarray:
        scores = users[block] @ items_t
        scores += user_terms[block, None]
        scores += item_terms
        return scores

    return score


def top_n_items(
    user_codes: np.ndarray,
    *,
    n: int,
    n_items: int,
    score: Callable[[np.ndarray], np.ndarray],
    seen: sp.csr_array | None = None,
    block_values: int = _BLOCK_VALUES,
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``n`` item codes for each user code, by the model's raw (unclipped) score.

    ``score`` maps a block of user codes to their scores for every item
    (:func:`network_scores` or :func:`additive_scores`). Ranking by the network output
    before de-standardisation and clipping orders items the same way as the predicted
    rating, but keeps apart items whose predicted rating is clipped to the same maximum.

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
    tops: list[np.ndarray] = []
    valid: list[np.ndarray] = []
    for start in range(0, len(unique_codes), block_users):
        block = unique_codes[start : start + block_users]
        scores = score(block)
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


def recommend_day(at: Any, time_max: float | None) -> int | None:
    """The UTC day number to recommend at: ``at`` (one time), or by default ``time_max``,
    the latest training time of a model fitted with times (None: without times)."""
    if time_max is None:
        if at is not None:
            raise ValueError("at= is the time to recommend at, for a model fitted with "
                             "time_col; this one was fitted without times. Leave at=None.")
        return None
    if at is None:
        return int(day_numbers(np.array([time_max]))[0])
    not_a_time = ValueError(
        f"at={at!r} is not a time to recommend at: 'at' takes one time, as unix seconds "
        "(UTC, not milliseconds), a datetime64 or a pandas Timestamp; None recommends at "
        "the latest time trained on (time_max_)."
    )
    if np.ndim(at) != 0:
        raise not_a_time
    try:
        seconds = unix_seconds([at], "at")
    except (ValueError, TypeError):
        raise not_a_time from None
    return int(day_numbers(seconds)[0])


def recommend_blocks(
    users: Any,
    *,
    n: int,
    exclude_seen: bool,
    encoder: IdEncoder,
    handle_unknown: str,
    seen: sp.csr_array,
    score: Callable[[np.ndarray], np.ndarray],
    rate_codes: Callable[[np.ndarray], np.ndarray],
    columns: tuple[Any, Any] = ("user", "item"),
    batch_size: int = BLOCK_IDS,
    verbose: int = 0,
) -> Iterator[pd.DataFrame]:
    """Top-``n`` recommendations, one DataFrame per ``batch_size`` distinct users (see
    ``EmbeddingRatingRegressor.iter_recommend``).

    ``score`` scores every item for a block of user codes (see :func:`top_n_items`).
    ``rate_codes`` is the estimator's own code -> rating path, so ``predicted_rating`` is
    exactly what ``predict`` returns for the pair. ``columns`` names the user and item
    columns of the result. A user asked for twice gets one block, where first asked.
    Everything is checked here, before the first block is computed; with ``verbose`` and
    more than one block a progress line is kept on stderr.
    """
    n = check_positive_int(n, "n")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not isinstance(exclude_seen, bool | np.bool_):
        raise TypeError(f"exclude_seen must be True or False; got {exclude_seen!r}.")
    user_column, item_column = columns
    if {user_column, item_column} & {"predicted_rating", "rank"}:
        raise ValueError(f"recommend names its columns after user_col and item_col, which "
                         f"must not be 'predicted_rating' or 'rank'; got {columns}.")
    users = check_query_ids(users, encoder.user_ids, "users")
    users = users[_first_positions(users)]
    user_codes = encoder.encode_one_side(
        users, "user", handle_unknown=handle_unknown,
        advice=". Set handle_unknown='fallback' to recommend to them as to an average user.",
    )

    def blocks() -> Iterator[pd.DataFrame]:
        for start in Progress.over(len(users), batch_size, "recommend", "users", verbose):
            block_users = users[start : start + batch_size]
            block_codes = user_codes[start : start + batch_size]
            positions, item_codes = top_n_items(
                block_codes, n=n, n_items=encoder.n_items, score=score,
                seen=seen if exclude_seen else None,
            )
            ratings = rate_codes(np.column_stack([block_codes[positions], item_codes]))
            yield pd.DataFrame(
                {
                    user_column: block_users[positions],
                    item_column: encoder.item_ids[item_codes],
                    "predicted_rating": ratings,
                    "rank": _ranks(positions),
                }
            )

    return blocks()


def concat_blocks(blocks: Iterator[pd.DataFrame]) -> pd.DataFrame:
    """The blocks of :func:`recommend_blocks` (or :func:`similar`) as one frame."""
    return pd.concat(list(blocks), ignore_index=True)


def _first_positions(ids: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct id, in the order given."""
    # factorize numbers the ids in order of first appearance, so the positions come sorted.
    return np.unique(pd.factorize(ids)[0], return_index=True)[1]


# -- embeddings and neighbours ---------------------------------------------------------------


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
    ids: Any, *, n: int, encoder: IdEncoder, table: np.ndarray, kind: str, verbose: int = 0
) -> pd.DataFrame:
    """Most similar users or items (see ``EmbeddingRatingRegressor.similar_items``), with
    a progress line on stderr (``verbose``) when there are more than :data:`BLOCK_IDS`."""
    n = check_positive_int(n, "n")
    known_ids = encoder.user_ids if kind == "user" else encoder.item_ids
    ids = check_query_ids(ids, known_ids, f"{kind}s")
    codes = encoder.encode_one_side(
        ids, kind, handle_unknown="error",
        advice="; similarities exist only between ids seen during fit.",
    )
    blocks = []
    for start in Progress.over(len(ids), BLOCK_IDS, f"similar_{kind}s", f"{kind}s", verbose):
        positions, neighbours, similarity = nearest_neighbours(
            codes[start : start + BLOCK_IDS], table, n=n)
        blocks.append(pd.DataFrame(
            {
                kind: ids[start + positions],
                f"similar_{kind}": known_ids[neighbours],
                "similarity": similarity,
                "rank": _ranks(positions),
            }
        ))
    return pd.concat(blocks, ignore_index=True)
