"""Side features and cold start on MovieLens 100K: RMSE with and without user/item features.

Usage (from the repository root)::

    python benchmarks/side_features.py [--data DIR] [--seeds 0 1 2] [--write]

Protocol: 10% of the users (drawn with ``RandomState(0)``) are held out entirely: the
cold-start users, none of whose ratings are trained on. The other users' ratings are split
90/10 (``train_test_split(random_state=0)``) into training and warm test ratings. Each
configuration is fitted on the training ratings with the estimator's defaults (plus
``random_state=seed``) and scored on the warm test ratings and on all ratings of the cold
users:

* no features: cold users get the fallback prediction (the average user);
* user features: ``age`` (numeric), ``gender`` and ``occupation`` (one-hot) from
  ``users.tsv``;
* user + item features: also ``year`` (numeric) and ``genres`` (multi-hot, the
  space-separated string split into lists) from ``items.tsv``.

The feature frames list every user and item, so the cold users are known to the model
through their features alone. ``--write`` replaces the "Side features and cold start"
section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from skembedrec import EmbeddingRatingRegressor

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ml-100k"
RESULTS = HERE / "RESULTS.md"
SECTION_START = "<!-- side-features:start -->"
SECTION_END = "<!-- side-features:end -->"


def load(data: Path):
    ratings = pd.read_csv(data / "u.data", sep="\t", header=None,
                          names=["user_id", "item_id", "rating", "timestamp"])
    users = pd.read_csv(data / "users.tsv", sep="\t", index_col="user_id")
    items = pd.read_csv(data / "items.tsv", sep="\t", index_col="movie_id")
    user_features = users[["age", "gender", "occupation"]]
    item_features = pd.DataFrame({"year": items["year"], "genres": items["genres"].str.split()})
    return ratings, user_features, item_features


def split(ratings: pd.DataFrame):
    all_users = ratings["user_id"].unique()
    cold_users = np.random.RandomState(0).choice(all_users, len(all_users) // 10, replace=False)
    is_cold = ratings["user_id"].isin(cold_users)
    train, warm_test = train_test_split(ratings[~is_cold], test_size=0.1, random_state=0)
    return train, warm_test, ratings[is_cold], len(cold_users)


def rmse(est, frame: pd.DataFrame) -> float:
    predicted = est.predict(frame[["user_id", "item_id"]])
    return float(np.sqrt(np.mean((predicted - frame["rating"].to_numpy()) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    ratings, user_features, item_features = load(args.data)
    train, warm_test, cold_test, n_cold = split(ratings)
    X, y = train[["user_id", "item_id"]], train["rating"]
    configs = {
        "no features": {},
        "user features": {"user_features": user_features},
        "user + item features": {"user_features": user_features,
                                 "item_features": item_features},
    }
    rows = []
    for name, features in configs.items():
        warm, cold, seconds = [], [], []
        for seed in args.seeds:
            start = time.perf_counter()
            est = EmbeddingRatingRegressor(random_state=seed, **features).fit(X, y)
            seconds.append(time.perf_counter() - start)
            warm.append(rmse(est, warm_test))
            cold.append(rmse(est, cold_test))
            print(f"{name:22s} seed {seed}: warm {warm[-1]:.4f}  cold {cold[-1]:.4f}  "
                  f"fit {seconds[-1]:.1f} s", flush=True)
        rows.append((name, warm, cold, seconds))

    command = "python benchmarks/side_features.py" + (
        f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != [0, 1, 2] else ""
    ) + " --write"
    table = _table(rows)
    print(table)
    if args.write:
        _write_section(_section(command, table, len(train), len(warm_test), len(cold_test),
                                n_cold, args.seeds))


def _table(rows) -> str:
    lines = [
        "| configuration | RMSE, warm test ratings | RMSE, cold-start users | fit seconds |",
        "|---|---:|---:|---:|",
    ]
    for name, warm, cold, seconds in rows:
        lines.append(
            f"| {name} | {np.mean(warm):.4f} ± {np.std(warm):.4f} | "
            f"{np.mean(cold):.4f} ± {np.std(cold):.4f} | {np.mean(seconds):.1f} |"
        )
    return "\n".join(lines)


def _section(command, table, n_train, n_warm, n_cold_ratings, n_cold, seeds) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    import keras
    import sklearn
    import tensorflow as tf

    return f"""## Side features and cold start

<!-- Section owned by benchmarks/side_features.py (issue 5); edit only this section. -->
{SECTION_START}
Command: `{command}` (data: `../shared/data/ml-100k/`: `u.data`, `users.tsv`, `items.tsv`).
Measured {now} on {platform.node() or 'this machine'}: {platform.processor() or platform.machine()},
{os.cpu_count()} CPUs, Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras
{keras.__version__}, scikit-learn {sklearn.__version__}. Load average at the end of the run:
{" / ".join(f"{v:.2f}" for v in os.getloadavg())} (2 cores; above ~1.5 other jobs were
running, and the seconds are indicative only).

Protocol: {n_cold} users (10%, `RandomState(0)`) held out entirely as cold-start users
({n_cold_ratings} ratings, none trained on); the other users' ratings split 90/10
(`train_test_split(random_state=0)`): {n_train} training and {n_warm} warm test ratings.
`EmbeddingRatingRegressor()` with its defaults, `random_state` in {seeds} (mean ± std over
the seeds). User features: `age` (standardised), `gender`, `occupation` (one-hot); item
features: `year` (standardised), `genres` (multi-hot, `items["genres"].str.split()`). The
feature frames list all users and items, so the cold users are known through their
features alone; without features they get the fallback (average-user) prediction.

{table}
{SECTION_END}
"""


def _write_section(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    heading = "## Side features and cold start"
    if heading in text:
        start = text.index(heading)
        end = text.index(SECTION_END, start) + len(SECTION_END)
        text = text[:start] + section.rstrip("\n") + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)
    print(f"wrote the section to {RESULTS}")


if __name__ == "__main__":
    main()
