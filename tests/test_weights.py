"""Sample weights are relative: their scale does not change the model (project issue 23)."""

import numpy as np
import pytest
from conftest import FAST
from sklearn.model_selection import train_test_split

from skembedrec import EmbeddingRatingRegressor
from skembedrec._training import drop_zero_weight


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


@pytest.fixture(scope="module")
def split(ratings):
    X, y = ratings
    return train_test_split(X, y, test_size=0.2, random_state=0)


@pytest.fixture(scope="module")
def unweighted(split):
    X_train, X_test, y_train, y_test = split
    model = EmbeddingRatingRegressor(**FAST).fit(X_train, y_train)
    return model, rmse(model.predict(X_test), y_test)


@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_a_constant_weight_of_any_scale_gives_the_unweighted_model(split, unweighted, scale):
    X_train, X_test, y_train, y_test = split
    model = EmbeddingRatingRegressor(**FAST).fit(
        X_train, y_train, sample_weight=np.full(len(X_train), scale))
    # Before issue 23 the L2 penalty was scaled with the weights: measured on MovieLens
    # 100K, test RMSE 0.8892 (s = 1), 0.9487 (0.01), 0.9244 (100).
    assert abs(rmse(model.predict(X_test), y_test) - unweighted[1]) < 0.002
    np.testing.assert_allclose(model.predict(X_test), unweighted[0].predict(X_test),
                               atol=1e-3)


def test_only_the_ratios_of_the_weights_matter_in_fit_and_partial_fit(split, rng):
    X_train, X_test, y_train, _ = split
    weights = rng.uniform(0.5, 3.0, len(X_train))
    small = EmbeddingRatingRegressor(**FAST).fit(X_train, y_train, sample_weight=weights)
    large = EmbeddingRatingRegressor(**FAST).fit(X_train, y_train,
                                                 sample_weight=1000 * weights)
    np.testing.assert_allclose(small.predict(X_test), large.predict(X_test), atol=1e-3)
    batch = slice(0, 400)
    small.partial_fit(X_train[batch], y_train[batch], sample_weight=weights[batch] / 50)
    large.partial_fit(X_train[batch], y_train[batch], sample_weight=weights[batch] * 50)
    np.testing.assert_allclose(small.predict(X_test), large.predict(X_test), atol=1e-3)


def test_weights_are_scaled_to_mean_one_without_the_zeros_and_without_a_copy_in_place():
    users, items = np.arange(4), np.arange(4)
    ratings = np.array([1.0, 2.0, 3.0, 4.0])
    given = np.array([0.0, 2.0, 4.0, 6.0])
    *_, weights, _ = drop_zero_weight(users, items, ratings, given)
    np.testing.assert_allclose(weights, [0.5, 1.0, 1.5])
    np.testing.assert_array_equal(given, [0.0, 2.0, 4.0, 6.0])  # the caller's array
    ones = np.ones(4)
    *_, weights, _ = drop_zero_weight(users, items, ratings, ones)
    assert weights is not ones and weights.mean() == 1.0
