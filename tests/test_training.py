"""Training features: sample weights, early stopping, warm start, partial_fit, verbosity."""

import keras
import numpy as np
import pandas as pd
import pytest
import sklearn
import tensorflow as tf
from conftest import FAST
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skembedrec import EmbeddingRatingRegressor
from skembedrec._optimization import RatingModel
from skembedrec._training import validation_split


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


# -- sample weights -------------------------------------------------------------------------


def _with_zero_weight_rows(X, y, rng):
    """X, y plus 200 weight-0 rows: noise on known pairs, and a user and an item of their own."""
    extra = X.sample(200, random_state=0).reset_index(drop=True)
    extra.loc[:20, "user_id"] = 10_000
    extra.loc[21:40, "item_id"] = 20_000
    X_all = pd.concat([X, extra], ignore_index=True)
    y_all = pd.concat([y, pd.Series(rng.uniform(1, 5, len(extra)))], ignore_index=True)
    weights = np.r_[np.ones(len(X)), np.zeros(len(extra))]
    return X_all, y_all, weights


def test_zero_weight_rows_do_not_influence_the_model(ratings, rng):
    X, y = ratings
    X_all, y_all, weights = _with_zero_weight_rows(X, y, rng)
    with_zeros = EmbeddingRatingRegressor(**FAST).fit(X_all, y_all, sample_weight=weights)
    without = EmbeddingRatingRegressor(**FAST).fit(X, y, sample_weight=np.ones(len(X)))
    np.testing.assert_array_equal(with_zeros.predict(X), without.predict(X))
    assert with_zeros.history_ == without.history_
    np.testing.assert_array_equal(with_zeros.encoder_.user_ids, without.encoder_.user_ids)
    # Ids seen only in weight-0 rows stay unknown.
    assert not with_zeros.is_known([[10_000, 0], [0, 20_000]])[[0, 1], [0, 1]].any()


def test_sample_weights_weight_the_loss_and_the_target_scaling(ratings):
    X, y = ratings
    weights = np.where(X["user_id"] < 30, 3.0, 1.0)
    est = EmbeddingRatingRegressor(**FAST).fit(X, y, sample_weight=weights)
    scaler = est.regressor_.transformer_
    assert scaler.mean_[0] == pytest.approx(np.average(y, weights=weights))
    plain = EmbeddingRatingRegressor(**FAST).fit(X, y)
    assert not np.allclose(est.predict(X), plain.predict(X))


@pytest.mark.parametrize(
    "weights, message",
    # All zero: scikit-learn >= 1.7 refuses them first ("non-zero"), older releases leave
    # it to the estimator's own check.
    [(np.zeros(3000), "non-zero|All sample weights are zero"), (-np.ones(3000), "(?i)negative")],
)
def test_bad_sample_weights_are_refused(ratings, weights, message):
    X, y = ratings
    with pytest.raises(ValueError, match=message):
        EmbeddingRatingRegressor(**FAST).fit(X, y, sample_weight=weights)


def test_sample_weight_is_routed_through_pipeline_and_grid_search(ratings, rng):
    X, y = ratings
    X_all, y_all, weights = _with_zero_weight_rows(X, y, rng)
    with sklearn.config_context(enable_metadata_routing=True):
        est = EmbeddingRatingRegressor(**FAST).set_fit_request(sample_weight=True)
        est.set_score_request(sample_weight=True)  # GridSearchCV scores with the weights too
        pipe = Pipeline([("model", est)]).fit(X_all, y_all, sample_weight=weights)
        # The weight-0 user only stays unknown if the weights arrived.
        assert not pipe[-1].is_known([[10_000, 0]])[0, 0]

        search = GridSearchCV(est, {"n_factors": [4]}, cv=2)
        search.fit(X_all, y_all, sample_weight=weights)
        assert not search.best_estimator_.is_known([[10_000, 0]])[0, 0]

        est.set_partial_fit_request(sample_weight=True)
        assert est.get_metadata_routing().partial_fit.requests["sample_weight"] is True


# -- early stopping -------------------------------------------------------------------------


def _early_stopping(**params):
    settings = {**FAST, "epochs": 30, "early_stopping": True, "validation_fraction": 0.2,
                "n_iter_no_change": 2}
    return EmbeddingRatingRegressor(**{**settings, **params})


def test_early_stopping_keeps_the_best_epoch(ratings):
    X, y = ratings
    est = _early_stopping().fit(X, y)
    history = est.history_
    assert set(history) >= {"loss", "mse", "val_loss", "val_mse"}
    assert est.n_iter_ == len(history["loss"]) == len(history["val_mse"]) < 30
    best = int(np.argmin(history["val_mse"]))
    assert est.best_epoch_ == best + 1
    # Stopped n_iter_no_change epochs after the last real improvement, at the latest.
    assert est.n_iter_ <= est.best_epoch_ + 2
    # The restored weights are the best epoch's: their MSE on the validation slice (in
    # stars², from predict) is the logged best validation MSE (predict clips, so <=).
    _, validation = validation_split(len(X), 0.2, 0)
    val_mse = rmse(est.predict(X.iloc[validation]), y.iloc[validation]) ** 2
    assert val_mse <= history["val_mse"][best] * (1 + 1e-4)
    assert val_mse == pytest.approx(history["val_mse"][best], rel=0.02)
    # The last epoch's weights were not kept when it was worse.
    assert history["val_mse"][-1] > history["val_mse"][best]


def test_early_stopping_tol_and_n_iter_no_change(ratings):
    X, y = ratings
    # No epoch improves by 100 stars²: the first epoch sets the reference, then 3 epochs.
    est = _early_stopping(tol=100.0, n_iter_no_change=3).fit(X, y)
    assert est.n_iter_ == 4


def test_validation_slice_is_seeded_and_only_from_training_data(ratings):
    X, y = ratings
    first = _early_stopping(epochs=1).fit(X, y)
    other = _early_stopping(epochs=1, random_state=1).fit(X, y)
    assert first.history_["val_mse"] != other.history_["val_mse"]
    train, validation = validation_split(len(X), 0.2, 0)
    assert len(validation) == 600 and not set(train) & set(validation)
    np.testing.assert_array_equal(validation_split(len(X), 0.2, 0)[1], validation)
    # The held-out pairs are not trained on, but the user rated them: seen_ holds them all
    # (the implicit term's pairs are tested below).
    codes = first.encoder_.encode(X["user_id"].to_numpy(), X["item_id"].to_numpy())
    expected = {tuple(pair) for pair in codes.tolist()}
    assert set(zip(*(c.tolist() for c in first.seen_.nonzero()), strict=True)) == expected
    with pytest.raises(ValueError, match="leaves no training ratings"):
        _early_stopping(validation_fraction=0.9).fit(X.head(3), y.head(3))


def test_ids_only_in_the_validation_slice_predict_as_unknown_ids(ratings):
    X, y = ratings
    X = X.copy()
    _, validation = validation_split(len(X), 0.2, 0)
    X.loc[validation[:3], "user_id"] = 777  # a user rated only in the validation slice
    est = _early_stopping(epochs=3).fit(X, y)
    assert est.is_known([[777, 0]])[0, 0]
    items = np.arange(10)
    solo = est.predict(pd.DataFrame({"user_id": 777, "item_id": items}))
    unknown = est.predict(pd.DataFrame({"user_id": -1, "item_id": items}))
    np.testing.assert_allclose(solo, unknown, atol=1e-6)


# -- warm start -----------------------------------------------------------------------------


def test_warm_start_continues_from_the_learned_weights(ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST).fit(X, y)
    first_mse = list(est.history_["mse"])
    est.set_params(warm_start=True).fit(X, y)
    assert est.n_iter_ == 4
    assert est.history_["mse"][:2] == first_mse
    # Training goes on where it stopped: the third epoch beats the second.
    assert est.history_["mse"][2] < first_mse[1]
    # With a negligible learning rate, a warm start keeps the predictions; a cold start
    # (warm_start=False) gives an untrained network's (its biases the damped baseline's).
    learned = est.predict(X)
    est.set_params(learning_rate=1e-9).fit(X, y)
    assert rmse(est.predict(X), learned) < 1e-3
    est.set_params(warm_start=False).fit(X, y)
    assert est.n_iter_ == 2
    assert rmse(est.predict(X), learned) > 0.1


def test_warm_start_refuses_a_changed_architecture(ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="architecture parameters"):
        est.set_params(n_factors=4).fit(X, y)
    assert est.n_factors == 4 and est.n_iter_ == 2  # the failed fit changed nothing fitted


# -- partial_fit ----------------------------------------------------------------------------


def _split_new_users(X, y, first_new_user):
    """(old X, old y), the new users' first half (to learn) and second half (to test)."""
    old = (X["user_id"] < first_new_user).to_numpy()
    new = np.flatnonzero(~old)
    learn = new[X.iloc[new].groupby("user_id").cumcount().to_numpy() % 2 == 0]
    test = np.setdiff1d(new, learn)
    return (X[old], y[old]), (X.iloc[learn], y.iloc[learn]), (X.iloc[test], y.iloc[test])


def test_partial_fit_adds_new_users_and_personalises_them(ratings):
    X, y = ratings
    (X_old, y_old), (X_learn, y_learn), (X_test, y_test) = _split_new_users(X, y, 50)
    est = EmbeddingRatingRegressor(**{**FAST, "epochs": 5}).fit(X_old, y_old)
    old_ids = est.encoder_.user_ids.copy()
    before_known = est.predict(X_old)
    fallback = est.predict(X_test)  # the new users are unknown: fallback predictions
    assert not est.is_known(X_test)[:, 0].any()
    for _ in range(4):
        est.partial_fit(X_learn, y_learn)
    assert est.is_known(X_test)[:, 0].all()
    assert est.n_users_ == 60 and est.n_iter_ == 9
    np.testing.assert_array_equal(est.encoder_.user_ids[:50], old_ids)  # codes unchanged
    assert est.seen_.shape == (est.n_users_, est.n_items_)
    assert est.seen_.sum() == len(pd.concat([X_old, X_learn]).drop_duplicates())
    personal = est.predict(X_test)
    assert rmse(personal, y_test) < rmse(fallback, y_test) - 0.015  # measured 0.796 -> 0.775
    moved_known = np.abs(est.predict(X_old) - before_known).mean()  # measured 0.018
    moved_new = np.abs(personal - fallback).mean()
    assert moved_known < 0.05 and moved_known < 0.5 * moved_new


def test_partial_fit_on_an_unfitted_estimator_is_a_one_epoch_fit(ratings):
    X, y = ratings
    partial = EmbeddingRatingRegressor(**FAST).partial_fit(X, y)
    full = EmbeddingRatingRegressor(**{**FAST, "epochs": 1}).fit(X, y)
    assert partial.n_iter_ == 1
    np.testing.assert_array_equal(partial.predict(X), full.predict(X))


def test_partial_fit_keeps_the_optimizer_state_and_scaler(ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST).fit(X, y)
    steps = int(est.model_.optimizer.iterations.numpy())
    scaler = est.regressor_.transformer_
    mean, scale = scaler.mean_.copy(), scaler.scale_.copy()
    est.partial_fit(X.head(512), y.head(512) + 2)  # shifted ratings must not refit the scaler
    assert int(est.model_.optimizer.iterations.numpy()) == steps + 2
    np.testing.assert_array_equal(est.regressor_.transformer_.mean_, mean)
    np.testing.assert_array_equal(est.regressor_.transformer_.scale_, scale)
    assert est.rating_max_ == pytest.approx(float(y.max()) + 2)


def test_partial_fit_refuses_ids_of_another_kind(fitted, ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST).fit(X, y)
    with pytest.raises(TypeError, match="another kind"):
        est.partial_fit(pd.DataFrame({"user_id": ["ann"], "item_id": [0]}), [4.0])
    assert est.n_iter_ == 2


def test_partial_fit_on_movielens_personalises_unseen_users(ml100k):
    data = ml100k.rename(columns={"movie_id": "item_id"})
    X, y = data[["user_id", "item_id"]], data["rating"]
    (X_old, y_old), (X_learn, y_learn), (X_test, y_test) = _split_new_users(X, y, 901)
    params = {**FAST, "n_factors": 16, "hidden_units": (), "epochs": 3, "batch_size": 2048}
    est = EmbeddingRatingRegressor(**params).fit(X_old, y_old)
    sample = X_old.sample(2000, random_state=0)
    before_known = est.predict(sample)
    fallback = est.predict(X_test)
    for _ in range(3):
        est.partial_fit(X_learn, y_learn)
    personal = est.predict(X_test)
    # Measured 0.994 -> 0.955 (the fallback is the damped-bias start of the biases; it was
    # 0.998 when they started at zero).
    assert rmse(personal, y_test) < rmse(fallback, y_test) - 0.03
    assert np.abs(est.predict(sample) - before_known).mean() < 0.06  # measured 0.042


# -- verbosity ------------------------------------------------------------------------------


def test_verbose_0_prints_nothing_and_verbose_1_shows_progress(ratings, capfd):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST, early_stopping=True)
    est.fit(X, y).predict(X)
    est.partial_fit(X.head(100), y.head(100))
    est.set_params(warm_start=True).fit(X, y)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    EmbeddingRatingRegressor(**FAST, verbose=1).fit(X, y)
    out, err = capfd.readouterr()
    assert "Epoch 1/2" in out + err and "Epoch 2/2" in out + err


def test_fit_traces_the_training_step_once(ratings, monkeypatch):
    """Keras creates the optimizer's slots during the first trace of the training step
    unless they exist, and tf.function then traces the step again (~1.5 s of a MovieLens
    fit); the slots are built before training."""
    traces = []
    train_step = RatingModel.train_step

    def counted(self, data):
        traces.append(len(data))
        return train_step(self, data)

    monkeypatch.setattr(RatingModel, "train_step", counted)
    X, y = ratings
    EmbeddingRatingRegressor(**{**FAST, "implicit": True, "n_estimators": 2}).fit(X, y)
    assert len(traces) == 1


def _assert_implicit_sums_over(model, pairs, n_users):
    """The served user implicit vectors are the normalised sums over ``pairs``, nothing more."""
    layer = model.get_layer("user_implicit")
    table, cached = layer.embeddings.numpy(), layer.cached_vectors.numpy()
    for user in range(n_users):
        items = sorted(item for u, item in pairs if u == user)
        want = table[items].sum(axis=0) / np.sqrt(len(items)) if items else 0.0
        np.testing.assert_allclose(cached[user], want, rtol=1e-5, atol=1e-6)


def test_validation_pairs_are_seen_but_never_enter_the_implicit_term(ratings):
    """Every pair given to fit is in seen_ (recommend skips it); the pairs held out for
    early stopping stay out of the implicit term, in the first fit and in a warm start."""
    X, y = ratings
    first_half, second_half = X.index < 2000, X.index >= 2000
    est = EmbeddingRatingRegressor(n_factors=4, epochs=1, random_state=0, early_stopping=True,
                                   validation_fraction=0.3, n_estimators=1, implicit=True)
    est.fit(X[first_half], y[first_half])
    pairs = {}
    for name, part, seed in (("first", X[first_half], 0), ("second", X[second_half], 1)):
        train, _ = validation_split(len(part), 0.3, seed)
        codes = est.encoder_.extended(part["user_id"].to_numpy(), part["item_id"].to_numpy()
                                      ).encode(part["user_id"].to_numpy(),
                                               part["item_id"].to_numpy())
        pairs[name] = ({tuple(pair) for pair in codes.tolist()},
                       {tuple(pair) for pair in codes[train].tolist()})
    seen = set(zip(*(c.tolist() for c in est.seen_.nonzero()), strict=True))
    assert seen == pairs["first"][0] and len(pairs["first"][1]) < len(seen)
    _assert_implicit_sums_over(est.model_, pairs["first"][1], est.n_users_)

    est.set_params(warm_start=True, random_state=1).fit(X[second_half], y[second_half])
    seen = set(zip(*(c.tolist() for c in est.seen_.nonzero()), strict=True))
    assert seen == pairs["first"][0] | pairs["second"][0]
    # The first fit's held-out pairs count as trained on once a later fit continues it.
    _assert_implicit_sums_over(est.model_, pairs["first"][0] | pairs["second"][1],
                               est.n_users_)


def test_recommend_never_suggests_a_pair_given_to_fit_with_early_stopping(ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST, early_stopping=True, validation_fraction=0.3)
    est.fit(X, y)
    users = X["user_id"].unique()
    suggested = est.recommend(users, n=10)
    rated = set(zip(X["user_id"].tolist(), X["item_id"].tolist(), strict=True))
    pairs = set(zip(suggested["user_id"].tolist(), suggested["item_id"].tolist(),
                    strict=True))
    assert len(pairs) == len(suggested) > 0 and not pairs & rated


def test_callbacks_run_on_copies_and_keep_the_estimator_cloneable(ratings):
    """A Keras callback given as a parameter sees every epoch; the object itself is never
    attached to a model, so clone and pickle of the estimator stay cheap and safe."""
    X, y = ratings
    epochs_seen: list[int] = []
    callback = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epochs_seen.append(epoch))
    est = EmbeddingRatingRegressor(**{**FAST, "epochs": 3}, callbacks=[callback]).fit(X, y)
    assert epochs_seen == [0, 1, 2]
    assert getattr(callback, "model", None) is None
    assert sklearn.base.clone(est).get_params()["callbacks"][0] is not callback
    est.set_params(warm_start=True).fit(X, y)
    assert epochs_seen == [0, 1, 2, 3, 4, 5]  # numbered on, as the history is
    with pytest.raises(ValueError, match="callbacks"):
        EmbeddingRatingRegressor(callbacks="not a list").fit(X, y)


def test_the_exported_recommend_skips_the_validation_pairs_too(ratings, tmp_path):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST, early_stopping=True, validation_fraction=0.3)
    est.fit(X, y).export(tmp_path / "m")
    users = np.sort(X["user_id"].unique())[:20]
    out = tf.saved_model.load(str(tmp_path / "m")).signatures["recommend"](
        user=tf.constant(users, tf.int64), k=tf.constant(10))
    rated = set(zip(X["user_id"].tolist(), X["item_id"].tolist(), strict=True))
    served = {(int(user), int(item)) for user, items, valid in
              zip(users, out["items"].numpy(), out["valid"].numpy(), strict=True)
              for item, ok in zip(items, valid, strict=True) if ok}
    assert served and not served & rated
