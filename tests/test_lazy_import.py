"""The dataset loaders work without TensorFlow or Keras (each is seconds to import, with log
lines); the estimator is imported on first use (PEP 562). Checked in fresh interpreters,
since this test session has imported TensorFlow already."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_loaders_import_and_run_without_tensorflow_or_keras(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t4\t881250949\n2\t20\t3\t881250950\n")
    out = _run(f"""
        import sys
        import skembedrec.datasets as datasets
        X, y = datasets.make_ratings(n_users=5, n_items=5, n_ratings=10, random_state=0)
        X, y = datasets.read_ratings({str(tmp_path)!r})
        assert X["timestamp"].tolist() == [881250949, 881250950], X
        try:
            datasets.fetch_movielens("100k", data_home={str(tmp_path / "home")!r},
                                     download_if_missing=False)
        except FileNotFoundError:
            pass
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"tensorflow", "keras",
                                                                  "scikeras"}})
        print("heavy:", heavy)
    """)
    assert "heavy: []" in out


def test_package_exposes_the_estimator_lazily():
    # This process has imported the estimator already (conftest): the look-up is cheap.
    import pickle

    import skembedrec
    from skembedrec import EmbeddingRatingRegressor
    from skembedrec._estimator import EmbeddingRatingRegressor as Defined

    assert skembedrec.EmbeddingRatingRegressor is EmbeddingRatingRegressor is Defined
    assert Defined.__module__ == "skembedrec._estimator"  # what pickles and skops files name
    assert pickle.loads(pickle.dumps(Defined(n_factors=3))).get_params()["n_factors"] == 3
    assert {"EmbeddingRatingRegressor", "__version__"} <= set(skembedrec.__all__)
    assert set(skembedrec.__all__) <= set(dir(skembedrec))
    assert skembedrec.__version__.count(".") == 2
    with pytest.raises(AttributeError, match="module 'skembedrec' has no attribute 'Nope'"):
        skembedrec.Nope  # noqa: B018


@pytest.mark.slow
def test_estimator_imports_on_first_use_in_a_fresh_process():
    """Imports TensorFlow in a new interpreter (5-20 s), hence slow."""
    out = _run("""
        import pickle, sys
        import skembedrec
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules
        Estimator = skembedrec.EmbeddingRatingRegressor
        assert "tensorflow" in sys.modules
        blob = pickle.dumps(Estimator(n_factors=3))
        assert b"skembedrec._estimator" in blob
        print("loaded:", pickle.loads(blob).n_factors)
    """)
    assert "loaded: 3" in out
