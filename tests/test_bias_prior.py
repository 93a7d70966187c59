"""Biases with a prior: the damped-bias baseline as a fixed prior per id, the learned
deviation from it penalised per id (``_layers.DampedBias``, ``_network.set_damped_biases``)."""

import io

import joblib
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import FAST, REPO_ROOT

from skembedrec import EmbeddingRatingRegressor, _defaults
from skembedrec._layers import DampedBias
from skembedrec._network import DAMPING, NetworkConfig, build_network, set_damped_biases
from skembedrec.datasets import make_ratings

# Biased matrix factorisation (an additive form to export), trained long enough at a high
# enough learning rate that an unpenalised bias would run far from its damped value.
PARAMS = {**FAST, "hidden_units": (), "epochs": 10, "learning_rate": 0.05, "l2": 0.1}
LONER = 999  # an item with a single rating
FIXTURES = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture
def prior(monkeypatch):
    """Turn the prior on (or off) whatever the number of ratings."""
    def use(on: bool) -> None:
        monkeypatch.setattr(_defaults, "damped_biases_for", lambda n_ratings, **_: on)
    return use


def _ratings_with_a_loner():
    X, y = make_ratings(n_users=60, n_items=80, n_ratings=3000, random_state=0)
    X = pd.concat([X, pd.DataFrame({"user_id": [0], "item_id": [LONER]})], ignore_index=True)
    return X, pd.concat([y, pd.Series([5.0])], ignore_index=True)


def _item_term(est, item):
    """The item's bias in stars, against the unknown item's (both with an unknown user)."""
    X = pd.DataFrame({"user_id": [-1, -1], "item_id": [item, -2]})
    rated, unknown = est.predict(X)
    return rated - unknown


def _damped_item_bias(X, y, item):
    """The damped-bias baseline's item bias (items first, shrunk by DAMPING['item'])."""
    residual = (y - y.mean())[X["item_id"] == item]
    return residual.sum() / (len(residual) + DAMPING["item"])


@pytest.fixture(scope="module")
def fitted_pair():
    X, y = _ratings_with_a_loner()
    with pytest.MonkeyPatch.context() as patch:
        fits = {}
        for on in (True, False):
            patch.setattr(_defaults, "damped_biases_for", lambda n_ratings, on=on, **_: on)
            fits[on] = EmbeddingRatingRegressor(**PARAMS).fit(X, y)
    return X, y, fits


def test_an_id_with_one_rating_stays_near_its_damped_estimate(fitted_pair):
    X, y, fits = fitted_pair
    damped = _damped_item_bias(X, y, LONER)
    with_prior = _item_term(fits[True], LONER)
    without = _item_term(fits[False], LONER)
    # One 5-star rating, well above the mean: damped by 1 + 25 ratings, about 0.05.
    assert 0.02 < damped < 0.15
    assert abs(with_prior - damped) < 0.03
    # The unpenalised bias (started at zero) runs far past it in 10 epochs (about 0.67).
    assert without - damped > 0.3


def test_compiled_epochs_apply_the_penalty_too(prior):
    """The compiled training loop (``jit_compile=True``) sums the layers' penalties as Keras'
    ``fit`` does: the loner stays near its damped estimate there as well."""
    prior(True)
    X, y = _ratings_with_a_loner()
    est = EmbeddingRatingRegressor(**{**PARAMS, "jit_compile": True}).fit(X, y)
    assert abs(_item_term(est, LONER) - _damped_item_bias(X, y, LONER)) < 0.03


def test_the_prior_is_in_the_network_and_the_additive_form(fitted_pair):
    _, _, fits = fitted_pair
    layer = fits[True].model_.get_layer("item_bias")
    assert np.abs(layer.prior.numpy()).max() > 0.01
    assert layer.penalty.numpy().max() > 0
    # Off: no prior, no penalty (the plain bias started at zero).
    off = fits[False].model_.get_layer("item_bias")
    assert not off.prior.numpy().any() and not off.penalty.numpy().any()


def test_exported_and_in_process_predictions_are_equal(fitted_pair, tmp_path):
    X, _, fits = fitted_pair
    est = fits[True]
    est.export(tmp_path / "served")
    served = tf.saved_model.load(str(tmp_path / "served"))
    users = np.r_[X["user_id"].to_numpy()[:30], [10**9, 10**9]]
    items = np.r_[X["item_id"].to_numpy()[:30], [LONER, 10**9]]
    out = served.signatures["predict"](user=tf.constant(users, tf.int64),
                                       item=tf.constant(items, tf.int64))["rating"]
    expected = est.predict(pd.DataFrame({"user_id": users, "item_id": items}))
    np.testing.assert_allclose(out.numpy().ravel(), expected, rtol=0, atol=1e-5)


def test_save_load_and_joblib_keep_the_prior(fitted_pair, tmp_path):
    X, _, fits = fitted_pair
    est = fits[True]
    expected = est.predict(X)
    est.save(tmp_path / "model.skembedrec")
    loaded = EmbeddingRatingRegressor.load(tmp_path / "model.skembedrec")
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    unpickled = joblib.load(buffer)
    for back in (loaded, unpickled):
        np.testing.assert_allclose(back.predict(X), expected, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(back.model_.get_layer("user_bias").prior.numpy(),
                                      est.model_.get_layer("user_bias").prior.numpy())


def test_partial_fit_gives_a_new_id_a_prior_and_its_penalty(prior):
    prior(True)
    X, y = make_ratings(n_users=60, n_items=80, n_ratings=3000, random_state=0)
    est = EmbeddingRatingRegressor(**PARAMS).fit(X, y)
    items = np.arange(20)
    newcomer = pd.DataFrame({"user_id": 1000, "item_id": items})
    fallback = est.predict(newcomer)
    old_prior = est.model_.get_layer("user_bias").prior.numpy()
    est.partial_fit(newcomer, fallback - 1.0)
    layer = est.model_.get_layer("user_bias")
    row = est.encoder_.n_users - 1  # the new user's code: the last before the reserved row
    # Its prior moved by the damped mean residual, -20 / (20 + 10) stars (in scaler units);
    # the known users' priors are kept.
    shift = (layer.prior.numpy()[row] - old_prior[-1]) * est.regressor_.transformer_.scale_[0]
    assert -0.8 < shift < -0.55
    np.testing.assert_array_equal(layer.prior.numpy()[:row], old_prior[:-1])
    assert layer.penalty.numpy()[row] == pytest.approx(DAMPING["user"] / len(items))
    assert (est.predict(newcomer) - fallback).mean() < -0.5


def test_a_file_saved_before_the_prior_loads_and_continues():
    """Files written before the prior have plain bias tables: they predict as saved, and a
    partial_fit continues them (no prior, unpenalised biases, as they were trained)."""
    expected = np.load(FIXTURES / "model_v3_expected.npz")
    est = EmbeddingRatingRegressor.load(FIXTURES / "model_v3.skembedrec")
    assert not isinstance(est.model_.get_layer("user_bias"), DampedBias)
    X = pd.DataFrame({"user_id": expected["users"].astype(object), "item_id": expected["items"]})
    np.testing.assert_allclose(est.predict(X), expected["predictions"], rtol=0, atol=1e-6)
    newcomer = pd.DataFrame({"user_id": "newcomer", "item_id": expected["items"][:8]})
    fallback = est.predict(newcomer)
    est.partial_fit(newcomer, fallback - 1.0)
    assert isinstance(est.model_.get_layer("user_bias"), DampedBias)
    assert (est.predict(newcomer) - fallback).mean() < -0.3
    known = est.predict(X)
    assert np.isfinite(known).all()
    assert np.abs(known - expected["predictions"]).max() < 0.3


def test_set_damped_biases_writes_the_prior_and_the_penalty_per_id():
    model = build_network(NetworkConfig(n_users=3, n_items=4, n_factors=2))
    users, items, ratings = np.array([0, 1, 2, 2]), np.array([0, 1, 3, 3]), np.array([5., 3, 1, 3])
    set_damped_biases(model, users, items, ratings, scale=2.0, penalty=1.0)
    item_layer = model.get_layer("item_bias")
    prior, penalty = item_layer.prior.numpy(), item_layer.penalty.numpy()
    # Item 0: (5 - 3) / (1 + 25) stars, in units of the scale; item 3: (-2 + 0) / (2 + 25).
    np.testing.assert_allclose(prior[[0, 3]], [2 / 26 / 2, -2 / 27 / 2], rtol=1e-6)
    # Item 2 (no rating) and the reserved row: the mean prior of the rated items.
    np.testing.assert_allclose(prior[[2, 4]], prior[[0, 1, 3]].mean(), rtol=1e-6)
    np.testing.assert_allclose(penalty, [25, 25, 0, 12.5, 1.0])
    assert item_layer.penalised
    set_damped_biases(model, users, items, ratings, scale=2.0, penalty=0.0)
    assert not item_layer.penalised and not item_layer.penalty.numpy().any()
