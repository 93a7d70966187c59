"""Side features: user/item attribute frames, cold-start users predicted from their features."""

import pickle

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import FAST
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skembedrec import EmbeddingRatingRegressor
from skembedrec._features import FeatureEncoder
from skembedrec._network import NetworkConfig, build_network, set_feature_table
from skembedrec.datasets import make_ratings

# Pinned so that the tests do not move with the tuned defaults.
SETTINGS = {**FAST, "l2": 0.1, "learning_rate": 0.01, "implicit": False, "use_bias": True,
            "dot_product": True}


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_feature_encoder_numeric_categorical_and_multi_label():
    frame = pd.DataFrame(
        {"age": [20.0, 40.0, np.nan], "job": ["a", "b", None],
         "genres": [["x", "y"], ["y"], np.nan]},
        index=["u1", "u2", "u3"],
    )
    enc = FeatureEncoder().fit(frame)
    assert enc.feature_names_ == ["age", "job=a", "job=b", "genres=x", "genres=y"]
    encoded = enc.transform(frame)
    np.testing.assert_allclose(encoded[:, 0], [-1, 1, 0])  # standardised; missing -> mean
    np.testing.assert_array_equal(encoded[:, 1:], [[1, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 0]])
    table = enc.table(frame, np.array(["u2", "unrated"], dtype=object))
    assert table.shape == (3, 5) and table.dtype == np.float32
    np.testing.assert_array_equal(table[0], encoded[1])
    np.testing.assert_allclose(table[1], encoded.mean(axis=0))  # no features: the mean row
    np.testing.assert_allclose(table[2], encoded.mean(axis=0))  # the reserved unknown row


def _grouped_ratings():
    """Ratings where a user's group (a side feature) shifts every rating by +-1 star."""
    X, y = make_ratings(n_users=80, n_items=60, n_ratings=4000, random_state=0)
    group = np.where(X["user_id"] % 2 == 0, 1.0, -1.0)
    y = (y + group).clip(1, 5)
    users = pd.DataFrame({"group": np.where(np.arange(80) % 2 == 0, "up", "down")})
    users.index.name = "user_id"
    return X, y, users


def test_cold_users_are_predicted_from_their_features():
    X, y, users = _grouped_ratings()
    cold = (X["user_id"] >= 64).to_numpy()
    plain = EmbeddingRatingRegressor(**SETTINGS).fit(X[~cold], y[~cold])
    featured = EmbeddingRatingRegressor(**SETTINGS, user_features=users).fit(X[~cold], y[~cold])
    # Users listed in user_features get a code even without ratings.
    assert featured.is_known(X[cold])[:, 0].all() and not plain.is_known(X[cold])[:, 0].any()
    assert featured.n_users_ == 80 and featured.seen_.shape[0] == 80
    without = rmse(plain.predict(X[cold]), y[cold])
    with_features = rmse(featured.predict(X[cold]), y[cold])
    assert with_features < without - 0.2
    # Known users are predicted no worse.
    warm = rmse(featured.predict(X[~cold]), y[~cold])
    assert warm < rmse(plain.predict(X[~cold]), y[~cold]) + 0.05
    # A user absent from both the ratings and the frame gets the average features.
    unknown = featured.predict(pd.DataFrame({"user_id": [999] * 3, "item_id": [0, 1, 2]}))
    assert np.isfinite(unknown).all()


def test_feature_frames_are_parameters_that_clone_and_pickle():
    X, y, users = _grouped_ratings()
    est = EmbeddingRatingRegressor(**SETTINGS, user_features=users)
    copy = clone(est)
    assert copy.get_params()["user_features"] is not users
    pd.testing.assert_frame_equal(copy.get_params()["user_features"], users)
    est.fit(X, y)
    pd.testing.assert_frame_equal(users, _grouped_ratings()[2])  # the frame is not mutated
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))


def test_partial_fit_with_features_keeps_them_and_adds_users():
    X, y, users = _grouped_ratings()
    est = EmbeddingRatingRegressor(**SETTINGS, user_features=users).fit(X, y)
    layer = est.model_.get_layer("user_features")
    table = layer.table.numpy().copy()
    new = pd.DataFrame({"user_id": [500, 500, 501], "item_id": [0, 1, 2]})
    est.partial_fit(new, [5.0, 4.0, 1.0])
    assert est.n_users_ == 82
    grown = est.model_.get_layer("user_features").table.numpy()
    np.testing.assert_array_equal(grown[:80], table[:80])  # existing codes keep their rows
    np.testing.assert_array_equal(grown[80:], np.repeat(table[-1:], 3, axis=0))  # mean row


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"user_features": np.zeros((3, 2))}, InvalidParameterError, "user_features"),
        ({"item_features": pd.DataFrame({"a": [1, 2]}, index=[0, 0])}, ValueError,
         "duplicated ids"),
        ({"user_features": pd.DataFrame(index=[0, 1])}, ValueError, "no columns"),
        ({"user_features": pd.DataFrame({"a": [1]}, index=["x"])}, ValueError,
         "another kind"),
    ],
)
def test_bad_feature_frames_are_refused(ratings, params, error, message):
    X, y = ratings
    est = EmbeddingRatingRegressor(**SETTINGS, **params)
    with pytest.raises(error, match=message):
        est.fit(X, y)
    assert not hasattr(est, "regressor_")


@pytest.mark.slow
def test_movielens_cold_start_users_with_side_features(ml100k, ml100k_dir):
    users = pd.read_csv(ml100k_dir / "users.tsv", sep="\t", index_col="user_id")
    items = pd.read_csv(ml100k_dir / "items.tsv", sep="\t", index_col="movie_id")
    user_features = users[["age", "gender", "occupation"]]
    item_features = pd.DataFrame({"year": items["year"], "genres": items["genres"].str.split()})
    data = ml100k.rename(columns={"movie_id": "item_id"})
    rng = np.random.RandomState(0)
    cold = data["user_id"].isin(rng.choice(data["user_id"].unique(), 100, replace=False))
    X, y = data[["user_id", "item_id"]], data["rating"]
    params = {**SETTINGS, "n_factors": 16, "hidden_units": (), "epochs": 4, "batch_size": 4096,
              "learning_rate": 0.01, "l2": 0.1, "n_estimators": 2}
    # The gain on ML-100k cold users is small (about 0.5 %: demographics say little about
    # taste); a single-member model showed none on this cold set, the default ensemble does.
    plain = EmbeddingRatingRegressor(**params).fit(X[~cold], y[~cold])
    featured = EmbeddingRatingRegressor(
        **params, user_features=user_features, item_features=item_features
    ).fit(X[~cold], y[~cold])
    # Without features every cold user gets the same (item-based) prediction for an item;
    # with them, the prediction depends on who the user is.
    pairs = pd.DataFrame({"user_id": data.loc[cold, "user_id"].unique()[:4], "item_id": 50})
    assert np.ptp(plain.predict(pairs)) == 0
    assert np.ptp(featured.predict(pairs)) > 0.01
    without = rmse(plain.predict(X[cold]), y[cold])
    with_features = rmse(featured.predict(X[cold]), y[cold])
    assert with_features < without  # the benchmark has the table (3 seeds)


def test_side_features_enter_the_first_ensemble_member_only():
    """With n_estimators members side by side in one table, the feature projection is added
    to the first member's columns; the other members' columns are the plain embedding."""
    model = build_network(NetworkConfig(
        n_users=3, n_items=4, n_factors=2, dropout=0.0, embedding_dropout=0.0, l2=0.1,
        n_estimators=2, n_user_features=3,
    ))
    set_feature_table(model, "user", np.arange(12, dtype="float32").reshape(4, 3))
    codes = np.array([[0, 0], [2, 1], [1, 3]], dtype=np.int32)
    vectors = keras.Model(model.input, model.get_layer("user_vectors").output)(codes).numpy()
    table = model.get_layer("user_embedding").embeddings.numpy()[codes[:, 0]]
    projection = model.get_layer("user_feature_factors").kernel.numpy()
    assert vectors.shape == (3, 4) and projection.shape == (3, 2)
    np.testing.assert_allclose(vectors[:, 2:], table[:, 2:], rtol=1e-6)
    features = np.arange(12, dtype="float32").reshape(4, 3)[codes[:, 0]]
    np.testing.assert_allclose(vectors[:, :2], table[:, :2] + features @ projection, rtol=1e-5)
