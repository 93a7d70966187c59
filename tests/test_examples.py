"""Every example runs (one epoch per fit) and produces what it promises, so none can rot.

The examples run in this process with :func:`runpy.run_path`, as sphinx-gallery runs them,
so TensorFlow is imported once for all of them.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHARED_ML100K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-100k"
PLOT_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("plot_*.py"))


@pytest.fixture
def run_example(monkeypatch, tmp_path):
    monkeypatch.setenv("SKEMBEDREC_EXAMPLE_EPOCHS", "1")
    # The examples use a cached MovieLens 100K when there is one: none here, so every
    # machine runs them on the same synthetic data.
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # anything an example writes lands in tmp_path

    # As in sphinx-gallery: figures stay open to be counted instead of being shown.
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)

    def run(name: str, *args: str) -> dict:
        monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *args])
        plt.close("all")
        namespace = runpy.run_path(str(EXAMPLES / name), run_name="__main__")
        namespace["_figures"] = len(plt.get_fignums())
        plt.close("all")
        return namespace

    return run


def test_every_plot_example_is_tested():
    tested = {name for name in globals() if name.startswith("test_plot_")}
    expected = {"test_" + name.removesuffix(".py") for name in PLOT_EXAMPLES}
    assert expected <= tested, f"examples without a test: {sorted(expected - tested)}"


@pytest.mark.slow
def test_plot_learning_curve(run_example):
    ns = run_example("plot_learning_curve.py")
    assert set(ns["curves"]) == {1e-4, 1e-2}
    assert all(len(loss) == 1 and np.isfinite(loss).all() for loss in ns["curves"].values())
    assert ns["_figures"] == 1


@pytest.mark.slow
def test_plot_cross_validation(run_example):
    ns = run_example("plot_cross_validation.py")
    rmse = ns["fold_rmse"]
    assert list(rmse) == ["mean rating", "matrix factorisation", "embeddings + MLP"]
    assert all(len(r) == 3 for r in rmse.values())
    # Even one epoch of embeddings beats predicting the mean on the synthetic ratings.
    assert rmse["matrix factorisation"].mean() < rmse["mean rating"].mean()
    assert ns["_figures"] == 1


@pytest.mark.slow
def test_plot_grid_search(run_example):
    ns = run_example("plot_grid_search.py")
    search = ns["search"]
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["n_factors"] in (8, 32)
    assert ns["table"].shape == (2, 2) and ns["_figures"] == 1


@pytest.mark.slow
def test_plot_persistence(run_example):
    ns = run_example("plot_persistence.py")
    np.testing.assert_array_equal(ns["before"], ns["after"])
    np.testing.assert_array_equal(ns["before"], ns["from_safe_file"].predict(ns["X_test"]))
    assert ns["loaded"] is not ns["model"] and ns["_figures"] == 1


@pytest.mark.slow
def test_plot_recommendations(run_example):
    ns = run_example("plot_recommendations.py")
    top = ns["top"]
    assert list(top.columns[:4]) == ["user_id", "item_id", "predicted_rating", "rank"]
    assert len(top) == 30 and top["rank"].tolist() == list(range(1, 11)) * 3
    assert ns["_figures"] == 1


@pytest.mark.slow
def test_plot_time_aware(run_example):
    ns = run_example("plot_time_aware.py")
    rmse = ns["rmse"]
    assert list(rmse) == ["without time", "time_col"]
    # The synthetic ratings drift by design: the time terms help on the later ratings.
    assert rmse["time_col"] < rmse["without time"]
    # Over the training period the learned level follows the true, seasonal one.
    trained = ns["trained"]
    assert np.corrcoef(ns["learned_level"][trained], ns["true_level"][trained])[0, 1] > 0.8
    assert ns["_figures"] == 1


@pytest.mark.slow
def test_plot_item_embeddings(run_example):
    ns = run_example("plot_item_embeddings.py")
    assert ns["coords"].shape == (ns["model"].n_items_, 2) and ns["_figures"] == 1


@pytest.mark.slow
def test_plot_item_embeddings_on_movielens_with_titles(run_example):
    if not (SHARED_ML100K / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not found at {SHARED_ML100K}")
    ns = run_example("plot_item_embeddings.py", str(SHARED_ML100K))
    assert ns["coords"].shape == (1682, 2)
    assert ns["titles"][1] == "Toy Story"


@pytest.mark.slow
def test_quickstart_main_job(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import quickstart

    out = tmp_path / "model.joblib"
    result = quickstart.main(["--epochs", "1", "--cv", "2", "--out", str(out)])
    assert out.is_file() and result["path"] == str(out)
    assert len(result["cv_rmse"]) == 2
    assert result["test_rmse"] < result["baseline_rmse"]
    printed = capsys.readouterr().out
    assert "2-fold CV RMSE" in printed and "Saved the fitted model" in printed


def test_quickstart_cross_validates_on_shuffled_folds(monkeypatch, tmp_path):
    """Rating files sorted by user would otherwise test each fold on users never trained on."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import quickstart

    seen = {}

    def record(model, X, y, *, cv, **kwargs):
        seen["cv"] = cv
        raise StopIteration  # the folds are all this test needs

    monkeypatch.setattr(quickstart, "cross_validate", record)
    with pytest.raises(StopIteration):
        quickstart.main(["--cv", "3", "--out", str(tmp_path / "m.joblib")])
    assert seen["cv"].shuffle and seen["cv"].get_n_splits() == 3


@pytest.mark.slow
def test_quickstart_prints_its_own_output_first(tmp_path):
    """What a newcomer runs first: no TensorFlow C++ log lines (CUDA cuInit, oneDNN,
    NodeDef) before or among its own lines, and the library's import was not changed to
    get there (the example silences them itself)."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "--epochs", "1", "--cv", "2",
         "--out", str(tmp_path / "model.joblib")],
        capture_output=True, text=True, env={**env, "SCIKIT_LEARN_DATA": str(tmp_path)},
        cwd=tmp_path, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("Data: synthetic ratings")
    for noise in ("I0000", "cuInit", "NodeDef", "absl::InitializeLog", "oneDNN"):
        assert noise not in done.stderr


def test_examples_leave_no_files_in_the_repository():
    leftovers = [p.name for p in EXAMPLES.iterdir() if p.suffix in {".joblib", ".png", ".keras"}]
    assert leftovers == []
