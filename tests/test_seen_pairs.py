"""The rated pairs (``seen_``): compact, and merged with a batch instead of rebuilt."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import FAST

from skembedrec import EmbeddingRatingRegressor, _training
from skembedrec._recommend import seen_matrix, seen_pairs, seen_with_pairs
from skembedrec.datasets import make_ratings


def _assert_identical(actual: sp.csr_array, expected: sp.csr_array) -> None:
    """Same class, shape, dtypes and arrays: not only the same set of pairs."""
    assert type(actual) is type(expected)
    assert actual.shape == expected.shape
    for part in ("data", "indices", "indptr"):
        got, want = getattr(actual, part), getattr(expected, part)
        assert got.dtype == want.dtype, part
        np.testing.assert_array_equal(got, want, err_msg=part)
    assert actual.has_canonical_format


def test_seen_matrix_is_a_compact_canonical_boolean_csr():
    seen = seen_matrix(np.array([2, 0, 2, 0, 2]), np.array([1, 3, 0, 3, 1]), 4, 5)
    assert seen.dtype == bool and seen.indices.dtype == np.int32
    assert seen.indptr.dtype == np.int32
    assert seen.nnz == 3  # (0, 3) and (2, 1) given twice count once
    np.testing.assert_array_equal(seen.indptr, [0, 1, 1, 3, 3])
    np.testing.assert_array_equal(seen.indices, [3, 0, 1])
    assert seen.has_canonical_format


@pytest.mark.parametrize("seed", range(5))
def test_merging_a_batch_equals_a_rebuild_from_all_pairs(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, n_old = 40, 30, 300
    old = (rng.integers(0, n_users, n_old), rng.integers(0, n_items, n_old))
    # The batch repeats old pairs, repeats itself, and brings new users and items.
    users = np.concatenate([old[0][:20], rng.integers(0, n_users + 7, 80)])
    items = np.concatenate([old[1][:20], rng.integers(0, n_items + 5, 80)])
    users, items = np.concatenate([users, users[:10]]), np.concatenate([items, items[:10]])
    previous = seen_matrix(*old, n_users, n_items)
    before = [part.copy() for part in (previous.data, previous.indices, previous.indptr)]

    merged = seen_with_pairs(previous, users, items, n_users + 7, n_items + 5)

    rebuilt = seen_matrix(np.concatenate([old[0], users]), np.concatenate([old[1], items]),
                          n_users + 7, n_items + 5)
    _assert_identical(merged, rebuilt)
    for part, copy in zip((previous.data, previous.indices, previous.indptr), before, strict=True):
        np.testing.assert_array_equal(part, copy)  # the previous fit's pairs are untouched
    assert previous.shape == (n_users, n_items)


def test_merging_into_a_seen_with_int64_indices_of_an_old_file():
    old = seen_matrix(np.array([0, 1, 1]), np.array([1, 0, 2]), 2, 3)
    old_file = sp.csr_array((old.data, old.indices.astype(np.int64),
                             old.indptr.astype(np.int64)), shape=old.shape)
    merged = seen_with_pairs(old_file, np.array([1, 2]), np.array([1, 3]), 3, 4)
    _assert_identical(merged, seen_matrix(np.array([0, 1, 1, 1, 2]),
                                          np.array([1, 0, 2, 1, 3]), 3, 4))


def test_seen_pairs_are_the_nonzero_entries():
    seen = seen_matrix(np.array([3, 0, 3, 1]), np.array([0, 2, 1, 2]), 5, 3)
    rows, columns = seen_pairs(seen)
    expected_rows, expected_columns = seen.nonzero()
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_array_equal(columns, expected_columns)


def _fit_and_batch(**params):
    X, y = make_ratings(n_users=50, n_items=40, n_ratings=1200, random_state=0)
    est = EmbeddingRatingRegressor(**{**FAST, "epochs": 1, **params}).fit(X[:900], y[:900])
    batch = X[900:].copy()
    batch.iloc[:60, 0] += 1000  # new users
    batch.iloc[60:90, 1] += 1000  # new items
    batch = pd.concat([batch, batch[:15], X[:15]])  # repeated and already seen pairs
    return est, X[:900], batch, np.concatenate([y[900:], y[900:915], y[:15]])


def test_partial_fit_seen_equals_a_rebuild_from_every_pair():
    est, X, batch, batch_y = _fit_and_batch()
    est.partial_fit(batch, batch_y)
    every = pd.concat([X, batch])
    codes = est.encoder_.encode(every["user_id"].to_numpy(), every["item_id"].to_numpy())
    _assert_identical(est.seen_, seen_matrix(codes[:, 0], codes[:, 1], est.n_users_,
                                             est.n_items_))


def test_partial_fit_without_implicit_term_reads_no_old_pairs(monkeypatch):
    est, _, batch, batch_y = _fit_and_batch(implicit=False)

    def refuse(seen):
        raise AssertionError("the old pairs were extracted for a model without implicit term")

    monkeypatch.setattr(_training, "seen_pairs", refuse)
    est.partial_fit(batch, batch_y)
    assert est.seen_.shape == (est.n_users_, est.n_items_)


def test_partial_fit_gives_the_implicit_term_the_old_and_the_batch_pairs(monkeypatch):
    est, _, batch, batch_y = _fit_and_batch(implicit=True)
    previous = set(zip(*est.seen_.nonzero(), strict=True))
    given = []
    real = _training.set_training_pairs

    def spy(model, users, items, **kwargs):
        given.append(set(zip(users.tolist(), items.tolist(), strict=True)))
        real(model, users, items, **kwargs)

    monkeypatch.setattr(_training, "set_training_pairs", spy)
    est.partial_fit(batch, batch_y)
    codes = est.encoder_.encode(batch["user_id"].to_numpy(), batch["item_id"].to_numpy())
    assert given == [previous | set(zip(codes[:, 0].tolist(), codes[:, 1].tolist(), strict=True))]
