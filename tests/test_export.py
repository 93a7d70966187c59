"""``export``: a SavedModel that serves raw ids with TensorFlow alone, as the estimator does."""

import json
import logging
import os
import subprocess
import sys
import urllib.request

import numpy as np
import pandas as pd
import pytest
from conftest import FAST, REPO_ROOT

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
UNKNOWN = {"int": 10**9, "str": "nobody"}

# Runs in a fresh interpreter that imports TensorFlow and NumPy only.
SERVE = """
import json, sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
queries = json.load(open(sys.argv[2]))
dtype = tf.string if queries["kind"] == "str" else tf.int64
ids = lambda values: tf.constant(values, dtype=dtype)
plain = lambda t: [v.decode() if isinstance(v, bytes) else v for v in t.numpy().ravel().tolist()]
out = {}
for name, (users, items) in queries["pairs"].items():
    out[name] = plain(model.signatures["predict"](user=ids(users), item=ids(items))["rating"])
top = model.signatures["recommend"](user=ids(queries["users"]), k=tf.constant(5))
out["top_items"] = [plain(row) for row in top["items"]]
out["top_valid"] = top["valid"].numpy().tolist()
out["top_ratings"] = top["ratings"].numpy().tolist()
near = model.signatures["similar_items"](item=ids(queries["items"]), k=tf.constant(3))
out["near_items"] = [plain(row) for row in near["items"]]
out["near_sims"] = near["similarities"].numpy().tolist()
out["modules"] = sorted(m for m in ("skembedrec", "scikeras") if m in sys.modules)
json.dump(out, open(sys.argv[3], "w"))
"""


def _fit(kind):
    X, y = make_ratings(n_users=40, n_items=50, n_ratings=1500, random_state=1)
    if kind == "str":
        X = X.assign(user_id="u" + X["user_id"].astype(str),
                     item_id="i" + X["item_id"].astype(str))
    # The ensemble with implicit feedback: every layer the default network has.
    est = EmbeddingRatingRegressor(**{**FAST, "implicit": True, "n_estimators": 2,
                                      "hidden_units": ()}).fit(X, y)
    return est, X


@pytest.fixture(scope="module", params=["int", "str"])
def exported(request, tmp_path_factory):
    kind = request.param
    est, X = _fit(kind)
    path = tmp_path_factory.mktemp(f"export_{kind}") / "served"
    est.export(path)
    return kind, est, X, path


def _queries(kind, X):
    known_users, known_items = X["user_id"].tolist()[:20], X["item_id"].tolist()[:20]
    unknown = UNKNOWN[kind]
    mixed_users = [unknown if i % 3 == 0 else u for i, u in enumerate(known_users)]
    mixed_items = [unknown if i % 4 == 1 else v for i, v in enumerate(known_items)]
    return {
        "kind": kind,
        "pairs": {"known": [known_users, known_items],
                  "unknown": [[unknown] * 3, [unknown, known_items[0], unknown]],
                  "mixed": [mixed_users, mixed_items]},
        "users": [known_users[0], known_users[5], unknown, known_users[0]],
        "items": known_items[:4],
    }


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    kind, _, X, path = exported
    tmp = tmp_path_factory.mktemp(f"served_{kind}")
    queries = _queries(kind, X)
    (tmp / "q.json").write_text(json.dumps(queries))
    subprocess.run([sys.executable, "-c", SERVE, str(path), str(tmp / "q.json"),
                    str(tmp / "out.json")], check=True, env=ENV, timeout=300)
    return queries, json.loads((tmp / "out.json").read_text())


def test_loading_logs_no_unsaved_custom_gradient_warning(exported, caplog):
    # TensorFlow warns through absl (a Python logger) for each function of the graph that
    # holds a custom gradient it could not save; serving never differentiates.
    import tensorflow as tf

    with caplog.at_level(logging.WARNING):
        tf.saved_model.load(str(exported[3]))
    assert [r.getMessage() for r in caplog.records if "custom gradient" in r.getMessage()] == []


@pytest.mark.slow
def test_served_without_skembedrec_or_scikeras(served):
    _, out = served
    assert out["modules"] == []


def test_exported_predictions_equal_predict(exported, served):
    _, est, _, _ = exported
    queries, out = served
    for name, (users, items) in queries["pairs"].items():
        expected = est.predict(pd.DataFrame({"user_id": users, "item_id": items}))
        np.testing.assert_allclose(out[name], expected, rtol=0, atol=1e-5, err_msg=name)


def test_exported_top_k_equals_recommend(exported, served):
    _, est, _, _ = exported
    queries, out = served
    for row, user in enumerate(queries["users"]):
        expected = est.recommend([user], n=5)
        valid = np.array(out["top_valid"][row])
        assert np.array(out["top_items"][row])[valid].tolist() == expected["item_id"].tolist()
        np.testing.assert_allclose(np.array(out["top_ratings"][row])[valid],
                                   expected["predicted_rating"], atol=1e-5)


def test_exported_similar_items_equal_similar_items(exported, served):
    _, est, _, _ = exported
    queries, out = served
    expected = est.similar_items(queries["items"], n=3)
    assert np.concatenate(out["near_items"]).tolist() == expected["similar_item"].tolist()
    np.testing.assert_allclose(np.concatenate(out["near_sims"]), expected["similarity"],
                               atol=1e-9)


def test_recommend_pads_when_the_user_has_seen_almost_everything(tmp_path):
    X = pd.DataFrame({"user_id": [0] * 4 + [1] * 2, "item_id": [0, 1, 2, 3, 0, 1]})
    est = EmbeddingRatingRegressor(**FAST).fit(X, [1, 2, 3, 4, 5, 4])
    est.export(tmp_path / "m")
    import tensorflow as tf

    out = tf.saved_model.load(str(tmp_path / "m")).signatures["recommend"](
        user=tf.constant([0, 1], tf.int64), k=tf.constant(3))
    assert out["valid"].numpy().tolist() == [[False] * 3, [True, True, False]]
    assert out["items"].numpy()[1, :2].tolist() == est.recommend([1], n=3)["item_id"].tolist()


@pytest.mark.slow
def test_saved_model_cli_lists_the_signatures(exported):
    kind, _, _, path = exported
    if kind != "int":
        pytest.skip("the signatures are the same for both id kinds")
    shown = subprocess.run(["saved_model_cli", "show", "--dir", str(path), "--all"],
                           check=True, capture_output=True, text=True, env=ENV,
                           timeout=300).stdout
    for name in ("predict", "recommend", "similar_items", "serving_default"):
        assert f"signature_def['{name}']" in shown
    for name in ("inputs['user']", "inputs['item']", "inputs['k']", "outputs['rating']"):
        assert name in shown


def test_handle_unknown_error_is_kept(tmp_path, ratings):
    import tensorflow as tf

    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST, handle_unknown="error").fit(X, y)
    est.export(tmp_path / "m")
    predict = tf.saved_model.load(str(tmp_path / "m")).signatures["predict"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="unknown user id"):
        predict(user=tf.constant([10**9], tf.int64), item=tf.constant([1], tf.int64))


def test_ids_without_a_lookup_table_kind_are_refused(tmp_path):
    X = pd.DataFrame({"user_id": [True, False, True], "item_id": [1, 2, 3]})
    est = EmbeddingRatingRegressor(**FAST).fit(X, [1, 2, 3])
    with pytest.raises(ValueError, match=r"user ids are of dtype bool.*int or str ids"):
        est.export(tmp_path / "m")
    # Float ids never get this far: whole numbers are ints at fit, others refused there.
    with pytest.raises(ValueError, match=r"user ids must be ints or strings; got the number"):
        EmbeddingRatingRegressor(**FAST).fit(X.assign(user_id=[0.5, 1.5, 2.5]), [1, 2, 3])


@pytest.mark.slow
def test_example_http_server_answers_one_request(exported):
    kind, est, X, path = exported
    if kind != "str":
        pytest.skip("one request is enough")
    server = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "examples" / "serve_http.py"), str(path), "--port", "0"],
        stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        url = server.stdout.readline().split()[-1]
        users, items = X["user_id"].tolist()[:3], X["item_id"].tolist()[:3]
        request = urllib.request.Request(
            url + "/predict", data=json.dumps({"user": users, "item": items}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        np.testing.assert_allclose(answer["rating"], est.predict(X.head(3)), atol=1e-5)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("settings", [
    {"hidden_units": (8,)},  # a tower: the export runs the network's layers
    {"hidden_units": (), "implicit": True, "n_estimators": 2, "with_features": True},
], ids=["mlp-tower", "additive-with-side-features"])
def test_both_serving_paths_equal_predict(tmp_path, settings):
    """Without a tower, predict serves from tables read off the network (a few ops per
    call); with one, it runs the network. Both give est.predict's ratings."""
    import tensorflow as tf

    X, y = make_ratings(n_users=40, n_items=50, n_ratings=1500, random_state=2)
    settings = dict(settings)
    features = None
    if settings.pop("with_features", False):
        features = pd.DataFrame({"age": np.arange(45) % 7, "group": list("ab" * 22 + "a")},
                                index=pd.Index(range(45), name="user_id"))
    est = EmbeddingRatingRegressor(**{**FAST, **settings}, user_features=features).fit(X, y)
    est.export(tmp_path / "served")
    predict = tf.saved_model.load(str(tmp_path / "served")).signatures["predict"]
    users = np.r_[X["user_id"].to_numpy()[:30], [42, 10**6]]  # feature-only and unknown ids
    items = np.r_[X["item_id"].to_numpy()[:30], [3, 10**6]]
    out = predict(user=tf.constant(users, tf.int64), item=tf.constant(items, tf.int64))
    np.testing.assert_allclose(out["rating"].numpy(),
                               est.predict(np.column_stack([users, items])), atol=1e-5)


# -- models fitted with time_col ---------------------------------------------------------------

T0 = 946_684_800  # 2000-01-01 00:00 UTC
DAY = 86_400
PERIOD_DAYS = 120


@pytest.fixture(scope="module")
def time_export(tmp_path_factory):
    """A tower-less time model (the path that serves from tables without time), exported."""
    import tensorflow as tf

    X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=3)
    rng = np.random.default_rng(0)
    days = rng.integers(0, PERIOD_DAYS, len(X))
    X = X.assign(timestamp=T0 + days * DAY + rng.integers(0, DAY, len(X)))
    # The level rises halfway through the period: the time terms have something to learn.
    y = np.clip(y + (days >= PERIOD_DAYS // 2), 1, 5)
    est = EmbeddingRatingRegressor(**{**FAST, "n_factors": 4, "hidden_units": ()},
                                   time_col="timestamp").fit(X, y)
    path = tmp_path_factory.mktemp("export_time") / "served"
    # recommend runs the network over (user, item, day) triples: 2 users a block here.
    _export_in_small_blocks(est, path, X["item_id"].nunique())
    return est, X, tf.saved_model.load(str(path))


# Before the period (and before 1970), its first and last days, just before midnight, and
# long after it: outside the period a time predicts as the nearest end.
TIMES = [-1.5 * DAY, T0 - 400 * DAY, T0 + 0.25, T0 + 60 * DAY - 0.5,
         T0 + (PERIOD_DAYS - 1) * DAY + 3600.75, T0 + 20 * 365 * DAY]


def _int64(values):
    import tensorflow as tf

    return tf.constant(np.asarray(values), tf.int64)


def test_time_export_predicts_as_predict_at_every_time(time_export):
    import tensorflow as tf

    est, X, served = time_export
    users = np.r_[X["user_id"].to_numpy()[:12], [10**6, 10**6, 3]]  # unknown ids too
    items = np.r_[X["item_id"].to_numpy()[:12], [5, 10**6, 10**6]]
    by_time = {}
    for when in TIMES:
        times = np.full(len(users), when)
        out = served.signatures["predict"](user=_int64(users), item=_int64(items),
                                           time=tf.constant(times, tf.float64))["rating"]
        expected = est.predict(pd.DataFrame({"user_id": users, "item_id": items,
                                             "timestamp": times}))
        np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-5, err_msg=str(when))
        by_time[when] = expected
    # A time per pair, in one call.
    mixed = np.resize(TIMES, len(users))
    out = served.signatures["predict"](user=_int64(users), item=_int64(items),
                                       time=tf.constant(mixed, tf.float64))["rating"]
    expected = est.predict(pd.DataFrame({"user_id": users, "item_id": items,
                                         "timestamp": mixed}))
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-5)
    # The time matters: a server that ignored it could not pass the checks above.
    assert np.abs(by_time[TIMES[0]] - by_time[TIMES[-1]]).max() > 0.01


def test_time_export_recommends_as_recommend_at(time_export):
    import tensorflow as tf

    est, X, served = time_export
    user = X["user_id"].iloc[0]
    # Three blocks of two rows, the last one padded.
    users = [user, user, 10**6, X["user_id"].iloc[7], X["user_id"].iloc[20]]
    times = [TIMES[1], TIMES[-1], TIMES[3], TIMES[4], TIMES[0]]  # one time per user row
    top = served.signatures["recommend"](user=_int64(users), k=tf.constant(5),
                                         time=tf.constant(times, tf.float64))
    for row, (who, when) in enumerate(zip(users, times, strict=True)):
        expected = est.recommend([who], n=5, at=when)
        valid = top["valid"].numpy()[row]
        assert top["items"].numpy()[row][valid].tolist() == expected["item_id"].tolist()
        np.testing.assert_allclose(top["ratings"].numpy()[row][valid],
                                   expected["predicted_rating"], atol=1e-5)
    # Each row is rated at its own time.
    assert np.abs(top["ratings"].numpy()[0] - top["ratings"].numpy()[1]).max() > 0.01


def test_time_export_similar_items_are_unchanged(time_export):
    import tensorflow as tf

    est, X, served = time_export
    items = X["item_id"].to_numpy()[:3]
    near = served.signatures["similar_items"](item=_int64(items), k=tf.constant(3))
    expected = est.similar_items(items, n=3)
    assert near["items"].numpy().ravel().tolist() == expected["similar_item"].tolist()


@pytest.mark.parametrize(("time", "message"), [
    ([np.nan], "finite unix seconds"),
    ([1.7e12], "not milliseconds"),  # a JavaScript Date.now()
    ([T0, T0], "one value per pair"),
])
def test_time_export_refuses_what_predict_refuses(time_export, time, message):
    import tensorflow as tf

    _, _, served = time_export
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        served.signatures["predict"](user=_int64([0]), item=_int64([1]),
                                     time=tf.constant(time, tf.float64))


def _inputs(signature) -> dict:
    return {name: spec.dtype.name for name, spec in signature.structured_input_signature[1].items()}


def test_time_input_only_for_models_fitted_with_times(exported, time_export):
    import tensorflow as tf

    kind, _, _, path = exported
    if kind != "int":
        pytest.skip("the signatures are the same for both id kinds")
    plain = tf.saved_model.load(str(path)).signatures
    assert _inputs(plain["predict"]) == {"user": "int64", "item": "int64"}
    assert _inputs(plain["recommend"]) == {"user": "int64", "k": "int32"}
    timed = time_export[2].signatures
    for name in ("predict", "serving_default"):
        assert _inputs(timed[name]) == {"user": "int64", "item": "int64", "time": "float64"}
    assert _inputs(timed["recommend"]) == {"user": "int64", "k": "int32", "time": "float64"}
    assert _inputs(timed["similar_items"]) == {"item": "int64", "k": "int32"}


# -- recommend and similar_items score in blocks -------------------------------------------------


def _export_in_small_blocks(est, path, n_items: int) -> None:
    """Export with blocks of 3 rows (scores from tables) or 2 (scores from the network)."""
    from skembedrec import _export

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_export, "_BLOCK_VALUES", 3 * n_items)
        patch.setattr(_export, "_NETWORK_BLOCK_VALUES", 2 * n_items)
        est.export(path)


@pytest.fixture(scope="module", params=["tower-less", "tower"])
def blocked_export(request, tmp_path_factory):
    import tensorflow as tf

    X, y = make_ratings(n_users=40, n_items=50, n_ratings=1500, random_state=4)
    hidden_units = () if request.param == "tower-less" else (8,)
    est = EmbeddingRatingRegressor(**{**FAST, "hidden_units": hidden_units}).fit(X, y)
    path = tmp_path_factory.mktemp("export_blocks") / "served"
    _export_in_small_blocks(est, path, X["item_id"].nunique())
    return est, X, tf.saved_model.load(str(path)).signatures


def test_recommend_in_blocks_equals_recommend(blocked_export):
    import tensorflow as tf

    est, X, signatures = blocked_export
    n_items = X["item_id"].nunique()
    # 11 rows: several blocks, the last one padded; an unknown user and a repeated one.
    users = [*X["user_id"].unique()[:9], 10**6, X["user_id"].iloc[0]]
    top = signatures["recommend"](user=_int64(users), k=tf.constant(n_items + 5))
    items, ratings, valid = (top[name].numpy() for name in ("items", "ratings", "valid"))
    assert items.shape == (len(users), n_items)
    for row, user in enumerate(users):
        # k' = n_items: every unseen item, then padding where the user's seen items were.
        expected = est.recommend([user], n=n_items)
        assert items[row][valid[row]].tolist() == expected["item_id"].tolist(), row
        np.testing.assert_allclose(ratings[row][valid[row]], expected["predicted_rating"],
                                   rtol=0, atol=1e-5)
        seen = set(X.loc[X["user_id"] == user, "item_id"])
        assert (~valid[row]).sum() == len(seen)
    # The unknown user has seen nothing: its row is the full ranking, as without exclusion.
    everything = est.recommend([users[0]], n=n_items, exclude_seen=False)["item_id"]
    assert valid[-2].all()
    assert set(everything) == set(items[-2])
    unknown = est.recommend([10**6], n=n_items, exclude_seen=False)
    assert items[-2].tolist() == unknown["item_id"].tolist()


def test_similar_items_in_blocks_equal_similar_items(blocked_export):
    import tensorflow as tf

    est, X, signatures = blocked_export
    items = X["item_id"].unique()[:7]
    near = signatures["similar_items"](item=_int64(items), k=tf.constant(4))
    expected = est.similar_items(items, n=4)
    assert near["items"].numpy().ravel().tolist() == expected["similar_item"].tolist()
    np.testing.assert_allclose(near["similarities"].numpy().ravel(), expected["similarity"],
                               rtol=0, atol=1e-9)


def test_recommend_and_similar_items_answer_an_empty_request(blocked_export):
    import tensorflow as tf

    _, _, signatures = blocked_export
    top = signatures["recommend"](user=_int64(np.zeros(0, np.int64)), k=tf.constant(3))
    assert top["items"].shape == (0, 3) and top["valid"].shape == (0, 3)
    near = signatures["similar_items"](item=_int64(np.zeros(0, np.int64)), k=tf.constant(3))
    assert near["items"].shape == (0, 3)
