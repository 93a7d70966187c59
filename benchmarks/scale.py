"""Fit and predict cost at 100k, 1M and 10M synthetic ratings (ML-10M scale at the top).

Each size runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own: data
generation, encoding, training and prediction of that size only. Per size it reports

* fit throughput per epoch: ratings / wall seconds of each epoch after the first (the first
  also traces and XLA-compiles the training step), and ratings per CPU second of the same
  epochs (robust to other processes competing for the cores);
* the whole ``fit`` time (encoding, scaling and building included);
* predict throughput over all training pairs (``predict``, ids in, ratings out);
* peak RSS of the process, and after data generation alone;
* test RMSE on 5% held-out ratings of the same generator, next to the standard deviation of
  the ratings (the RMSE of predicting the mean) and the noise (std 0.5 before rounding to
  whole stars, so no model gets below ~0.58).

Usage::

    python benchmarks/scale.py                     # 100k, 1M, 10M; markdown to stdout
    python benchmarks/scale.py --sizes 100000 1000000 --json out.json

The settings are the scale settings documented in ``docs/distributed.rst``: matrix
factorisation with biases (no MLP tower, no implicit term), 32 factors, batches of 65,536
ratings with a learning rate of 0.02, XLA-compiled training steps (``jit_compile=True``,
which needs ``random_state=None``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

SETTINGS = dict(n_factors=32, hidden_units=(), implicit=False, batch_size=65_536,
                learning_rate=0.02, epochs=3, jit_compile=True, random_state=None)
USERS_PER_RATING = 70_000 / 10_000_000  # ML-10M: ~70k users for 10M ratings
N_ITEMS = 10_000
TEST_FRACTION = 0.05


def _peak_rss_gb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def measure(n_ratings: int) -> dict:
    """Generate, fit and predict ``n_ratings`` ratings in this process; returns the figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    from skembedrec import EmbeddingRatingRegressor
    from skembedrec.datasets import make_ratings

    n_test = int(n_ratings * TEST_FRACTION)
    n_users = max(int(n_ratings * USERS_PER_RATING), 700)
    start = time.perf_counter()
    X, y = make_ratings(n_users=n_users, n_items=N_ITEMS, n_ratings=n_ratings + n_test,
                        n_factors=16, noise=0.5, random_state=0)
    X_test, y_test = X.iloc[n_ratings:], y.iloc[n_ratings:].to_numpy()
    X, y = X.iloc[:n_ratings], y.iloc[:n_ratings]
    data_s, data_rss = time.perf_counter() - start, _peak_rss_gb()

    epochs = []

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            epochs.append((time.perf_counter() - self.wall, time.process_time() - self.cpu))

    # The public callbacks parameter times each epoch (the fit copies the callback; the
    # copies append to the same list).
    est = EmbeddingRatingRegressor(**SETTINGS, callbacks=[EpochClock()])
    start = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    est.predict(X)
    predict_s = time.perf_counter() - start
    rmse = float(np.sqrt(np.mean((est.predict(X_test) - y_test) ** 2)))

    steady = epochs[1:] or epochs
    wall = sum(w for w, _ in steady) / len(steady)
    cpu = sum(c for _, c in steady) / len(steady)
    return {
        "n_ratings": n_ratings, "n_users": n_users, "n_items": N_ITEMS,
        "data_s": data_s, "fit_s": fit_s, "epoch_wall_s": [w for w, _ in epochs],
        "epoch_cpu_s": [c for _, c in epochs],
        "fit_ratings_per_s": n_ratings / wall, "fit_ratings_per_cpu_s": n_ratings / cpu,
        "predict_ratings_per_s": n_ratings / predict_s,
        "peak_rss_gb": _peak_rss_gb(), "data_rss_gb": data_rss,
        "test_rmse": rmse, "rating_std": float(y_test.std()),
        "loss": est.history_["loss"],
    }


def _run_in_subprocess(n_ratings: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(n_ratings)],
        capture_output=True, text=True, env=env, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"n_ratings={n_ratings} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _markdown(results: list[dict], load: tuple[float, float, float]) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average before the run "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min).",
        f"Settings: {SETTINGS}.",
        "",
        "| ratings | users | fit ratings/s per epoch (wall) | per CPU-second | whole fit (s) "
        "| predict ratings/s | peak RSS (GB) | RSS after data (GB) | test RMSE | rating std |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['n_ratings']:,} | {r['n_users']:,} | {r['fit_ratings_per_s']:,.0f} "
            f"| {r['fit_ratings_per_cpu_s']:,.0f} | {r['fit_s']:.1f} "
            f"| {r['predict_ratings_per_s']:,.0f} | {r['peak_rss_gb']:.2f} "
            f"| {r['data_rss_gb']:.2f} | {r['test_rmse']:.3f} | {r['rating_std']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child)))
        return
    load = os.getloadavg()
    results = []
    for n in args.sizes:
        results.append(_run_in_subprocess(n))
        print(f"{n:,} ratings done: {results[-1]['fit_ratings_per_s']:,.0f} ratings/s",
              file=sys.stderr, flush=True)
    print(_markdown(results, load))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"load_average": load, "settings": SETTINGS, "results": results}, out,
                      indent=1, default=str)


if __name__ == "__main__":
    main()
