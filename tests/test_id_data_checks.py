"""The behaviours of sklearn's generic checks, re-run on (user id, item id) data."""

import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import FAST
from sklearn.base import clone

from skembedrec import EmbeddingRatingRegressor


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
