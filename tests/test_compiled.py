"""Compiled epochs (skembedrec._compiled): the promises of Keras' fit, kept.

Each compiled fit pays an XLA compile (seconds): most tests here are in the long suite.
"""

import keras
import numpy as np
import pytest
from tensorflow.python.framework import config as tf_config

from skembedrec import EmbeddingRatingRegressor
from skembedrec._compiled import _epoch_order, compiles
from skembedrec.datasets import make_ratings

# Compiled epochs at any size (jit_compile=True); no implicit term (it keeps Keras' fit).
SETTINGS = dict(n_factors=8, hidden_units=(), epochs=3, batch_size=512, random_state=0,
                implicit=False, n_estimators=1, jit_compile=True)


@pytest.fixture(scope="module")
def ratings():
    X, y = make_ratings(n_users=120, n_items=80, n_ratings=3_000, random_state=0)
    return X, y.to_numpy()


@pytest.fixture(scope="module")
def compiled(ratings):
    return EmbeddingRatingRegressor(**SETTINGS).fit(*ratings)


def _rmse(est, X, y):
    return float(np.sqrt(np.mean((est.predict(X) - y) ** 2)))


def test_epoch_order_covers_every_row_and_fills_the_last_batch():
    order = _epoch_order(10, 12, seed=0, epoch=0)
    assert len(order) == 12 and set(order) == set(range(10))
    assert list(order[10:]) == list(order[:2])
    assert sorted(_epoch_order(3, 8, seed=0, epoch=1)[:3]) == [0, 1, 2]  # repeated rows
    assert not np.array_equal(_epoch_order(100, 100, 0, 0), _epoch_order(100, 100, 0, 1))
    assert np.array_equal(_epoch_order(100, 100, 0, 1), _epoch_order(100, 100, 0, 1))


def test_seeded_compiled_fits_are_identical_and_leave_the_process_as_it_was(ratings,
                                                                           compiled):
    determinism = tf_config.is_op_determinism_enabled()
    again = EmbeddingRatingRegressor(**SETTINGS).fit(*ratings)
    assert tf_config.is_op_determinism_enabled() == determinism
    for before, after in zip(compiled.model_.get_weights(), again.model_.get_weights(),
                             strict=True):
        np.testing.assert_array_equal(before, after)
    assert compiled.history_ == again.history_
    other = EmbeddingRatingRegressor(**{**SETTINGS, "random_state": 1}).fit(*ratings)
    assert not np.array_equal(other.predict(ratings[0]), compiled.predict(ratings[0]))


@pytest.mark.slow  # an XLA compile per fit: seconds each
def test_compiled_epochs_learn_as_well_as_keras_fit(ratings, compiled):
    X, y = ratings
    keras_fit = EmbeddingRatingRegressor(**{**SETTINGS, "jit_compile": False}).fit(X, y)
    assert compiled.model_.jit_compile is False  # Keras' own flag: not its step
    assert len(compiled.history_["loss"]) == 3 and "mse" in compiled.history_
    assert compiled.history_["loss"][-1] < compiled.history_["loss"][0]
    assert _rmse(compiled, X, y) < np.std(y)
    assert abs(_rmse(compiled, X, y) - _rmse(keras_fit, X, y)) < 0.05


def test_callbacks_see_every_epoch_and_can_stop_training(ratings):
    seen = []

    class StopAfterTwo(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(("batch", batch))

        def on_epoch_end(self, epoch, logs=None):
            seen.append(("epoch", epoch, sorted(logs)))
            if epoch == 1:
                self.model.stop_training = True

    est = EmbeddingRatingRegressor(**{**SETTINGS, "epochs": 5},
                                   callbacks=[StopAfterTwo()]).fit(*ratings)
    assert est.n_iter_ == 2
    assert [entry for entry in seen if entry[0] == "epoch"] == [
        ("epoch", 0, ["loss", "mse"]), ("epoch", 1, ["loss", "mse"])]
    # 2,700 training rows in batches of 512: 6 steps, one chunk per epoch.
    assert ("batch", 5) in seen


@pytest.mark.slow  # an XLA compile per fit: seconds each
def test_early_stopping_restores_the_best_epoch(ratings):
    est = EmbeddingRatingRegressor(**{**SETTINGS, "epochs": 12, "learning_rate": 0.05},
                                   early_stopping=True, n_iter_no_change=2).fit(*ratings)
    validation = est.history_["val_loss"]
    assert est.best_epoch_ == int(np.argmin(validation)) + 1
    assert est.n_iter_ <= 12


@pytest.mark.slow  # an XLA compile per fit: seconds each
def test_sample_weights_steer_the_compiled_fit(ratings):
    X, y = ratings
    heavy = np.where(np.arange(len(y)) < 300, 50.0, 1.0)
    weighted = EmbeddingRatingRegressor(**{**SETTINGS, "epochs": 6}).fit(X, y, heavy)
    plain = EmbeddingRatingRegressor(**{**SETTINGS, "epochs": 6}).fit(X, y)
    head = slice(0, 300)
    assert (_rmse(weighted, X[head], y[head]) < _rmse(plain, X[head], y[head]))
    scaled = EmbeddingRatingRegressor(**{**SETTINGS, "epochs": 6}).fit(X, y, heavy * 3)
    np.testing.assert_allclose(scaled.predict(X), weighted.predict(X), rtol=1e-5)


@pytest.mark.slow  # an XLA compile per fit: seconds each
def test_warm_start_and_partial_fit_continue_a_compiled_model(ratings, compiled):
    X, y = ratings
    warm = EmbeddingRatingRegressor(**SETTINGS, warm_start=True).fit(X, y).fit(X, y)
    assert warm.n_iter_ == 6
    grown = EmbeddingRatingRegressor(**SETTINGS).fit(X, y)
    new = X.iloc[:50].assign(user_id=X["user_id"].iloc[:50] + 10_000)
    grown.partial_fit(new, y[:50])
    assert grown.n_users_ == compiled.n_users_ + new["user_id"].nunique()
    assert np.isfinite(grown.predict(new)).all()


@pytest.mark.slow  # an XLA compile per fit: seconds each
def test_interrupted_compiled_fit_keeps_the_previous_model(ratings, compiled):
    X, y = ratings
    est = EmbeddingRatingRegressor(**SETTINGS).fit(X, y)
    before = est.predict(X)

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt

    est.set_params(callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    np.testing.assert_array_equal(est.predict(X), before)


@pytest.mark.slow  # an XLA compile per fit: seconds each
def test_verbose_two_shows_keras_progress_bar(ratings, capsys):
    EmbeddingRatingRegressor(**{**SETTINGS, "epochs": 1}, verbose=2).fit(*ratings)
    out = capsys.readouterr().out
    assert "6/6" in out and "Epoch 1/1" in out


@pytest.mark.slow  # an XLA compile per fit: seconds each
def test_networks_with_scheduled_implicit_sums_keep_keras_fit(ratings):
    est = EmbeddingRatingRegressor(**{**SETTINGS, "implicit": True, "epochs": 1,
                                      "jit_compile": "auto"}).fit(*ratings)
    assert not compiles(est.model_, distributed=False)
    assert compiles(EmbeddingRatingRegressor(**SETTINGS).fit(*ratings).model_,
                    distributed=False)
    assert not compiles(est.model_, distributed=True)


@pytest.mark.slow  # an XLA compile per fit: seconds each
def test_every_layer_kind_trains_compiled_and_exports_the_same_predictions(tmp_path):
    import pandas as pd
    import tensorflow as tf

    X, y = make_ratings(n_users=40, n_items=50, n_ratings=1_500, random_state=2)
    X = X.assign(timestamp=946_684_800 + np.arange(len(X)) * 3_600)
    features = pd.DataFrame({"age": np.arange(40) % 7}, index=pd.Index(range(40),
                                                                       name="user_id"))
    est = EmbeddingRatingRegressor(**{**SETTINGS, "hidden_units": (8,), "epochs": 2},
                                   user_features=features, time_col="timestamp").fit(X, y)
    assert compiles(est.model_, distributed=False)
    assert est.history_["loss"][-1] < est.history_["loss"][0]
    est.export(tmp_path / "served")
    predict = tf.saved_model.load(str(tmp_path / "served")).signatures["predict"]
    head = X.iloc[:20]
    out = predict(user=tf.constant(head["user_id"].to_numpy(), tf.int64),
                  item=tf.constant(head["item_id"].to_numpy(), tf.int64),
                  time=tf.constant(head["timestamp"].to_numpy(), tf.float64))
    np.testing.assert_allclose(out["rating"].numpy(), est.predict(head), atol=1e-5)
