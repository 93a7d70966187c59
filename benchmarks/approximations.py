"""What the fast training path costs in accuracy: each approximation against the exact model.

Two places where training does not follow the textbook computation step for step:

* **Row-sparse Adam** (``skembedrec._optimization.RowSparseAdam``): a table with more than
  65,536 rows and more rows than a batch has ratings is updated only where the batch
  touches it. The exact model is Keras' Adam, which moves every row at every step. Compared
  at 10M ML-10M-shaped ratings (69,878 users: the user tables take the row-sparse path in
  the automatic batches of 65,536), with the defaults.
* **Implicit sums refreshed on a schedule** (``refresh_interval``): the exact model refreshes
  them at every step. Compared at 2M ratings (the largest size where ``implicit="auto"``
  keeps the term; refreshed every other step there) and at 1M with the refreshes forced down
  to four per epoch (the schedule's sparsest).

Each run is a fresh process: ``EmbeddingRatingRegressor(random_state=0)`` on a 95/5 split of
``make_ratings`` data shaped as in ``benchmarks/scale.py``, once as it comes and once with
the exact computation patched in. Prints a markdown table (test RMSE, difference, seconds per
epoch).

Usage::

    python benchmarks/approximations.py                 # all three comparisons
    python benchmarks/approximations.py --only adam     # adam, refresh or sparse-refresh
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

COMPARISONS = {
    # name: (ratings, what the exact run patches, what the fast run patches, params)
    "adam": (10_000_000, "dense_adam", None, {"epochs": 2}),
    "refresh": (2_000_000, "refresh_every_step", None, {}),
    "sparse-refresh": (1_000_000, "refresh_every_step", "four_refreshes", {}),
}


def _patch(name: str | None) -> None:
    import keras

    import skembedrec._network as network
    from skembedrec import _optimization

    if name == "dense_adam":
        _optimization.RowSparseAdam.update_step = keras.optimizers.Adam.update_step
    elif name == "refresh_every_step":
        network.refresh_interval = lambda n_ratings, batch_size: 1
    elif name == "four_refreshes":
        def four(n_ratings, batch_size):
            steps = -(-n_ratings // batch_size)
            return -(-steps // 4)

        network.refresh_interval = four


def measure(n_ratings: int, patch: str | None, params: dict) -> dict:
    """Fit and score in this process; returns RMSE and epoch times."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    from scale import shape_for

    from skembedrec import EmbeddingRatingRegressor
    from skembedrec.datasets import make_ratings

    _patch(patch)
    n_users, n_items = shape_for(n_ratings)
    n_test = n_ratings // 20
    X, y = make_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings + n_test,
                        random_state=0, compact=True)
    X_test, y_test = X.iloc[n_ratings:], y.iloc[n_ratings:].to_numpy()
    X, y = X.iloc[:n_ratings], y.iloc[:n_ratings]
    epochs: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epochs.append(time.perf_counter() - self.start)

    est = EmbeddingRatingRegressor(random_state=0, callbacks=[Clock()], **params).fit(X, y)
    rmse = float(np.sqrt(np.mean((est.predict(X_test) - y_test) ** 2)))
    return {"rmse": rmse, "epoch_s": epochs, "batch_size": est.batch_size_,
            "implicit": est.implicit_, "n_estimators": est.n_estimators_}


def _child(n_ratings: int, patch: str | None, params: dict) -> dict:
    command = [sys.executable, __file__, "--child",
               json.dumps({"n": n_ratings, "patch": patch, "params": params})]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(COMPARISONS), action="append")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(measure(job["n"], job["patch"], job["params"])))
        return
    load = os.getloadavg()
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores; load average before "
             f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"`python benchmarks/approximations.py`",
             "",
             "| comparison | ratings | settings | fast RMSE | exact RMSE | fast - exact "
             "| s/epoch fast | s/epoch exact |",
             "|---|---|---|---|---|---|---|---|"]
    for name in args.only or COMPARISONS:
        n_ratings, exact_patch, fast_patch, params = COMPARISONS[name]
        fast = _child(n_ratings, fast_patch, params)
        exact = _child(n_ratings, exact_patch, params)
        settings = (f"batch {fast['batch_size']}, {fast['n_estimators']} member(s), "
                    f"implicit {fast['implicit']}")
        mean = lambda times: sum(times[1:] or times) / len(times[1:] or times)  # noqa: E731
        lines.append(
            f"| {name} | {n_ratings:,} | {settings} | {fast['rmse']:.4f} | {exact['rmse']:.4f} "
            f"| {fast['rmse'] - exact['rmse']:+.4f} | {mean(fast['epoch_s']):.1f} "
            f"| {mean(exact['epoch_s']):.1f} |")
        print(f"{name} done", file=sys.stderr, flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
