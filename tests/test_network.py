"""The Keras network: the seed notebook's architecture and the (n, 1) output shape."""

import keras
import numpy as np
import pytest

from skembedrec import EmbeddingRatingRegressor
from skembedrec._network import build_network

NOTEBOOK = dict(
    n_factors=64,
    hidden_units=(32,),
    dropout=0.5,
    embedding_dropout=0.1,
    use_bias=False,
    dot_product=False,
    l2=0.0,
    learning_rate=1e-3,
    batch_size=64,
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
    est = EmbeddingRatingRegressor(item_col="movie_id", epochs=1, random_state=0, **NOTEBOOK)
    est.fit(data[["user_id", "movie_id"]], data["rating"])
    shapes = _shapes(est.model_)
    assert shapes["user_embedding/embeddings"] == (943 + 1, 64)
    assert shapes["item_embedding/embeddings"] == (1682 + 1, 64)
    assert shapes["hidden_0/kernel"] == (128, 32)
    assert shapes["mlp_output/kernel"] == (32, 1)
    assert len(shapes) == 6  # two tables, two Dense layers with biases: nothing else
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
    model = build_network(
        n_users=3,
        n_items=4,
        n_factors=4,
        hidden_units=(4,),
        dropout=0.5,
        embedding_dropout=0.1,
        use_bias=True,
        dot_product=True,
        l2=0.0,
        learning_rate=1e-3,
    )
    assert model.output_shape == (None, 1)
    assert model(np.array([[0, 1], [2, 3]], dtype="int32")).shape == (2, 1)


def test_notebook_network_really_learns(ratings):
    """Training loss falls well below the target variance (1.0 once standardised)."""
    X, y = ratings
    est = EmbeddingRatingRegressor(
        epochs=8, random_state=0, **{**NOTEBOOK, "n_factors": 16, "batch_size": 64}
    )
    est.fit(X, y)
    variance = float(np.var(y))
    assert est.history_["loss"][-1] < 0.7 * variance
