"""Hostile files: a seeded fuzzer over a valid model file (``benchmarks/fuzz_load.py`` runs
2,000 cases; the suite runs 210). Each case loads and predicts identically or raises a
ValueError naming the file, in under 5 s, and peak RSS grows by less than 300 MB."""

import importlib.util

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
    return fuzz_load.fuzz(210, seed=1)


def test_every_case_loads_identically_or_is_refused_naming_the_file(result):
    assert result["failures"] == []


def test_every_mutation_kind_ran_and_was_mostly_refused(fuzz_load, result):
    for kind in fuzz_load.KINDS:
        total = sum(n for (k, _), n in result["counts"].items() if k == kind)
        assert total == 35, kind
        assert result["counts"][kind, "refused"] > 0, kind


def test_no_case_hangs_or_grows_memory(fuzz_load, result):
    assert result["max_seconds"] < fuzz_load.MAX_SECONDS
    assert result["rss_growth_mb"] < fuzz_load.MAX_RSS_MB


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
