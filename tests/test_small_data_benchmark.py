"""benchmarks/small_data.py keeps its protocol: the baseline's formula and an end-to-end run."""

import importlib.util
import json
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO_ROOT


def _load_small_data():
    spec = importlib.util.spec_from_file_location(
        "small_data", REPO_ROOT / "benchmarks" / "small_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["small_data"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_data():
    return _load_small_data()


def test_damped_baseline_matches_a_hand_computation_items_first(small_data):
    # Users a, a, b, c; items x, x, y, x; ratings 5, 3, 4, 1: mu = 13 / 4 = 3.25.
    users, items = ["a", "b", "a", "c"], ["x", "x", "y", "x"]
    ratings = [5.0, 4.0, 3.0, 1.0]
    mu = 3.25
    b_x = ((5 - mu) + (4 - mu) + (1 - mu)) / (25 + 3)
    b_y = (3 - mu) / (25 + 1)
    b_a = ((5 - mu - b_x) + (3 - mu - b_y)) / (10 + 2)
    b_b = (4 - mu - b_x) / (10 + 1)
    expected = [mu + b_a + b_y, mu + b_b + b_x, mu + b_a, mu + b_x, mu]  # unknown ids: 0
    pred = small_data.damped_baseline(users, items, ratings,
                                      ["a", "b", "a", "new", "new"], ["y", "x", "new", "x", "z"])
    np.testing.assert_allclose(pred, expected, rtol=1e-12)


def test_damped_baseline_clips_to_the_training_range_only_when_asked(small_data):
    args = ([1, 1], [1, 2], [1.0, 5.0], [1], [2])
    assert small_data.damped_baseline(*args, user_shrinkage=0, item_shrinkage=0)[0] == 5.0
    unclipped = small_data.damped_baseline(*args, user_shrinkage=0, item_shrinkage=0, clip=False)
    assert unclipped[0] == pytest.approx(3 + 2 + 0)  # mu + b_item(2) + b_user(0 after items)


def test_damped_baseline_rejects_mismatched_lengths(small_data):
    with pytest.raises(ValueError, match="one length"):
        small_data.damped_baseline([1, 2], [1], [3.0, 4.0], [1], [1])


def test_sample_split_draws_the_sample_and_the_split_from_the_seed(small_data):
    frame = pd.DataFrame({"user_id": np.arange(1000), "item_id": np.arange(1000) % 7,
                          "rating": np.arange(1000) % 5 + 1.0})
    before = frame.copy()
    train, test = small_data.sample_split(frame, 600, seed=3)
    again_train, _ = small_data.sample_split(frame, 600, seed=3)
    other_train, _ = small_data.sample_split(frame, 600, seed=4)
    assert (len(train), len(test)) == (480, 120)
    assert train.index.equals(again_train.index) and not train.index.equals(other_train.index)
    assert len(train.index.union(test.index)) == 600
    pd.testing.assert_frame_equal(frame, before)
    with pytest.raises(ValueError, match="size must be between"):
        small_data.sample_split(frame, 2000, seed=0)


def test_script_runs_end_to_end_on_a_tiny_size(small_data, ml100k_dir, tmp_path, capsys):
    out = tmp_path / "figures.json"
    small_data.main(["--data", str(ml100k_dir / "u.data"), "--sizes", "600", "--seeds", "1",
                     "--no-defaults", "--params", json.dumps(
                         {"epochs": 1, "n_factors": 4, "implicit": False, "n_estimators": 1}),
                     "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| 600 | damped baseline |" in printed and "Load average:" in printed
    records = json.loads(out.read_text())
    assert [r["contender"] for r in records] == [
        "damped baseline", '{"epochs": 1, "n_factors": 4, "implicit": false, "n_estimators": 1}']
    assert all(r["n_train"] == 480 and r["n_test"] == 120 and r["rmse"] > 0 for r in records)


def test_run_takes_rules_of_the_training_size(small_data):
    frame = pd.DataFrame({"user_id": np.arange(200) % 20, "item_id": np.arange(200) % 30,
                          "rating": np.arange(200) % 5 + 1.0})
    seen = []

    def rule(n_ratings, n_users, n_items):
        seen.append((n_ratings, n_users, n_items))
        return {"epochs": 1, "n_factors": 2, "implicit": False, "n_estimators": 1}

    records = small_data.run(frame, [100], 1, {"rule": rule}, defaults=False)
    assert seen and seen[0][0] == 80
    rows = small_data.summarise(records)
    assert [r["contender"] for r in rows] == ["damped baseline", "rule"]
    assert rows[1]["seeds"] == 1 and np.isfinite(rows[1]["rel_diff"])


def test_proposed_rule_leaves_the_defaults_from_30k_training_ratings(small_data):
    assert small_data.proposed_params(90_000, 943, 1682) == {}
    assert small_data.proposed_params(30_000, 943, 1500) == {}
    small = {n: small_data.proposed_params(n, 100, 100) for n in (1_600, 6_400, 24_000)}
    assert [p["batch_size"] for p in small.values()] == [128, 256, 1024]
    assert all(p["implicit"] is False and p["l2"] == 0.3 and p["epochs"] == 10
               and p["learning_rate"] == 0.01
               for p in small.values())
