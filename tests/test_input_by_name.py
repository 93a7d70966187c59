"""Every frame is read by column name: pandas, polars, pyarrow, in any column order.

polars is not a dependency of the package: the tests that need it skip without it.
"""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import FAST
from sklearn.exceptions import DataConversionWarning

from skembedrec import EmbeddingRatingRegressor
from skembedrec._validation import check_rows, frame_columns
from skembedrec.datasets import make_ratings

X0, Y0 = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
TIMES = 1_500_000_000 + np.arange(len(X0)) * 3_600
FRAME = X0.assign(timestamp=TIMES, extra=np.linspace(0, 1, len(X0)))
COLUMNS = ["user_id", "item_id", "timestamp", "extra"]


def _polars():
    return pytest.importorskip("polars")


def _to_polars(frame):
    # Column by column: polars.from_pandas needs pyarrow for pandas' str columns.
    return _polars().DataFrame({name: frame[name].to_numpy() for name in frame.columns})


def _frame(library, columns, data=FRAME):
    """``data[columns]`` as a pandas or polars frame."""
    frame = data[list(columns)]
    return _to_polars(frame) if library == "polars" else frame


@pytest.fixture(scope="module")
def reference():
    """Fitted on a pandas frame with the columns in the default order."""
    return EmbeddingRatingRegressor(**FAST).fit(X0, Y0)


@pytest.mark.parametrize("library", ["pandas", "polars"])
@pytest.mark.parametrize("order", list(itertools.permutations(COLUMNS)),
                         ids=lambda order: "-".join(c[:2] for c in order))
def test_every_column_order_reads_the_same_rows(library, order):
    expected = check_rows(X0.assign(timestamp=TIMES), user_col="user_id", item_col="item_id",
                          time_col="timestamp")
    got = check_rows(_frame(library, order), user_col="user_id", item_col="item_id",
                     time_col="timestamp")
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(have, want)
        assert have.dtype == want.dtype


def test_polars_fit_with_other_order_and_extra_columns_equals_pandas(reference):
    frame = _frame("polars", ["extra", "item_id", "timestamp", "user_id"])
    est = EmbeddingRatingRegressor(**FAST).fit(frame, Y0)
    assert (est.n_users_, est.n_items_) == (reference.n_users_, reference.n_items_)
    assert list(est.feature_names_in_) == ["user_id", "item_id"]
    np.testing.assert_array_equal(est.predict(frame), reference.predict(X0))


def test_predict_on_polars_with_swapped_columns_equals_pandas(reference):
    swapped = _frame("polars", ["item_id", "user_id"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # named frames on both sides: nothing to warn about
        np.testing.assert_array_equal(reference.predict(swapped), reference.predict(X0))
        np.testing.assert_array_equal(reference.is_known(swapped), reference.is_known(X0))


def test_time_col_from_polars_in_first_position():
    """A polars Datetime column in first position is the time column, as unix seconds in
    pandas (that both give the same training rows is shown above)."""
    pl = _polars()
    pandas_frame = X0.assign(timestamp=TIMES)
    seconds = _to_polars(pandas_frame[["timestamp", "user_id", "item_id"]])
    as_datetimes = seconds.with_columns(pl.from_epoch("timestamp", time_unit="s"))
    assert as_datetimes.schema["timestamp"] == pl.Datetime("us")
    est = EmbeddingRatingRegressor(time_col="timestamp", **FAST).fit(as_datetimes, Y0)
    assert est.time_max_ == float(TIMES.max())
    expected = est.predict(pandas_frame)
    np.testing.assert_array_equal(est.predict(seconds), expected)
    in_paris = as_datetimes.with_columns(
        pl.col("timestamp").dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Paris"))
    np.testing.assert_array_equal(est.predict(in_paris), expected)
    later = pandas_frame.assign(timestamp=TIMES + 400 * 86_400)  # another day: not ignored
    assert not np.array_equal(est.predict(later), expected)


@pytest.mark.parametrize("dtype", ["String", "Categorical"])
def test_polars_string_ids_encode_like_pandas_object_ids(dtype):
    pl = _polars()
    named = X0.assign(user_id="u" + X0["user_id"].astype(str),
                      item_id="i" + X0["item_id"].astype(str))
    est = EmbeddingRatingRegressor(**FAST).fit(named, Y0)
    frame = _to_polars(named).with_columns(
        pl.col("user_id").cast(getattr(pl, dtype)), pl.col("item_id").cast(getattr(pl, dtype)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same kind of ids: no warning
        np.testing.assert_array_equal(est.predict(frame), est.predict(named))
    assert est.is_known(frame).all()


def test_feature_names_in_from_polars_and_missing_columns(reference):
    _polars()
    est = EmbeddingRatingRegressor(time_col="timestamp", **FAST).fit(
        _frame("polars", ["timestamp", "item_id", "user_id"]), Y0)
    np.testing.assert_array_equal(est.feature_names_in_, ["user_id", "item_id", "timestamp"])
    assert est.n_features_in_ == 3
    renamed = _to_polars(FRAME).rename({"item_id": "movie_id"})
    with pytest.raises(ValueError, match=r"missing the column\(s\) \['item_id'\]"):
        est.predict(renamed)
    with pytest.raises(ValueError, match=r"no time column 'timestamp'"):
        est.predict(_to_polars(X0))


def test_a_frame_at_fit_and_an_array_at_predict_or_the_reverse_warn(reference):
    """As scikit-learn's ``_check_feature_names``."""
    with pytest.warns(UserWarning, match="X does not have valid feature names, but "
                                         "EmbeddingRatingRegressor was fitted with feature"):
        reference.predict(X0.to_numpy())
    by_array = EmbeddingRatingRegressor(**FAST).fit(X0.to_numpy(), Y0)
    assert not hasattr(by_array, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but EmbeddingRatingRegressor "
                                         "was fitted without feature names"):
        np.testing.assert_array_equal(by_array.predict(_frame("polars", ["item_id", "user_id"])),
                                      by_array.predict(X0.to_numpy()))


def test_polars_missing_ids_and_lazy_frames_are_refused(reference):
    pl = _polars()
    holes = pl.DataFrame({"user_id": [1, None, 3], "item_id": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"1 missing user id\(s\) .* at row\(s\) \[1\]"):
        reference.predict(holes)
    with pytest.raises(TypeError, match=r"got a LazyFrame\. Call \.collect\(\)"):
        reference.predict(_to_polars(X0).lazy())


def test_pyarrow_table_is_read_by_name(reference):
    pa = pytest.importorskip("pyarrow")
    table = pa.Table.from_pandas(FRAME[["extra", "item_id", "user_id"]], preserve_index=False)
    assert frame_columns(table) == ["extra", "item_id", "user_id"]
    np.testing.assert_array_equal(reference.predict(table), reference.predict(X0))


def test_a_third_array_column_is_refused_and_a_third_frame_column_ignored(reference):
    """One rule: an array is read by position, so an extra column could be anything and is
    refused with a way out; a frame is read by name, so its other columns are ignored."""
    with pytest.raises(ValueError, match=r"exactly 2 columns .* got 3 feature\(s\)\. An array "
                                         r"is read by position.*Pass a DataFrame"):
        reference.predict(FRAME[["user_id", "item_id", "timestamp"]].to_numpy())
    np.testing.assert_array_equal(reference.predict(FRAME), reference.predict(X0))


@pytest.mark.parametrize("X", [
    pytest.param({"user_id": [1], "item_id": [2]}, id="dict"),
    pytest.param("user_id,item_id", id="str"),
    pytest.param(7, id="int"),
    pytest.param((row for row in [[1, 2]]), id="generator"),
    pytest.param({(1, 2)}, id="set"),
    pytest.param(np.int64(3), id="numpy-scalar"),
])
def test_non_tabular_input_names_what_is_accepted(reference, X):
    with pytest.raises(TypeError, match=r"X must be a table of \(user, item\) pairs; got a "
                                        r"\w+\. Pass a DataFrame \(pandas, polars.*array-like "
                                        r"of shape \(n_pairs, 2\)"):
        reference.predict(X)


@pytest.mark.parametrize("X", [np.array([1, 2]), pd.Series([1, 2]), np.zeros((2, 2, 2))],
                         ids=["1-D", "Series", "3-D"])
def test_non_2d_input_names_what_is_accepted(reference, X):
    with pytest.raises(ValueError, match=r"X must be 2-D; got an array of shape .* Pass a "
                                         "DataFrame"):
        reference.predict(X)


def test_a_one_column_frame_y_warns_like_scikit_learn(reference):
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        est = EmbeddingRatingRegressor(**FAST).fit(X0, Y0.to_frame())
    np.testing.assert_array_equal(est.predict(X0), reference.predict(X0))
