"""Ranking metrics (precision/recall/NDCG/MAP@k) and the scorers built on them."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import FAST
from sklearn import config_context
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import UndefinedMetricWarning, UnsetMetadataPassedError
from sklearn.metrics import ndcg_score
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from skembedrec import EmbeddingRatingRegressor
from skembedrec.metrics import (
    make_ranking_scorer,
    map_at_k,
    ndcg_at_10_scorer,
    ndcg_at_k,
    precision_at_10_scorer,
    precision_at_k,
    recall_at_k,
)

METRICS = [precision_at_k, recall_at_k, map_at_k, ndcg_at_k]


def _held_out(rng, n_users=40, max_items=15):
    """Random held-out rows: users with 1..max_items ratings, continuous untied scores."""
    counts = rng.randint(1, max_items + 1, size=n_users)
    users = np.repeat(np.arange(n_users) * 7 + 3, counts)
    y_true = rng.randint(1, 6, size=users.size).astype(float)
    y_pred = rng.uniform(1, 5, size=users.size)
    order = rng.permutation(users.size)  # rows of a user need not be contiguous
    return users[order], y_true[order], y_pred[order]


def _reference(users, y_true, y_pred, k, threshold):
    """Per-user loops written straight from the definitions in the module docstring."""
    precision, recall, average_precision, ndcg = [], [], [], []
    for user in pd.unique(users):
        mask = users == user
        truth = y_true[mask][np.argsort(-y_pred[mask], kind="stable")]
        top = truth[:k]
        relevant = top >= threshold
        n_relevant = int((truth >= threshold).sum())
        precision.append(relevant.sum() / len(top))
        if n_relevant:
            recall.append(relevant.sum() / n_relevant)
            hits = np.cumsum(relevant)
            positions = np.arange(1, len(top) + 1)
            average_precision.append((hits / positions)[relevant].sum() / min(k, n_relevant))
        discount = 1 / np.log2(np.arange(2, len(top) + 2))
        ideal = np.sort(truth)[::-1][:k]
        ndcg.append((top * discount).sum() / (ideal * discount).sum())
    return {
        precision_at_k: np.mean(precision),
        recall_at_k: np.mean(recall),
        map_at_k: np.mean(average_precision),
        ndcg_at_k: np.mean(ndcg),
    }


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_metrics_match_per_user_reference(rng, k):
    users, y_true, y_pred = _held_out(rng)
    expected = _reference(users, y_true, y_pred, k, threshold=4.0)
    for metric in METRICS:
        kwargs = {} if metric is ndcg_at_k else {"threshold": 4.0}
        assert metric(users, y_true, y_pred, k=k, **kwargs) == pytest.approx(expected[metric])


def test_hand_computed_values():
    # User 1 ranks (5, 2, 4); user 2 ranks (1, 5). Relevant: rating >= 4.
    users, y_true, y_pred = [1, 1, 1, 2, 2], [5, 2, 4, 1, 5], [4.5, 4.0, 3.0, 3.5, 3.0]
    assert precision_at_k(users, y_true, y_pred, k=2) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert recall_at_k(users, y_true, y_pred, k=2) == pytest.approx((1 / 2 + 1 / 1) / 2)
    assert map_at_k(users, y_true, y_pred, k=3) == pytest.approx(((1 + 2 / 3) / 2 + 1 / 2) / 2)
    user1 = (5 + 2 / np.log2(3) + 4 / 2) / (5 + 4 / np.log2(3) + 2 / 2)
    user2 = (1 + 5 / np.log2(3)) / (5 + 1 / np.log2(3))
    assert ndcg_at_k(users, y_true, y_pred, k=3) == pytest.approx((user1 + user2) / 2)


def test_ndcg_matches_sklearn_ndcg_score_per_user(rng):
    """ndcg_at_k == mean over users of sklearn's ndcg_score on that user's rows.

    scikit-learn refuses a single document, and a single held-out rating is trivially ranked
    (NDCG 1), so those users count 1.0. y_pred has no ties (sklearn averages tied gains).
    """
    users, y_true, y_pred = _held_out(rng, n_users=60)
    for k in (1, 5, 10, 100):
        per_user = []
        for user in pd.unique(users):
            mask = users == user
            if mask.sum() >= 2:
                per_user.append(ndcg_score(y_true[mask][None], y_pred[mask][None], k=k))
            else:
                per_user.append(1.0)
        assert ndcg_at_k(users, y_true, y_pred, k=k) == pytest.approx(np.mean(per_user))


def test_ndcg_threshold_gives_binary_gains_like_sklearn(rng):
    users, y_true, y_pred = _held_out(rng, n_users=60)
    binary = (y_true >= 4).astype(float)
    per_user = [
        ndcg_score(binary[users == u][None], y_pred[users == u][None], k=5)
        for u in pd.unique(users)
        if (users == u).sum() >= 2 and binary[users == u].any()
    ] + [1.0 for u in pd.unique(users) if (users == u).sum() == 1 and binary[users == u].any()]
    assert ndcg_at_k(users, y_true, y_pred, k=5, threshold=4.0) == pytest.approx(
        np.mean(per_user)
    )


def test_perfect_and_reversed_rankings(rng):
    users, y_true, _ = _held_out(rng)
    perfect = y_true + rng.uniform(0, 0.1, size=y_true.size)  # best truth first, no ties
    assert ndcg_at_k(users, y_true, perfect, k=5) == pytest.approx(1.0)
    assert map_at_k(users, y_true, perfect, k=5) == pytest.approx(1.0)
    assert ndcg_at_k(users, y_true, -perfect, k=5) < 0.9
    assert map_at_k(users, y_true, -perfect, k=5) < map_at_k(users, y_true, perfect, k=5)


def test_users_without_relevant_items():
    """They count as 0 in precision and are left out of recall and MAP."""
    users, y_true, y_pred = [1, 1, 2, 2], [5, 1, 4, 5], [2.0, 1.0, 1.0, 2.0]
    extra = ([*users, 9, 9], [*y_true, 1, 2], [*y_pred, 1.0, 2.0])
    assert precision_at_k(users, y_true, y_pred, k=1) == 1.0
    assert precision_at_k(*extra, k=1) == pytest.approx(2 / 3)
    for metric in (recall_at_k, map_at_k):
        assert metric(*extra, k=1) == metric(users, y_true, y_pred, k=1)


def test_undefined_metric_warns_and_returns_nan():
    with pytest.warns(UndefinedMetricWarning, match="no true rating is >= 4.0"):
        assert np.isnan(recall_at_k([1, 2], [1.0, 2.0], [1.0, 2.0]))
    with pytest.warns(UndefinedMetricWarning, match="no true rating"):
        assert np.isnan(map_at_k([1, 2], [1.0, 2.0], [1.0, 2.0]))
    with pytest.warns(UndefinedMetricWarning, match="positive gain"):
        assert np.isnan(ndcg_at_k([1, 2], [0.0, 0.0], [1.0, 2.0]))


def test_row_order_and_input_types_do_not_matter(rng):
    users, y_true, y_pred = _held_out(rng)
    order = rng.permutation(users.size)
    for metric in METRICS:
        expected = metric(users, y_true, y_pred, k=5)
        assert metric(users[order], y_true[order], y_pred[order], k=5) == pytest.approx(expected)
        as_series = (pd.Series(users.astype(str)), pd.Series(y_true), list(y_pred))
        assert metric(*as_series, k=5) == pytest.approx(expected)


def test_ties_keep_row_order():
    # Equal predictions: the first row is ranked first, so only it is in the top 1.
    assert precision_at_k([1, 1], [5.0, 1.0], [3.0, 3.0], k=1) == 1.0
    assert precision_at_k([1, 1], [1.0, 5.0], [3.0, 3.0], k=1) == 0.0


def test_inputs_are_not_modified(rng):
    users, y_true, y_pred = _held_out(rng)
    copies = users.copy(), y_true.copy(), y_pred.copy()
    for metric in METRICS:
        metric(users, y_true, y_pred, k=3)
    for before, after in zip(copies, (users, y_true, y_pred), strict=True):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"k": 0}, ValueError, "k must be an int >= 1; got 0"),
        ({"k": 2.5}, TypeError, "k must be an int >= 1; got 2.5"),
        ({"k": True}, TypeError, "k must be an int"),
        ({"users": []}, ValueError, "same length"),
        ({"users": [], "y_true": [], "y_pred": []}, ValueError, "at least one held-out rating"),
        ({"y_pred": [1.0, np.nan]}, ValueError, "y_pred contains 1 NaN"),
        ({"y_true": ["a", "b"]}, ValueError, "y_true must be numeric"),
        ({"users": [1, None]}, ValueError, "users contains 1 missing id"),
        ({"y_true": [[1.0, 2.0]]}, ValueError, "y_true must be 1-D"),
    ],
)
def test_bad_input(metric, kwargs, error, match):
    arguments = {"users": [1, 1], "y_true": [5.0, 3.0], "y_pred": [1.0, 2.0], **kwargs}
    k = arguments.pop("k", 2)
    with pytest.raises(error, match=match):
        metric(arguments["users"], arguments["y_true"], arguments["y_pred"], k=k)


def test_bad_threshold():
    with pytest.raises(TypeError, match="threshold must be a number"):
        precision_at_k([1], [5.0], [1.0], threshold="4")
    with pytest.raises(ValueError, match="gains, which must be >= 0"):
        ndcg_at_k([1, 1], [-1.0, 2.0], [1.0, 2.0])


# -- scorers ---------------------------------------------------------------------------------


def test_scorer_equals_metric_on_predictions(fitted, ratings):
    X, y = ratings
    X_test, y_test = X.iloc[:500], y.iloc[:500]
    predictions = fitted.predict(X_test)
    expected = ndcg_at_k(X_test["user_id"], y_test, predictions, k=10)
    assert ndcg_at_10_scorer(fitted, X_test, y_test) == pytest.approx(expected)
    expected = precision_at_k(X_test["user_id"], y_test, predictions, k=10, threshold=4.0)
    assert precision_at_10_scorer(fitted, X_test, y_test) == pytest.approx(expected)
    # An array X: the user is column 0.
    assert ndcg_at_10_scorer(fitted, X_test.to_numpy(), y_test.to_numpy()) == pytest.approx(
        ndcg_at_k(X_test["user_id"], y_test, predictions, k=10)
    )


def test_scorer_reads_the_estimators_user_col(ratings):
    X, y = ratings
    renamed = X.rename(columns={"user_id": "who", "item_id": "what"}).assign(noise=1)
    est = EmbeddingRatingRegressor(user_col="who", item_col="what", **FAST).fit(renamed, y)
    scorer = make_ranking_scorer("recall", k=5, threshold=3.0)
    expected = recall_at_k(renamed["who"], y, est.predict(renamed), k=5, threshold=3.0)
    assert scorer(est, renamed, y) == pytest.approx(expected)


def test_cross_validate_with_rmse_and_ranking_scorers(ratings):
    X, y = ratings
    scoring = {
        "rmse": "neg_root_mean_squared_error",
        "ndcg@10": ndcg_at_10_scorer,
        "precision@10": precision_at_10_scorer,
    }
    cv = KFold(n_splits=2, shuffle=True, random_state=0)
    result = cross_validate(EmbeddingRatingRegressor(**FAST), X, y, cv=cv, scoring=scoring)
    assert (result["test_rmse"] < 0).all()
    for name in ("test_ndcg@10", "test_precision@10"):
        assert np.isfinite(result[name]).all()
        assert ((result[name] > 0) & (result[name] <= 1)).all()


@pytest.mark.slow
def test_grid_search_refits_on_ndcg(ratings):
    X, y = ratings[0].iloc[:1500], ratings[1].iloc[:1500]
    search = GridSearchCV(
        EmbeddingRatingRegressor(**FAST),
        {"n_factors": [4, 8]},
        cv=KFold(n_splits=2, shuffle=True, random_state=0),
        scoring={"rmse": "neg_root_mean_squared_error", "ndcg@10": ndcg_at_10_scorer},
        refit="ndcg@10",
    )
    search.fit(X, y)
    scores = search.cv_results_["mean_test_ndcg@10"]
    assert np.isfinite(scores).all()
    assert search.best_params_["n_factors"] == [4, 8][int(np.argmax(scores))]
    assert search.best_score_ == pytest.approx(scores.max())


def test_make_ranking_scorer_checks_and_pickles():
    with pytest.raises(ValueError, match="metric must be one of"):
        make_ranking_scorer("auc")
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        make_ranking_scorer("ndcg", k=0)
    with pytest.raises(TypeError, match="threshold must be a number"):
        make_ranking_scorer("precision", threshold="high")
    scorer = make_ranking_scorer("map", k=5, threshold=3.5)
    assert repr(scorer) == "make_ranking_scorer('map', k=5, threshold=3.5)"
    # Scorers travel to joblib workers (n_jobs > 1).
    assert repr(pickle.loads(pickle.dumps(scorer))) == repr(scorer)


def test_ml100k_model_beats_random_scores(ml100k):
    """On a real split, the fitted model ranks held-out items better than random scores."""
    last = ml100k.groupby("user_id").cumcount(ascending=False) < 5
    train, test = ml100k[~last], ml100k[last]
    est = EmbeddingRatingRegressor(
        item_col="movie_id", n_factors=8, hidden_units=(8,), epochs=2, batch_size=2048,
        random_state=0,
    ).fit(train[["user_id", "movie_id"]], train["rating"])
    predicted = est.predict(test[["user_id", "movie_id"]])
    random_scores = np.random.RandomState(0).uniform(size=len(test))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every user is defined for NDCG
        model_ndcg = ndcg_at_k(test["user_id"], test["rating"], predicted, k=3)
    random_ndcg = ndcg_at_k(test["user_id"], test["rating"], random_scores, k=3)
    assert model_ndcg > random_ndcg + 0.02
    assert ndcg_at_10_scorer(est, test, test["rating"]) == pytest.approx(
        ndcg_at_k(test["user_id"], test["rating"], predicted, k=10)
    )


# -- sample_weight ---------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_sample_weight_weights_users_by_their_mean_row_weight(metric):
    users = np.array([1, 1, 1, 2, 2, 3, 3, 3])
    y_true = np.array([5, 2, 4, 1, 5, 4, 4, 2])
    y_pred = np.array([4.5, 4.0, 3.0, 3.5, 3.0, 3.0, 2.0, 1.0])
    per_user = np.array([metric(users[users == u], y_true[users == u], y_pred[users == u], k=2)
                         for u in (1, 2, 3)])
    user_weight = np.array([3.0, 1.0, 0.5])
    rows = np.array([3.0, 3.0, 3.0, 0.0, 2.0, 0.5, 0.5, 0.5])  # user 2: mean 1.0
    weighted = metric(users, y_true, y_pred, k=2, sample_weight=rows)
    assert weighted == pytest.approx(np.average(per_user, weights=user_weight))
    assert weighted != pytest.approx(metric(users, y_true, y_pred, k=2))
    assert metric(users, y_true, y_pred, k=2, sample_weight=np.ones(8)) == pytest.approx(
        metric(users, y_true, y_pred, k=2))
    # A user of weight 0 drops out of the average.
    only_first = np.r_[np.ones(3), np.zeros(5)]
    assert metric(users, y_true, y_pred, k=2, sample_weight=only_first) == pytest.approx(
        per_user[0])
    with pytest.warns(UndefinedMetricWarning, match="total sample_weight of 0"):
        assert np.isnan(metric(users, y_true, y_pred, k=2, sample_weight=np.zeros(8)))
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        metric(users, y_true, y_pred, k=2, sample_weight=-only_first)
    with pytest.raises(ValueError, match="same length"):
        metric(users, y_true, y_pred, k=2, sample_weight=np.ones(3))


class _ScoreByItem(RegressorMixin, BaseEstimator):
    """A stand-in model that predicts the item id: instant, and ranks differently per user."""

    def fit(self, X, y, sample_weight=None):
        return self

    def predict(self, X):
        return np.asarray(X["item_id"], dtype=float)


def _weighted_setup(ratings):
    X, y = ratings
    # One weight per user, repeated on their rows.
    weights = (X["user_id"].to_numpy() + 1.0) ** 2
    return X, y, weights, KFold(n_splits=2, shuffle=True, random_state=0)


def test_routed_sample_weight_is_refused_until_requested(ratings):
    X, y, weights, cv = _weighted_setup(ratings)
    estimator = _ScoreByItem()
    with config_context(enable_metadata_routing=True):
        estimator.set_fit_request(sample_weight=True)
        with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
            cross_validate(estimator, X, y, cv=cv, scoring=make_ranking_scorer("ndcg"),
                           params={"sample_weight": weights})
        declined = make_ranking_scorer("ndcg").set_score_request(sample_weight=False)
        unweighted = cross_validate(estimator, X, y, cv=cv, scoring=declined,
                                    params={"sample_weight": weights})["test_score"]
    expected = [ndcg_at_k(X["user_id"].iloc[test], y.iloc[test],
                          X["item_id"].iloc[test].astype(float))
                for _, test in cv.split(X)]
    np.testing.assert_allclose(unweighted, expected)


def test_requested_sample_weight_changes_the_score(ratings):
    X, y, weights, cv = _weighted_setup(ratings)
    estimator = _ScoreByItem()
    with config_context(enable_metadata_routing=True):
        estimator.set_fit_request(sample_weight=True)
        scorer = make_ranking_scorer("precision", k=5).set_score_request(sample_weight=True)
        weighted = cross_validate(estimator, X, y, cv=cv, scoring=scorer,
                                  params={"sample_weight": weights})["test_score"]
    for score, (_, test) in zip(weighted, cv.split(X), strict=True):
        args = (X["user_id"].iloc[test], y.iloc[test], X["item_id"].iloc[test].astype(float))
        assert score == pytest.approx(precision_at_k(*args, k=5, sample_weight=weights[test]))
        assert score != pytest.approx(precision_at_k(*args, k=5))
    # Called directly, as scikit-learn's scorers are, the weights are used too.
    direct = make_ranking_scorer("precision", k=5)(estimator, X, y, sample_weight=weights)
    assert direct == pytest.approx(precision_at_k(X["user_id"], y, X["item_id"].astype(float),
                                                  k=5, sample_weight=weights))


def test_set_score_request_needs_routing():
    with pytest.raises(RuntimeError, match="enable_metadata_routing=True"):
        make_ranking_scorer("map").set_score_request(sample_weight=True)


# -- the figures of the Evaluating over time guide ---------------------------------------------


@pytest.mark.slow
def test_evaluation_page_figures(ml100k_dir, tmp_path, monkeypatch):
    """The MovieLens block of docs/user_guide/evaluation.rst prints the figures its prose
    quotes (the docs test skips it: it reads MovieLens 100K and fits two models)."""
    import doctest

    from conftest import REPO_ROOT
    from test_docs import rst_blocks

    page = REPO_ROOT / "docs" / "user_guide" / "evaluation.rst"
    blocks, _ = rst_blocks(page.read_text(encoding="utf-8"))
    (block,) = [b for b in blocks if 'read_ratings("ml-100k")' in b.code]
    (tmp_path / "ml-100k").symlink_to(ml100k_dir)
    monkeypatch.chdir(tmp_path)
    test = doctest.DocTestParser().get_doctest(block.code, {}, "evaluation", str(page),
                                               block.line - 1)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
