"""benchmarks/mf_reference.py, "the machine" of scale.py: numba SGD learns, predicts unknown
ids from the known side, and the optional contenders say why they cannot run."""

import numpy as np
import pytest
from test_benchmarks import _load_benchmark

from skembedrec.datasets import make_ratings

mf_reference = _load_benchmark("mf_reference")


def _rmse(pred, truth):
    return float(np.sqrt(np.mean((np.asarray(pred, float) - truth) ** 2)))


@pytest.fixture(scope="module")
def split():
    X, y = make_ratings(n_users=300, n_items=200, n_ratings=24_000, random_state=0,
                        compact=True)
    users, items = X["user_id"].to_numpy(), X["item_id"].to_numpy()
    ratings = y.to_numpy()
    train, test = slice(0, 20_000), slice(20_000, None)
    return (users[train], items[train], ratings[train]), (users[test], items[test],
                                                          ratings[test])


@pytest.mark.parametrize("n_threads", [1, 2])
def test_numba_mf_beats_the_global_mean(split, n_threads):
    pytest.importorskip("numba")
    (users, items, ratings), (test_users, test_items, test_ratings) = split
    model = mf_reference.fit_numba_mf(users, items, ratings, 300, 200, n_factors=4, epochs=8,
                                      n_threads=n_threads)
    assert len(model.epoch_seconds) == len(model.epoch_cpu_seconds) == 8
    assert model.fit_seconds >= sum(model.epoch_seconds) > 0
    assert model.n_threads == n_threads
    baseline = _rmse(np.full(len(test_ratings), ratings.mean()), test_ratings)
    rmse = _rmse(model.predict(test_users, test_items), test_ratings)
    assert rmse < baseline - 0.1, (rmse, baseline)
    got = mf_reference.figures(model, test_users, test_items, test_ratings, len(ratings))
    assert got["test_rmse"] == pytest.approx(rmse, rel=1e-5)
    assert got["ratings_per_s"] == pytest.approx(len(ratings) / np.median(model.epoch_seconds))


def test_one_thread_is_reproducible_and_the_input_untouched(split):
    pytest.importorskip("numba")
    (users, items, ratings), _ = split
    before = users.copy(), items.copy(), ratings.copy()
    fits = [mf_reference.fit_numba_mf(users, items, ratings, 300, 200, n_factors=4, epochs=2,
                                      n_threads=1, random_state=3) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].user_factors, fits[1].user_factors)
    np.testing.assert_array_equal(fits[0].item_bias, fits[1].item_bias)
    for array, copy in zip((users, items, ratings), before, strict=True):
        np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize(("change", "message"), [
    (dict(n_users=100), r"users codes must lie in 0\.\.99"),
    (dict(items=np.linspace(0, 1, 20_000)), "items must be integer codes"),
    (dict(ratings=np.zeros(5)), "of one length"),
    (dict(n_threads=10_000), "n_threads must be in 1"),
])
def test_numba_mf_rejects_bad_input_with_a_fix(split, change, message):
    pytest.importorskip("numba")
    (users, items, ratings), _ = split
    args = dict(users=users, items=items, ratings=ratings, n_users=300, n_items=200)
    args.update(change)
    n_threads = args.pop("n_threads", 1)
    with pytest.raises(ValueError, match=message):
        mf_reference.fit_numba_mf(**args, epochs=1, n_threads=n_threads)


def test_unknown_codes_get_the_global_mean_plus_the_known_side():
    model = mf_reference.MFModel(
        global_mean=3.0, intercept=3.0, user_bias=np.array([0.5, -0.5], np.float32),
        item_bias=np.array([0.25], np.float32),
        user_factors=np.array([[1.0], [2.0]], np.float32),
        item_factors=np.array([[0.5]], np.float32), rating_range=(1.0, 5.0))
    pred = model.predict(np.array([0, 1, 7, -1, 0]), np.array([0, 0, 0, 0, 3]))
    np.testing.assert_allclose(pred, [3.0 + 0.5 + 0.25 + 0.5, 3.0 - 0.5 + 0.25 + 1.0,
                                      3.25, 3.25, 3.5])
    als_like = mf_reference.MFModel(
        global_mean=3.5, intercept=0.0, user_bias=np.zeros(1), item_bias=np.zeros(1),
        user_factors=np.array([[9.0]]), item_factors=np.array([[1.0]]), rating_range=(1, 5))
    np.testing.assert_allclose(als_like.predict(np.array([0, 5]), np.array([0, 0])), [5, 3.5])


def test_available_says_why_and_spark_skips_with_the_reason(monkeypatch, capsys):
    monkeypatch.setattr(mf_reference.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(mf_reference.shutil, "which", lambda name: None)
    reasons = mf_reference.available()
    assert "pip install 'skembedrec[bench]'" in reasons["numba"]
    assert "pyspark is not installed" in reasons["spark"] and "java" in reasons["spark"]
    users = np.zeros(3, np.int32)
    assert mf_reference.fit_spark_als(users, users, np.ones(3), 1, 1) is None
    assert "Spark ALS skipped: pyspark" in capsys.readouterr().out
    with pytest.raises(ImportError, match="numba is not installed"):
        mf_reference.fit_numba_mf(users, users, np.ones(3), 1, 1)


def test_available_is_none_for_what_is_installed():
    reasons = mf_reference.available()
    assert set(reasons) == {"numba", "spark"}
    if mf_reference.importlib.util.find_spec("numba") is not None:
        assert reasons["numba"] is None


def test_test_ids_absent_from_training_are_coded_minus_one():
    codes, count = mf_reference._encode(np.array([7, 3, 7, 9, 3, 5, 11]), n_train=4)
    assert count == 3  # 3, 7, 9
    np.testing.assert_array_equal(codes, [1, 0, 1, 2, 0, -1, -1])
