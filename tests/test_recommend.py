"""Recommender outputs: recommend, similar_items/similar_users, embedding frames."""

import pickle
import time

import numpy as np
import pandas as pd
import pytest
from conftest import FAST
from sklearn.base import clone

from skembedrec import EmbeddingRatingRegressor
from skembedrec._network import additive_form
from skembedrec._recommend import additive_scores, network_scores, top_n_items
from skembedrec.datasets import make_ratings
from skembedrec.metrics import ndcg_at_k, precision_at_k

COLUMNS = ["user_id", "item_id", "predicted_rating", "rank"]


def _pairs(frame):
    return frame[["user_id", "item_id"]]


def _seen_pairs(X, user="user_id", item="item_id"):
    return set(zip(X[user], X[item], strict=True))


@pytest.fixture(scope="module")
def with_error(fitted):
    """A copy of the shared fitted estimator that refuses unknown ids."""
    return pickle.loads(pickle.dumps(fitted)).set_params(handle_unknown="error")


# -- recommend -------------------------------------------------------------------------------


def test_recommend_frame(fitted):
    users = [5, 0, 17]
    top = fitted.recommend(users, n=7)
    assert top.columns.tolist() == COLUMNS
    assert len(top) == 21
    assert top["user_id"].tolist() == [5] * 7 + [0] * 7 + [17] * 7
    assert top["rank"].tolist() == list(range(1, 8)) * 3
    for _, group in top.groupby("user_id", sort=False):
        assert group["predicted_rating"].is_monotonic_decreasing
        assert group["item_id"].is_unique
    assert set(top["item_id"]) <= set(fitted.encoder_.item_ids)


def test_predicted_rating_is_what_predict_returns(fitted):
    top = fitted.recommend(fitted.encoder_.user_ids, n=10)
    np.testing.assert_array_equal(top["predicted_rating"], fitted.predict(top))


def test_seen_items_are_excluded(fitted, ratings):
    X, _ = ratings
    top = fitted.recommend(fitted.encoder_.user_ids, n=20)
    seen = _seen_pairs(X)
    assert seen.isdisjoint(_seen_pairs(top))
    with_seen = fitted.recommend(fitted.encoder_.user_ids, n=20, exclude_seen=False)
    assert not seen.isdisjoint(_seen_pairs(with_seen))


def test_recommend_matches_brute_force(fitted, ratings):
    """The top n of predict over every unseen item of the user, in the same order."""
    X, _ = ratings
    items = fitted.encoder_.item_ids
    seen = _seen_pairs(X)
    for user in (0, 11, 42):
        grid = pd.DataFrame({"user_id": user, "item_id": items})
        scores = pd.Series(fitted.predict(grid), index=items)
        unseen = scores[[(user, item) not in seen for item in items]]
        expected = unseen.sort_values(ascending=False, kind="stable").to_numpy()[:15]
        top = fitted.recommend([user], n=15)
        np.testing.assert_array_equal(top["predicted_rating"], expected)
        # Every unseen item strictly better than the last one recommended is recommended.
        assert set(unseen.index[unseen > expected[-1]]) <= set(top["item_id"])


def test_user_with_fewer_unseen_items_than_n(fitted, ratings):
    X, _ = ratings
    user = X["user_id"].value_counts().index[0]
    n_unseen = fitted.n_items_ - int((X["user_id"] == user).sum())
    top = fitted.recommend([user], n=fitted.n_items_ + 5)
    assert len(top) == n_unseen
    assert top["rank"].tolist() == list(range(1, n_unseen + 1))
    everything = fitted.recommend([user], n=fitted.n_items_ + 5, exclude_seen=False)
    assert len(everything) == fitted.n_items_


def test_unknown_user_gets_the_average_user_ranking(fitted):
    top = fitted.recommend([-1, 0, 10_000], n=5)
    assert top["user_id"].tolist() == [-1] * 5 + [0] * 5 + [10_000] * 5
    unknown = top[top["user_id"] == -1]
    np.testing.assert_array_equal(unknown["predicted_rating"], fitted.predict(_pairs(unknown)))
    # The fallback is the ranking of all items for the reserved (average) user.
    grid = pd.DataFrame({"user_id": -1, "item_id": fitted.encoder_.item_ids})
    best = np.sort(fitted.predict(grid))[::-1][:5]
    np.testing.assert_array_equal(unknown["predicted_rating"], best)
    np.testing.assert_array_equal(
        unknown["item_id"], top.loc[top["user_id"] == 10_000, "item_id"]
    )


def test_repeated_users_get_one_block_each(fitted):
    top = fitted.recommend([5, 0, 5, 5, 0], n=3)
    assert top["user_id"].tolist() == [5] * 3 + [0] * 3
    pd.testing.assert_frame_equal(top, fitted.recommend([5, 0], n=3))


def test_columns_are_named_after_user_col_and_item_col(ratings):
    X, y = ratings
    renamed = X.rename(columns={"user_id": "who", "item_id": "what"})
    est = EmbeddingRatingRegressor(user_col="who", item_col="what", **FAST).fit(renamed, y)
    top = est.recommend([1, 2], n=3)
    assert top.columns.tolist() == ["who", "what", "predicted_rating", "rank"]
    np.testing.assert_array_equal(top["predicted_rating"], est.predict(top))
    with pytest.raises(ValueError, match="must not be 'predicted_rating' or 'rank'"):
        est.set_params(item_col="rank").recommend([1], n=3)


def test_unknown_user_under_error_names_the_ids(with_error):
    with pytest.raises(ValueError, match=r"2 unknown user id\(s\).*-1, 777.*handle_unknown"):
        with_error.recommend([0, -1, 777], n=3)
    assert len(with_error.recommend([0], n=3)) == 3


def test_recommend_does_not_modify_inputs(fitted):
    users = np.array([3, 1, 2])
    as_list = [3, 1, 2]
    fitted.recommend(users, n=2)
    fitted.recommend(as_list, n=2)
    np.testing.assert_array_equal(users, [3, 1, 2])
    assert as_list == [3, 1, 2]


def test_recommend_accepts_scalar_series_and_string_ids(ratings):
    X, y = ratings
    string_ids = X.astype(str)
    est = EmbeddingRatingRegressor(**FAST).fit(string_ids, y)
    top = est.recommend(pd.Series(["3", "5"]), n=4)
    assert top["user_id"].tolist() == ["3"] * 4 + ["5"] * 4
    assert _seen_pairs(string_ids).isdisjoint(_seen_pairs(top))
    assert est.recommend("3", n=4).equals(top.iloc[:4])
    with pytest.raises(TypeError, match=r"users must hold str ids.*got number ids"):
        est.recommend([3], n=4)
    with pytest.raises(TypeError, match="items must hold str ids"):
        est.similar_items([3])


@pytest.mark.parametrize(
    "users, kwargs, error, match",
    [
        ([0], {"n": 0}, ValueError, "n must be an int >= 1; got 0"),
        ([0], {"n": -3}, ValueError, "n must be an int >= 1; got -3"),
        ([0], {"n": 2.5}, TypeError, "n must be an int >= 1; got 2.5 of type float"),
        ([0], {"n": True}, TypeError, "n must be an int"),
        ([0], {"n": "10"}, TypeError, "n must be an int"),
        ([], {}, ValueError, "users is empty"),
        (np.array([], dtype=int), {}, ValueError, "users is empty"),
        (["1", "2"], {}, TypeError, r"users must hold number ids .*got str ids \(e.g. '1'\)"),
        ([1, "a"], {}, TypeError, "users must hold number ids"),
        ([[0, 1]], {}, ValueError, r"1-D list of ids; got an array of shape \(1, 2\)"),
        ([0, None], {}, ValueError, "users contains 1 missing id"),
        ([0], {"exclude_seen": "yes"}, TypeError, "exclude_seen must be True or False"),
    ],
)
def test_recommend_bad_input(fitted, users, kwargs, error, match):
    with pytest.raises(error, match=match):
        fitted.recommend(users, **kwargs)


def test_methods_need_a_fitted_estimator():
    from sklearn.exceptions import NotFittedError

    est = EmbeddingRatingRegressor(**FAST)
    for call in (
        lambda: est.recommend([1]),
        lambda: est.similar_items([1]),
        lambda: est.similar_users([1]),
        lambda: est.user_embeddings_,
        lambda: est.item_embeddings_,
    ):
        with pytest.raises(NotFittedError):
            call()


def test_scoring_in_blocks_gives_the_same_result_with_bounded_batches(fitted):
    """Scores are computed a block of users at a time, never users x items at once."""
    serve = fitted._serving_function()
    batches = []

    def recording_serve(codes):
        batches.append(int(codes.shape[0]))
        return serve(codes)

    codes = np.arange(fitted.n_users_, dtype=np.int32)
    kwargs = dict(n=6, n_items=fitted.n_items_, seen=fitted.seen_)
    one_block = top_n_items(codes, score=network_scores(serve, fitted.n_items_), **kwargs)
    small_blocks = top_n_items(codes, score=network_scores(recording_serve, fitted.n_items_),
                               block_values=500, **kwargs)
    assert len(batches) > 1
    assert max(batches) <= 500
    for a, b in zip(one_block, small_blocks, strict=True):
        np.testing.assert_array_equal(a, b)


def test_additive_scores_rank_as_the_network_does(ratings):
    """recommend scores a tower-less network from its factor tables (one matrix product per
    block): the same scores within float32 rounding, so the same top items."""
    X, y = ratings
    fitted = EmbeddingRatingRegressor(n_factors=4, epochs=2, random_state=0).fit(X, y)
    serve = fitted._serving_function()
    tables = additive_form(fitted.model_)
    codes = np.arange(fitted.n_users_, dtype=np.int32)
    by_network = network_scores(serve, fitted.n_items_)(codes)
    by_tables = additive_scores(tables, fitted.n_items_)(codes)
    np.testing.assert_allclose(by_tables, by_network, rtol=1e-5, atol=1e-5)
    kwargs = dict(n=5, n_items=fitted.n_items_, seen=fitted.seen_)
    top_network = top_n_items(codes, score=network_scores(serve, fitted.n_items_), **kwargs)
    top_tables = top_n_items(codes, score=additive_scores(tables, fitted.n_items_), **kwargs)
    same = np.mean(top_network[1] == top_tables[1])
    assert same > 0.99  # only near-ties (within 1e-6) may swap


@pytest.mark.slow
def test_recommendations_are_meaningful_on_synthetic_data():
    """Ranking held-out items by recommend's order beats random order by a clear margin."""
    X, y = make_ratings(n_users=150, n_items=100, n_ratings=9000, noise=0.3, random_state=1)
    test = np.random.RandomState(0).uniform(size=len(y)) < 0.2
    est = EmbeddingRatingRegressor(
        n_factors=8, hidden_units=(), epochs=15, batch_size=128, l2=1e-5, random_state=0
    ).fit(X[~test], y[~test])
    ranking = est.recommend(np.unique(X["user_id"]), n=est.n_items_)
    # Every held-out pair is unseen in training, so it appears in the full ranking.
    position = ranking.set_index(["user_id", "item_id"])["rank"]
    held_out = X[test]
    pairs = pd.MultiIndex.from_frame(held_out[["user_id", "item_id"]])
    order = -position.loc[pairs].to_numpy()
    random_order = np.random.RandomState(1).uniform(size=len(held_out))
    for metric in (ndcg_at_k, precision_at_k):
        model_score = metric(held_out["user_id"], y[test], order, k=5)
        random_score = metric(held_out["user_id"], y[test], random_order, k=5)
        assert model_score > random_score + 0.05, (metric.__name__, model_score, random_score)


def test_fitted_state_survives_pickle_save_and_refit(fitted, ratings, tmp_path):
    X, y = ratings
    expected = fitted.recommend([0, 3], n=5)
    copy = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_frame_equal(copy.recommend([0, 3], n=5), expected)
    fitted.save(tmp_path / "model.zip")
    loaded = EmbeddingRatingRegressor.load(tmp_path / "model.zip")
    assert (loaded.seen_ != fitted.seen_).nnz == 0
    pd.testing.assert_frame_equal(loaded.recommend([0, 3], n=5), expected)
    refit = clone(fitted).fit(X.iloc[:1000], y.iloc[:1000])
    assert refit.seen_.shape == (refit.n_users_, refit.n_items_)
    assert refit.seen_.nnz == len(_seen_pairs(X.iloc[:1000]))


# -- similar items and users, embeddings -----------------------------------------------------


def _cosine(frame):
    unit = np.array(frame, dtype=np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    return pd.DataFrame(unit @ unit.T, index=frame.index, columns=frame.index)


@pytest.mark.parametrize("kind", ["item", "user"])
def test_similar_matches_cosine_of_embeddings(fitted, kind):
    embeddings = getattr(fitted, f"{kind}_embeddings_")
    method = getattr(fitted, f"similar_{kind}s")
    cosine = _cosine(embeddings)
    queries = list(embeddings.index[[4, 0, 9]])
    result = method(queries, n=5)
    assert result.columns.tolist() == [kind, f"similar_{kind}", "similarity", "rank"]
    assert result[kind].tolist() == np.repeat(queries, 5).tolist()
    assert result["rank"].tolist() == [1, 2, 3, 4, 5] * 3
    for query, group in result.groupby(kind, sort=False):
        assert query not in set(group[f"similar_{kind}"])
        expected = cosine.loc[query].drop(query).sort_values(ascending=False)
        np.testing.assert_allclose(group["similarity"], expected.to_numpy()[:5], atol=1e-6)
        np.testing.assert_allclose(
            group["similarity"], cosine.loc[query, group[f"similar_{kind}"]], atol=1e-6
        )


def test_similar_returns_all_others_when_n_is_large(fitted):
    result = fitted.similar_items([3], n=10_000)
    assert len(result) == fitted.n_items_ - 1
    assert result["similarity"].between(-1 - 1e-9, 1 + 1e-9).all()


@pytest.mark.parametrize("method", ["similar_items", "similar_users"])
def test_similar_bad_input(fitted, method):
    call = getattr(fitted, method)
    kind = method.removeprefix("similar_")[:-1]
    with pytest.raises(ValueError, match=rf"1 unknown {kind} id\(s\) not seen during fit: 9999"):
        call([0, 9999])
    with pytest.raises(ValueError, match="n must be an int >= 1; got 0"):
        call([0], n=0)
    with pytest.raises(TypeError, match="n must be an int"):
        call([0], n=1.0)
    with pytest.raises(ValueError, match=f"{kind}s is empty"):
        call([])
    with pytest.raises(TypeError, match=f"{kind}s must hold number ids"):
        call(["0"])


def test_embedding_frames(fitted):
    users, items = fitted.user_embeddings_, fitted.item_embeddings_
    assert users.shape == (fitted.n_users_, FAST["n_factors"])
    assert items.shape == (fitted.n_items_, FAST["n_factors"])
    assert users.index.name == "user" and items.index.name == "item"
    np.testing.assert_array_equal(users.index, fitted.encoder_.user_ids)
    np.testing.assert_array_equal(items.index, fitted.encoder_.item_ids)
    assert users.columns.tolist() == list(range(FAST["n_factors"]))
    weights = fitted.model_.get_layer("item_embedding").get_weights()[0]
    np.testing.assert_array_equal(items.to_numpy(), weights[:-1])  # reserved row left out


@pytest.mark.parametrize(
    "architecture",
    [dict(implicit=False, n_estimators=1), dict(implicit=True, n_estimators=2)],
    ids=["plain", "implicit-ensemble"],
)
def test_embeddings_are_the_ones_predict_uses(ratings, architecture):
    """With only the dot product, the prediction is the de-standardised dot of the rows:
    implicit vectors included and ensemble members concatenated."""
    X, y = ratings
    est = EmbeddingRatingRegressor(
        n_factors=8, hidden_units=(), use_bias=False, epochs=2, random_state=0, **architecture
    ).fit(X, y)
    assert est.user_embeddings_.shape == (est.n_users_, 8 * architecture["n_estimators"])
    pairs = X.iloc[:50]
    dots = np.einsum(
        "ij,ij->i",
        est.user_embeddings_.loc[pairs["user_id"]].to_numpy(np.float64),
        est.item_embeddings_.loc[pairs["item_id"]].to_numpy(np.float64),
    )
    scaler = est.regressor_.transformer_
    expected = np.clip(dots * scaler.scale_[0] + scaler.mean_[0], est.rating_min_, est.rating_max_)
    np.testing.assert_allclose(est.predict(pairs), expected, rtol=1e-5)


# -- real data: MovieLens 100K ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ml100k_fitted(ml100k):
    est = EmbeddingRatingRegressor(
        item_col="movie_id", n_factors=8, hidden_units=(8,), epochs=2, batch_size=2048,
        random_state=0,
    )
    return est.fit(ml100k[["user_id", "movie_id"]], ml100k["rating"])


@pytest.mark.slow
def test_ml100k_recommend_all_users(ml100k, ml100k_fitted):
    est = ml100k_fitted
    users = ml100k["user_id"].unique()
    est.recommend(users[:2], n=10)  # traces the serving function once
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        top = est.recommend(users, n=10)
        timings.append(time.perf_counter() - start)
    assert len(users) == 943 and est.n_items_ == 1682
    assert len(top) == 943 * 10
    assert top["user_id"].tolist() == np.repeat(users, 10).tolist()
    seen = _seen_pairs(ml100k, item="movie_id")
    assert seen.isdisjoint(_seen_pairs(top, item="movie_id"))
    predicted = est.predict(top)  # the columns are named after user_col and item_col
    np.testing.assert_array_equal(top["predicted_rating"], predicted)
    assert min(timings) < 2.0, timings


def test_ml100k_similar_items(ml100k_fitted):
    est = ml100k_fitted
    result = est.similar_items([1, 50, 181], n=10)  # Toy Story, Star Wars, Return of the Jedi
    assert len(result) == 30
    assert set(result["similar_item"]) <= set(est.encoder_.item_ids)
    assert (result["item"] != result["similar_item"]).all()
    assert est.item_embeddings_.shape == (1682, 8 * est.n_estimators_)
    assert est.user_embeddings_.shape == (943, 8 * est.n_estimators_)
    everything = est.similar_items(est.encoder_.item_ids, n=10)
    assert len(everything) == 1682 * 10


def test_bad_at_is_called_at_not_a_column(ratings):
    X, y = ratings
    timed = X.assign(timestamp=1_600_000_000 + 600 * np.arange(len(X)))
    est = EmbeddingRatingRegressor(time_col="timestamp", **FAST).fit(timed, y)
    for bad in (np.nan, "tomorrow", 1_600_000_000_000, [1_600_000_000] * 2):
        with pytest.raises(ValueError, match=r"^at=.* is not a time to recommend at") as error:
            est.recommend([0], n=3, at=bad)
        assert "column" not in str(error.value)
    later = est.recommend([0], n=3, at=pd.Timestamp("2021-01-01", tz="UTC"))
    assert len(later) == 3
    with pytest.raises(ValueError, match=r"fitted without times\. Leave at=None"):
        EmbeddingRatingRegressor(**FAST).fit(X, y).recommend([0], at=1_600_000_000)


def test_new_user_with_new_item_gets_the_mean_over_known_ids(ratings):
    """Not the mean rating: every known (user, item) pair counts once (the fallback's
    definition, see the Cold start guide). Exact for a tower-less network, whose
    prediction is bilinear in the user and item rows."""
    X, y = ratings
    est = EmbeddingRatingRegressor(**{**FAST, "hidden_units": (), "implicit": True}).fit(X, y)
    every_pair = pd.MultiIndex.from_product(
        [est.encoder_.user_ids, est.encoder_.item_ids], names=["user_id", "item_id"]
    ).to_frame(index=False)
    # predict clips to the rating range; the mean is over the network's own predictions.
    unclipped = pickle.loads(pickle.dumps(est))
    unclipped.rating_min_, unclipped.rating_max_ = -np.inf, np.inf
    grid = unclipped.predict(every_pair)
    both_new = est.predict(pd.DataFrame({"user_id": [-1], "item_id": [-1]}))[0]
    assert est.rating_min_ < both_new < est.rating_max_
    assert both_new == pytest.approx(grid.mean(), abs=1e-4)
    assert abs(both_new - y.mean()) > 10 * abs(both_new - grid.mean())
