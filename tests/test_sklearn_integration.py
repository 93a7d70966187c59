"""The estimator inside scikit-learn's tools: clone, params, repr, Pipeline, searches, joblib."""

import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import FAST, REPO_ROOT
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skembedrec import EmbeddingRatingRegressor


def test_get_set_params_and_clone():
    est = EmbeddingRatingRegressor(n_factors=16, hidden_units=(8, 4))
    params = est.get_params()
    assert params["n_factors"] == 16 and params["hidden_units"] == (8, 4)
    assert est.set_params(n_factors=4, epochs=3) is est
    assert (est.n_factors, est.epochs) == (4, 3)
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params()
    with pytest.raises(ValueError, match="Invalid parameter 'n_factor'"):
        est.set_params(n_factor=3)


def test_repr_and_html_repr():
    est = EmbeddingRatingRegressor(n_factors=16, item_col="movie_id")
    text = repr(est)
    assert text.startswith("EmbeddingRatingRegressor(") and "n_factors=16" in text
    assert "epochs" not in text  # only non-default parameters are shown
    html = est._repr_html_()
    assert "EmbeddingRatingRegressor" in html and "movie_id" in html


def test_pipeline_with_dataframe_passthrough(ratings):
    X, y = ratings
    raw = X.rename(columns={"user_id": "u", "item_id": "i"}).assign(extra=0)
    rename = FunctionTransformer(lambda df: df.rename(columns={"u": "user_id", "i": "item_id"}))
    pipe = make_pipeline(rename, EmbeddingRatingRegressor(**FAST)).fit(raw, y)
    direct = EmbeddingRatingRegressor(**FAST).fit(X, y)
    np.testing.assert_array_equal(pipe.predict(raw), direct.predict(X))
    assert pipe.score(raw, y) == pytest.approx(direct.score(X, y))


def test_pipeline_with_column_transformer_pandas_output(ratings):
    X, y = ratings
    select = ColumnTransformer(
        [("ids", "passthrough", ["user_id", "item_id"])], verbose_feature_names_out=False
    ).set_output(transform="pandas")
    pipe = Pipeline([("select", select), ("model", EmbeddingRatingRegressor(**FAST))])
    pipe.fit(X.assign(timestamp=1), y)
    direct = EmbeddingRatingRegressor(**FAST).fit(X, y)
    np.testing.assert_array_equal(pipe.predict(X.head(4)), direct.predict(X.head(4)))
    assert list(pipe[-1].feature_names_in_) == ["user_id", "item_id"]


@pytest.mark.slow
def test_grid_search_with_one_and_two_jobs(ratings):
    X, y = ratings
    results = []
    for n_jobs in (1, 2):
        search = GridSearchCV(
            EmbeddingRatingRegressor(**FAST),
            {"epochs": [1, 6]},
            cv=KFold(2, shuffle=True, random_state=0),
            scoring="neg_root_mean_squared_error",
            n_jobs=n_jobs,
        ).fit(X, y)
        assert search.best_params_ == {"epochs": 6}  # more training fits the latent structure
        refit = EmbeddingRatingRegressor(**{**FAST, "epochs": 6}).fit(X, y)
        np.testing.assert_array_equal(search.best_estimator_.predict(X), refit.predict(X))
        results.append(search.cv_results_["mean_test_score"])
    # Each candidate is seeded: worker processes reproduce the sequential scores.
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_cross_val_score_and_cross_validate(ratings):
    X, y = ratings
    rmse = -cross_val_score(
        EmbeddingRatingRegressor(**FAST), X, y, cv=3, scoring="neg_root_mean_squared_error"
    )
    assert rmse.shape == (3,) and (rmse < float(np.std(y)) * 1.05).all()
    result = cross_validate(
        EmbeddingRatingRegressor(**FAST),
        X,
        y,
        cv=2,
        scoring=["neg_root_mean_squared_error", "r2"],
        return_estimator=True,
    )
    assert set(result) >= {"fit_time", "test_r2", "test_neg_root_mean_squared_error", "estimator"}
    assert all(hasattr(est, "regressor_") for est in result["estimator"])


@pytest.mark.slow
def test_joblib_round_trip_in_a_fresh_process(fitted, ratings, tmp_path):
    X, _ = ratings
    model_path, data_path = tmp_path / "model.joblib", tmp_path / "X.pkl"
    joblib.dump(fitted, model_path)
    X.head(50).to_pickle(data_path)
    script = textwrap.dedent(f"""
        import joblib, pandas as pd, numpy as np
        model = joblib.load({str(model_path)!r})
        np.save({str(tmp_path / "pred.npy")!r}, model.predict(pd.read_pickle({str(data_path)!r})))
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=REPO_ROOT, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), fitted.predict(X.head(50)))


def test_pickle_of_unfitted_and_fitted(fitted, ratings):
    X, y = ratings
    unfitted = pickle.loads(pickle.dumps(EmbeddingRatingRegressor(**FAST)))
    assert unfitted.get_params() == EmbeddingRatingRegressor(**FAST).get_params()
    np.testing.assert_array_equal(unfitted.fit(X, y).predict(X), fitted.predict(X))
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    unknown = pd.DataFrame({"user_id": [-1], "item_id": [-1]})
    np.testing.assert_array_equal(restored.predict(unknown), fitted.predict(unknown))
