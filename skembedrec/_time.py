"""Times of ratings: reading a time column, and the day numbers the network sees.

Times may be unix seconds (ints or floats), ``datetime64`` values or pandas Timestamps;
timezone-aware times are converted to UTC. A missing (NaN, None, NaT) or non-time value, or
a column that mixes kinds (numbers and Timestamps, naive and aware Timestamps), raises a
``ValueError`` that names the column. Used by the estimator's ``time_col`` and by the
splitters of :mod:`skembedrec.model_selection`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400
# As timeSVD++ (Koren 2009); on validation folds of MovieLens 100K 10 bins did as well
# (benchmarks/time_terms.py).
N_TIME_BINS = 30
# Unix seconds beyond this (the year 5138) are almost surely milliseconds or nanoseconds.
MAX_SECONDS = 10**11


def missing_error(missing: np.ndarray, name: Any, what: str) -> ValueError:
    rows = np.flatnonzero(missing)
    return ValueError(
        f"The {what} column {name!r} contains {rows.size} missing value(s) (NaN, None or NaT) "
        f"at row(s) {rows[:10].tolist()}; every rating needs a {what}."
    )


def time_keys(values: Any, name: Any = "timestamp") -> np.ndarray:
    """Times as numbers that sort like the times: unix seconds as given, datetimes as
    nanoseconds since the epoch in UTC.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Unix seconds (ints or floats), ``datetime64`` values or pandas Timestamps
        (timezone-aware ones are converted to UTC).
    name : str or int, default="timestamp"
        The column's name, for error messages.

    Returns
    -------
    keys : ndarray of shape (n_samples,)
        int64 or float64 keys; only their order is meaningful.

    Raises
    ------
    ValueError
        For a missing, infinite or non-time value, or a column that mixes kinds.

    Examples
    --------
    >>> import pandas as pd
    >>> time_keys([1.5e9, 1.6e9]).tolist()
    [1500000000.0, 1600000000.0]
    >>> stamps = pd.Series(pd.to_datetime(["2020-01-01 01:00"]).tz_localize("Europe/Paris"))
    >>> time_keys(stamps).tolist() == time_keys(pd.to_datetime(["2020-01-01"])).tolist()
    True
    """
    return _parse(values, name)[0]


def _parse(values: Any, name: Any) -> tuple[np.ndarray, bool]:
    """The keys of :func:`time_keys`, and whether they are datetime nanoseconds."""
    series = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    missing = series.isna().to_numpy()
    if missing.any():
        raise missing_error(missing, name, "time")
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return _nanoseconds(series.dt.tz_convert("UTC").dt.tz_localize(None)), True
    kind = series.dtype.kind
    if kind == "M":
        return _nanoseconds(series), True
    if kind in "iu":
        return series.to_numpy(dtype=np.int64), False
    if kind == "f":
        keys = series.to_numpy(dtype=np.float64)
        if not np.isfinite(keys).all():
            rows = np.flatnonzero(~np.isfinite(keys))
            raise ValueError(
                f"The time column {name!r} contains infinite value(s) at row(s) "
                f"{rows[:10].tolist()}; times must be finite."
            )
        return keys, False
    inferred = pd.api.types.infer_dtype(series, skipna=False)
    if inferred == "integer":
        return series.to_numpy().astype(np.int64), False
    if inferred in ("floating", "mixed-integer-float", "decimal"):
        return _parse(series.to_numpy().astype(np.float64), name)
    if inferred in ("datetime", "datetime64", "date"):
        return _object_datetimes(series, name), True
    found = sorted({type(v).__name__ for v in series.iloc[:10_000]})
    hint = (
        " Convert strings with pandas.to_datetime first." if inferred == "string" else
        " Use one kind per column: unix seconds, or datetime64 / Timestamps."
    )
    raise ValueError(
        f"The time column {name!r} must hold unix seconds, datetime64 values or pandas "
        f"Timestamps; got values of type(s) {found}.{hint}"
    )


def _nanoseconds(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _object_datetimes(series: pd.Series, name: Any) -> np.ndarray:
    aware = {getattr(v, "tzinfo", None) is not None for v in series}
    if len(aware) > 1:
        raise ValueError(
            f"The time column {name!r} mixes timezone-aware and naive datetimes; localize "
            "the naive ones (e.g. Series.dt.tz_localize('UTC')) or drop the timezones."
        )
    try:
        converted = pd.to_datetime(series, utc=aware == {True})
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"The time column {name!r} could not be read as times: {error}") from None
    return time_keys(converted, name)


def unix_seconds(values: Any, name: Any) -> np.ndarray:
    """Times as float64 unix seconds (UTC); see :func:`time_keys` for what is accepted.

    Raises a ValueError naming the column for times that are not plausible unix seconds
    (beyond the year 5138 either way: milliseconds or nanoseconds given as numbers).

    Examples
    --------
    >>> import pandas as pd
    >>> unix_seconds(pd.to_datetime(["1970-01-02"]), "t").tolist()
    [86400.0]
    """
    keys, nanoseconds = _parse(values, name)
    seconds = keys / 1e9 if nanoseconds else keys.astype(np.float64)
    implausible = np.abs(seconds) > MAX_SECONDS
    if implausible.any():
        rows = np.flatnonzero(implausible)
        raise ValueError(
            f"The time column {name!r} holds {seconds[rows[0]]:.6g} at row {rows[0]}, which "
            "is not a plausible time in unix seconds (it is past the year 5000); numbers "
            "must be seconds since 1970-01-01 UTC, not milliseconds or nanoseconds. "
            "Divide them, or pass datetime64 values."
        )
    return seconds


def day_numbers(seconds: np.ndarray) -> np.ndarray:
    """UTC day numbers (days since 1970-01-01) of unix seconds, as int32."""
    return np.floor(seconds / SECONDS_PER_DAY).astype(np.int32)


@dataclass(frozen=True)
class TimeGrid:
    """The training period in UTC days and its bins, fixed by the first fit.

    Bins are ``days_per_bin`` days wide from ``first_day``, so that at most
    :data:`N_TIME_BINS` cover ``[first_day, last_day]``; days outside the period belong to
    none of them (see :class:`~._layers.TimeBinBias`).

    Examples
    --------
    >>> grid = TimeGrid.spanning(np.array([10, 100, 69]))
    >>> grid.days_per_bin, grid.n_bins
    (4, 23)
    """

    first_day: int
    last_day: int
    days_per_bin: int

    @classmethod
    def spanning(cls, days: np.ndarray) -> TimeGrid:
        """The grid over the days of the training ratings."""
        first, last = int(days.min()), int(days.max())
        return cls(first, last, max(1, -(-(last - first + 1) // N_TIME_BINS)))

    @property
    def n_bins(self) -> int:
        return (self.last_day - self.first_day) // self.days_per_bin + 1
