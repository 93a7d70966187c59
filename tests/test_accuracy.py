"""Accuracy: the default model learns real ratings, with its implicit-feedback layers.

The full accuracy and speed comparison is ``benchmarks/movielens.py`` (too slow for tests);
the network's mechanisms are tested in ``test_network.py``.
"""

import numpy as np
from sklearn.model_selection import train_test_split

from skembedrec import EmbeddingRatingRegressor


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_default_model_learns_movielens_subsample(ml100k):
    """The defaults (what the benchmark measures) clearly beat predict-the-mean on 40k real
    ratings (34,000 to train: above the small-data regime), with the implicit-feedback
    layers in the network."""
    sample = ml100k.sample(40_000, random_state=0)
    train, test = train_test_split(sample, test_size=0.15, random_state=0)
    est = EmbeddingRatingRegressor(item_col="movie_id", random_state=0)
    est.fit(train[["user_id", "movie_id"]], train["rating"])
    rmse = _rmse(est.predict(test[["user_id", "movie_id"]]), test["rating"])
    baseline = _rmse(train["rating"].mean(), test["rating"])
    assert rmse < 0.9 * baseline, (rmse, baseline)
    names = {layer.name for layer in est.model_.layers}
    assert {"user_implicit", "item_implicit"} <= names
