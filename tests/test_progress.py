"""Progress wherever a call takes long (issue 26): the set-up and finishing lines of a
training run, recommendations in blocks, and the progress line of calls answered in blocks."""

import copy
import io
import re

import numpy as np
import pandas as pd
import pytest
from conftest import FAST

from skembedrec import EmbeddingRatingRegressor
from skembedrec._progress import Progress

SETUP = ["Encoded ids of", "Built the network", "First training step"]


def _step_lines(out: str) -> list[str]:
    """The lines of a verbose run, each cut to what names it."""
    names = [*SETUP, "Epoch", "Finished"]
    return [next(name for name in names if line.startswith(name))
            for line in out.splitlines() if any(line.startswith(name) for name in names)]


def test_verbose_fit_reports_set_up_before_and_finish_after_the_epochs(ratings, capsys):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST, verbose=1).fit(X, y)
    out, err = capsys.readouterr()
    assert _step_lines(out) == [*SETUP, "Epoch", "Epoch", "Finished"]
    # Each step line says its seconds; the ids line says what was encoded.
    for line in out.splitlines():
        if not line.startswith("Epoch"):
            assert re.search(r" - \d+\.\d s$", line), line
    assert f"({est.n_users_:,} users, {est.n_items_:,} items)" in out
    assert "Epoch" not in err

    est.partial_fit(X.head(200), y.head(200))
    out, _ = capsys.readouterr()
    assert _step_lines(out) == [*SETUP, "Epoch", "Finished"]


def test_verbose_0_fit_and_recommend_print_nothing(ratings, capsys):
    X, y = ratings
    est = EmbeddingRatingRegressor(**FAST).fit(X, y)
    est.partial_fit(X.head(100), y.head(100))
    list(est.iter_recommend(np.arange(60), n=3, batch_size=7))
    est.similar_items(np.arange(80), n=2)
    assert capsys.readouterr() == ("", "")


def test_blocks_concatenate_to_recommend(fitted):
    users = np.array([5, 3, 5, 17, 3, 0, 59, 42, 1, 2, 6, 7, 8, 9])
    expected = fitted.recommend(users, n=4)
    blocks = list(fitted.iter_recommend(users, n=4, batch_size=3))
    # 12 distinct users (repeats answered once, where first asked) in blocks of 3.
    assert [block["user_id"].nunique() for block in blocks] == [3, 3, 3, 3]
    assert all(isinstance(block.index, pd.RangeIndex) for block in blocks)
    pd.testing.assert_frame_equal(pd.concat(blocks, ignore_index=True), expected)
    assert expected["user_id"].unique().tolist() == [5, 3, 17, 0, 59, 42, 1, 2, 6, 7, 8, 9]


def test_blocks_keep_exclude_seen_and_unknown_users_as_recommend(fitted):
    users = [1000, 4, 1001, 4, 9]  # unknown users fall back to the average user
    assert fitted.handle_unknown == "fallback"
    expected = fitted.recommend(users, n=5, exclude_seen=False)
    got = pd.concat(fitted.iter_recommend(users, n=5, exclude_seen=False, batch_size=2),
                    ignore_index=True)
    pd.testing.assert_frame_equal(got, expected)
    assert got["user_id"].unique().tolist() == [1000, 4, 1001, 9]
    expected = fitted.recommend([4, 9, 4], n=5)
    got = pd.concat(fitted.iter_recommend([4, 9, 4], n=5, batch_size=1), ignore_index=True)
    pd.testing.assert_frame_equal(got, expected)
    # Under "error" the unknown user is named when iter_recommend is called, before any
    # block is computed, as recommend raises.
    strict = copy.copy(fitted).set_params(handle_unknown="error")  # fitted is shared
    with pytest.raises(ValueError, match="1000"):
        strict.recommend(users, n=5)
    with pytest.raises(ValueError, match="1000"):
        strict.iter_recommend(users, n=5)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        fitted.iter_recommend([4], batch_size=0)


def test_progress_line_on_stderr_only_with_verbose_and_several_blocks(fitted, capsys,
                                                                     monkeypatch):
    users = np.arange(60)
    verbose = copy.copy(fitted).set_params(verbose=1)  # fitted is shared
    list(verbose.iter_recommend(users, n=3, batch_size=25))
    out, err = capsys.readouterr()
    assert out == ""
    steps = err.split("\r")[1:]
    assert [step.split(",")[0] for step in steps] == [
        "recommend: 25/60 users (41 %)", "recommend: 50/60 users (83 %)",
        "recommend: 60/60 users (100 %)"]
    assert err.endswith(" s\n") and err.count("\n") == 1

    list(verbose.iter_recommend(users, n=3, batch_size=60))  # one block: no line
    assert capsys.readouterr() == ("", "")

    monkeypatch.setattr("skembedrec._recommend.BLOCK_IDS", 30)
    verbose.similar_items(np.arange(80), n=2)
    _, err = capsys.readouterr()
    assert err.split("\r")[-1].startswith("similar_items: 80/80 items (100 %)")
    fitted.similar_items(np.arange(80), n=2)  # verbose=0: no line
    assert capsys.readouterr() == ("", "")


def test_similar_in_blocks_equals_one_block(fitted, monkeypatch):
    items = np.arange(80)[::-1]
    expected = fitted.similar_items(items, n=3)
    monkeypatch.setattr("skembedrec._recommend.BLOCK_IDS", 7)
    pd.testing.assert_frame_equal(fitted.similar_items(items, n=3), expected)


def test_progress_shows_the_last_block_with_a_newline():
    stream = io.StringIO()
    assert list(Progress.over(5, 2, "recommend", "users", verbose=1, stream=stream)) == [0, 2, 4]
    assert stream.getvalue().count("\r") == 3
    assert stream.getvalue().split("\r")[-1] == "recommend: 5/5 users (100 %), 0 s\n"
