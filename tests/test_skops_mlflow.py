"""skops and MLflow's sklearn flavour (default: skops) save and load the estimator, with the
public list of trusted types (skembedrec.trusted_types) the Serving guide documents."""

import numpy as np
import pandas as pd
import pytest
from conftest import FAST

from skembedrec import EmbeddingRatingRegressor, trusted_types

sio = pytest.importorskip("skops.io", reason="skops is not installed (pip install skops)")

TRUSTED = trusted_types()


def test_skops_round_trip_needs_only_the_documented_types(fitted, ratings):
    X, _ = ratings
    data = sio.dumps(fitted)
    assert sorted(sio.get_untrusted_types(data=data)) == TRUSTED
    back = sio.loads(data, trusted=TRUSTED)
    assert np.array_equal(back.predict(X), fitted.predict(X))
    assert back.get_params() == fitted.get_params()


def test_skops_refuses_when_the_types_are_not_trusted(fitted):
    with pytest.raises(Exception, match=r"[Uu]ntrusted"):
        sio.loads(sio.dumps(fitted))


def test_string_ids_and_an_unfitted_estimator_round_trip(ratings):
    X, y = ratings
    X = X.assign(user_id="u" + X["user_id"].astype(str))
    est = EmbeddingRatingRegressor(**FAST).fit(X, y)
    back = sio.loads(sio.dumps(est), trusted=TRUSTED)
    assert np.array_equal(back.predict(X), est.predict(X))
    unfitted = sio.loads(sio.dumps(EmbeddingRatingRegressor(**FAST)), trusted=TRUSTED)
    assert unfitted.get_params() == EmbeddingRatingRegressor(**FAST).get_params()


@pytest.mark.slow
def test_mlflow_sklearn_flavour_default_format(fitted, ratings, tmp_path):
    mlflow_sklearn = pytest.importorskip(
        "mlflow.sklearn", reason="MLflow is not installed (pip install mlflow-skinny)")
    X, _ = ratings
    mlflow_sklearn.save_model(fitted, tmp_path / "model", skops_trusted_types=trusted_types(fitted))
    assert (tmp_path / "model" / "model.skops").exists()  # skops, not cloudpickle
    back = mlflow_sklearn.load_model(str(tmp_path / "model"))
    assert np.array_equal(back.predict(X), fitted.predict(X))


def test_trusted_types_names_no_private_path_that_users_must_write(fitted):
    assert trusted_types(fitted) == TRUSTED
    assert all(name.count(".") >= 1 for name in TRUSTED)
    assert "skembedrec._estimator.EmbeddingRatingRegressor" in TRUSTED


class Marker:
    """A user's own object in a parameter (a callback, say)."""


def test_trusted_types_add_what_the_parameters_bring():
    est = EmbeddingRatingRegressor(**FAST, callbacks=[Marker()])
    names = trusted_types(est)
    assert set(TRUSTED) < set(names)
    assert set(sio.get_untrusted_types(data=sio.dumps(est))) <= set(names)


def test_trusted_types_explains_a_parameter_skops_cannot_write():
    class Opaque:
        def __reduce__(self):
            raise TypeError("cannot reduce")

    with pytest.raises(ValueError, match=r"skops cannot serialise the parameters \['callbacks'\]"):
        trusted_types(EmbeddingRatingRegressor(callbacks=[Opaque()]))


def test_trusted_types_with_a_feature_table_lists_its_types_or_says_why_not(ratings):
    X, _ = ratings
    users = pd.DataFrame({"age": np.arange(X["user_id"].max() + 1) % 50},
                         index=pd.Index(np.arange(X["user_id"].max() + 1), name="user_id"))
    est = EmbeddingRatingRegressor(**FAST, user_features=users)
    try:
        names = trusted_types(est)
    except ValueError as exc:  # pandas 3 frames: skops cannot reduce their blocks
        assert "est.save(path)" in str(exc)
        return
    assert set(sio.get_untrusted_types(data=sio.dumps(est))) <= set(names)
