"""The Keras network: the seed notebook's architecture, the (n, 1) output shape, the
implicit-feedback layers (training paths, serving cache), the ensemble members, and predict
as the fitted model itself."""

import pickle

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import NOTEBOOK

from skembedrec import EmbeddingRatingRegressor
from skembedrec._layers import EnsembleMean, ImplicitFeedback, _PairMatrix
from skembedrec._network import (
    NetworkConfig,
    build_network,
    fill_unknown_rows,
    set_training_pairs,
)


def _shapes(model):
    return {w.path: tuple(w.shape) for w in model.weights}


def test_notebook_network_reached_by_parameters_on_movielens(ml100k):
    """Layer sizes match the notebook's summary: 943x64 and 1682x64 embeddings (+1 row each
    for unknown ids), Dense 128->32, 32->1."""
    sample = ml100k.sample(5000, random_state=0)
    # Every user and item must appear for the table sizes to be the full ML-100k ones.
    firsts = ml100k.drop_duplicates("user_id").index.union(ml100k.drop_duplicates("movie_id").index)
    data = ml100k.loc[firsts.union(sample.index)]
    settings = {**NOTEBOOK, "epochs": 1}
    est = EmbeddingRatingRegressor(item_col="movie_id", random_state=0, **settings)
    assert {key: est.get_params()[key] for key in settings} == settings  # tunable parameters
    est.fit(data[["user_id", "movie_id"]], data["rating"])
    shapes = _shapes(est.model_)
    assert shapes["user_embedding/embeddings"] == (943 + 1, 64)
    assert shapes["item_embedding/embeddings"] == (1682 + 1, 64)
    assert shapes["hidden_0/kernel"] == (128, 32)
    assert shapes["mlp_output/kernel"] == (32, 1)
    assert len(shapes) == 6  # two tables, two Dense layers with biases: nothing else
    # No implicit feedback, biases or dot product: exactly the notebook's layers.
    assert not any(isinstance(layer, ImplicitFeedback) for layer in est.model_.layers)
    assert "MemberDots" not in {type(layer).__name__ for layer in est.model_.layers}
    rates = [layer.rate for layer in est.model_.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == [0.1, 0.5]
    assert est.model_.output_shape == (None, 1)


def test_the_keras3_broadcasting_trap_is_real_and_avoided():
    """An (n, 1, 1) output against an (n,) target gives the wrong loss in Keras 3."""
    y_true = np.array([0.0, 1.0, 2.0, 3.0], dtype="float32")
    y_pred = y_true.reshape(-1, 1)
    mse = keras.losses.MeanSquaredError()
    assert float(mse(y_true, y_pred)) == pytest.approx(0.0)
    assert float(mse(y_true, y_pred.reshape(-1, 1, 1))) > 1.0  # (n, 1, n) broadcast
    model = build_network(NetworkConfig(n_users=3, n_items=4, n_factors=4, hidden_units=(4,)))
    assert model.output_shape == (None, 1)
    assert model(np.array([[0, 1], [2, 3]], dtype="int32")).shape == (2, 1)


@pytest.mark.slow
def test_notebook_network_really_learns(ratings):
    """Training loss falls well below the target variance (1.0 once standardised)."""
    X, y = ratings
    est = EmbeddingRatingRegressor(random_state=0,
                                   **{**NOTEBOOK, "n_factors": 16, "epochs": 8})
    est.fit(X, y)
    variance = float(np.var(y))
    assert est.history_["loss"][-1] < 0.7 * variance


def _implicit_model(implicit=True, jit_compile=False):
    pairs = np.array([[0, 0], [0, 2], [1, 1], [1, 2], [1, 2], [2, 3]], dtype=np.int32)
    model = build_network(NetworkConfig(
        n_users=3, n_items=4, n_factors=4, dropout=0.0, embedding_dropout=0.0, l2=0.1,
        implicit=implicit, jit_compile=jit_compile,
    ))
    set_training_pairs(model, pairs[:, 0], pairs[:, 1])
    return model, pairs


def test_implicit_vectors_are_normalised_sums_of_the_rated_items():
    model, _ = _implicit_model()
    layer = model.get_layer("user_implicit")
    table = layer.embeddings.numpy()
    got = layer(np.array([0, 1, 2, 3], dtype=np.int32), training=True).numpy()
    expected = np.stack([
        (table[0] + table[2]) / np.sqrt(2),
        (table[1] + table[2]) / np.sqrt(2),  # the duplicate (1, 2) pair counts once
        table[3],
        np.zeros(4),  # the reserved unknown-user row has no pairs
    ])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # The inference path (fresh vectors while the serving cache is stale) agrees.
    np.testing.assert_allclose(layer(np.array([2, 0, 2]), training=False).numpy(),
                               expected[[2, 0, 2]], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["user_implicit", "item_implicit"])
def test_sparse_dense_and_gathered_training_paths_agree(name, monkeypatch):
    """Training multiplies the pair matrix by the vector table as a CSR sparse product;
    under jit_compile (XLA has no CSR kernel) a small matrix is multiplied dense and a large
    one gathered and summed by segment. All three give the same vectors and gradients."""
    sparse_model, _ = _implicit_model()
    xla_model, _ = _implicit_model(jit_compile=True)
    xla_model.set_weights(sparse_model.get_weights())
    codes = np.array([3, 0, 2, 2, 1], dtype=np.int32)

    def vectors_and_gradient(model):
        layer = model.get_layer(name)
        with tf.GradientTape() as tape:
            vectors = layer(codes, training=True)
            loss = tf.reduce_sum(tf.square(vectors) * tf.range(1.0, 6.0)[:, None])
        return vectors.numpy(), tape.gradient(loss, layer.embeddings)

    sparse = vectors_and_gradient(sparse_model)
    dense = vectors_and_gradient(xla_model)
    monkeypatch.setattr(_PairMatrix, "_MAX_DENSE_CELLS", 0)  # now gathered and summed
    gathered = vectors_and_gradient(xla_model)
    assert not sparse_model.get_layer(name).xla and xla_model.get_layer(name).xla
    for other in (dense, gathered):
        np.testing.assert_allclose(sparse[0], other[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(tf.convert_to_tensor(sparse[1]).numpy(),
                                   tf.convert_to_tensor(other[1]).numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(tf.convert_to_tensor(sparse[1]).numpy()).sum() > 0


def test_large_sparse_data_trains_with_the_sparse_product():
    """Above 2**24 pair cells the CSR product is still used (gathering each batch's pairs
    was 16x slower at 1M ratings); only XLA falls back to gathering."""
    rng = np.random.RandomState(0)
    rows, columns = rng.randint(0, 5000, 3000), rng.randint(0, 4000, 3000)
    layer = ImplicitFeedback(5001, 4001, 4)
    layer.build(None)
    layer.set_pairs(rows, columns)
    assert layer.n_rows * layer.n_columns > _PairMatrix._MAX_DENSE_CELLS
    with tf.GradientTape() as tape:
        vectors = layer(rows[:64].astype("int32"), training=True)
        loss = tf.reduce_sum(tf.square(vectors))
    gradient = tape.gradient(loss, layer.embeddings)
    assert not isinstance(gradient, tf.IndexedSlices)  # the product, not a gather
    assert np.abs(gradient.numpy()).sum() > 0


def test_serving_cache_is_refreshed_after_fit_and_stale_after_training():
    model, _ = _implicit_model()
    layer = model.get_layer("item_implicit")
    codes = np.array([0, 1, 2, 3], dtype=np.int32)
    fill_unknown_rows(model)
    assert float(layer.cache_is_fresh.numpy()) == 1.0
    np.testing.assert_allclose(layer.cached_vectors.numpy()[codes],
                               layer(codes, training=True).numpy(), rtol=1e-5, atol=1e-6)
    assert float(layer.cache_is_fresh.numpy()) == 0.0  # a training call marks it stale
    layer.embeddings.assign(layer.embeddings.numpy() + 1.0)
    np.testing.assert_allclose(layer(codes, training=False).numpy(),
                               layer(codes, training=True).numpy(), rtol=1e-5, atol=1e-6)


def test_unknown_user_row_includes_the_mean_implicit_vector():
    model, _ = _implicit_model()
    fill_unknown_rows(model)
    explicit = model.get_layer("user_embedding").embeddings.numpy()
    implicit = model.get_layer("user_implicit").cached_vectors.numpy()
    np.testing.assert_allclose(explicit[-1], explicit[:-1].mean(0) + implicit[:-1].mean(0),
                               rtol=1e-5, atol=1e-6)


def test_fitted_ensemble_serves_from_fresh_caches_and_survives_pickle(ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(n_factors=4, epochs=2, implicit=True, n_estimators=2,
                                   random_state=0).fit(X, y)
    implicit = [layer for layer in est.model_.layers if isinstance(layer, ImplicitFeedback)]
    # The two members share each table side by side: 2 x 4 columns.
    assert sorted((layer.name, layer.output_dim) for layer in implicit) == [
        ("item_implicit", 8), ("user_implicit", 8)]
    assert all(float(layer.cache_is_fresh.numpy()) == 1.0 for layer in implicit)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(clone.predict(X.head(50)), est.predict(X.head(50)), rtol=1e-6)


def test_ensemble_loss_is_the_mean_of_the_members_losses():
    """EnsembleMean's spread term turns the loss of the mean into the members' mean loss,
    so each member is trained as if alone."""
    members = [np.array([[1.0], [2.0]]), np.array([[3.0], [0.0]]), np.array([[2.0], [4.0]])]
    y = np.array([[2.5], [1.0]])
    layer = EnsembleMean()
    mean = layer(np.hstack(members), training=True).numpy()
    np.testing.assert_allclose(mean, np.mean(members, axis=0))
    total = np.mean((y - mean) ** 2) + float(layer.losses[0])
    assert total == pytest.approx(np.mean([np.mean((y - m) ** 2) for m in members]))


def test_members_are_independent_column_blocks_of_the_tables():
    """Member m owns columns [m*k, (m+1)*k) of every table: its prediction is the dot
    product of those columns only, and the penalty is l2 / n_estimators per member."""
    model = build_network(NetworkConfig(
        n_users=3, n_items=4, n_factors=2, dropout=0.0, embedding_dropout=0.0,
        use_bias=False, l2=0.3, n_estimators=3,
    ))
    users = model.get_layer("user_embedding").embeddings.numpy()
    items = model.get_layer("item_embedding").embeddings.numpy()
    assert users.shape == (4, 6) and items.shape == (5, 6)
    assert model.get_layer("user_embedding").l2 == pytest.approx(0.1)
    codes = np.array([[0, 3], [2, 1]], dtype=np.int32)
    members = model.get_layer("dot").output
    per_member = keras.Model(model.input, members)(codes, training=False).numpy()
    expected = [[users[u, 2 * m:2 * m + 2] @ items[i, 2 * m:2 * m + 2] for m in range(3)]
                for u, i in codes]
    np.testing.assert_allclose(per_member, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model(codes, training=False).numpy()[:, 0],
                               np.mean(expected, axis=1), rtol=1e-5, atol=1e-7)


def test_predict_is_the_fitted_keras_model_de_standardised(ratings):
    """predict's fast path (a concrete tf.function of model_) is the Keras model itself:
    the same outputs as calling model_ and as model_.predict, mapped back to stars."""
    X, y = ratings
    est = EmbeddingRatingRegressor(n_factors=4, epochs=2, random_state=0).fit(X, y)
    pairs = X.head(200)
    codes = est.encoder_.encode(pairs["user_id"].to_numpy(), pairs["item_id"].to_numpy())
    scaler = est.regressor_.transformer_
    for scaled in (est.model_(codes.astype("int32"), training=False).numpy(),
                   est.model_.predict(codes.astype("int32"), verbose=0)):
        expected = np.clip(scaler.inverse_transform(scaled)[:, 0], est.rating_min_,
                           est.rating_max_)
        np.testing.assert_allclose(est.predict(pairs), expected, rtol=1e-5)


def test_implicit_false_removes_the_layers(ratings):
    model, _ = _implicit_model(implicit=False)
    assert not any(isinstance(layer, ImplicitFeedback) for layer in model.layers)
