"""
Quickstart: train, cross-validate and save a rating model
=========================================================

The main job of the project. With no argument it runs on synthetic ratings made by
:func:`skembedrec.datasets.make_ratings` (no download); given the path of a MovieLens
``u.data`` file (or its folder) it runs on those ratings, and given a MovieLens variant
(``100k``, ``1m``, ``10m``, ``20m``, ``25m``, ``latest-small``) it loads it with
:func:`skembedrec.datasets.fetch_movielens`, downloading and verifying it the first time::

    python examples/quickstart.py                      # synthetic ratings
    python examples/quickstart.py path/to/u.data       # MovieLens 100K from a file
    python examples/quickstart.py 1m                   # MovieLens 1M, downloaded once
    python examples/quickstart.py --epochs 2 --out model.joblib
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow: no C++ log lines


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr closed.

    TensorFlow 2.21 writes a few lines (oneDNN, CUDA drivers) to stderr from C++ while it
    loads, before any log level applies; hiding stderr for the import alone removes them.
    Errors still raise as usual, and everything after the import prints normally.
    """
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()

import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, cross_validate, train_test_split

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import fetch_movielens, make_ratings, read_ratings


def load(source: str | None) -> tuple[pd.DataFrame, pd.Series, str]:
    """Synthetic ratings by default; else a u.data path (or its folder) or a variant name."""
    if source is None:
        X, y = make_ratings(n_users=300, n_items=400, n_ratings=20_000, random_state=0)
        return X, y, "synthetic ratings (make_ratings)"
    if Path(source).exists():
        X, y = read_ratings(source)
        return X, y, f"MovieLens ratings from {source}"
    X, y = fetch_movielens(source, return_X_y=True)  # a variant: downloaded once, verified
    return X, y, f"MovieLens {source} (fetch_movielens)"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument(
        "data", nargs="?", help="a MovieLens u.data file or its folder, or a variant: 100k, 1m, "
        "10m, 20m, 25m, latest-small")
    parser.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    parser.add_argument("--cv", type=int, default=3, help="number of cross-validation folds")
    parser.add_argument("--out", default="quickstart_model.joblib", help="where to save the model")
    args = parser.parse_args(argv)

    X, y, source = load(args.data)
    print(f"Data: {source}: {len(y):,} ratings, {X['user_id'].nunique():,} users, "
          f"{X['item_id'].nunique():,} items")
    params = {"random_state": 0}
    if args.epochs is not None:
        params["epochs"] = args.epochs
    model = EmbeddingRatingRegressor(**params)

    # Shuffled folds: ratings files are often sorted by user (u.data is not, ratings.csv is),
    # and unshuffled folds then test on users the model never saw. verbose=2 prints each fold
    # as it finishes: a long run shows its progress.
    print(f"Cross-validating over {args.cv} shuffled folds ...")
    folds = KFold(n_splits=args.cv, shuffle=True, random_state=0)
    scores = cross_validate(
        model, X, y, cv=folds, scoring="neg_root_mean_squared_error", verbose=2
    )
    rmse = -scores["test_score"]
    print(f"{args.cv}-fold CV RMSE: {rmse.mean():.4f} +/- {rmse.std():.4f}")

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=315)
    print("Fitting on 90% of the ratings ...")
    model.fit(X_train, y_train)
    test_rmse = float(np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2)))
    baseline = float(np.sqrt(np.mean((y_train.mean() - y_test) ** 2)))
    print(f"Held-out RMSE: {test_rmse:.4f} (predict-the-mean baseline: {baseline:.4f})")

    joblib.dump(model, args.out)
    print(f"Saved the fitted model to {os.path.abspath(args.out)}")
    return {"cv_rmse": rmse, "test_rmse": test_rmse, "baseline_rmse": baseline, "path": args.out}


if __name__ == "__main__":
    main(sys.argv[1:])
