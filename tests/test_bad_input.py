"""Bad input: every refused call names the problem, changes nothing and mutates nothing.

Each case of ``CASES`` is run against one shared small fitted estimator. After the call
raises, the test checks the estimator's fitted state (every attribute object, model weights
and predictions) and the caller's inputs (against deep copies) are unchanged. Inputs that
look odd but are valid (one rating, constant ratings, ids at the int64 limit, unicode ids)
must fit and predict.
"""

import copy
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import FAST
from sklearn.exceptions import NotFittedError

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings

X0, Y0 = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
N = len(X0)


@pytest.fixture(scope="module")
def est():
    return EmbeddingRatingRegressor(**FAST).fit(X0, Y0)


def _put(data, row, value, column=None):
    """A copy of the Series/DataFrame ``data`` with one value replaced (object if needed)."""
    data = data.copy()
    target = data if column is None else data[column]
    target = target.astype(object) if not isinstance(value, float) else target.astype(float)
    target.iloc[row] = value
    if column is None:
        return target
    data[column] = target
    return data


def _fit(**params):
    return ("fit", params)


CASES = [
    # -- ratings ------------------------------------------------------------------------
    pytest.param(*_fit(), lambda: dict(X=X0, y=_put(Y0, 3, np.nan)), ValueError,
                 r"y \(the ratings\) contains 1 NaN or infinite value\(s\) at row\(s\) \[3\]",
                 id="fit-y-nan"),
    pytest.param(*_fit(), lambda: dict(X=X0, y=_put(Y0, 5, np.inf)), ValueError,
                 r"NaN or infinite value\(s\) at row\(s\) \[5\]", id="fit-y-inf"),
    pytest.param(*_fit(), lambda: dict(X=X0, y=_put(Y0, 2, None).tolist()), ValueError,
                 r"1 NaN or infinite value\(s\) at row\(s\) \[2\]", id="fit-y-none"),
    pytest.param(*_fit(), lambda: dict(X=X0, y=_put(Y0, 7, "great")), ValueError,
                 r"must be numeric; got the value 'great'", id="fit-y-str"),
    pytest.param(*_fit(), lambda: dict(X=X0, y=None), ValueError, r"y is None",
                 id="fit-y-missing"),
    pytest.param(*_fit(), lambda: dict(X=X0, y=np.ones((N, 2))), ValueError,
                 r"must be 1-D; got an array of shape \(600, 2\)", id="fit-y-2d"),
    pytest.param(*_fit(), lambda: dict(X=X0, y=Y0[:-10]), ValueError,
                 r"inconsistent numbers of samples: \[600, 590\]", id="fit-length-mismatch"),
    # -- ids ----------------------------------------------------------------------------
    pytest.param(*_fit(), lambda: dict(X=_put(X0, 2, None, "user_id"), y=Y0), ValueError,
                 r"1 missing user id\(s\) \(None or NaN\) at row\(s\) \[2\]", id="fit-user-none"),
    pytest.param(*_fit(), lambda: dict(X=_put(X0, 4, np.nan, "item_id"), y=Y0), ValueError,
                 r"1 missing item id\(s\) \(None or NaN\) at row\(s\) \[4\]", id="fit-item-nan"),
    pytest.param(*_fit(), lambda: dict(X=_put(X0, 0, "alice", "user_id"), y=Y0), ValueError,
                 r"user ids mix types \['int', 'str'\]", id="fit-mixed-id-types"),
    pytest.param(*_fit(), lambda: dict(X=_put(X0, 1, np.inf, "item_id"), y=Y0), ValueError,
                 r"infinite item ids", id="fit-item-inf"),
    pytest.param(*_fit(), lambda: dict(X=_put(X0, 3, 2.5, "item_id"), y=Y0), ValueError,
                 r"item ids must be ints or strings; got the number 2\.5 at row 3",
                 id="fit-non-whole-float-id"),
    pytest.param(*_fit(), lambda: dict(X=X0, y=Y0, sample_weight=-np.ones(N)), ValueError,
                 r"Negative values in data passed to `sample_weight`",
                 id="fit-negative-sample-weight"),
    # -- shape of X ---------------------------------------------------------------------
    pytest.param(*_fit(), lambda: dict(X=None, y=Y0), ValueError,
                 r"X \(the user and item ids\) is required; got None", id="fit-X-none"),
    pytest.param(*_fit(), lambda: dict(X=pd.concat([X0, X0[["item_id"]]], axis=1), y=Y0),
                 ValueError, r"several columns named \['item_id'\]", id="fit-duplicate-column"),
    pytest.param(*_fit(), lambda: dict(X=X0[["user_id"]].to_numpy(), y=Y0), ValueError,
                 r"exactly 2 columns \(user id, item id\); got 1", id="fit-1-column"),
    pytest.param(*_fit(), lambda: dict(X=np.column_stack([X0, X0["user_id"]]), y=Y0),
                 ValueError, r"exactly 2 columns \(user id, item id\); got 3", id="fit-3-columns"),
    pytest.param(*_fit(), lambda: dict(X=X0.rename(columns={"item_id": "movie"}), y=Y0),
                 ValueError, r"missing the column\(s\) \['item_id'\]", id="fit-missing-column"),
    pytest.param(*_fit(), lambda: dict(X=X0.iloc[:0], y=Y0.iloc[:0]), ValueError,
                 r"X is empty: it has 0 rows", id="fit-empty-frame"),
    pytest.param(*_fit(), lambda: dict(X=np.empty((0, 2)), y=np.empty(0)), ValueError,
                 r"0 sample\(s\)", id="fit-empty-array"),
    pytest.param(*_fit(), lambda: dict(X=sp.csr_matrix(X0.to_numpy()), y=Y0), TypeError,
                 r"[Ss]parse data was passed for X", id="fit-sparse"),
    # -- parameters (checked at fit) ----------------------------------------------------
    pytest.param(*_fit(n_factors=0), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'n_factors' parameter of EmbeddingRatingRegressor must be an int in the "
                 r"range \[1, inf\)\. Got 0", id="n_factors-zero"),
    pytest.param(*_fit(n_factors=-8), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'n_factors' parameter .* Got -8", id="n_factors-negative"),
    pytest.param(*_fit(n_factors=8.5), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'n_factors' parameter .* Got 8\.5", id="n_factors-float"),
    pytest.param(*_fit(n_factors=10**12), lambda: dict(X=X0, y=Y0), ValueError,
                 r"n_factors=1000000000000 with 30 users needs an embedding table of "
                 r"[\d.]+ GiB", id="n_factors-huge"),
    pytest.param(*_fit(n_factors=True), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'n_factors' parameter .* must be an int, not a bool", id="n_factors-bool"),
    pytest.param(*_fit(epochs=0), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'epochs' parameter .* Got 0", id="epochs-zero"),
    pytest.param(*_fit(epochs=-3), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'epochs' parameter .* Got -3", id="epochs-negative"),
    pytest.param(*_fit(epochs="10"), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'epochs' parameter .* Got '10'", id="epochs-str"),
    pytest.param(*_fit(batch_size=0), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'batch_size' parameter .* Got 0", id="batch_size-zero"),
    pytest.param(*_fit(batch_size=-256), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'batch_size' parameter .* Got -256", id="batch_size-negative"),
    pytest.param(*_fit(dropout=1.0), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'dropout' parameter .* range \[0\.0, 1\.0\)\. Got 1\.0", id="dropout-one"),
    pytest.param(*_fit(dropout=-0.1), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'dropout' parameter .* Got -0\.1", id="dropout-negative"),
    pytest.param(*_fit(dropout="high"), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'dropout' parameter .* Got 'high'", id="dropout-str"),
    pytest.param(*_fit(hidden_units=(8, 0)), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'hidden_units' parameter .* positive ints\. Got \(8, 0\)",
                 id="hidden_units-zero"),
    pytest.param(*_fit(learning_rate=0.0), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'learning_rate' parameter .* Got 0\.0", id="learning_rate-zero"),
    pytest.param(*_fit(handle_unknown="ignore"), lambda: dict(X=X0, y=Y0), ValueError,
                 r"'handle_unknown' parameter .* Got 'ignore'", id="handle_unknown-bad"),
    # -- partial_fit --------------------------------------------------------------------
    pytest.param("partial_fit", {}, lambda: dict(X=X0.head(50), y=_put(Y0.head(50), 9, np.nan)),
                 ValueError, r"1 NaN or infinite value\(s\) at row\(s\) \[9\]",
                 id="partial_fit-y-nan"),
    pytest.param("partial_fit", {},
                 lambda: dict(X=X0.head(50).assign(user_id=lambda f: "u" + f.user_id.astype(str)),
                              y=Y0.head(50)),
                 TypeError, r"new user ids are of another kind than the user ids seen before",
                 id="partial_fit-other-id-kind"),
    pytest.param("partial_fit", {}, lambda: dict(X=X0.head(50)[["user_id"]], y=Y0.head(50)),
                 ValueError, r"missing the column\(s\) \['item_id'\]",
                 id="partial_fit-missing-column"),
    pytest.param("partial_fit", {}, lambda: dict(X=X0.head(50), y=Y0.head(40)), ValueError,
                 r"inconsistent numbers of samples: \[50, 40\]", id="partial_fit-length-mismatch"),
    # -- predict ------------------------------------------------------------------------
    pytest.param("predict", {}, lambda: dict(X=_put(X0.head(5), 1, None, "user_id")),
                 ValueError, r"1 missing user id\(s\) \(None or NaN\) at row\(s\) \[1\]",
                 id="predict-user-none"),
    pytest.param("predict", {}, lambda: dict(X=X0.to_numpy()[:, :1]), ValueError,
                 r"exactly 2 columns .* got 1", id="predict-1-column"),
    pytest.param("predict", {}, lambda: dict(X=X0.iloc[:0]), ValueError,
                 r"X is empty: it has 0 rows", id="predict-empty"),
    pytest.param("predict", {}, lambda: dict(X=X0.rename(columns={"user_id": "uid"})),
                 ValueError, r"missing the column\(s\) \['user_id'\]",
                 id="predict-missing-column"),
    pytest.param("predict", {}, lambda: dict(X=sp.csr_matrix(X0.to_numpy())), TypeError,
                 r"[Ss]parse data was passed for X", id="predict-sparse"),
    pytest.param("predict", {}, lambda: dict(X=_put(X0.head(5), 0, "bob", "item_id")),
                 ValueError, r"item ids mix types", id="predict-mixed-id-types"),
    pytest.param("predict", {}, lambda: dict(X={"user_id": [1], "item_id": [2]}), TypeError,
                 r"X must be a table of \(user, item\) pairs; got a dict\. Pass a DataFrame",
                 id="predict-dict"),
    pytest.param("predict", {}, lambda: dict(X="user_id,item_id"), TypeError,
                 r"got a str\. Pass a DataFrame .* or an array-like of shape \(n_pairs, 2\)",
                 id="predict-str"),
    pytest.param("predict", {}, lambda: dict(X=7), TypeError, r"got a int\. Pass a DataFrame",
                 id="predict-scalar"),
    pytest.param("predict", {"handle_unknown": "error"},
                 lambda: dict(X=pd.DataFrame({"user_id": ["12"], "item_id": [3]})), ValueError,
                 r"user ids \(column 'user_id'\) are str \(e\.g\. '12'\), but the model was "
                 r"fitted on int user ids", id="predict-other-id-kind-error"),
    pytest.param("predict", {"handle_unknown": "error"},
                 lambda: dict(X=pd.DataFrame({"user_id": [999_999, 0, 888_888],
                                              "item_id": [0, 1, 2]})),
                 ValueError, r"2 unknown user id\(s\) not seen during fit: 999999, 888888",
                 id="predict-unknown-ids-error"),
    # -- score --------------------------------------------------------------------------
    pytest.param("score", {}, lambda: dict(X=X0, y=Y0[:-1]), ValueError,
                 r"inconsistent numbers of samples", id="score-length-mismatch"),
    pytest.param("score", {}, lambda: dict(X=X0, y=_put(Y0, 0, np.nan)), ValueError,
                 r"contains NaN", id="score-y-nan"),
    # -- set_params ---------------------------------------------------------------------
    pytest.param("set_params", {}, lambda: dict(n_factor=8), ValueError,
                 r"Invalid parameter 'n_factor' for estimator", id="set_params-unknown"),
    # -- recommend ----------------------------------------------------------------------
    pytest.param("recommend", {}, lambda: dict(users=[0, 1], n=0), ValueError,
                 r"n must be an int >= 1; got 0", id="recommend-n-zero"),
    pytest.param("recommend", {}, lambda: dict(users=[], n=5), ValueError,
                 r"users is empty", id="recommend-empty"),
    pytest.param("recommend", {}, lambda: dict(users=[0, None], n=5), ValueError,
                 r"users contains 1 missing id\(s\)", id="recommend-missing-id"),
    pytest.param("recommend", {"handle_unknown": "error"},
                 lambda: dict(users=[0, 424_242], n=5), ValueError,
                 r"1 unknown user id\(s\) not seen during fit: 424242",
                 id="recommend-unknown-user-error"),
    # -- loading ------------------------------------------------------------------------
    pytest.param("load", {}, lambda: dict(content=b"not a model at all"), ValueError,
                 r"junk\.skembedrec' is not a skembedrec model file", id="load-junk"),
    pytest.param("load", {}, lambda: dict(content=None), FileNotFoundError,
                 r"No skembedrec model file at .*junk\.skembedrec", id="load-missing"),
]


def _call(est, method, inputs, tmp_path):
    if method == "fit":
        return est.fit(inputs["X"], inputs["y"], sample_weight=inputs.get("sample_weight"))
    if method == "partial_fit":
        return est.partial_fit(inputs["X"], inputs["y"])
    if method == "predict":
        return est.predict(inputs["X"])
    if method == "score":
        return est.score(inputs["X"], inputs["y"])
    if method == "set_params":
        return est.set_params(**inputs)
    if method == "recommend":
        return est.recommend(inputs["users"], n=inputs["n"])
    if method == "load":
        path = tmp_path / "junk.skembedrec"
        if inputs["content"] is not None:
            path.write_bytes(inputs["content"])
        return EmbeddingRatingRegressor.load(path)
    raise AssertionError(method)


def _snapshot(est):
    predictions = est.predict(X0)  # first: it may fill the serving cache
    params = set(est.get_params())
    attributes = {k: v for k, v in vars(est).items() if k not in params}
    weights = [w.numpy().copy() for w in est.model_.weights]
    return attributes, weights, predictions


def _assert_same_input(before, after):
    if isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(after, before)
    elif isinstance(before, pd.Series):
        pd.testing.assert_series_equal(after, before)
    elif isinstance(before, np.ndarray):
        assert after.dtype == before.dtype
        np.testing.assert_array_equal(after, before)
    elif sp.issparse(before):
        assert (after != before).nnz == 0
    else:
        assert repr(after) == repr(before)


@pytest.mark.parametrize(("method", "params", "make_inputs", "error", "message"), CASES)
def test_bad_input_is_refused_and_changes_nothing(est, tmp_path, method, params, make_inputs,
                                                   error, message):
    inputs = make_inputs()
    pristine = copy.deepcopy(inputs)
    attributes, weights, predictions = _snapshot(est)
    saved_params = est.get_params()
    est.set_params(**params)
    try:
        start = time.perf_counter()
        with pytest.raises(error, match=message):
            _call(est, method, inputs, tmp_path)
        # Parameter errors come before any data is encoded or any table allocated.
        assert time.perf_counter() - start < 5
    finally:
        est.set_params(**saved_params)

    for name, value in pristine.items():
        _assert_same_input(value, inputs[name])
    params_now = set(est.get_params())
    assert {k for k in vars(est) if k not in params_now} == set(attributes)
    for name, value in attributes.items():
        assert vars(est)[name] is value, f"{name} was replaced"
    for before, after in zip(weights, est.model_.weights, strict=True):
        np.testing.assert_array_equal(after.numpy(), before)
    np.testing.assert_array_equal(est.predict(X0), predictions)


def test_at_least_thirty_distinct_cases():
    ids = [case.id for case in CASES]
    assert len(set(ids)) == len(ids) >= 30
    assert {case.values[0] for case in CASES} >= {"fit", "partial_fit", "predict", "score",
                                                  "set_params", "recommend", "load"}


def test_unfitted_estimator_refuses_predict():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        EmbeddingRatingRegressor(**FAST).predict(X0)


def test_three_column_frame_uses_the_named_columns(est):
    X = X0.assign(timestamp=np.arange(N))
    np.testing.assert_array_equal(est.predict(X), est.predict(X0))


# -- odd but valid input must fit ------------------------------------------------------------


def test_a_single_rating_fits_and_predicts_it():
    X, y = X0.head(1), Y0.head(1)
    est = EmbeddingRatingRegressor(**FAST).fit(X, y)
    assert est.n_users_ == est.n_items_ == 1
    np.testing.assert_array_equal(est.predict(X0.head(3)), np.full(3, y.iloc[0]))


def test_constant_ratings_fit_and_predict_the_constant():
    y = pd.Series(np.full(N, 3.5), name="rating")
    # numpy ints, as a grid built with np.arange gives them, must work as parameters.
    params = {**FAST, "n_factors": np.int64(8), "epochs": np.int64(2), "batch_size": np.int64(256)}
    est = EmbeddingRatingRegressor(**params).fit(X0, y)
    assert est.regressor_.transformer_.scale_[0] == 1.0  # zero variance: scaler keeps 1
    assert np.isfinite(est.history_["loss"]).all()
    unseen = pd.DataFrame({"user_id": [10**6], "item_id": [10**6]})
    np.testing.assert_array_equal(est.predict(pd.concat([X0, unseen])), np.full(N + 1, 3.5))


def test_int64_limit_and_unicode_ids_fit_and_predict(tmp_path):
    rng = np.random.RandomState(0)
    names = np.array(["Zoë", "ß", "用户", "🎬fan", "naïve", "Ωmega"], dtype=object)
    items = np.array([2**63 - 1, 2**63 - 2, -(2**63), 0], dtype=np.int64)
    X = pd.DataFrame({"user_id": names[rng.randint(0, 6, 300)],
                      "item_id": items[rng.randint(0, 4, 300)]})
    y = rng.randint(1, 6, 300).astype(float)
    est = EmbeddingRatingRegressor(**FAST).fit(X, y)
    assert est.n_users_ == 6 and est.n_items_ == 4
    assert est.encoder_.item_ids.dtype == np.int64
    assert set(est.encoder_.item_ids.tolist()) == set(items.tolist())
    query = pd.DataFrame({"user_id": ["用户", "🎬fan"], "item_id": [2**63 - 1, 2**63 - 2]})
    assert est.is_known(query).all()
    # The two largest ids are different items, not one id rounded through float64.
    codes = est.encoder_.encode(query["user_id"].to_numpy(), query["item_id"].to_numpy())
    assert codes[0, 1] != codes[1, 1]
    assert np.isfinite(est.predict(query)).all()
    est.save(tmp_path / "m.skembedrec")
    back = EmbeddingRatingRegressor.load(tmp_path / "m.skembedrec")
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


def test_predict_warns_when_the_columns_of_an_array_look_swapped(ratings):
    """As scikit-learn warns about mismatched feature names: most pairs unknown, but known
    with the columns swapped, names user_col and item_col; a right array stays silent."""
    X, y = ratings
    X = X.assign(user_id=X["user_id"] + 1000)  # user and item ids from different ranges
    est = EmbeddingRatingRegressor(**FAST).fit(X.to_numpy(), y)
    right = X.to_numpy()[:50]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict(right)
        est.predict(np.array([[5000, 5000]]))  # unknown either way: no swap to suggest
    with pytest.warns(UserWarning, match=r"swapped.*user_col='user_id'.*item_col='item_id'"):
        swapped = est.predict(right[:, ::-1])
    assert swapped.shape == (50,)
