"""The estimator on the real MovieLens 100K ratings (read from ../shared, never copied)."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from skembedrec import EmbeddingRatingRegressor


@pytest.mark.slow
def test_learns_movielens_on_the_notebook_split(ml100k):
    X = ml100k[["user_id", "movie_id"]]
    y = ml100k["rating"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=315)
    est = EmbeddingRatingRegressor(
        item_col="movie_id",
        n_factors=32,
        hidden_units=(32,),
        epochs=4,
        batch_size=1024,
        random_state=0,
    )
    est.fit(X_train, y_train)
    rmse = float(np.sqrt(np.mean((est.predict(X_test) - y_test) ** 2)))
    baseline = float(np.sqrt(np.mean((y_train.mean() - y_test) ** 2)))
    assert 1.10 < baseline < 1.16
    assert rmse < 0.97, rmse  # clearly below the predict-the-mean baseline of ~1.13
    assert est.is_known(X_test).all(axis=1).mean() > 0.99
