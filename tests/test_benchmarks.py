"""The benchmark scripts keep their protocols (the figures themselves live in RESULTS.md)."""

import importlib.util
import json
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO_ROOT


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def _load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_notebook_loop_keeps_an_n_by_1_output_and_learns(ml100k):
    NotebookModel = _load_benchmark("notebook").NotebookModel
    sample = ml100k.sample(6000, random_state=1)
    train, test = sample.iloc[:5000], sample.iloc[5000:]
    model = NotebookModel(epochs=2, batch_size=256).fit(
        train["user_id"].to_numpy(), train["movie_id"].to_numpy(),
        train["rating"].to_numpy(dtype=float))
    assert model.model_.output_shape == (None, 1)
    pred = model.predict(test["user_id"].to_numpy(), test["movie_id"].to_numpy())
    assert pred.shape == (len(test),)
    assert _rmse(pred, test["rating"]) < _rmse(train["rating"].mean(), test["rating"]) + 0.02


def test_benchmark_rewrites_only_its_own_results_section(tmp_path, monkeypatch):
    bench = _load_benchmark("movielens")
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Other\n\nkeep me\n")
    monkeypatch.setattr(bench, "RESULTS", results)
    bench.write_section("## MovieLens 100K\n\nfirst")
    bench.write_section("## MovieLens 100K\n\nsecond")
    text = results.read_text()
    assert "keep me" in text and "second" in text and "first" not in text
    assert text.count(bench.SECTION_START) == 1


def test_benchmark_splits_match_the_protocols(ml100k):
    bench = _load_benchmark("movielens")
    frame = ml100k.rename(columns={"movie_id": "item_id", "timestamp": "t"})
    train, test = bench.split(frame, "notebook", 0)
    assert (len(train), len(test)) == (90_000, 10_000)
    folds = [bench.split(frame, "kfold", k)[1].index for k in range(5)]
    assert sum(len(f) for f in folds) == len(frame)
    assert len(pd.Index(np.concatenate(folds)).unique()) == len(frame)


def test_time_cut_protocol_trains_on_the_first_90_percent_by_time(ml100k):
    bench = _load_benchmark("movielens")
    frame = ml100k.rename(columns={"movie_id": "item_id"})
    train, test = bench.split(frame, "timecut", 0)
    assert (len(train), len(test)) == (90_000, 10_000)
    assert train["timestamp"].max() <= test["timestamp"].min()
    assert not set(train.index) & set(test.index)


def test_time_section_and_movielens_section_are_kept_apart(tmp_path, monkeypatch):
    bench = _load_benchmark("movielens")
    results = tmp_path / "RESULTS.md"
    monkeypatch.setattr(bench, "RESULTS", results)
    bench.write_section("## MovieLens 100K\n\nplain")
    bench.write_section("## Time\n\nfirst", bench.TIME_SECTION_START, bench.TIME_SECTION_END)
    bench.write_section("## Time\n\nsecond", bench.TIME_SECTION_START, bench.TIME_SECTION_END)
    text = results.read_text()
    assert "plain" in text and "second" in text and "first" not in text


def test_scale_benchmark_times_epochs_through_the_public_callbacks_parameter(monkeypatch):
    """benchmarks/scale.py clocks each epoch with a callback passed as a parameter (it used to
    monkeypatch the training module)."""
    scale = _load_benchmark("scale")
    monkeypatch.setitem(scale.SETTINGS, "epochs", 2)
    result = scale.measure(20_000)
    assert len(result["epoch_wall_s"]) == 2 and min(result["epoch_wall_s"]) > 0
    assert result["test_rmse"] < result["rating_std"]


def test_scale_shape_helpers_on_a_tiny_case():
    scale = _load_benchmark("scale")
    assert scale.gini(np.array([3, 3, 3])) == 0.0
    assert scale.gini(np.array([0, 0, 0, 4])) == 0.75
    assert abs(scale.gini(np.array([1, 2, 3, 4])) - 0.25) < 1e-12
    stats = scale.degree_stats(np.arange(1, 102))
    assert (stats["min"], stats["p10"], stats["p50"], stats["p90"], stats["max"]) == (
        1, 11.0, 51.0, 91.0, 101)
    assert stats["p99"] == 100.0 and stats["mean"] == 51.0
    # ML shapes exactly at their sizes; in between the catalogue grows with the ratings.
    for n_ratings, n_users, n_items in scale.ML_SHAPES:
        assert scale.shape_for(n_ratings) == (n_users, n_items)
    shapes = [scale.shape_for(n) for n in (2_000, 20_000, 300_000, 3_000_000, 50_000_000)]
    assert shapes == sorted(shapes) and all(
        n <= 0.2 * u * i + 1 for n, (u, i) in zip((2_000, 20_000), shapes, strict=False))
    row = scale._shape_row("x", np.array([0, 0, 1]), np.array([0, 1, 1]), 3, 2)
    assert row["users"]["min"] == 0 and row["users"]["max"] == 2 and row["items"]["max"] == 2


@pytest.mark.slow
def test_scale_defaults_runs_end_to_end_at_a_tiny_size(tmp_path, capsys):
    """--defaults: one fresh process per size, Surprise beside it, the shape table, JSON."""
    scale = _load_benchmark("scale")
    out = tmp_path / "figures.json"
    scale.main(["--defaults", "--sizes", "20000", "--params", '{"epochs": 1}',
                "--json", str(out)])
    text = capsys.readouterr().out
    assert "Surprise `SVD()`" in text and "| make_ratings | 943 x 1,682 | 100,000 | users" in text
    figures = json.loads(out.read_text())
    result = figures["results"][0]
    assert result["n_ratings"] == 20_000 and result["params"] == {"epochs": 1}
    assert result["fit_ratings_per_s"] > 0 and result["predict_pairs"] == 200_000
    assert result["test_rmse"] < result["rating_std"]
    assert result["recommend_users"] == result["n_users"] and result["partial_fit_s"] > 0
    assert result["data_rss_gb"] <= result["peak_rss_gb"]
    assert result["shape"]["users"]["min"] >= 20
    assert figures["surprise"]["20000"]["svd_test_rmse"] < result["rating_std"]
