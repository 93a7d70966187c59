"""The behaviours of sklearn's generic checks, re-run on (user id, item id) data."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import FAST
from sklearn.base import clone

from skembedrec import EmbeddingRatingRegressor
from skembedrec._encoding import IdColumns, IdEncoder, warn_if_columns_swapped
from skembedrec._export import _keys as export_keys
from skembedrec.model_selection import GlobalTimeSplit, PerUserTimeSplit


def test_predict_is_invariant_to_row_order_and_subsets(fitted, ratings):
    X, _ = ratings
    full = fitted.predict(X)
    order = np.random.RandomState(1).permutation(len(X))
    np.testing.assert_allclose(fitted.predict(X.iloc[order]), full[order], rtol=1e-6)
    np.testing.assert_allclose(fitted.predict(X.iloc[:7]), full[:7], rtol=1e-6)
    np.testing.assert_allclose(fitted.predict(X.iloc[[3]]), full[[3]], rtol=1e-6)


def test_predict_does_not_change_the_estimator(fitted, ratings):
    X, _ = ratings
    before = {k: v for k, v in vars(fitted).items() if k != "_serve"}
    fitted.predict(X.head(5))
    after = {k: v for k, v in vars(fitted).items() if k != "_serve"}
    assert before.keys() == after.keys()
    assert all(before[k] is after[k] for k in before)


def test_fit_does_not_change_parameters(ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST)
    params = est.get_params()
    est.fit(X, y)
    assert est.get_params() == params
    assert est.hidden_units == FAST["hidden_units"]


def test_fit_is_idempotent_with_a_seed(ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST)
    first = est.fit(X, y).predict(X)
    second = est.fit(X, y).predict(X)
    np.testing.assert_array_equal(first, second)


def test_refit_on_other_data_resets_the_model(ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST).fit(X, y)
    other = pd.DataFrame({"user_id": ["a", "b", "a"], "item_id": ["x", "x", "y"]})
    est.fit(other, [1.0, 2.0, 3.0])
    assert est.n_users_ == 2 and est.n_items_ == 2
    with pytest.warns(UserWarning, match="fitted on str user ids"):
        assert est.is_known(X.head(2)).sum() == 0


def test_array_input_sets_no_feature_names(ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST).fit(X, y)
    assert list(est.feature_names_in_) == ["user_id", "item_id"]
    est.fit(X.to_numpy(), y.to_numpy())
    assert est.n_features_in_ == 2
    assert not hasattr(est, "feature_names_in_")


def test_pickle_and_clone_of_a_fitted_estimator(fitted, ratings):
    X, _ = ratings
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    fresh = clone(fitted)
    assert not hasattr(fresh, "regressor_")
    assert fresh.get_params() == fitted.get_params()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_ratings_are_refused(ratings, bad):
    X, y = ratings
    y = y.to_numpy().copy()
    y[5] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite value\(s\) at row\(s\) \[5\]"):
        EmbeddingRatingRegressor(**FAST).fit(X, y)


def test_one_rating_is_enough_to_fit():
    est = EmbeddingRatingRegressor(**FAST).fit(
        pd.DataFrame({"user_id": [1], "item_id": [2]}), [4.0]
    )
    assert est.predict(pd.DataFrame({"user_id": [1], "item_id": [2]}))[0] == pytest.approx(4.0)


# -- id kinds: the kind of ids at predict is that of fit -----------------------------------


def test_ids_of_another_kind_warn_or_raise_naming_column_and_kinds(fitted):
    strings = pd.DataFrame({"user_id": ["12"], "item_id": ["50"]})
    with pytest.warns(UserWarning) as record:
        pred = fitted.predict(strings)
    assert len(record) == 1  # once per call, both columns named
    message = str(record[0].message)
    assert "user ids (column 'user_id') are str (e.g. '12')" in message
    assert "fitted on int user ids" in message and "column 'item_id'" in message
    assert pred[0] == fitted.predict(pd.DataFrame({"user_id": [-1], "item_id": [-1]}))[0]
    with pytest.warns(UserWarning, match=r"item ids \(column 1 of X\) are str"):
        assert not fitted.is_known(np.array([[1, "50"]], dtype=object))[0, 1]
    strict = clone(fitted).set_params(handle_unknown="error")
    vars(strict).update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    with pytest.raises(ValueError, match=r"user ids \(column 'user_id'\) are str"):
        strict.predict(strings)


def test_whole_number_float_ids_are_ints_at_fit_and_predict(ratings):
    X, y = ratings
    as_floats = X.astype({"user_id": float, "item_id": float})
    est = EmbeddingRatingRegressor(**FAST).fit(as_floats, y)
    # int64 vocabularies: what export's int64 hash tables take.
    assert est.encoder_.user_ids.dtype == est.encoder_.item_ids.dtype == np.int64
    for ids, kind in ((est.encoder_.user_ids, "user"), (est.encoder_.item_ids, "item")):
        assert export_keys(ids, kind)[1] == tf.int64  # what export looks ids up with
    by_ints = EmbeddingRatingRegressor(**FAST).fit(X, y)
    np.testing.assert_array_equal(est.predict(as_floats), by_ints.predict(X))
    np.testing.assert_array_equal(est.predict(X), by_ints.predict(X))
    assert est.is_known(pd.DataFrame({"user_id": [12.0], "item_id": [3.0]})).all()


def test_non_whole_float_ids_are_refused_with_the_row(ratings, fitted):
    X, y = ratings
    bad = X.astype({"item_id": float})
    bad.loc[7, "item_id"] = 2.5
    with pytest.raises(ValueError, match=r"item ids must be ints or strings; got the number "
                                         r"2\.5 at row 7.*\.astype\(str\)"):
        EmbeddingRatingRegressor(**FAST).fit(bad, y)
    with pytest.raises(ValueError, match=r"got the number 2\.5 at row 0"):
        fitted.predict(np.array([[1.0, 2.5]]))


# -- the swapped-columns warning: only on strong evidence ----------------------------------


def _time_split_arrays(ml100k, item_offset=0):
    """(encoder fitted on the training ids, test array) of ML-100K's time splits."""
    frame = ml100k.rename(columns={"movie_id": "item_id"})
    frame = frame.assign(item_id=frame["item_id"] + item_offset)
    splitters = [GlobalTimeSplit(n_splits=5), PerUserTimeSplit(last_k=10),
                 PerUserTimeSplit(last_fraction=0.2)]
    ids = frame[["user_id", "item_id"]].to_numpy()
    for splitter in splitters:
        for train, test in splitter.split(frame):
            yield IdEncoder().fit(ids[train, 0], ids[train, 1]), ids[test]


COLUMNS = IdColumns("user_id", "item_id", by_position=True)


def test_no_swap_warning_on_correct_arrays_of_ml100k_time_splits(ml100k):
    """New users after a global cut are unknown users and known item ids (both 1..943):
    the former rule warned there."""
    for encoder, test in _time_split_arrays(ml100k):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warn_if_columns_swapped(encoder, test[:, 0], test[:, 1], COLUMNS)
            shuffled = np.random.RandomState(0).permutation(test)
            warn_if_columns_swapped(encoder, shuffled[:, 0], shuffled[:, 1], COLUMNS)


def test_swap_warning_on_a_real_swap_of_ml100k_held_out_ratings(ml100k):
    """Each user's last 10 ratings, swapped: column 0 holds item ids above 943, known
    only as items (80 of the first 1000 pairs), and nothing speaks for the given order."""
    ids = ml100k[["user_id", "movie_id"]].to_numpy()
    train, test = next(PerUserTimeSplit(last_k=10).split(ml100k))
    encoder = IdEncoder().fit(ids[train, 0], ids[train, 1])
    for swapped in (ids[test][:, ::-1], np.random.RandomState(0).permutation(ids[test][:, ::-1])):
        with pytest.warns(UserWarning, match=r"columns of X look swapped: \d+ of its first "
                                             r"1000 pairs .*, 0 only as given"):
            warn_if_columns_swapped(encoder, swapped[:, 0], swapped[:, 1], COLUMNS)


def test_swap_warning_when_id_ranges_do_not_overlap(ml100k):
    """Users 1..943, items 10001..11682: every swapped pair is evidence, even after a
    global cut (whose new users are unknown either way)."""
    for encoder, test in _time_split_arrays(ml100k, item_offset=10_000):
        with pytest.warns(UserWarning, match="look swapped"):
            warn_if_columns_swapped(encoder, test[:, 1], test[:, 0], COLUMNS)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warn_if_columns_swapped(encoder, test[:, 0], test[:, 1], COLUMNS)


def test_swap_warning_needs_enough_pairs():
    encoder = IdEncoder().fit(np.arange(1, 50), np.arange(1000, 1100))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        few = np.column_stack([np.arange(1000, 1019), np.arange(1, 20)])
        warn_if_columns_swapped(encoder, few[:, 0], few[:, 1], COLUMNS)  # 19 < 20 pairs
    enough = np.column_stack([np.arange(1000, 1020), np.arange(1, 21)])
    with pytest.warns(UserWarning, match="look swapped"):
        warn_if_columns_swapped(encoder, enough[:, 0], enough[:, 1], COLUMNS)


def test_predict_on_ml100k_global_split_array_is_silent(ml100k):
    """End to end, as in the report: a correct array under GlobalTimeSplit (89 % of its
    first 1000 pairs unknown, 68 % known if swapped: the former rule warned)."""
    X = ml100k[["user_id", "movie_id"]].to_numpy()
    train, test = list(GlobalTimeSplit(n_splits=2).split(ml100k))[-1]
    est = EmbeddingRatingRegressor(**{**FAST, "epochs": 1, "batch_size": 4096})
    est.fit(X[train], ml100k["rating"].to_numpy()[train])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict(X[test])
