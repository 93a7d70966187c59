"""Time-aware ratings (``time_col``): accepted times, the training period's ends, learning a
time trend, bad input, recommend(at=), partial_fit, persistence, side features, search."""

import datetime
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from skembedrec import EmbeddingRatingRegressor
from skembedrec._network import time_grid
from skembedrec.datasets import make_ratings
from skembedrec.model_selection import GlobalTimeSplit

DAY = 86_400
START = 1_500_000_000  # 2017-07-14 02:40 UTC
SPAN_DAYS = 300
# Pinned so that the tests do not move with the tuned defaults; a learning rate above the
# small-data default so that three epochs learn the time terms.
SETTINGS = dict(n_factors=4, epochs=3, random_state=0, implicit=False, n_estimators=1,
                batch_size=128, learning_rate=0.03, l2=0.3)


def timed_ratings(random_state: int = 0):
    """Ratings whose level rises by 2 stars over the period, and by +-2 more for even / odd
    users (a per-user drift): ``(X with a 'timestamp' column of int seconds, y)``."""
    X, y = make_ratings(n_users=60, n_items=50, n_ratings=1500, random_state=random_state)
    rng = np.random.RandomState(random_state)
    seconds = START + rng.randint(0, SPAN_DAYS * DAY, size=len(X))
    progress = (seconds - START) / (SPAN_DAYS * DAY) - 0.5
    direction = np.where(X["user_id"] % 2 == 0, 1.0, -1.0)
    y = y + 2.0 * progress + 2.0 * direction * progress
    return X.assign(timestamp=seconds.astype(np.int64)), y


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def at_time(X: pd.DataFrame, seconds) -> pd.DataFrame:
    return X.assign(timestamp=np.broadcast_to(np.asarray(seconds, dtype=np.int64), len(X)))


@pytest.fixture(scope="module")
def data():
    return timed_ratings()


@pytest.fixture(scope="module")
def fitted(data):
    """Fitted with times, shared read-only (tests that change a model take a copy)."""
    X, y = data
    return EmbeddingRatingRegressor(time_col="timestamp", **SETTINGS).fit(X, y)


@pytest.fixture
def own_copy(fitted):
    return pickle.loads(pickle.dumps(fitted))


@pytest.fixture(scope="module")
def queries(data):
    """Some (user, item) pairs, each user's parity known (even: rising drift)."""
    X, _ = data
    return X[["user_id", "item_id"]].drop_duplicates("user_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def held_out(data):
    X, y = data
    mask = np.isin(np.arange(len(X)), np.random.RandomState(1).permutation(len(X))[:300])
    return X[~mask], y[~mask], X[mask], y[mask]


@pytest.fixture(scope="module")
def without_time(held_out):
    X_train, y_train, _, _ = held_out
    return EmbeddingRatingRegressor(**SETTINGS).fit(X_train, y_train)


# -- 1. accepted times -------------------------------------------------------------------------


def _as_datetimes(seconds: pd.Series, zone: str | None = None) -> pd.Series:
    naive = pd.to_datetime(seconds, unit="s")
    return naive if zone is None else naive.dt.tz_localize("UTC").dt.tz_convert(zone)


def _objects(values) -> pd.Series:
    return pd.Series(list(values), dtype=object)


TIME_FORMS = {
    "int seconds": lambda s: s,
    "int32 / nullable Int64": lambda s: s.astype("int32").astype("Int64"),
    "float seconds": lambda s: s.astype(np.float64) + 0.25,
    "datetime64[ns]": _as_datetimes,
    "datetime64[s]": lambda s: _as_datetimes(s).astype("datetime64[s]"),
    "datetime64[ms, UTC]": lambda s: _as_datetimes(s, "UTC").astype("datetime64[ms, UTC]"),
    "aware, Tokyo": lambda s: _as_datetimes(s, "Asia/Tokyo"),
    "aware, Los Angeles": lambda s: _as_datetimes(s, "America/Los_Angeles"),
    "python datetimes": lambda s: _objects(_as_datetimes(s).dt.to_pydatetime()),
    "utc dates": lambda s: _objects(d.date() for d in _as_datetimes(s)),
}


@pytest.mark.parametrize("form", list(TIME_FORMS))
def test_every_time_form_predicts_as_unix_seconds(fitted, data, form):
    X, _ = data
    converted = X.assign(timestamp=TIME_FORMS[form](X["timestamp"]))
    np.testing.assert_array_equal(fitted.predict(converted), fitted.predict(X))


def test_array_with_time_in_column_2_predicts_as_the_frame(fitted, data):
    X, _ = data
    expected = fitted.predict(X)
    np.testing.assert_array_equal(fitted.predict(X[["user_id", "item_id", "timestamp"]]
                                                 .to_numpy()), expected)
    stamps = X[["user_id", "item_id", "timestamp"]].astype(object).assign(
        timestamp=_as_datetimes(X["timestamp"], "Europe/Paris").astype(object))
    np.testing.assert_array_equal(fitted.predict(stamps.to_numpy()), expected)


def _fit_inputs(X: pd.DataFrame, layout: str):
    """``(X to fit on, its column parameters, the feature names it should give)``."""
    ordered = X[["user_id", "item_id", "timestamp"]]
    if layout in TIME_FORMS:
        return X.assign(timestamp=TIME_FORMS[layout](X["timestamp"])), {}, list(ordered)
    if layout == "renamed":
        renamed = ordered.rename(columns={"timestamp": "when"})[["when", "item_id", "user_id"]]
        return renamed, {"time_col": "when"}, ["user_id", "item_id", "when"]
    if layout == "int labels":
        return ordered.set_axis([0, 1, 2], axis=1), dict(user_col=0, item_col=1), [0, 1, 2]
    return ordered.to_numpy(), {}, None


@pytest.mark.parametrize("layout", ["datetime64[ns]", "aware, Tokyo", "float seconds",
                                    "renamed", "int labels", "array"])
def test_fit_on_other_time_forms_and_layouts_learns_the_same_model(fitted, data, layout):
    X, y = data
    X_fit, columns, names = _fit_inputs(X, layout)
    params = {"time_col": 2 if layout == "int labels" else "timestamp", **columns}
    refit = EmbeddingRatingRegressor(**params, **SETTINGS).fit(X_fit, y)
    np.testing.assert_allclose(refit.predict(X_fit), fitted.predict(X), atol=1e-6)
    assert refit.n_features_in_ == 3
    assert refit.time_max_ == pytest.approx(fitted.time_max_, abs=0.5)
    assert list(getattr(refit, "feature_names_in_", [None])) == (names or [None])


def test_fitted_time_attributes(fitted, data):
    assert fitted.n_features_in_ == 3 and list(fitted.feature_names_in_) == [
        "user_id", "item_id", "timestamp"]
    assert type(fitted.time_max_) is float and fitted.time_max_ == data[0]["timestamp"].max()
    copy = clone(fitted)
    assert copy.get_params()["time_col"] == "timestamp" and not hasattr(copy, "time_max_")


def test_zero_weight_ratings_do_not_set_time_max(data):
    X, y = data
    weights = (X["timestamp"] < X["timestamp"].max()).astype(float)
    est = EmbeddingRatingRegressor(time_col="timestamp", **SETTINGS).fit(X, y, weights)
    assert est.time_max_ == float(X["timestamp"][weights > 0].max()) < X["timestamp"].max()


# -- 2. the ends of the training period ----------------------------------------------------------


def _assert_shifted(shifted, reference):
    """Equal up to one constant for every row: only a global term (the period's level) moved;
    every user's drift is held at the nearest end of the training period."""
    offset = np.asarray(shifted) - np.asarray(reference)
    np.testing.assert_allclose(offset, offset[0], atol=1e-5)


def test_times_outside_the_period_are_held_at_its_nearest_end(fitted, data, queries):
    X, _ = data
    first, last = X["timestamp"].min(), X["timestamp"].max()
    at_last, at_first = (fitted.predict(at_time(queries, end)) for end in (last, first))
    # Same UTC day as the last rating, earlier that day: still the last day.
    np.testing.assert_array_equal(fitted.predict(at_time(queries, last - last % DAY)), at_last)
    after = fitted.predict(at_time(queries, last - last % DAY + DAY))
    before = fitted.predict(at_time(queries, first - first % DAY - 1))
    for outside, held in ((last + 400 * DAY, after), (last + 40 * 365 * DAY, after),
                          (first - 400 * DAY, before), (0, before), (-20 * 365 * DAY, before)):
        np.testing.assert_array_equal(fitted.predict(at_time(queries, outside)), held)
    _assert_shifted(after, at_last)
    _assert_shifted(before, at_first)
    assert not np.allclose(at_first, at_last)


def test_the_level_outside_the_period_is_the_mean_level_of_the_training_ratings(fitted, data):
    X, _ = data
    stranger = X.assign(user_id=10_000, item_id=0)  # an unknown user: no drift, level only
    at_each_rating = fitted.predict(stranger)
    assert np.ptp(at_each_rating) > 0.5  # the level moves over the period
    for outside in (X["timestamp"].max() + 400 * DAY, START - 400 * DAY):
        held = fitted.predict(at_time(stranger.head(1), outside))
        assert held[0] == pytest.approx(at_each_rating.mean(), abs=1e-4)


def test_times_inside_the_period_move_predictions_with_each_users_drift(fitted, queries):
    early, middle, late = (fitted.predict(at_time(queries, START + day * DAY))
                           for day in (10, SPAN_DAYS // 2, SPAN_DAYS - 10))
    assert not np.allclose(early, middle) and not np.allclose(middle, late)
    rise = late - early
    rising = (queries["user_id"] % 2 == 0).to_numpy()
    # True rises: 4 stars for even users, 0 for odd ones; the level alone would give 2.
    assert rise[rising].mean() > 1.5
    assert rise[rising].mean() - rise[~rising].mean() > 0.5


# -- 3. the model learns time ------------------------------------------------------------------


@pytest.mark.slow
def test_time_terms_lower_the_held_out_error(held_out, without_time):
    X_train, y_train, X_test, y_test = held_out
    with_time = EmbeddingRatingRegressor(time_col="timestamp", **SETTINGS).fit(X_train, y_train)
    plain, timed = (rmse(m.predict(X_test), y_test) for m in (without_time, with_time))
    assert timed < plain - 0.2, (timed, plain)
    # The extra timestamp column is ignored by a model without time_col.
    np.testing.assert_array_equal(without_time.predict(X_test),
                                  without_time.predict(X_test[["user_id", "item_id"]]))


# -- 4. bad input ------------------------------------------------------------------------------


def _bad_times(seconds: pd.Series) -> dict:
    n = len(seconds)
    stamps = list(_as_datetimes(seconds))
    nat = _as_datetimes(seconds).copy()
    nat.iloc[3] = pd.NaT
    return {
        "nan": seconds.astype(np.float64).where(np.arange(n) != 2),
        "none": _objects([None, *seconds.iloc[1:]]),
        "nat": nat,
        "pd.NA": seconds.astype("Int64").where(np.arange(n) != 4),
        "inf": seconds.astype(np.float64).where(np.arange(n) != 1, np.inf),
        "date strings": _as_datetimes(seconds).dt.strftime("%Y-%m-%d"),
        "words": _objects(["yesterday"] * n),
        "numbers and stamps": _objects([seconds.iloc[0], *stamps[1:]]),
        "aware and naive": _objects([stamps[0].tz_localize("UTC"), *stamps[1:]]),
        "milliseconds": seconds * 1000,
        "bools": _objects(np.arange(n) % 2 == 0).astype(bool),
    }


BAD_KINDS = list(_bad_times(pd.Series([START] * 5)))


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_times_raise_naming_the_column_at_fit_and_predict(fitted, data, kind):
    X, y = data
    bad = X.assign(when=_bad_times(X["timestamp"])[kind]).drop(columns="timestamp")
    with pytest.raises(ValueError, match="'when'"):
        EmbeddingRatingRegressor(time_col="when", **SETTINGS).fit(bad, y)
    with pytest.raises(ValueError, match="'timestamp'"):
        fitted.predict(bad.rename(columns={"when": "timestamp"}))


def test_missing_time_column_raises_naming_it(fitted, data):
    X, y = data
    pairs = X[["user_id", "item_id"]]
    for X_without in (pairs, pairs.to_numpy(), [[0, 1]]):
        with pytest.raises(ValueError, match="'timestamp'"):
            fitted.predict(X_without)
    with pytest.raises(ValueError, match="'timestamp'"):
        fitted.score(pairs, y)
    for X_without in (X, pairs.to_numpy()):
        with pytest.raises(ValueError, match="'when'"):
            EmbeddingRatingRegressor(time_col="when", **SETTINGS).fit(X_without, y)


@pytest.mark.parametrize("form", ["int seconds", "aware, Tokyo", "python datetimes"])
def test_callers_data_is_left_unchanged(fitted, data, form):
    X, y = data
    X = X.assign(timestamp=TIME_FORMS[form](X["timestamp"]))
    y = y.astype(np.float32)
    X_before, y_before = X.copy(deep=True), y.copy(deep=True)
    est = EmbeddingRatingRegressor(time_col="timestamp", **{**SETTINGS, "epochs": 1})
    est.fit(X, y).predict(X)
    fitted.predict(X)
    pd.testing.assert_frame_equal(X, X_before)
    pd.testing.assert_series_equal(y, y_before)
    array = X[["user_id", "item_id", "timestamp"]].to_numpy()
    array_before = array.copy()
    est.fit(array, y).predict(array)
    assert array.dtype == array_before.dtype
    np.testing.assert_array_equal(array, array_before)


def test_failed_fit_keeps_the_previous_model(own_copy, data):
    X, y = data
    before, time_max = own_copy.predict(X), own_copy.time_max_
    bad = X.assign(timestamp=X["timestamp"].astype(np.float64).where(X.index != 5))
    with pytest.raises(ValueError, match="'timestamp'"):
        own_copy.fit(bad, y)
    with pytest.raises(ValueError, match="'timestamp'"):
        own_copy.partial_fit(bad, y)
    np.testing.assert_array_equal(own_copy.predict(X), before)
    assert own_copy.time_max_ == time_max


def test_time_col_needs_use_bias(data):
    with pytest.raises(ValueError, match="use_bias"):
        EmbeddingRatingRegressor(time_col="timestamp", **{**SETTINGS, "use_bias": False}
                                 ).fit(*data)


def test_changing_time_col_after_fit_is_refused(own_copy, data):
    X, y = data
    before = own_copy.predict(X)
    own_copy.set_params(time_col=None, warm_start=True)
    for refused in (lambda: own_copy.predict(X), lambda: own_copy.partial_fit(X, y),
                    lambda: own_copy.fit(X, y), lambda: own_copy.recommend([0])):
        with pytest.raises(ValueError, match="time_col"):
            refused()
    own_copy.set_params(time_col="timestamp")
    np.testing.assert_array_equal(own_copy.predict(X), before)
    own_copy.set_params(time_col=None, warm_start=False).fit(X, y)  # a new model: allowed
    assert own_copy.time_max_ is None and own_copy.n_features_in_ == 2


def test_adding_time_col_to_a_model_fitted_without_is_refused(without_time, held_out):
    X_train, y_train, _, _ = held_out
    model = pickle.loads(pickle.dumps(without_time))
    before = model.predict(X_train)
    model.set_params(time_col="timestamp", warm_start=True)
    for refused in (lambda: model.predict(X_train), lambda: model.partial_fit(X_train, y_train),
                    lambda: model.fit(X_train, y_train)):
        with pytest.raises(ValueError, match="time_col"):
            refused()
    model.set_params(time_col=None)
    np.testing.assert_array_equal(model.predict(X_train), before)


# -- 5. recommend ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def with_tower(data):
    """A network with an MLP tower: recommend scores through the network, not the form."""
    X, y = data
    return EmbeddingRatingRegressor(time_col="timestamp", **{**SETTINGS, "hidden_units": (4,)}
                                    ).fit(X, y)


@pytest.fixture(params=["additive", "tower"])
def model(request, fitted, with_tower):
    return fitted if request.param == "additive" else with_tower


def _assert_same_items_shifted(recs, reference):
    """The same items in the same order, each rating moved by the same (level) offset."""
    pd.testing.assert_frame_equal(recs.drop(columns="predicted_rating"),
                                  reference.drop(columns="predicted_rating"))
    _assert_shifted(recs["predicted_rating"], reference["predicted_rating"])


def test_recommend_defaults_to_the_latest_time_and_holds_outside_times(model, data):
    users = [0, 1, 2, 7]
    default = model.recommend(users, n=5)
    pd.testing.assert_frame_equal(default, model.recommend(users, n=5, at=model.time_max_))
    next_day = model.recommend(users, n=5, at=model.time_max_ + DAY)
    pd.testing.assert_frame_equal(model.recommend(users, n=5, at=model.time_max_ + 999 * DAY),
                                  next_day)
    _assert_same_items_shifted(next_day, default)
    first = model.recommend(users, n=5, at=int(data[0]["timestamp"].min()))
    before = model.recommend(users, n=5, at=START - 900 * DAY)
    pd.testing.assert_frame_equal(
        model.recommend(users, n=5, at=datetime.datetime(1990, 1, 1)), before)
    _assert_same_items_shifted(before, first)


def test_recommend_at_any_time_form_matches_predict_there(model):
    users = [0, 1, 2, 7]
    instant = pd.Timestamp(START + 40 * DAY + 7 * 3600, unit="s", tz="UTC")
    forms = [instant, instant.tz_convert("Asia/Tokyo"), instant.tz_localize(None),
             np.datetime64(instant.tz_localize(None)), instant.timestamp(),
             int(instant.timestamp()), instant.to_pydatetime()]
    recs = [model.recommend(users, n=5, at=at) for at in forms]
    for other in recs[1:]:  # one instant, seven spellings
        pd.testing.assert_frame_equal(other, recs[0])
    rows = recs[0][["user_id", "item_id"]].assign(timestamp=int(instant.timestamp()))
    np.testing.assert_array_equal(recs[0]["predicted_rating"], model.predict(rows))
    assert not np.allclose(model.recommend(users, n=5)["predicted_rating"],
                           recs[0]["predicted_rating"])


def test_recommend_ranks_all_unseen_items_at_that_time(model, data):
    at, X = START + 20 * DAY, data[0]
    recs = model.recommend([3], n=5, at=at)
    unseen = np.setdiff1d(np.arange(50), X.loc[X["user_id"] == 3, "item_id"])
    scores = model.predict(pd.DataFrame({"user_id": 3, "item_id": unseen, "timestamp": at}))
    np.testing.assert_array_equal(recs["item_id"],
                                  unseen[np.argsort(-scores, kind="stable")][:5])


def test_recommend_at_without_times_or_not_a_time_raises(fitted, without_time):
    with pytest.raises(ValueError, match="at="):
        without_time.recommend([0], n=3, at=START)
    assert len(without_time.recommend([0], n=3)) == 3
    for bad in (np.nan, pd.NaT, "tomorrow", START * 1000, [START, START]):
        with pytest.raises(ValueError, match="'at'"):
            fitted.recommend([0], n=3, at=bad)


# -- 6. partial_fit with later times -------------------------------------------------------------


@pytest.fixture(scope="module")
def two_periods(data):
    """A model fitted on users 0-49, and the others' ratings one period later."""
    X, y = data
    old = (X["user_id"] < 50).to_numpy()
    est = EmbeddingRatingRegressor(time_col="timestamp", **SETTINGS).fit(X[old], y[old])
    later = X[~old].assign(timestamp=X.loc[~old, "timestamp"] + SPAN_DAYS * DAY)
    return est, X[old], later, y[~old]


def test_partial_fit_with_later_times_and_new_users(two_periods):
    first_fit, X, later, y_later = two_periods
    est = pickle.loads(pickle.dumps(first_fit))
    grid, first_max, n_users = time_grid(est.model_), est.time_max_, est.n_users_
    assert not est.is_known(later)[:, 0].any()
    est.partial_fit(later, y_later)
    assert est.is_known(later)[:, 0].all() and est.n_users_ == n_users + 10 == 60
    assert est.time_max_ == float(later["timestamp"].max()) > first_max
    assert time_grid(est.model_) == grid  # the first fit's period is kept
    assert np.isfinite(est.predict(later)).all()
    # Every time past the first fit's period is held at its end (drift held), old users or
    # new: one prediction per pair, a constant away from the first period's last day.
    everyone = pd.concat([X[["user_id", "item_id"]].iloc[:40], later[["user_id", "item_id"]]])
    after = est.predict(at_time(everyone, later["timestamp"].min()))
    for when in (later["timestamp"].max(), est.time_max_ + 50 * DAY):
        np.testing.assert_array_equal(est.predict(at_time(everyone, when)), after)
    _assert_shifted(after, est.predict(at_time(everyone, first_max)))
    pd.testing.assert_frame_equal(est.recommend([55, 0], n=4),
                                  est.recommend([55, 0], n=4, at=later["timestamp"].min()))
    # A new user's drift is centred on the mean day of its ratings in that call.
    code = int(np.flatnonzero(est.encoder_.user_ids == 55)[0])
    days = later.loc[later["user_id"] == 55, "timestamp"] // DAY
    assert est.model_.get_layer("user_drift").mean_day.numpy()[code] == pytest.approx(
        days.mean(), abs=1e-3)


def test_partial_fit_on_later_times_leaves_times_before_the_period_alone(two_periods):
    first_fit, X, later, y_later = two_periods
    est = pickle.loads(pickle.dumps(first_fit))
    pairs, first = X[["user_id", "item_id"]].iloc[:40], int(X["timestamp"].min())

    def first_day_and_past():
        return (est.predict(at_time(pairs, first)),
                est.predict(at_time(pairs, first - 400 * DAY)))

    first_before, past_before = first_day_and_past()
    est.partial_fit(later, y_later + 1.0)  # a later period, rated higher
    first_after, past_after = first_day_and_past()
    # Shared weights (item biases, factors) move both alike; the level of the past must not.
    np.testing.assert_allclose(past_after - past_before, first_after - first_before, atol=1e-4)


# -- 7. persistence ----------------------------------------------------------------------------


def _queries_across_time(X: pd.DataFrame) -> pd.DataFrame:
    spread = np.linspace(START - 100 * DAY, START + 500 * DAY, len(X)).astype(np.int64)
    return pd.concat([X, X.assign(timestamp=spread)], ignore_index=True)


def test_save_load_and_joblib_round_trips_predict_identically(fitted, data, tmp_path):
    X, _ = data
    queries = _queries_across_time(X)
    fitted.save(tmp_path / "model.skembedrec")
    joblib.dump(fitted, tmp_path / "model.joblib")
    for copy in (EmbeddingRatingRegressor.load(tmp_path / "model.skembedrec"),
                 joblib.load(tmp_path / "model.joblib")):
        assert copy.time_col == "timestamp" and copy.time_max_ == fitted.time_max_
        assert list(copy.feature_names_in_) == list(fitted.feature_names_in_)
        np.testing.assert_array_equal(copy.predict(queries), fitted.predict(queries))
        for at in (None, START + 30 * DAY, START + 900 * DAY):
            pd.testing.assert_frame_equal(copy.recommend([0, 9], n=4, at=at),
                                          fitted.recommend([0, 9], n=4, at=at))
        with pytest.raises(ValueError, match="'timestamp'"):
            copy.predict(X[["user_id", "item_id"]])


# -- 8. side features --------------------------------------------------------------------------


def test_side_features_with_time(data, tmp_path):
    X, y = data
    users = pd.DataFrame({"group": np.where(np.arange(70) % 2 == 0, "even", "odd")},
                         index=pd.Index(np.arange(70), name="user_id"))
    items = pd.DataFrame({"year": 1990.0 + np.arange(50) % 20},
                         index=pd.Index(np.arange(50), name="item_id"))
    est = EmbeddingRatingRegressor(time_col="timestamp", user_features=users,
                                   item_features=items, **SETTINGS).fit(X, y)
    assert est.n_features_in_ == 3 and est.time_max_ == float(X["timestamp"].max())
    assert rmse(est.predict(X), y) < y.std()  # finite, and better than the mean
    cold = pd.DataFrame({"user_id": [64, 65], "item_id": [1, 1]})  # features, no ratings
    assert est.is_known(cold)[:, 0].all()
    early, late = (est.predict(at_time(cold, START + d * DAY)) for d in (5, SPAN_DAYS - 5))
    assert np.isfinite(early).all() and not np.allclose(early, late)
    est.save(tmp_path / "features.skembedrec")
    queries = _queries_across_time(X.iloc[:200])
    np.testing.assert_array_equal(
        EmbeddingRatingRegressor.load(tmp_path / "features.skembedrec").predict(queries),
        est.predict(queries))


# -- 9. model selection ------------------------------------------------------------------------


@pytest.mark.slow
def test_grid_search_with_a_global_time_split_prefers_time(data):
    X, y = data
    splitter = GlobalTimeSplit(n_splits=2, test_size=0.15, time_col="timestamp")
    search = GridSearchCV(EmbeddingRatingRegressor(**SETTINGS),
                          {"time_col": [None, "timestamp"]}, cv=splitter,
                          scoring="neg_root_mean_squared_error").fit(X, y)
    assert search.best_params_ == {"time_col": "timestamp"}, search.cv_results_
    best = search.best_estimator_
    assert best.time_max_ == float(X["timestamp"].max()) and best.n_features_in_ == 3
    scores = cross_val_score(EmbeddingRatingRegressor(time_col="timestamp", **SETTINGS), X, y,
                             cv=splitter, scoring="neg_root_mean_squared_error")
    timed = [search.cv_results_[f"split{i}_test_score"][1] for i in range(2)]
    np.testing.assert_allclose(scores, timed, atol=1e-6)


# -- 10. is_known ------------------------------------------------------------------------------


def test_is_known_does_not_need_the_time(fitted, data):
    X, _ = data
    probe = pd.DataFrame({"user_id": [0, 999, 3, 999], "item_id": [1, 2, 999, 999],
                          "timestamp": [START, START, np.nan, START]})
    expected = np.array([[True, True], [False, True], [True, False], [False, False]])
    pairs = probe[["user_id", "item_id"]]
    for X_probe in (probe, pairs, probe.to_numpy(), pairs.to_numpy(), pairs.to_numpy().tolist()):
        np.testing.assert_array_equal(fitted.is_known(X_probe), expected)
    assert fitted.is_known(X).all()
