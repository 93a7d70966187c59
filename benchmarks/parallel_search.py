"""When parallel fits pay off: GridSearchCV with n_jobs=1 and 2, and TensorFlow's threads.

One fit of the estimator already runs TensorFlow's thread pools over every core, so on a small
machine ``n_jobs=2`` starts two processes that each want all the cores. This script times the
same search (24 fits on MovieLens 100K, or on synthetic ratings of its shape when the file is
not there) in a fresh process per setting:

* ``n_jobs=1``: fits one after another, each with TensorFlow's default threads;
* ``n_jobs=2``: two worker processes, each with TensorFlow's default threads;
* ``n_jobs=2``, TF threads 1: the workers' TensorFlow limited to one intra-op and one
  inter-op thread (``TF_NUM_INTRAOP_THREADS=1``, ``TF_NUM_INTEROP_THREADS=1`` in the
  environment the workers inherit), so the processes share the cores instead of fighting;
* ``n_jobs=1``, TF threads 1: what one fit costs on one core.

Run::

    python benchmarks/parallel_search.py [--data path/to/u.data]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "u.data"
SETTINGS = [("n_jobs=1", 1, None), ("n_jobs=2", 2, None),
            ("n_jobs=2, TF threads 1", 2, 1), ("n_jobs=1, TF threads 1", 1, 1)]


def _child(n_jobs: int, data: str) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import GridSearchCV, KFold

    from skembedrec import EmbeddingRatingRegressor
    from skembedrec.datasets import make_ratings

    if Path(data).exists():
        frame = pd.read_csv(data, sep="\t", names=["user_id", "item_id", "rating", "t"])
        X, y = frame[["user_id", "item_id"]], frame["rating"]
    else:
        X, y = make_ratings(n_users=943, n_items=1682, n_ratings=100_000, random_state=0)
    search = GridSearchCV(
        EmbeddingRatingRegressor(random_state=0),
        {"l2": [0.01, 0.03, 0.1, 0.3], "n_factors": [16, 32]},
        scoring="neg_root_mean_squared_error", refit=False, n_jobs=n_jobs,
        cv=KFold(n_splits=3, shuffle=True, random_state=0),
    )
    start = time.perf_counter()
    search.fit(X, y)
    seconds = time.perf_counter() - start
    best = float(-np.max(search.cv_results_["mean_test_score"]))
    print(json.dumps({"seconds": seconds, "best_rmse": best}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _child(args.child, args.data)
        return
    load = os.getloadavg()[0]
    print(f"GridSearchCV, 8 candidates x 3 folds = 24 fits; {os.cpu_count()} cores, "
          f"load average {load:.2f} at the start")
    print(f"{'setting':<26} {'wall s':>8} {'vs n_jobs=1':>12} {'best RMSE':>10}")
    first = None
    for name, n_jobs, threads in SETTINGS:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        if threads is not None:
            env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads))
        out = subprocess.run([sys.executable, __file__, "--child", str(n_jobs), "--data",
                              args.data], env=env, check=True, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        first = first or result["seconds"]
        print(f"{name:<26} {result['seconds']:>8.1f} {result['seconds'] / first:>11.2f}x "
              f"{result['best_rmse']:>10.4f}")


if __name__ == "__main__":
    main()
