"""Every parameter combination is what it says (issue 23).

Each architecture setting (``dot_product``, ``hidden_units``, ``use_bias``, ``implicit``,
``n_estimators``, ``time_col``, side features) is crossed with the others and every public
method is run on the fitted model: the resolved attributes must describe the network that
was built, and each method either works or (a model with biases only asked for its
vectors) raises a ValueError that names the setting.

The default run covers every pair of values of any two settings (a pairwise covering set,
:func:`pairwise_cover`); the full product runs under ``-m slow``.
"""

import itertools

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings

GRID = {
    "dot_product": (True, False),
    "hidden_units": ((), (8,)),
    "use_bias": (True, False),
    "implicit": (True, False),
    "n_estimators": (1, 2),
    "time_col": (None, "timestamp"),
    "user_features": (False, True),
}
TINY = dict(n_factors=4, epochs=1, batch_size=64, random_state=0)
N_USERS, N_ITEMS = 20, 20
BIASES_ONLY = "dot_product=False, hidden_units=()"


def _invalid_reason(combo: dict) -> str | None:
    """The error a combination must raise at fit (None: it is a valid model)."""
    if combo["time_col"] is not None and not combo["use_bias"]:
        return "needs use_bias=True"
    if not (combo["dot_product"] or combo["hidden_units"] or combo["use_bias"]):
        return "no output"
    return None


def pairwise_cover(grid: dict) -> list[dict]:
    """A small set of valid combinations in which every pair of values of any two settings
    that some valid combination holds appears (greedy, deterministic)."""
    names = list(grid)
    valid = [dict(zip(names, values, strict=True))
             for values in itertools.product(*grid.values())]
    valid = [combo for combo in valid if _invalid_reason(combo) is None]

    def pairs(combo):
        return {(a, repr(combo[a]), b, repr(combo[b]))
                for a, b in itertools.combinations(names, 2)}

    uncovered = set().union(*(pairs(combo) for combo in valid))
    chosen = []
    while uncovered:
        best = max(valid, key=lambda combo: len(pairs(combo) & uncovered))
        chosen.append(best)
        uncovered -= pairs(best)
    return chosen


def _label(combo: dict) -> str:
    return "-".join(f"{name}={value}" for name, value in combo.items())


COVER = pairwise_cover(GRID)
FULL = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]


@pytest.fixture(scope="module")
def data():
    X, y = make_ratings(n_users=N_USERS, n_items=N_ITEMS, n_ratings=240, random_state=0)
    X = X.assign(timestamp=1_600_000_000 + 3_600 * np.arange(len(X)))
    rng = np.random.RandomState(0)
    users = pd.DataFrame({"age": rng.randint(18, 70, N_USERS),
                          "job": rng.choice(["a", "b"], N_USERS)},
                         index=pd.Index(np.arange(N_USERS), name="user_id"))
    return X, y, users


def _estimator(combo: dict, users: pd.DataFrame) -> EmbeddingRatingRegressor:
    params = {**combo, "user_features": users if combo["user_features"] else None}
    return EmbeddingRatingRegressor(**TINY, **params)


def _check_combination(combo: dict, data, tmp_path, *, export: bool) -> None:
    X, y, users = data
    est = _estimator(combo, users)
    reason = _invalid_reason(combo)
    if reason is not None:
        with pytest.raises(ValueError, match=reason):
            est.fit(X, y)
        return
    first, later = X.index < 200, X.index >= 200
    est.fit(X[first], y[first])

    # The resolved attributes describe the network built.
    layers = {layer.name for layer in est.model_.layers}
    has_dot = combo["dot_product"]
    assert est.implicit_ == (combo["implicit"] and has_dot)
    assert est.implicit_ == ("user_implicit" in layers)
    assert est.n_estimators_ == (combo["n_estimators"] if has_dot else 1)
    assert ("dot_mean" in layers) == (est.n_estimators_ > 1)
    assert ("user_bias" in layers) == combo["use_bias"]
    assert ("concat" in layers) == bool(combo["hidden_units"])
    assert ("user_features" in layers) == combo["user_features"]

    predicted = est.predict(X)
    assert predicted.shape == (len(X),) and np.isfinite(predicted).all()
    assert est.is_known(X.loc[first, ["user_id", "item_id"]]).all()
    assert np.isfinite(est.score(X, y))
    top = est.recommend([0, 1], n=3)
    assert len(top) == 6 and top["rank"].tolist() == [1, 2, 3] * 2

    width = 4 * est.n_estimators_
    if combo["dot_product"] or combo["hidden_units"]:
        assert est.user_embeddings_.shape == (est.n_users_, width)
        assert est.item_embeddings_.shape == (est.n_items_, width)
        assert len(est.similar_items([0], n=2)) == 2
        assert len(est.similar_users([0], n=2)) == 2
    else:
        for read in (lambda: est.user_embeddings_, lambda: est.item_embeddings_,
                     lambda: est.similar_items([0], n=2), lambda: est.similar_users([0])):
            with pytest.raises(ValueError, match=BIASES_ONLY):
                read()

    path = tmp_path / "model.skembedrec"
    est.save(path)
    loaded = EmbeddingRatingRegressor.load(path)
    np.testing.assert_array_equal(loaded.predict(X), predicted)
    assert (loaded.implicit_, loaded.n_estimators_) == (est.implicit_, est.n_estimators_)

    if export:
        est.export(tmp_path / "served")
        served = tf.saved_model.load(str(tmp_path / "served")).signatures["predict"]
        inputs = {"user": tf.constant(X["user_id"].to_numpy()[:5], tf.int64),
                  "item": tf.constant(X["item_id"].to_numpy()[:5], tf.int64)}
        if combo["time_col"] is not None:
            inputs["time"] = tf.constant(X["timestamp"].to_numpy()[:5], tf.float64)
        np.testing.assert_allclose(served(**inputs)["rating"].numpy(), predicted[:5],
                                   rtol=1e-5)

    est.partial_fit(X[later], y[later])
    assert (est.implicit_, est.n_estimators_) == (loaded.implicit_, loaded.n_estimators_)
    assert np.isfinite(est.predict(X)).all()


# The biases-only network and the full one: the two ends of what export serves.
EXPORTED = [
    {**COVER[0], "dot_product": False, "hidden_units": (), "use_bias": True, "implicit": True,
     "n_estimators": 2},
    {**COVER[0], "dot_product": True, "hidden_units": (8,), "use_bias": True},
]


@pytest.mark.parametrize("combo", COVER, ids=_label)
def test_every_method_on_a_pairwise_cover(combo, data, tmp_path):
    _check_combination(combo, data, tmp_path, export=False)


@pytest.mark.parametrize("combo", EXPORTED, ids=_label)
def test_export_serves_what_predict_returns(combo, data, tmp_path):
    _check_combination(combo, data, tmp_path, export=True)


INVALID = [next(c for c in FULL if _invalid_reason(c) == reason)
           for reason in ("needs use_bias=True", "no output")]


@pytest.mark.parametrize("combo", INVALID, ids=_label)
def test_invalid_combinations_are_refused(combo, data, tmp_path):
    _check_combination(combo, data, tmp_path, export=False)


def test_pairwise_cover_covers_every_pair():
    chosen = {tuple(map(repr, combo.values())) for combo in COVER}
    assert len(COVER) < 12
    for (i, a), (j, b) in itertools.combinations(enumerate(GRID), 2):
        for va, vb in itertools.product(GRID[a], GRID[b]):
            if any(_invalid_reason(c) is None and c[a] == va and c[b] == vb for c in FULL):
                assert any(values[i] == repr(va) and values[j] == repr(vb)
                           for values in chosen), (a, va, b, vb)


def test_biases_only_resolves_to_one_member_without_implicit(data):
    X, y, _ = data
    est = EmbeddingRatingRegressor(**TINY, dot_product=False, hidden_units=()).fit(X, y)
    assert (est.implicit_, est.n_estimators_) == (False, 1)
    assert {"user_bias", "item_bias"} <= {layer.name for layer in est.model_.layers}
    with pytest.raises(ValueError, match="item embeddings need dot_product=True"):
        est.item_embeddings_  # noqa: B018


@pytest.mark.slow
@pytest.mark.parametrize("combo", FULL, ids=_label)
def test_every_method_on_the_full_grid(combo, data, tmp_path):
    _check_combination(combo, data, tmp_path, export=False)
