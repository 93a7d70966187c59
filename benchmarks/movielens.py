"""MovieLens 100K benchmark: EmbeddingRatingRegressor defaults vs the notebook and Surprise.

Usage (from the repository root)::

    python benchmarks/movielens.py [PATH/TO/u.data] [--write] [--quick] [--skip-cv]

Two protocols, as in the project's issue: (1) the seed notebook's split (ratings sorted by
user and time, ``train_test_split(test_size=0.1, random_state=315)``) and (2) 5-fold CV with
``KFold(5, shuffle=True, random_state=0)`` (the protocol of Surprise's published table).

Each contender is fitted and measured in a fresh subprocess (this script re-invoked with
``--worker``), so that its peak RSS is its own and no contender warms caches for another.
Speed is reported as ratios against the notebook's training loop measured in the same run.
``--write`` replaces the "MovieLens 100K" section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, train_test_split

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"
RESULTS = HERE / "RESULTS.md"
PLOT = HERE / "movielens_rmse_vs_fit_time.png"
SECTION_START = "<!-- movielens-100k:start -->"
SECTION_END = "<!-- movielens-100k:end -->"
TIME_SECTION_START = "<!-- time-aware:start -->"
TIME_SECTION_END = "<!-- time-aware:end -->"

CONTENDERS = {
    "skembedrec": "EmbeddingRatingRegressor() (defaults)",
    "skembedrec_time": "EmbeddingRatingRegressor(time_col='timestamp')",
    "skembedrec_side": "EmbeddingRatingRegressor(user_features=..., item_features=...)",
    "skembedrec_side_time": "EmbeddingRatingRegressor(time_col='timestamp', user_features=..., "
                            "item_features=...)",
    "damped": "Damped-bias baseline (mu + b_u + b_i, shrinkage 10 / 25, items first)",
    "notebook": "Notebook Keras loop (batch 64, 50 epochs)",
    "svd": "Surprise SVD",
    "svdpp": "Surprise SVD++",
    "baseline": "Surprise BaselineOnly",
    "mean": "Predict the mean",
}
SURPRISE_CONTENDERS = ("svd", "svdpp", "baseline")
# Issue 15's contenders: the time-aware tiers and their references, on every protocol.
TIME_CONTENDERS = ("skembedrec_time", "skembedrec_side", "skembedrec_side_time", "damped")
# Seeds of the notebook split's seed-noise table (seed 0 is the main table's).
SEEDS = (0, 1, 2, 3, 4)
SEED_CONTENDERS = ("skembedrec", "skembedrec_time", "skembedrec_side_time")
# The global time cut: these contenders only (the cut is about the estimator's tiers
# against the damped baseline).
CUT_CONTENDERS = ("skembedrec", "skembedrec_time", "skembedrec_side",
                  "skembedrec_side_time", "damped", "svd")
# Published ML-100K figures, quoted as published (not re-measured here).
PUBLISHED = [
    ("Bayesian factorisation machine with time, implicit and side features (myFM "
     "documentation, MovieLens 100K)", "0.8806 on fold u3, 0.889 on fold u1"),
    ("GLocal-K (Han et al. 2021)", "0.8889 on fold u1"),
    ("Bayesian timeSVD++ flipped vs SGD matrix factorisation on ML-10M (Rendle et al. "
     "2019, \"On the Difficulty of Evaluating Baselines\")", "0.7485 vs 0.772 (ML-10M)"),
]
SINGLE_CALLS = 300
BATCH_REPEATS = 5


# -- data and splits -------------------------------------------------------------------------


def load(path: Path) -> pd.DataFrame:
    """The ratings sorted by user and time, as the seed notebook does."""
    frame = pd.read_csv(path, sep="\t", header=None,
                        names=["user_id", "item_id", "rating", "timestamp"])
    return frame.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)


def side_features(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The user (age, gender, occupation) and item (year, genres) tables beside u.data."""
    users = pd.read_csv(path.parent / "users.tsv", sep="\t", index_col="user_id")
    items = pd.read_csv(path.parent / "items.tsv", sep="\t", index_col="movie_id")
    return (users[["age", "gender", "occupation"]],
            pd.DataFrame({"year": items["year"], "genres": items["genres"].str.split()}))


def split(frame: pd.DataFrame, protocol: str, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    if protocol == "notebook":
        return train_test_split(frame, test_size=0.1, random_state=315)
    if protocol == "timecut":  # the first 90 % of the ratings by time, then the last 10 %
        ordered = frame.sort_values("timestamp", kind="stable")
        cut = int(len(ordered) * 0.9)
        return ordered.iloc[:cut], ordered.iloc[cut:]
    train_idx, test_idx = list(KFold(5, shuffle=True, random_state=0).split(frame))[fold]
    return frame.iloc[train_idx], frame.iloc[test_idx]


# -- contenders, each behind fit(train) and predict(frame of pairs) --------------------------


class Skembedrec:
    def __init__(self, quick: bool, *, seed: int = 0, time: bool = False,
                 features: tuple | None = None):
        from skembedrec import EmbeddingRatingRegressor

        user_features, item_features = features or (None, None)
        self.model = EmbeddingRatingRegressor(
            random_state=seed, time_col="timestamp" if time else None,
            user_features=user_features, item_features=item_features)
        self.columns = ["user_id", "item_id"] + (["timestamp"] if time else [])

    def fit(self, train: pd.DataFrame) -> None:
        self.model.fit(train[self.columns], train["rating"])

    def predict(self, pairs: pd.DataFrame) -> np.ndarray:
        # ``pairs`` holds just the id (and time) columns: selecting them again would time
        # pandas.
        return self.model.predict(pairs)


class Damped:
    """The damped-bias baseline of issue 15 (``benchmarks/small_data.py``'s)."""

    def __init__(self, quick: bool):
        sys.path.insert(0, str(HERE))
        from small_data import damped_baseline

        self.damped_baseline = damped_baseline

    def fit(self, train: pd.DataFrame) -> None:
        self.train = train

    def predict(self, pairs: pd.DataFrame) -> np.ndarray:
        train = self.train
        return self.damped_baseline(train["user_id"], train["item_id"], train["rating"],
                                    pairs["user_id"], pairs["item_id"])


class Notebook:
    def __init__(self, quick: bool):
        sys.path.insert(0, str(HERE))
        from notebook import NotebookModel

        self.model = NotebookModel(epochs=2 if quick else 50)

    def fit(self, train: pd.DataFrame) -> None:
        self.model.fit(train["user_id"].to_numpy(), train["item_id"].to_numpy(),
                       train["rating"].to_numpy(dtype=float))

    def predict(self, pairs: pd.DataFrame) -> np.ndarray:
        return self.model.predict(pairs["user_id"].to_numpy(), pairs["item_id"].to_numpy())


class SurpriseModel:
    def __init__(self, quick: bool, kind: str):
        import surprise

        self.algo = {"svd": surprise.SVD, "svdpp": surprise.SVDpp,
                     "baseline": surprise.BaselineOnly}[kind]()
        if kind in ("svd", "svdpp"):
            self.algo = type(self.algo)(random_state=0)
        self.surprise = surprise

    def fit(self, train: pd.DataFrame) -> None:
        reader = self.surprise.Reader(rating_scale=(1, 5))
        data = self.surprise.Dataset.load_from_df(train[["user_id", "item_id", "rating"]], reader)
        self.algo.fit(data.build_full_trainset())

    def predict(self, pairs: pd.DataFrame) -> np.ndarray:
        # Surprise's own batch path (``algo.test``) is this same loop over ``predict``.
        predict = self.algo.predict
        pairs_ = zip(pairs["user_id"], pairs["item_id"], strict=True)
        return np.array([predict(u, i).est for u, i in pairs_])


class Mean:
    def __init__(self, quick: bool):
        pass

    def fit(self, train: pd.DataFrame) -> None:
        self.mean = float(train["rating"].mean())

    def predict(self, pairs: pd.DataFrame) -> np.ndarray:
        return np.full(len(pairs), self.mean)


def make_contender(name: str, quick: bool, path: Path, seed: int = 0):
    if name in SURPRISE_CONTENDERS:
        return SurpriseModel(quick, name)
    if name.startswith("skembedrec"):
        return Skembedrec(quick, seed=seed, time=name.endswith("_time"),
                          features=side_features(path) if "_side" in name else None)
    return {"notebook": Notebook, "mean": Mean, "damped": Damped}[name](quick)


# -- one measurement, run in a fresh process --------------------------------------------------


def ranking_metrics(test: pd.DataFrame, pred: np.ndarray) -> dict:
    try:
        from skembedrec.metrics import ndcg_at_k, precision_at_k
    except ImportError:
        return {"ndcg10": None, "p10": None}
    args = (test["user_id"].to_numpy(), test["rating"].to_numpy(), pred)
    return {"ndcg10": float(ndcg_at_k(*args, k=10, threshold=4.0)),
            "p10": float(precision_at_k(*args, k=10, threshold=4.0))}


def measure(path: Path, name: str, protocol: str, fold: int, quick: bool,
            seed: int = 0) -> dict:
    train, test = split(load(path), protocol, fold)
    model = make_contender(name, quick, path, seed)
    start = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - start

    columns = ["user_id", "item_id"] + (["timestamp"] if name.endswith("_time") else [])
    pairs = test[columns].reset_index(drop=True)
    pred = model.predict(pairs)  # warm-up; also the predictions scored below
    times = []
    for _ in range(1 if name in SURPRISE_CONTENDERS or name in ("notebook", "damped")
                   else BATCH_REPEATS):
        start = time.perf_counter()
        model.predict(pairs)
        times.append(time.perf_counter() - start)
    one = pairs.iloc[:1]
    model.predict(one)
    single = []
    for _ in range(SINGLE_CALLS if name != "damped" else 3):
        start = time.perf_counter()
        model.predict(one)
        single.append(time.perf_counter() - start)

    err = pred - test["rating"].to_numpy()
    result = {
        "name": name, "protocol": protocol, "fold": fold, "n_train": len(train),
        "n_test": len(test), "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))), "fit_s": fit_s,
        "batch_pairs_per_s": len(pairs) / float(np.median(times)),
        "single_ms": float(np.median(single)) * 1e3,
        # Linux reports ru_maxrss in KiB.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if protocol == "notebook":
        result.update(ranking_metrics(test, pred))
    if protocol == "timecut":
        cold = ~test["user_id"].isin(set(train["user_id"])).to_numpy()
        result["cold_share"] = float(cold.mean())
        result["rmse_cold"] = float(np.sqrt(np.mean(err[cold] ** 2)))
        result["rmse_warm"] = float(np.sqrt(np.mean(err[~cold] ** 2)))
    return result


def run_worker(path: Path, name: str, protocol: str, fold: int, quick: bool,
               seed: int = 0) -> dict | None:
    """Measure one contender in a fresh Python process; None if it failed."""
    command = [sys.executable, str(Path(__file__).resolve()), str(path), "--worker", name,
               "--protocol", protocol, "--fold", str(fold), "--seed", str(seed)] + (
                   ["--quick"] if quick else [])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    print(f"    {name} failed (exit {done.returncode}):\n{done.stderr[-2000:]}", flush=True)
    return None


# -- reporting -------------------------------------------------------------------------------


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def notebook_table(rows: list[dict]) -> str:
    ref = next((r for r in rows if r["name"] == "notebook"), None)

    def ratio(row, key, faster_is_larger):
        if ref is None:
            return "n/a"
        value = row[key] / ref[key] if faster_is_larger else ref[key] / row[key]
        return f"{value:,.1f}x"

    lines = [
        "| Contender | RMSE | MAE | NDCG@10 | P@10 | fit s | fit speed vs notebook | "
        "batch predict pairs/s | vs notebook | single predict ms | vs notebook | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {CONTENDERS[r['name']]} | {r['rmse']:.4f} | {r['mae']:.4f} | "
            f"{fmt(r.get('ndcg10'), '.4f')} | {fmt(r.get('p10'), '.4f')} | {r['fit_s']:.2f} | "
            f"{ratio(r, 'fit_s', False)} | {r['batch_pairs_per_s']:,.0f} | "
            f"{ratio(r, 'batch_pairs_per_s', True)} | {r['single_ms']:.3f} | "
            f"{ratio(r, 'single_ms', False)} | {r['peak_rss_mb']:,.0f} |"
        )
    return "\n".join(lines)


def cv_table(rows: list[dict]) -> str:
    lines = [
        "| Contender | folds | mean RMSE | std RMSE | mean MAE | mean fit s | "
        "batch predict pairs/s | single predict ms | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in CONTENDERS:
        mine = [r for r in rows if r["name"] == name]
        if not mine:
            continue
        rmse = np.array([r["rmse"] for r in mine])
        folds = f"{len(mine)}" + (" (fold 1 only)" if len(mine) == 1 else "")
        lines.append(
            f"| {CONTENDERS[name]} | {folds} | {rmse.mean():.4f} | {rmse.std():.4f} | "
            f"{np.mean([r['mae'] for r in mine]):.4f} | "
            f"{np.mean([r['fit_s'] for r in mine]):.2f} | "
            f"{np.median([r['batch_pairs_per_s'] for r in mine]):,.0f} | "
            f"{np.median([r['single_ms'] for r in mine]):.3f} | "
            f"{max(r['peak_rss_mb'] for r in mine):,.0f} |"
        )
    return "\n".join(lines)


def target_checks(split_rows: list[dict], cv_rows: list[dict]) -> str:
    """The issue's targets for the defaults, each with the figure measured in this run."""
    by_name = {r["name"]: r for r in split_rows}
    ours, notebook, svd = (by_name.get(n) for n in ("skembedrec", "notebook", "svd"))
    cv = [r["rmse"] for r in cv_rows if r["name"] == "skembedrec"]
    checks = []
    if ours:
        checks.append(("RMSE <= 0.890 on the notebook split", f"{ours['rmse']:.4f}",
                       ours["rmse"] <= 0.890))
    if cv:
        checks.append((f"mean RMSE <= 0.900 over the {len(cv)} CV folds",
                       f"{np.mean(cv):.4f}", np.mean(cv) <= 0.900))
    if ours and notebook:
        ratio = notebook["fit_s"] / ours["fit_s"]
        checks.append(("fit <= 1/20 of the notebook loop's fit",
                       f"{ours['fit_s']:.2f} s = 1/{ratio:.0f}", ratio >= 20))
    if ours and svd:
        ratio = ours["fit_s"] / svd["fit_s"]
        checks.append(("fit <= 3x Surprise SVD's fit",
                       f"{ratio:.1f}x ({svd['fit_s']:.2f} s)", ratio <= 3))
    if ours:
        checks.append(("batch predict >= 2,000,000 pairs/s",
                       f"{ours['batch_pairs_per_s']:,.0f}", ours["batch_pairs_per_s"] >= 2e6))
        checks.append(("single-pair predict <= 1 ms (median)", f"{ours['single_ms']:.3f} ms",
                       ours["single_ms"] <= 1.0))
    lines = ["| Target (defaults) | Measured | Met |", "|---|---:|:---:|"]
    lines += [f"| {what} | {value} | {'yes' if ok else 'NO'} |" for what, value, ok in checks]
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        ram = f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM"
    except ImportError:
        ram = "RAM unknown"
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, {ram} (load average at start: {load})"


def versions() -> str:
    names = ["numpy", "pandas", "sklearn", "tensorflow", "keras", "scikeras", "surprise",
             "skembedrec"]
    found = [f"Python {platform.python_version()}"]
    for name in names:
        if importlib.util.find_spec(name) is None:
            found.append(f"{name} (not installed)")
            continue
        module = __import__(name)
        found.append(f"{name} {getattr(module, '__version__', '?')}")
    return ", ".join(found)


def plot(rows: list[dict], path: Path) -> None:
    """RMSE vs fit time, one point per contender; predict-the-mean as a reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for r in rows:
        if r["name"] == "mean":
            ax.axhline(r["rmse"], color="grey", linestyle=":", linewidth=1)
            continue
        ax.scatter(r["fit_s"], r["rmse"], s=40)
        ax.annotate(CONTENDERS[r["name"]], (r["fit_s"], r["rmse"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)
    ax.axhline(0.890, color="tab:red", linestyle="--", linewidth=0.8)
    ax.annotate("target 0.890", (0.02, 0.890), xycoords=("axes fraction", "data"),
                xytext=(0, -10), textcoords="offset points", fontsize=8, color="tab:red")
    means = [r["rmse"] for r in rows if r["name"] == "mean"]
    others = [r["rmse"] for r in rows if r["name"] != "mean"]
    if others:
        ax.set_ylim(min(*others, 0.890) - 0.01, max(others) + 0.015)
    if means:
        ax.set_title(f"MovieLens 100K, notebook split: RMSE vs fit time\n"
                     f"(predict-the-mean: RMSE {means[0]:.3f}, off the chart)", fontsize=10)
    ax.set_xscale("log")
    ax.set_xlim(right=max(r["fit_s"] for r in rows) * 8)
    ax.set_xlabel("fit time (s, log scale)")
    ax.set_ylabel("test RMSE (lower is better)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_section(text: str, start: str = SECTION_START, end: str = SECTION_END) -> None:
    """Replace only this benchmark's section of RESULTS.md (other sections belong to others)."""
    block = f"{start}\n{text.strip()}\n{end}"
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in current and end in current:
        head, rest = current.split(start, 1)
        tail = rest.split(end, 1)[1]
        updated = head + block + tail
    else:
        updated = current.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(updated)


NOTES = """
### How the defaults get there, and what is honest about these figures

- **Model** (`EmbeddingRatingRegressor()`): biased matrix factorisation whose user factors
  also get SVD++'s implicit term over the items the user rated, and whose item factors get
  the same over the item's raters (`ImplicitFeedback`); two such models with 32 factors
  each are trained side by side in the columns of the same tables, each on its own loss
  (`MemberDots`, `EnsembleMean`), and averaged (`n_estimators=2`). L2 0.1 per rating on
  the vectors a batch uses (biases unpenalised), Adam 0.01, batch 4096, 4 epochs. No MLP
  tower: it overfits within a few epochs here. The notebook's network stays reachable with
  `hidden_units=(32,), use_bias=False, dot_product=False, n_factors=64, ...`.
- **Tuning** used only a validation slice carved from the notebook split's training
  ratings (10 %, `random_state=1`); the test ratings were never looked at. On that slice:
  plain biased MF (dot + biases, tuned L2) plateaus at 0.904; adding the two-sided
  implicit term reaches 0.890-0.899 depending on the seed; the 2-member ensemble 0.892
  and removes most of that seed noise. A third member or a fifth epoch gained 0.0002 on
  the slice for 1.5x / 1.25x the fit time; more factors (48, 64), cosine learning-rate
  decay, stronger L2 (0.15) and smaller batches (2048) did worse.
  A second round (mean of seeds 0 and 1 on the same slice; defaults 0.8940) tried, and
  rejected: 4 members 0.8936 (1.9x the fit time); an exponential moving average of the
  weights (Adam `use_ema`, momentum 0.9) 0.8943; 6 epochs at learning rate 0.005 0.8949;
  8 epochs, batch 1024, learning rate 0.003 0.8937 (2.6x the fit time); batch 2048 at
  0.005 0.9003; 64 factors with L2 0.15 0.9000. Other model families, seed 0 (defaults
  0.8915): blending in Surprise's item- or user-based KNNBaseline at the best weight
  (0.2) gives 0.8905 / 0.8904, so a neighbourhood model adds almost nothing the implicit
  term does not already carry; an item-based AutoRec member (prototype, hidden 200,
  strong L2) reaches 0.924 alone and 0.8913 blended; a rating-weighted neighbourhood
  term (asymmetric SVD, each rating left out of its own prediction) gives 0.8912 on the
  item side only and 0.8947 on both sides.
- **Serving**: one Keras model; `predict` calls a concrete `tf.function` of it. The
  implicit vectors are cached per id at the end of fit (a training step marks the cache
  stale, so validation during training recomputes them).
- **Fit time**: three changes found by profiling a default fit (8.1-8.7 s on this
  machine before them, 5.1 s on the Intel machine of the previous run). Keras created
  Adam's slots inside the first trace of the training step, so `tf.function` traced the
  whole step twice (~1.5-3 s): the optimizer is now built before training
  (`tests/test_training.py::test_fit_traces_the_training_step_once`). The implicit term
  multiplied a dense pair matrix, rebuilt by `scatter_nd` every step, by the vector
  table: 8.6 ms per product and gradient, four products per step; it is now a CSR sparse
  product, 1.6 ms (the dense one stays for `jit_compile=True`, as XLA has no CSR kernel).
  These two left the predictions unchanged (RMSE equal to 1e-8) and brought the fit to
  2.6-3.4 s. Then the ensemble members, which had a set of tables each, moved side by
  side into the columns of one set (`MemberDots`): the same model and loss, half the
  layers, variables and optimizer updates to trace and run, 2.0 s. That changes the
  random initialisation only; on the validation slice, 8 seeds: 0.8948 against 0.8941
  before, within the seed noise (+/-0.0015 per seed).
  Surprise SVD's own fit time differs between the protocols here: ~1.1-1.3 s on the
  notebook split, ~0.55-0.8 s on the 80 % CV folds. The 3x target, stated on the notebook
  split, is met there (about 2x); against SVD's fit on the CV folds (the 5-fold table's
  mean fit seconds) the ratio is about 4x. The remaining ~1.3 s of fixed cost is Keras:
  tracing the training step (~0.75 s) and its per-fit set-up.
- **Single-pair predict**: one call is input validation, id lookup, one run of the
  serving function and de-standardising. The check for repeated column names compared
  every column name of the frame (0.2 ms per call); it now asks pandas' cached
  `columns.is_unique` first: 0.86 -> 0.65 ms median on a one-row frame.
- **Timings** are wall-clock on a 2-core machine that may be shared with other jobs (see
  the load average above): absolute seconds vary between runs; the ratios against the
  notebook loop and Surprise SVD come from the same run.
- **Target not met, and why** (the Targets table above has this run's figures).
  *RMSE 0.890 on the notebook split*: the defaults reach 0.895 (0.8985 mean over the 5
  folds, which meets that target). The best single configuration seen on the validation
  slice was 0.890, but with seed noise of about +/-0.004; averaging members buys stability
  more than a lower floor, and nothing tried in two rounds (see Tuning: more members,
  weight averaging, schedules, neighbourhood blends, an autoencoder, rating-weighted
  neighbourhood terms) moved the slice by more than its seed noise. Published ML-100K
  results put the strongest research models around 0.89 (e.g. Sparse FC 0.895, GLocal-K
  0.889, on their own splits); 0.890 here would take such a model, beyond this
  estimator's design, not tuning.
- **Scale**: Keras 3's Adam updates its moment estimates for every row of an embedding
  table at each step (the sparse gradient is densified), and the implicit term costs in
  proportion to the number of training ratings. Both are negligible at 100K ratings
  (tables of ~2,600 rows). The implicit term is a CSR sparse product at every size: a
  1M-rating epoch with the defaults takes ~14 s here (it took 241 s when data above 2**24
  pair cells gathered each batch's pairs instead); at 10M ratings one step costs ~0.6 s,
  so use `implicit=False` there and expect a per-step cost that grows with the tables.
"""


def time_section(command: str, machine_line: str, seconds: float, split_rows: list[dict],
                 cv_rows: list[dict], cut_rows: list[dict],
                 seed_rows: dict[str, list[float]]) -> str:
    """The "Time-aware ratings (issue 15)" section: the tiers, the cut and the targets."""
    split = {r["name"]: r for r in split_rows}
    cut = {r["name"]: r for r in cut_rows}
    # One fit takes a few seconds on a shared machine: the median over the notebook split
    # and the five folds, not one fit, is each contender's fit time.
    fit_s = {name: float(np.median([r["fit_s"] for r in split_rows + cv_rows
                                    if r["name"] == name])) for name in split}
    cv = {name: np.mean([r["rmse"] for r in cv_rows if r["name"] == name])
          for name in {r["name"] for r in cv_rows}}

    def figure(table, name, key="rmse"):
        row = table.get(name)
        value = row if isinstance(row, float) else None if row is None else row[key]
        return "n/a" if value is None else f"{value:.4f}"

    lines = [
        "## Time-aware ratings (issue 15)", "",
        f"Command: `{command}`  ", f"Date: {datetime.date.today().isoformat()}  ",
        f"Machine: {machine_line}  ", f"Versions: {versions()}  ",
        f"Total run time: {seconds:.0f} s", "",
        "Notebook split: `train_test_split(test_size=0.1, random_state=315)` of the ratings "
        "sorted by user and time. 5-fold: `KFold(5, shuffle=True, random_state=0)`. Global "
        "time cut: the first 90 % of the ratings by timestamp to train, the last 10 % to test. "
        "Side features: `users.tsv` (age, gender, occupation) and `items.tsv` (year, genres). "
        "Every estimator with `random_state=0`; each fit in a fresh process. Since issue 15 "
        "the biases start at the damped-bias baseline (with or without time); the time "
        "terms and that start were chosen on validation folds of the notebook split's "
        "training ratings (`benchmarks/time_terms.py`, section \"Time terms\").", "",
        "| Contender | notebook split RMSE | 5-fold mean RMSE | time cut RMSE | time cut vs "
        "damped baseline | cut RMSE, unseen users | cut RMSE, seen users | "
        "median fit s (6 fits) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    damped = cut.get("damped")
    for name in split:
        row = cut.get(name)
        gain = ("n/a" if row is None or damped is None
                else f"{1 - row['rmse'] / damped['rmse']:.1%} lower")
        lines.append(
            f"| {CONTENDERS[name]} | {figure(split, name)} | {figure(cv, name)} | "
            f"{figure(cut, name)} | {gain} | {figure(cut, name, 'rmse_cold')} | "
            f"{figure(cut, name, 'rmse_warm')} | {fit_s[name]:.2f} |")
    if damped is not None:
        lines += ["", f"In the time cut, {damped['cold_share']:.0%} of the test ratings come "
                  "from users with no training rating."]
    checks = []
    plain, timed = split.get("skembedrec"), split.get("skembedrec_time")
    side_timed = split.get("skembedrec_side_time")
    # Issue 24's targets (issue 15's tables targets, 0.875 / 0.878, stay the stretch).
    if timed:
        checks.append(("ratings + time: notebook split RMSE <= 0.885", timed["rmse"], 0.885))
    if seed_rows.get("skembedrec_time"):
        checks.append(("ratings + time: notebook split, mean of seeds 0-4 <= 0.885",
                       float(np.nanmean(seed_rows["skembedrec_time"])), 0.885))
    if "skembedrec_time" in cv:
        checks.append(("ratings + time: 5-fold RMSE <= 0.890", cv["skembedrec_time"], 0.890))
    if side_timed:
        checks.append(("everything: notebook split RMSE <= 0.878", side_timed["rmse"], 0.878))
    if "skembedrec_side_time" in cv:
        checks.append(("everything: 5-fold RMSE <= 0.885", cv["skembedrec_side_time"], 0.885))
    if plain:
        checks.append(("no regression without time: notebook split <= 0.8892", plain["rmse"],
                       0.8892))
    if "skembedrec" in cv:
        checks.append(("no regression without time: 5-fold <= 0.8972", cv["skembedrec"],
                       0.8972))
    table = ["| Target | Measured | Met |", "|---|---:|:---:|"]
    table += [f"| {what} | {value:.4f} | {'yes' if value <= bound else 'NO'} |"
              for what, value, bound in checks]
    for name in ("skembedrec_time", "skembedrec_side_time"):
        if name in cut and damped is not None:
            gain = 1 - cut[name]["rmse"] / damped["rmse"]
            table.append(f"| time cut: {CONTENDERS[name]} >= 6 % below the damped baseline | "
                         f"{gain:.1%} | {'yes' if gain >= 0.06 else 'NO'} |")
    if plain and timed:
        ratio = fit_s["skembedrec_time"] / fit_s["skembedrec"]
        table.append(f"| a fit with time <= 1.5x the fit without (median of 6 fits) | "
                     f"{ratio:.2f}x | {'yes' if ratio <= 1.5 else 'NO'} |")
    lines += ["", "### Seed noise on the notebook split", "",
              "| Contender | " + " | ".join(f"seed {s}" for s in SEEDS) + " | mean |",
              "|---|" + "---:|" * (len(SEEDS) + 1)]
    lines += [f"| {CONTENDERS[name]} | " + " | ".join(f"{v:.4f}" for v in values)
              + f" | {np.nanmean(values):.4f} |" for name, values in seed_rows.items()]
    lines += ["", "### Targets", "", *table, "", "### Published figures (quoted, not "
              "re-measured)", "", "| Model (source) | Published RMSE |", "|---|---|"]
    lines += [f"| {model} | {value} |" for model, value in PUBLISHED]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="MovieLens 100K benchmark")
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA), help="path to u.data")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 notebook epochs, 1 fold")
    parser.add_argument("--skip-cv", action="store_true", help="only the notebook split")
    parser.add_argument("--notebook-all-folds", action="store_true",
                        help="run the notebook loop on all 5 CV folds (default: fold 1 only)")
    parser.add_argument("--time", action="store_true",
                        help="issue 15: the time-aware tiers on the notebook split, 5-fold CV "
                             "and the global time cut; writes their own section")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--protocol", default="notebook", help=argparse.SUPPRESS)
    parser.add_argument("--fold", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    path = Path(args.data)
    if not path.exists():
        sys.exit(f"MovieLens ratings not found at {path}; pass the path of u.data.")

    if args.worker:
        result = measure(path, args.worker, args.protocol, args.fold, args.quick, args.seed)
        print("RESULT " + json.dumps(result), flush=True)
        return

    if args.time:
        names = ["skembedrec", *TIME_CONTENDERS, "svd"]
    else:
        names = [n for n in CONTENDERS if n not in TIME_CONTENDERS]
    if importlib.util.find_spec("surprise") is None:
        print("scikit-surprise is NOT installed: skipping Surprise SVD, SVD++ and BaselineOnly "
              "(pip install 'skembedrec[bench]' to include them).", flush=True)
        names = [n for n in names if n not in SURPRISE_CONTENDERS]
    started = time.time()
    machine_line = machine()
    print(f"Machine: {machine_line}", flush=True)

    def run(protocol, fold, which):
        rows = []
        for name in which:
            print(f"[{time.time() - started:6.0f}s] {protocol} fold {fold + 1}: {name} ...",
                  flush=True)
            row = run_worker(path, name, protocol, fold, args.quick)
            if row is not None:
                print(f"    RMSE {row['rmse']:.4f}  fit {row['fit_s']:.2f}s  batch "
                      f"{row['batch_pairs_per_s']:,.0f} pairs/s  single "
                      f"{row['single_ms']:.3f} ms  RSS {row['peak_rss_mb']:.0f} MB", flush=True)
                rows.append(row)
        return rows

    split_rows = run("notebook", 0, names)
    cv_rows: list[dict] = []
    if not args.skip_cv:
        n_folds = 1 if args.quick else 5
        for fold in range(n_folds):
            which = [n for n in names if n != "notebook" or fold == 0 or args.notebook_all_folds]
            cv_rows += run("kfold", fold, which)

    command = "python benchmarks/movielens.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]))
    if args.time:
        cut_rows = run("timecut", 0, [n for n in names if n in CUT_CONTENDERS])
        seed_rows = {}
        for name in SEED_CONTENDERS:
            seed_rows[name] = [next(r["rmse"] for r in split_rows if r["name"] == name)]
            for seed in SEEDS[1:]:
                row = run_worker(path, name, "notebook", 0, args.quick, seed)
                seed_rows[name].append(row["rmse"] if row else math.nan)
                print(f"    {name} seed {seed}: RMSE {seed_rows[name][-1]:.4f}", flush=True)
        text = time_section(command.strip(), machine_line, time.time() - started,
                            split_rows, cv_rows, cut_rows, seed_rows)
        print("\n" + text, flush=True)
        if args.write:
            write_section(text, TIME_SECTION_START, TIME_SECTION_END)
            print(f"Updated the time-aware section of {RESULTS}")
        return
    text = [
        "## MovieLens 100K",
        "",
        f"Command: `{command.strip()}`  ",
        f"Date: {datetime.date.today().isoformat()}  ",
        f"Machine: {machine_line}  ",
        f"Versions: {versions()}  ",
        f"Total run time: {time.time() - started:.0f} s"
        + (" (--quick smoke run)" if args.quick else ""),
        "",
        "### Targets",
        "",
        target_checks(split_rows, cv_rows),
        "",
        "### Notebook split (sorted by user and time, `train_test_split(test_size=0.1, "
        "random_state=315)`)",
        "",
        notebook_table(split_rows),
        "",
        "Ratios compare with the notebook loop in the same run (higher = faster). Batch "
        "predict: pairs/s over the whole test set (median of repeats). Single predict: median "
        f"of {SINGLE_CALLS} `predict` calls on one (user, item) row. Peak RSS: the fresh "
        "process that fitted and measured the contender. NDCG@10 / P@10: "
        "`skembedrec.metrics` on the test ratings, relevant = rating >= 4.",
    ]
    text += ["", NOTES.strip()]
    if cv_rows:
        text += [
            "",
            "### 5-fold CV (`KFold(5, shuffle=True, random_state=0)`)",
            "",
            cv_table(cv_rows),
        ]
        if not args.notebook_all_folds:
            text += ["", "The notebook loop (~3 min per fit) runs on fold 1 only."]
    table = "\n".join(text)
    print("\n" + table, flush=True)
    if split_rows:
        plot(split_rows, PLOT)
        print(f"Plot saved to {PLOT}")
    if args.write:
        write_section(table + "\n\n![RMSE vs fit time](movielens_rmse_vs_fit_time.png)\n")
        print(f"Updated the MovieLens 100K section of {RESULTS}")


if __name__ == "__main__":
    main()
