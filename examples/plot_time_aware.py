"""
Time-aware ratings: ``time_col``
================================

Ratings drift: a user grows harsher or kinder over the years, and the level of a whole site
moves with its audience and its rating widget. With ``time_col``,
:class:`~skembedrec.EmbeddingRatingRegressor` reads the time of each rating and learns a
drift of each user's bias and a rating level per period (see :doc:`/user_guide/time`).
Here two models, with and without ``time_col``, are trained on the
first 90 % of the ratings by time and scored on the last 10 %
(:class:`~skembedrec.model_selection.GlobalTimeSplit`), as they would be used.

The data: synthetic ratings (:func:`~skembedrec.datasets.make_ratings`) spread over two
years, to which a seasonal level and a drift of each user are added, so that the learned
level can be compared with the true one. Run the script with the path of a MovieLens
``u.data`` file (or its folder), or a variant (``python plot_time_aware.py 100k``, downloaded
if missing), to use MovieLens' timestamps instead.
"""

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow: no C++ log lines

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import fetch_movielens, make_ratings
from skembedrec.model_selection import GlobalTimeSplit

# Epochs per fit: SKEMBEDREC_EXAMPLE_EPOCHS (default 4, the estimator's own; tests use 1).
EPOCHS = int(os.environ.get("SKEMBEDREC_EXAMPLE_EPOCHS", "4"))
DATA = sys.argv[1] if len(sys.argv) > 1 else None  # a MovieLens variant or u.data path
START = pd.Timestamp("2022-01-01", tz="UTC")


def seasonal_level(days: np.ndarray) -> np.ndarray:
    """The synthetic site's level, in stars: a year-long cycle of +-0.3."""
    return 0.3 * np.sin(2 * np.pi * days / 365)


def synthetic_ratings() -> tuple[pd.DataFrame, pd.Series]:
    """20,000 ratings over two years (Timestamps), with each user's drift and the level."""
    X, y = make_ratings(n_users=300, n_items=400, n_ratings=20_000, random_state=0)
    rng = np.random.default_rng(0)
    days = rng.uniform(0, 730, size=len(X))
    users = X["user_id"].to_numpy()
    # Each user drifts by up to about a star a year, up or down, around their mean day.
    per_year = rng.normal(0, 0.5, size=X["user_id"].max() + 1)
    mean_day = np.bincount(users, weights=days) / np.maximum(np.bincount(users), 1)
    drift = (per_year - per_year.mean())[users] * (days - mean_day[users]) / 365
    # Rounding down after adding U(0, 1) keeps whole stars and, on average, the effects.
    shifted = y + seasonal_level(days) + drift + rng.uniform(0, 1, size=len(y))
    y = pd.Series(np.floor(shifted).clip(1, 5), name="rating")
    X["timestamp"] = START + pd.to_timedelta(days, unit="D")
    return X, y


def movielens_ratings(source: str) -> tuple[pd.DataFrame, pd.Series]:
    """MovieLens ratings with their timestamps (unix seconds)."""
    if Path(source).exists():  # a u.data file (tab separated, no header) or its folder
        path = Path(source) / "u.data" if Path(source).is_dir() else Path(source)
        frame = pd.read_csv(path, sep="\t", names=["user_id", "item_id", "rating", "timestamp"])
    else:
        frame = fetch_movielens(source).frame
    return frame[["user_id", "item_id", "timestamp"]], frame["rating"].astype("float64")


X, y = synthetic_ratings() if DATA is None else movielens_ratings(DATA)
times = pd.to_datetime(X["timestamp"], unit="s", utc=True)  # unix seconds or Timestamps
print(f"{len(y):,} ratings from {times.min():%Y-%m-%d} to {times.max():%Y-%m-%d}")

# %%
# The last 10 % of the ratings by time are held out: every test rating is later than every
# training rating. The estimator reads only its own columns, so the model without
# ``time_col`` simply ignores the time column.
train, test = next(GlobalTimeSplit(n_splits=1, test_size=0.1).split(X))
X_train, y_train, X_test, y_test = X.iloc[train], y.iloc[train], X.iloc[test], y.iloc[test]

models = {
    "without time": EmbeddingRatingRegressor(epochs=EPOCHS, random_state=0),
    "time_col": EmbeddingRatingRegressor(time_col="timestamp", epochs=EPOCHS, random_state=0),
}
rmse = {}
for name, model in models.items():
    model.fit(X_train, y_train)
    rmse[name] = float(np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2)))
    print(f"{name:>12}: RMSE {rmse[name]:.4f} on the last 10 % of the ratings")

# %%
# The learned level: what the time model predicts, over time, for a user and an item it has
# never seen (id -1). Their factors and biases are the average ones and they have no drift,
# so only the level of the period changes (shown relative to its mean over the training
# period). After the training period the model does not extrapolate: it predicts the mean
# level of the training ratings.
timed = models["time_col"]
end_of_training = pd.Timestamp(timed.time_max_, unit="s", tz="UTC")
grid = pd.date_range(times.min(), times.max(), periods=200)
average = timed.predict(pd.DataFrame({"user_id": -1, "item_id": -1, "timestamp": grid}))
trained = grid <= end_of_training
learned_level = average - average[trained].mean()

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), width_ratios=(2, 1))
left.plot(grid, learned_level, label="learned level")
if DATA is None:
    true_days = ((grid - START) / pd.Timedelta(days=1)).to_numpy()
    true_level = seasonal_level(true_days)
    left.plot(grid, true_level - true_level[trained].mean(), "--", label="true level")
left.axvspan(end_of_training, grid.max(), color="0.9", label="test period")
left.set_ylabel("level (stars, relative)")
left.set_title("Rating level over time")
left.legend(fontsize=8)
left.tick_params(axis="x", labelrotation=30)

right.bar(list(rmse), list(rmse.values()), color=["0.6", "tab:blue"])
right.set_ylim(0.9 * min(rmse.values()), 1.02 * max(rmse.values()))
right.set_ylabel("RMSE on the last 10 %")
right.set_title("Held-out RMSE")
fig.tight_layout()
plt.show()
