"""Hostile files: a seeded fuzzer over a valid model file (``benchmarks/fuzz_load.py`` runs
2,000 cases; the suite runs 210 byte mutations and 60 mutations inside the members with the
digests rewritten, 360 more of those under ``-m slow``). Each case loads and predicts
(identically after a byte mutation, finite ratings otherwise) or raises a ValueError naming
the file, in under 5 s, and peak RSS grows by less than 300 MB."""

import hashlib
import importlib.util
import io
import json
import zipfile

import numpy as np
import pytest
from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def fuzz_load():
    spec = importlib.util.spec_from_file_location("fuzz_load",
                                                  REPO_ROOT / "benchmarks" / "fuzz_load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def result(fuzz_load):
    return fuzz_load.fuzz(210, seed=1, kinds=fuzz_load.BYTE_KINDS)


@pytest.fixture(scope="module")
def digest_result(fuzz_load):
    return fuzz_load.fuzz(60, seed=2, kinds=fuzz_load.DIGEST_KINDS)


def test_every_case_loads_identically_or_is_refused_naming_the_file(result):
    assert result["failures"] == []


def test_every_mutation_kind_ran_and_was_mostly_refused(fuzz_load, result):
    for kind in fuzz_load.BYTE_KINDS:
        total = sum(n for (k, _), n in result["counts"].items() if k == kind)
        assert total == 35, kind
        assert result["counts"][kind, "refused"] > 0, kind


def test_no_case_hangs_or_grows_memory(fuzz_load, result):
    assert result["max_seconds"] < fuzz_load.MAX_SECONDS
    assert result["rss_growth_mb"] < fuzz_load.MAX_RSS_MB


def test_mutations_inside_the_members_load_finite_or_are_refused(fuzz_load, digest_result):
    assert digest_result["failures"] == []
    for kind in fuzz_load.DIGEST_KINDS:
        total = sum(n for (k, _), n in digest_result["counts"].items() if k == kind)
        assert total == 10, kind
    # Both outcomes occur: the fuzzer reaches the loader's checks and what lies past them.
    assert sum(n for (_, outcome), n in digest_result["counts"].items()
               if outcome == "refused") >= 10
    assert sum(n for (_, outcome), n in digest_result["counts"].items()
               if outcome == "loaded") >= 5
    assert digest_result["max_seconds"] < fuzz_load.MAX_SECONDS
    assert digest_result["rss_growth_mb"] < fuzz_load.MAX_RSS_MB


@pytest.mark.slow
def test_many_mutations_inside_the_members_load_finite_or_are_refused(fuzz_load):
    result = fuzz_load.fuzz(360, seed=3, kinds=fuzz_load.DIGEST_KINDS)
    assert result["failures"] == []
    assert result["max_seconds"] < fuzz_load.MAX_SECONDS
    assert result["rss_growth_mb"] < fuzz_load.MAX_RSS_MB


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "m.skembedrec"
    fitted.save(path)
    return path.read_bytes()


def _rewritten(fuzz_load, data, tmp_path, edit_meta=None, edit_config=None, edit_weights=None):
    """The file ``data`` edited inside its members, its digests rewritten to match."""
    members = fuzz_load._members(data)
    if edit_meta is not None:
        meta = json.loads(members["skembedrec.json"])
        edit_meta(meta)
        members["skembedrec.json"] = json.dumps(meta).encode()
    if edit_config is not None or edit_weights is not None:
        inner = fuzz_load._members(members["model.keras"])
        if edit_config is not None:
            config = json.loads(inner["config.json"])
            edit_config(config)
            inner["config.json"] = json.dumps(config).encode()
        if edit_weights is not None:
            inner["model.weights.h5"] = edit_weights(inner["model.weights.h5"])
        members["model.keras"] = fuzz_load._zip(inner)
    path = tmp_path / "edited.skembedrec"
    path.write_bytes(fuzz_load.with_digests(members))
    meta = json.loads(zipfile.ZipFile(path).read("skembedrec.json"))
    assert meta["sha256"]["model.keras"] == hashlib.sha256(members["model.keras"]).hexdigest()
    return path


def _load(path):
    from skembedrec import EmbeddingRatingRegressor

    return EmbeddingRatingRegressor.load(path)


@pytest.mark.parametrize("name", ["rating_max_", "n_users_", "seen_", "n_iter_"])
def test_a_missing_fitted_attribute_is_refused_naming_it_and_the_file(
        fuzz_load, saved, tmp_path, name):
    path = _rewritten(fuzz_load, saved, tmp_path,
                      edit_meta=lambda meta: meta["fitted"].pop(name))
    with pytest.raises(ValueError, match=rf"edited\.skembedrec.*{name}.*missing"):
        _load(path)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("rating_min_", 9.0, "rating_max_ is 5.0, outside"),
    ("rating_max_", {"__float__": "inf"}, "rating_max_ is inf"),
    ("n_users_", 10**30, "n_users_ is 10+, outside"),
    ("n_iter_", -1, "n_iter_ is -1, outside"),
    ("epochs_", [1], r"epochs_ is \[1\].*not an integer"),
    ("history_", {"__dict__": {"loss": "x"}}, "history_.*not a list"),
    ("time_max_", 1e9, "time_max_ is 1000000000.0.* but time_col is None"),
])
def test_a_fitted_attribute_of_the_wrong_type_or_range_is_refused(
        fuzz_load, saved, tmp_path, name, value, message):
    path = _rewritten(fuzz_load, saved, tmp_path,
                      edit_meta=lambda meta: meta["fitted"].__setitem__(name, value))
    with pytest.raises(ValueError, match=rf"edited\.skembedrec.*{message}"):
        _load(path)


def test_parameters_are_checked_by_the_estimators_constraints(fuzz_load, saved, tmp_path):
    path = _rewritten(fuzz_load, saved, tmp_path, edit_meta=lambda meta: meta["params"][
        "__dict__"].__setitem__("n_factors", -3))
    with pytest.raises(ValueError, match=r"edited\.skembedrec.*'n_factors' parameter"):
        _load(path)


def test_a_column_parameter_disagreeing_with_the_fitted_columns_is_refused(
        fuzz_load, saved, tmp_path):
    path = _rewritten(fuzz_load, saved, tmp_path, edit_meta=lambda meta: meta["params"][
        "__dict__"].__setitem__("user_col", "somebody"))
    with pytest.raises(ValueError, match=r"edited\.skembedrec.*feature_names_in_"):
        _load(path)


def test_a_bad_target_scaler_is_refused(fuzz_load, saved, tmp_path):
    def zero_scale(meta):
        meta["regressor"]["__dict__"]["scaler"]["__dict__"]["scale_"] = {"__array__": "x"}

    path = _rewritten(fuzz_load, saved, tmp_path, edit_meta=zero_scale)
    with pytest.raises(ValueError, match=r"edited\.skembedrec.*(missing|corrupted)"):
        _load(path)


@pytest.mark.parametrize("value", [{"a": 1}, ["Dense"], 7])
def test_a_class_name_that_is_not_a_string_is_refused(fuzz_load, saved, tmp_path, value):
    def edit(config):
        config["config"]["layers"][1]["class_name"] = value

    path = _rewritten(fuzz_load, saved, tmp_path, edit_config=edit)
    with pytest.raises(ValueError, match=r"edited\.skembedrec.*not strings"):
        _load(path)


@pytest.mark.parametrize("value", ["text", 31.0, None, float("nan")])
def test_a_layer_size_that_is_not_an_integer_is_refused(fuzz_load, saved, tmp_path, value):
    def edit(config):
        layer = next(layer for layer in config["config"]["layers"]
                     if layer["class_name"] == "PenalizedEmbedding")
        layer["config"]["input_dim"] = value

    path = _rewritten(fuzz_load, saved, tmp_path, edit_config=edit)
    with pytest.raises(ValueError, match=r"edited\.skembedrec.*input_dim=.*must be an integer"):
        _load(path)


def test_non_finite_weights_are_refused(fuzz_load, saved, tmp_path):
    import h5py

    def poison(data):
        buffer = io.BytesIO(data)
        with h5py.File(buffer, "r+") as store:
            datasets = []
            store.visititems(lambda name, node: datasets.append(node)
                             if isinstance(node, h5py.Dataset) and node.size else None)
            embedding = next(d for d in datasets if "embedding" in d.name)
            values = embedding[()]
            values.flat[0] = np.nan
            embedding[...] = values
        return buffer.getvalue()

    path = _rewritten(fuzz_load, saved, tmp_path, edit_weights=poison)
    with pytest.raises(ValueError, match=r"edited\.skembedrec.*non-finite"):
        _load(path)


def test_an_oversized_member_is_refused_before_it_is_decompressed(fuzz_load, tmp_path, fitted):
    from skembedrec import EmbeddingRatingRegressor

    fitted.save(tmp_path / "m.skembedrec")
    members = fuzz_load._members((tmp_path / "m.skembedrec").read_bytes())
    members["model.keras"] = bytes(64 << 20)  # 64 MiB of zeros: 64 KiB on disk
    (tmp_path / "bomb.skembedrec").write_bytes(fuzz_load._zip(members))
    before = fuzz_load.peak_rss_mb()
    with pytest.raises(ValueError, match=r"bomb\.skembedrec.*expands \d+-fold.*zip bomb"):
        EmbeddingRatingRegressor.load(tmp_path / "bomb.skembedrec")
    lying = fuzz_load._lying_size(fuzz_load._zip(members), "model.keras", 1000)
    (tmp_path / "lying.skembedrec").write_bytes(lying)
    with pytest.raises(ValueError,
                       match=r"lying\.skembedrec.*(corrupted|more than its declared)"):
        EmbeddingRatingRegressor.load(tmp_path / "lying.skembedrec")
    assert fuzz_load.peak_rss_mb() - before < 100
    with pytest.raises(ValueError, match=r"bomb\.skembedrec.*declares \d+ bytes, over the "
                       r"limit of 1000000.*member_bytes"):
        EmbeddingRatingRegressor.load(tmp_path / "bomb.skembedrec",
                                      limits={"member_bytes": 10**6})
