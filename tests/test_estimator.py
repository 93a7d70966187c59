"""Core behaviour of EmbeddingRatingRegressor: input forms, id encoding, scaling, unknown ids."""

import numpy as np
import pandas as pd
import pytest
from conftest import FAST
from sklearn.base import is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags
from sklearn.utils._param_validation import InvalidParameterError

import skembedrec
from skembedrec import EmbeddingRatingRegressor


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_public_names_and_tags():
    assert isinstance(skembedrec.__version__, str) and skembedrec.__version__.count(".") >= 1
    est = EmbeddingRatingRegressor()
    assert is_regressor(est)
    tags = get_tags(est)
    assert tags.estimator_type == "regressor"
    assert tags.target_tags.required
    assert tags.input_tags.string


def test_model_learns_latent_structure(ratings):
    X, y = ratings
    X_train, X_test = X.iloc[:2500], X.iloc[2500:]
    y_train, y_test = y.iloc[:2500], y.iloc[2500:]
    est = EmbeddingRatingRegressor(
        n_factors=8, hidden_units=(8,), epochs=15, batch_size=128, random_state=0
    ).fit(X_train, y_train)
    baseline = rmse(y_train.mean(), y_test)
    assert rmse(est.predict(X_test), y_test) < 0.9 * baseline
    assert est.history_["loss"][-1] < est.history_["loss"][0]


@pytest.mark.parametrize(
    "users, items",
    [
        ([10, 20, 30, 10, 20, 30], [1, 1, 2, 2, 3, 3]),
        (["ann", "bob", "cy", "ann", "bob", "cy"], ["x", "x", "y", "y", "z", "z"]),
        (["ann", "bob", "cy", "ann", "bob", "cy"], [1, 1, 2, 2, 3, 3]),
        ([1.0, 2.0, 3.0, 1.0, 2.0, 3.0], ["é", "é", "ü", "ü", "ß", "ß"]),
    ],
    ids=["ints", "strings", "str-users-int-items", "whole-float-users-unicode-items"],
)
def test_ids_of_any_hashable_kind(users, items):
    y = [1.0, 2.0, 3.0, 4.0, 5.0, 3.0]
    frame = pd.DataFrame({"user_id": users, "item_id": items})
    array = np.array(list(zip(users, items, strict=True)), dtype=object)
    from_frame = EmbeddingRatingRegressor(**FAST).fit(frame, y)
    from_array = EmbeddingRatingRegressor(**FAST).fit(array, y)
    from_lists = EmbeddingRatingRegressor(**FAST).fit([list(r) for r in array], y)
    assert from_frame.n_users_ == 3 and from_frame.n_items_ == 3
    np.testing.assert_array_equal(from_frame.predict(frame), from_array.predict(array))
    np.testing.assert_array_equal(from_frame.predict(frame), from_lists.predict(array))


def test_custom_column_names_and_extra_columns(ratings):
    X, y = ratings
    renamed = X.rename(columns={"user_id": "u", "item_id": "movie_id"}).assign(noise=1.0)
    est = EmbeddingRatingRegressor(user_col="u", item_col="movie_id", **FAST).fit(renamed, y)
    reference = EmbeddingRatingRegressor(**FAST).fit(X, y)
    np.testing.assert_array_equal(est.predict(renamed), reference.predict(X))
    assert list(est.feature_names_in_) == ["u", "movie_id"]


def test_predictions_are_in_rating_units_and_clipped(ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST).fit(X, y * 2 + 10)
    pred = est.predict(X)
    assert est.rating_min_ == 12 and est.rating_max_ == 20
    assert pred.min() >= 12 and pred.max() <= 20
    assert abs(pred.mean() - (y * 2 + 10).mean()) < 1.0


def test_constant_ratings_fit_and_predict_the_constant(ratings):
    X, _ = ratings
    est = EmbeddingRatingRegressor(**FAST).fit(X, np.full(len(X), 3.0))
    np.testing.assert_allclose(est.predict(X.head(10)), 3.0)


def test_unknown_ids_fall_back_on_what_is_known(fitted, ratings):
    X, y = ratings
    known_items = X["item_id"].unique()[:5]
    cold_user = pd.DataFrame({"user_id": [-1] * 5, "item_id": known_items})
    pred = fitted.predict(cold_user)
    assert np.isfinite(pred).all() and np.ptp(pred) > 0  # depends on the item
    both_unknown = fitted.predict(pd.DataFrame({"user_id": [-1, -2], "item_id": [-7, -8]}))
    assert both_unknown[0] == both_unknown[1]
    assert abs(both_unknown[0] - y.mean()) < 0.5
    np.testing.assert_array_equal(
        fitted.is_known(pd.concat([X.head(1), cold_user.head(1)])), [[True, True], [False, True]]
    )


def test_unknown_ids_raise_when_asked(fitted, ratings):
    X, _ = ratings
    strict = EmbeddingRatingRegressor(handle_unknown="error", **FAST).fit(*ratings)
    # Known pairs: the same model as under "fallback", the policy only changes unknown ids.
    np.testing.assert_array_equal(strict.predict(X.head(3)), fitted.predict(X.head(3)))
    query = pd.DataFrame(
        {"user_id": [X["user_id"][0], 999, 998], "item_id": [-5, X["item_id"][0], -5]}
    )
    with pytest.raises(
        ValueError, match=r"2 unknown user id\(s\).*999, 998.*1 unknown item id\(s\).*-5"
    ):
        strict.predict(query)


def test_same_seed_same_predictions_other_seed_differs(ratings):
    X, y = ratings
    params = {**FAST, "random_state": 7}
    a = EmbeddingRatingRegressor(**params).fit(X, y).predict(X)
    b = EmbeddingRatingRegressor(**params).fit(X, y).predict(X)
    c = EmbeddingRatingRegressor(**{**params, "random_state": 8}).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unit_sample_weights_are_no_weights(fitted, ratings):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(est.predict(X), fitted.predict(X), rtol=1e-6)


def test_inputs_are_not_mutated(ratings):
    X, y = ratings
    X_copy, y_copy = X.copy(), y.copy()
    est = EmbeddingRatingRegressor(**FAST).fit(X, y)
    est.predict(X)
    est.is_known(X)
    pd.testing.assert_frame_equal(X, X_copy)
    pd.testing.assert_series_equal(y, y_copy)


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        EmbeddingRatingRegressor().predict([[1, 2]])


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_factors": 0}, "The 'n_factors' parameter of EmbeddingRatingRegressor must be"),
        ({"dropout": 1.0}, "The 'dropout' parameter of EmbeddingRatingRegressor must be"),
        ({"handle_unknown": "ignore"}, "The 'handle_unknown' parameter"),
        ({"hidden_units": (32, 0)}, "The 'hidden_units' parameter .* positive ints"),
        ({"hidden_units": (), "use_bias": False, "dot_product": False}, "network has no output"),
    ],
)
def test_invalid_parameters_are_reported_at_fit(ratings, params, message):
    with pytest.raises((InvalidParameterError, ValueError), match=message):
        EmbeddingRatingRegressor(**{**FAST, **params}).fit(*ratings)


@pytest.mark.parametrize(
    "X, y, message",
    [
        (pd.DataFrame({"user_id": [1, 2]}), [1, 2], r"missing the column\(s\) \['item_id'\]"),
        (np.zeros((2, 3)), [1, 2], "exactly 2 columns"),
        (np.zeros((0, 2)), [], "0 sample"),
        (pd.DataFrame({"user_id": [], "item_id": []}), [], "X is empty"),
        (
            pd.DataFrame({"user_id": [1, None], "item_id": [1, 2]}),
            [1, 2],
            r"missing user id.*\[1\]",
        ),
        (pd.DataFrame({"user_id": [1, 2], "item_id": [1, "a"]}), [1, 2], "item ids mix types"),
        (pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2]}), [1, 2, 3], "inconsistent numbers"),
        (
            pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2]}),
            [1, "five"],
            "numeric; got the value 'five'",
        ),
        (pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2]}), None, "requires y to be passed"),
    ],
    ids=[
        "missing-column",
        "three-columns",
        "empty-array",
        "empty-frame",
        "missing-id",
        "mixed-id-types",
        "length-mismatch",
        "non-numeric-rating",
        "no-y",
    ],
)
def test_bad_input_is_named(X, y, message):
    with pytest.raises(ValueError, match=message):
        EmbeddingRatingRegressor(**FAST).fit(X, y)


@pytest.mark.slow
def test_a_seeded_fit_leaves_tf_op_determinism_as_it_was(tmp_path):
    """scikeras alone leaves determinism on after the first seeded fit of a process, and the
    next unseeded fit then fails; run in a fresh process, where that first use happens."""
    import subprocess
    import sys

    script = (
        "from tensorflow.python.framework import config\n"
        "from skembedrec import EmbeddingRatingRegressor\n"
        "from skembedrec.datasets import make_ratings\n"
        "X, y = make_ratings(n_users=20, n_items=20, n_ratings=200, random_state=0)\n"
        "EmbeddingRatingRegressor(n_factors=4, epochs=1, random_state=0).fit(X, y)\n"
        "assert not config.is_op_determinism_enabled()\n"
        "EmbeddingRatingRegressor(n_factors=4, epochs=1).fit(X, y)\n"
        "print('ok')\n"
    )
    env = {**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_DETERMINISTIC_OPS", None)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
