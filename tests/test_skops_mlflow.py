"""skops and MLflow's sklearn flavour (default: skops) save and load the estimator, with the
short list of trusted types the Serving guide documents."""

import numpy as np
import pytest
from conftest import FAST

from skembedrec import EmbeddingRatingRegressor

sio = pytest.importorskip("skops.io", reason="skops is not installed (pip install skops)")

# The list docs/user_guide/serving.rst documents.
TRUSTED = [
    "scipy.sparse._csr.csr_array",
    "skembedrec._encoding.IdEncoder",
    "skembedrec._estimator.EmbeddingRatingRegressor",
]


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


def test_mlflow_sklearn_flavour_default_format(fitted, ratings, tmp_path):
    mlflow_sklearn = pytest.importorskip(
        "mlflow.sklearn", reason="MLflow is not installed (pip install mlflow-skinny)")
    X, _ = ratings
    mlflow_sklearn.save_model(fitted, tmp_path / "model", skops_trusted_types=TRUSTED)
    assert (tmp_path / "model" / "model.skops").exists()  # skops, not cloudpickle
    back = mlflow_sklearn.load_model(str(tmp_path / "model"))
    assert np.array_equal(back.predict(X), fitted.predict(X))
