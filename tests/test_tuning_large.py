"""Tuning recipes of the tuning guide's "Tuning a large catalogue" (issue 26): successive
halving over rows, whose small first rounds leave ids seen only in validation folds, and
the user-stratified sample of ``benchmarks/tuning_large.py``."""

import numpy as np
import pytest
from conftest import FAST
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV, KFold
from test_benchmarks import _load_benchmark

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings

# A learning rate that leaves the model at its starting point, and two that train it.
STALLED, TRAINING = 1e-6, (0.02, 0.05)


def _rmse_noting_unknown_ids(shares):
    """An RMSE scorer (negated) that also records the share of validation rows with an id
    the fitted model never saw (they get the fallback prediction)."""

    def score(est, X, y):
        shares.append(1.0 - float(est.is_known(X).all(axis=1).mean()))
        return -root_mean_squared_error(y, est.predict(X))

    return score


@pytest.fixture(scope="module")
def ratings():
    return make_ratings(n_users=150, n_items=120, n_ratings=3_000, random_state=0)


def test_halving_grid_search_over_rows_handles_unseen_ids_and_picks_the_training_rate(
        ratings):
    X, y = ratings
    shares = []
    search = HalvingGridSearchCV(
        EmbeddingRatingRegressor(**{**FAST, "hidden_units": ()}),
        {"learning_rate": [STALLED, TRAINING[-1]]},    # 2 candidates: 2 rounds at factor 2
        resource="n_samples", factor=2, min_resources=300, max_resources=len(y),
        random_state=0,                                 # which rows each round gets
        scoring=_rmse_noting_unknown_ids(shares), refit=False, error_score="raise",
        cv=KFold(n_splits=2, shuffle=True, random_state=0),
    )
    search.fit(X, y)

    assert search.n_resources_ == [300, 600]
    # The first round's 300 rows leave ids out of the training half: they were scored.
    assert max(shares) > 0.05
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_params_ == {"learning_rate": TRAINING[-1]}
    # First round, same rows: the training rate's RMSE is clearly below the stalled one's.
    stalled, trained = search.cv_results_["mean_test_score"][:2]
    assert -trained < -stalled - 0.02


@pytest.mark.slow
def test_halving_random_search_over_rows_runs_with_the_estimator(ratings):
    X, y = ratings
    search = HalvingRandomSearchCV(
        EmbeddingRatingRegressor(**{**FAST, "hidden_units": ()}),
        {"learning_rate": [STALLED, *TRAINING], "l2": [0.01, 0.1]},
        n_candidates=3, resource="n_samples", factor=3, min_resources=300,
        scoring="neg_root_mean_squared_error", refit=False, error_score="raise",
        cv=KFold(n_splits=2, shuffle=True, random_state=0), random_state=0,
    )
    search.fit(X, y)

    assert search.n_candidates_[0] == 3
    assert search.best_params_["learning_rate"] in TRAINING


def test_user_sample_keeps_every_rating_of_the_chosen_users(ratings):
    user_sample = _load_benchmark("tuning_large").user_sample
    X, _ = ratings
    mask = user_sample(X, 0.2, random_state=0)

    chosen = set(X.loc[mask, "user_id"])
    assert len(chosen) == round(0.2 * X["user_id"].nunique())
    # A user is either in the sample with all of their ratings, or not at all.
    assert set(X.loc[~mask, "user_id"]).isdisjoint(chosen)
    assert np.array_equal(mask, user_sample(X, 0.2, random_state=0))
