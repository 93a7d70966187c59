"""The time-aware splitters: ordering, sizes, ties, time kinds, groups, bad input, and use as
``cv=`` in scikit-learn's model selection (with the estimator and on MovieLens 100K)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
from conftest import FAST
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import (
    GridSearchCV,
    TimeSeriesSplit,
    check_cv,
    cross_val_score,
    cross_validate,
)

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings
from skembedrec.model_selection import GlobalTimeSplit, PerUserTimeSplit


def frame(n=400, n_users=30, n_times=60, seed=0):
    """Ratings with many ties in time (n_times distinct times for n ratings)."""
    rng = np.random.RandomState(seed)
    return pd.DataFrame({
        "user_id": rng.randint(n_users, size=n),
        "item_id": rng.randint(50, size=n),
        "timestamp": 1_500_000_000 + 3600 * rng.randint(n_times, size=n),
    })


def as_list(splitter, X, **kwargs):
    return [(train.tolist(), test.tolist()) for train, test in splitter.split(X, **kwargs)]


# ----------------------------------------------------------------------------- global cut

@pytest.mark.parametrize("n_splits, test_size, gap", [
    (1, 0.1, 0), (3, None, 0), (4, 25, 0), (2, 0.2, 30), (5, 10, 7),
])
def test_global_no_test_rating_precedes_the_cut(n_splits, test_size, gap):
    X = frame()
    times = X["timestamp"].to_numpy()
    splits = list(GlobalTimeSplit(n_splits, test_size=test_size, gap=gap).split(X))
    assert len(splits) == n_splits
    previous_train, previous_test_end = np.array([], dtype=int), -np.inf
    for train, test in splits:
        assert len(train) and len(test) and not np.intersect1d(train, test).size
        # Strictly earlier: ratings sharing the cut's time are never split apart.
        assert times[train].max() < times[test].min()
        assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)  # row order
        # Rolling origins: each training set holds the previous one, blocks follow each other.
        assert np.isin(previous_train, train).all() and len(train) > len(previous_train)
        assert times[test].min() > previous_test_end
        previous_train, previous_test_end = train, times[test].max()
    assert splits[-1][1].max() <= len(X) - 1 and times[splits[-1][1]].max() == times.max()


def test_global_matches_time_series_split_on_distinct_times():
    rng = np.random.RandomState(1)
    times = rng.permutation(100) * 60.0
    X = pd.DataFrame({"user_id": 0, "item_id": 0, "timestamp": times})
    order = np.argsort(times)
    for n_splits, test_size, gap in [(5, None, 0), (3, 10, 4), (2, 30, 0)]:
        ours = list(GlobalTimeSplit(n_splits, test_size=test_size, gap=gap).split(X))
        theirs = TimeSeriesSplit(n_splits, test_size=test_size, gap=gap).split(order)
        for (train, test), (ref_train, ref_test) in zip(ours, theirs, strict=True):
            assert train.tolist() == sorted(order[ref_train])
            assert test.tolist() == sorted(order[ref_test])


def test_global_ninety_ten():
    X = pd.DataFrame({"user_id": 0, "item_id": 0, "timestamp": np.arange(1000)[::-1]})
    [(train, test)] = GlobalTimeSplit(n_splits=1, test_size=0.1).split(X)
    assert len(train) == 900 and len(test) == 100
    assert test.tolist() == list(range(100))  # the latest times are the first rows
    # A fraction is rounded up, and 0.3 * 10 is not taken for 3.0000000000000004.
    [(_, test)] = GlobalTimeSplit(1, test_size=0.3).split(X.iloc[:10])
    assert len(test) == 3


def test_global_ties_at_the_cut_go_to_the_later_side():
    X = pd.DataFrame({"timestamp": [3, 1, 3, 2, 4, 3]})
    # Nominal cut after 4 sorted ratings (1, 2, 3, 3 | 3, 4): it moves back before the 3s.
    [(train, test)] = GlobalTimeSplit(1, test_size=2).split(X)
    assert train.tolist() == [1, 3] and test.tolist() == [0, 2, 4, 5]
    # The same with the gap: ratings sharing the training end's time join the gap.
    [(train, test)] = GlobalTimeSplit(1, test_size=1, gap=2).split(X)
    assert train.tolist() == [1, 3] and test.tolist() == [4]


def test_global_refuses_cuts_that_ties_make_empty():
    with pytest.raises(ValueError, match="empty training set"):
        list(GlobalTimeSplit(1, test_size=1).split(pd.DataFrame({"timestamp": [5, 5, 5]})))
    with pytest.raises(ValueError, match=r"Split 0 .* empty test set"):
        list(GlobalTimeSplit(2, test_size=1).split(pd.DataFrame({"timestamp": [1, 2, 3, 3]})))
    with pytest.raises(ValueError, match="Too many splits"):
        list(GlobalTimeSplit(5, test_size=2).split(pd.DataFrame({"timestamp": range(10)})))


# --------------------------------------------------------------------------- per user

@pytest.mark.parametrize("params", [
    dict(last_k=1), dict(last_k=3), dict(last_fraction=0.2), dict(last_k=2, min_train=4),
    dict(n_splits=3, last_k=2), dict(n_splits=2, last_fraction=0.25), dict(last_k=2, min_train=0),
])
def test_per_user_no_test_rating_precedes_a_training_rating_of_its_user(params):
    X = frame(n=600, n_users=40, n_times=40)  # heavy ties within users
    times, users = X["timestamp"].to_numpy(), X["user_id"].to_numpy()
    counts = X["user_id"].value_counts()
    splits = list(PerUserTimeSplit(**params).split(X))
    assert len(splits) == params.get("n_splits", 1)
    k, min_train = params.get("last_k"), params.get("min_train", 1)
    n_splits = params.get("n_splits", 1)
    for i, (train, test) in enumerate(splits):
        assert not np.intersect1d(train, test).size
        for user, n_user in counts.items():
            user_train = train[users[train] == user]
            user_test = test[users[test] == user]
            block = k if k else int(np.ceil(params["last_fraction"] * n_user))
            start = n_user - (n_splits - i) * block
            if start < min_train:  # too few ratings: all of them stay in training
                assert len(user_test) == 0 and len(user_train) == n_user
                continue
            assert len(user_test) == block and len(user_train) == start
            if len(user_train):
                assert times[user_train].max() <= times[user_test].min()
            # The user's ratings after the test block (its future) are in neither set.
            future = np.setdiff1d(np.flatnonzero(users == user), np.r_[user_train, user_test])
            if len(future):
                assert times[future].min() >= times[user_test].max()
        if min_train >= 1:  # every test user is known from training
            assert np.isin(users[test], users[train]).all()


def test_per_user_ties_keep_the_row_order():
    X = pd.DataFrame({"user_id": ["a", "a", "a", "b", "b"], "timestamp": [7, 7, 7, 1, 1]})
    [(train, test)] = PerUserTimeSplit(last_k=1).split(X)
    assert train.tolist() == [0, 1, 3] and test.tolist() == [2, 4]


def test_per_user_last_fraction_rounds_up():
    X = pd.DataFrame({"user_id": [0] * 10 + [1] * 3 + [2], "timestamp": np.arange(14)})
    [(train, test)] = PerUserTimeSplit(last_fraction=0.25).split(X)
    # ceil(2.5) = 3 of user 0, ceil(0.75) = 1 of user 1; user 2's one rating stays in training.
    assert test.tolist() == [7, 8, 9, 12]
    assert train.tolist() == [0, 1, 2, 3, 4, 5, 6, 10, 11, 13]


def test_per_user_refuses_a_split_without_test_ratings():
    X = pd.DataFrame({"user_id": [0, 0, 1], "timestamp": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"no test rating.*largest has 2"):
        list(PerUserTimeSplit(last_k=2).split(X))
    assert len(list(PerUserTimeSplit(last_k=2, min_train=0).split(X))) == 1


# --------------------------------------------------------------------- times and inputs

def _time_kinds():
    seconds = frame()["timestamp"]
    stamps = pd.to_datetime(seconds, unit="s")
    return {
        "int seconds": seconds,
        "float seconds": seconds.astype(float) + 0.25,
        "datetime64": stamps,
        "tz-aware": stamps.dt.tz_localize("UTC").dt.tz_convert("America/New_York"),
        "Timestamp objects": stamps.astype(object),
        "aware Timestamp objects": pd.Series(
            [t.tz_localize("UTC").tz_convert("Asia/Tokyo") for t in stamps], dtype=object),
        "datetime64 array": stamps.to_numpy(),
    }


@pytest.mark.parametrize("kind", list(_time_kinds()))
@pytest.mark.parametrize("splitter", [GlobalTimeSplit(3), PerUserTimeSplit(2, last_k=2)])
def test_every_kind_of_time_gives_the_same_splits(kind, splitter):
    X = frame()
    expected = as_list(splitter, X)
    X_kind = X.assign(timestamp=_time_kinds()[kind])
    assert as_list(splitter, X_kind) == expected


def test_timezone_aware_times_are_compared_in_utc():
    times = pd.Series([pd.Timestamp("2020-01-01 01:00", tz="Europe/Paris"),   # 00:00 UTC
                       pd.Timestamp("2020-01-01 00:30", tz="UTC"),
                       pd.Timestamp("2019-12-31 18:00", tz="America/New_York")],  # 23:00 UTC
                      dtype=object)
    [(train, test)] = GlobalTimeSplit(1, test_size=1).split(pd.DataFrame({"timestamp": times}))
    assert train.tolist() == [0, 2] and test.tolist() == [1]


def test_arrays_lists_and_frames_agree():
    X = frame()
    array = X[["user_id", "item_id", "timestamp"]].to_numpy()
    for splitter in (GlobalTimeSplit(2, test_size=0.1), PerUserTimeSplit(last_k=1)):
        expected = as_list(splitter, X)
        assert as_list(splitter, array) == expected
        assert as_list(splitter, array.tolist()) == expected
    # An int column picks the position in an array; in a frame it is a column label.
    moved = array[:, [2, 0, 1]]
    assert as_list(GlobalTimeSplit(2, time_col=0), moved) == as_list(GlobalTimeSplit(2), X)
    assert as_list(PerUserTimeSplit(last_k=1, user_col=1, time_col=0), moved) == as_list(
        PerUserTimeSplit(last_k=1), X)
    numbered = pd.DataFrame(array)
    assert as_list(GlobalTimeSplit(2, time_col=2), numbered) == as_list(GlobalTimeSplit(2), X)


def test_the_callers_data_is_not_changed():
    X = frame().assign(timestamp=_time_kinds()["tz-aware"])
    before = X.copy()
    for splitter in (GlobalTimeSplit(2), PerUserTimeSplit(last_k=1)):
        list(splitter.split(X, X["item_id"]))
    pd.testing.assert_frame_equal(X, before)


@pytest.mark.parametrize("times, message", [
    ([1.0, np.nan, 3.0], r"'timestamp' contains 1 missing value\(s\).*row\(s\) \[1\]"),
    ([1, None, 3], "'timestamp' contains 1 missing"),
    (pd.to_datetime(["2020", None, "2021"]), "'timestamp' contains 1 missing"),
    ([1.0, np.inf, 3.0], "'timestamp' contains infinite"),
    ([1, pd.Timestamp("2020"), 3], r"'timestamp' must hold.*\['Timestamp', 'int'\]"),
    (["2020-01-01", "2020-01-02", "2020-01-03"], "'timestamp'.*pandas.to_datetime"),
    ([True, False, True], "'timestamp' must hold"),
    ([pd.Timestamp("2020"), pd.Timestamp("2020", tz="UTC"), pd.Timestamp("2021")],
     "'timestamp' mixes timezone-aware and naive"),
])
@pytest.mark.parametrize("splitter", [GlobalTimeSplit(1), PerUserTimeSplit(last_k=1)])
def test_bad_times_raise_naming_the_column(times, message, splitter):
    X = pd.DataFrame({"user_id": [1, 1, 1], "timestamp": pd.Series(times, dtype=object)})
    if isinstance(times, pd.DatetimeIndex):
        X["timestamp"] = times
    with pytest.raises(ValueError, match=message):
        list(splitter.split(X))


def test_bad_x_raises():
    X = frame()
    with pytest.raises(ValueError, match=r"no column 'time'.*time_col="):
        list(GlobalTimeSplit(time_col="time").split(X))
    with pytest.raises(ValueError, match=r"no column 'user'.*user_col="):
        list(PerUserTimeSplit(last_k=1, user_col="user").split(X))
    with pytest.raises(ValueError, match=r"2 column\(s\), so it has no column 2 \(time_col\)"):
        list(GlobalTimeSplit().split(X[["user_id", "item_id"]].to_numpy()))
    with pytest.raises(ValueError, match="several columns named 'timestamp'"):
        list(GlobalTimeSplit().split(pd.concat([X, X[["timestamp"]]], axis=1)))
    with pytest.raises(TypeError, match="sparse"):
        list(GlobalTimeSplit().split(sp.csr_matrix(X.to_numpy())))
    with pytest.raises(ValueError, match="2-D"):
        list(GlobalTimeSplit().split(X["timestamp"]))
    with pytest.raises(ValueError, match="0 rows"):
        list(GlobalTimeSplit().split(X.iloc[:0]))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        list(GlobalTimeSplit().split(X, np.ones(3)))
    with pytest.raises(ValueError, match="'user_id' contains 1 missing value"):
        list(PerUserTimeSplit(last_k=1).split(X.assign(user_id=[None] + [1] * (len(X) - 1))))


@pytest.mark.parametrize("make, error, message", [
    (lambda: GlobalTimeSplit(0), ValueError, "n_splits must be an int >= 1; got 0"),
    (lambda: GlobalTimeSplit(2.0), TypeError, "n_splits must be an int"),
    (lambda: GlobalTimeSplit(gap=-1), ValueError, "gap must be an int >= 0"),
    (lambda: GlobalTimeSplit(test_size=0), ValueError, "test_size must be an int >= 1"),
    (lambda: GlobalTimeSplit(test_size=1.0), ValueError, r"test_size must be a float in \(0, 1\)"),
    (lambda: GlobalTimeSplit(test_size="10%"), TypeError, "test_size must be None"),
    (lambda: PerUserTimeSplit(last_k=0), ValueError, "last_k must be an int >= 1; got 0"),
    (lambda: PerUserTimeSplit(last_k=True), TypeError, "last_k must be an int"),
    (lambda: PerUserTimeSplit(), ValueError, "exactly one of last_k .* and last_fraction"),
    (lambda: PerUserTimeSplit(last_k=1, last_fraction=0.1), ValueError, "exactly one"),
    (lambda: PerUserTimeSplit(last_fraction=1.5), ValueError, "last_fraction must be a float"),
    (lambda: PerUserTimeSplit(3, last_fraction=0.4), ValueError, "n_splits \\* last_fraction"),
    (lambda: PerUserTimeSplit(last_k=1, min_train=-1), ValueError, "min_train must be an int >= 0"),
])
def test_bad_parameters_raise_at_construction(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_parameters_changed_after_construction_are_checked_at_split():
    splitter = PerUserTimeSplit(last_k=1)
    splitter.last_k = 0
    with pytest.raises(ValueError, match="last_k must be an int >= 1"):
        list(splitter.split(frame()))


# ------------------------------------------------------------------------------- groups

def test_global_split_ignores_groups_with_a_warning():
    X = frame()
    expected = as_list(GlobalTimeSplit(2), X)
    with pytest.warns(UserWarning, match="groups parameter is ignored by GlobalTimeSplit"):
        assert as_list(GlobalTimeSplit(2), X, groups=X["item_id"]) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match="inconsistent numbers of samples"):
            list(GlobalTimeSplit(2).split(X, groups=[1, 2]))


def test_per_user_split_takes_the_users_from_groups():
    X = frame()
    expected = as_list(PerUserTimeSplit(last_k=2), X)
    # X without a user column, the users given as groups.
    assert as_list(PerUserTimeSplit(last_k=2), X[["timestamp"]], groups=X["user_id"]) == expected
    # Groups replace the user column: here each item's last rating is held out.
    by_item = as_list(PerUserTimeSplit(last_k=1), X, groups=X["item_id"].to_numpy())
    assert by_item == as_list(PerUserTimeSplit(last_k=1, user_col="item_id"), X)
    assert by_item != as_list(PerUserTimeSplit(last_k=1), X)
    with pytest.raises(ValueError, match="'groups' contains 1 missing"):
        list(PerUserTimeSplit(last_k=1).split(X, groups=[np.nan] + [1] * (len(X) - 1)))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        list(PerUserTimeSplit(last_k=1).split(X, groups=[1, 2]))


def test_groups_reach_the_per_user_split_through_model_selection():
    X, y = frame(), np.random.RandomState(0).uniform(1, 5, 400)
    cv = PerUserTimeSplit(last_k=1)
    expected = [len(test) for _, test in cv.split(X, groups=X["item_id"])]
    result = cross_validate(DummyRegressor(), X, y, cv=cv, groups=X["item_id"],
                            return_indices=True)
    assert [len(t) for t in result["indices"]["test"]] == expected
    with sklearn.config_context(enable_metadata_routing=True):
        result = cross_validate(DummyRegressor(), X, y, cv=cv, params={"groups": X["item_id"]},
                                return_indices=True)
    assert [len(t) for t in result["indices"]["test"]] == expected


# ------------------------------------------------------------------ scikit-learn protocol

def test_splitter_protocol():
    for splitter, n in ((GlobalTimeSplit(3), 3), (PerUserTimeSplit(2, last_k=1), 2)):
        assert splitter.get_n_splits() == n == splitter.get_n_splits(frame(), None, None)
        assert check_cv(splitter) is splitter
    assert repr(GlobalTimeSplit(3, test_size=0.1)) == (
        "GlobalTimeSplit(gap=0, n_splits=3, test_size=0.1, time_col='timestamp')")
    assert "last_k=1" in repr(PerUserTimeSplit(last_k=1))
    scores = cross_val_score(DummyRegressor(), frame(), np.ones(400), cv=GlobalTimeSplit(4))
    assert len(scores) == 4


@pytest.fixture(scope="module")
def timed_ratings():
    X, y = make_ratings(n_users=40, n_items=50, n_ratings=1200, random_state=0)
    timestamps = 1_600_000_000 + np.random.RandomState(0).randint(0, 10**6, size=len(X))
    return X.assign(timestamp=timestamps), y


def test_cross_validate_with_the_estimator(timed_ratings):
    X, y = timed_ratings
    cv = GlobalTimeSplit(n_splits=2, test_size=0.1)
    result = cross_validate(EmbeddingRatingRegressor(**FAST), X, y, cv=cv,
                            scoring="neg_root_mean_squared_error", return_indices=True)
    assert len(result["test_score"]) == 2 and np.isfinite(result["test_score"]).all()
    times = X["timestamp"].to_numpy()
    for train, test in zip(result["indices"]["train"], result["indices"]["test"], strict=True):
        assert times[train].max() < times[test].min()


def test_grid_search_with_the_estimator(timed_ratings):
    X, y = timed_ratings
    search = GridSearchCV(EmbeddingRatingRegressor(**FAST), {"n_factors": [4, 8]},
                          cv=PerUserTimeSplit(last_k=3), scoring="neg_root_mean_squared_error")
    search.fit(X, y)
    assert search.n_splits_ == 1 and search.best_params_["n_factors"] in (4, 8)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict(X.iloc[:5]).shape == (5,)


# --------------------------------------------------------------------------- MovieLens

def test_movielens_global_cut_tests_mostly_unseen_users(ml100k):
    X = ml100k.copy()
    [(train, test)] = GlobalTimeSplit(n_splits=1, test_size=0.1).split(ml100k)
    pd.testing.assert_frame_equal(ml100k, X)
    assert len(train) == 90_000 and len(test) == 10_000  # no tie at this cut
    times, users = ml100k["timestamp"].to_numpy(), ml100k["user_id"].to_numpy()
    assert times[train].max() < times[test].min()
    unseen = ~np.isin(users[test], users[train])
    assert round(100 * unseen.mean(), 1) == 71.1  # the figure issue 15 quotes as 71 %


def test_movielens_per_user_split(ml100k):
    [(train, test)] = PerUserTimeSplit(last_k=5).split(ml100k)
    assert len(test) == 5 * ml100k["user_id"].nunique()  # every user has >= 20 ratings
    train_frame, test_frame = ml100k.iloc[train], ml100k.iloc[test]
    last_train = train_frame.groupby("user_id")["timestamp"].max()
    first_test = test_frame.groupby("user_id")["timestamp"].min()
    assert (last_train <= first_test.loc[last_train.index]).all()
