"""How fast ``fetch_movielens("25m")`` reads: from the archive, then from its columnar copy.

A synthetic archive in the ML-25M format and size (25,000,095 ratings, 162,541 users, 59,047
rated movies out of 62,423; ``ml-25m/ratings.csv`` and ``ml-25m/movies.csv``, deflated) is
written to a temporary folder, and the variant table's digest is replaced by that archive's
(in the measuring processes only). Each call runs in a fresh process, so its peak RSS is its
own: the first call verifies the SHA-256, parses the CSV and writes the ``.columns.npy`` copy; the
second verifies the SHA-256 and reads the copy. Targets (issue 14): <= 30 s and <= 3 s.

    python benchmarks/loaders.py            # print the table
    python benchmarks/loaders.py --write    # also update benchmarks/RESULTS.md
    python benchmarks/loaders.py --keep DIR # keep (or reuse) the synthetic archive in DIR
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

N_RATINGS, N_USERS, N_RATED_ITEMS, N_MOVIES = 25_000_095, 162_541, 59_047, 62_423
MAX_MOVIE_ID = 209_171  # the largest movieId of the real ML-25M
CHUNK_ROWS = 1_000_000
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
START, END = "<!-- loaders:start -->", "<!-- loaders:end -->"
TARGETS_S = {"first": 30.0, "second": 3.0}


def write_archive(path: Path, seed: int = 0) -> None:
    """ML-25M-shaped zip: user-sorted ratings with half stars and 10-digit timestamps."""
    rng = np.random.default_rng(seed)
    movie_ids = np.sort(rng.choice(np.arange(1, MAX_MOVIE_ID + 1), N_MOVIES, replace=False))
    rated = rng.choice(movie_ids, N_RATED_ITEMS, replace=False)
    popularity = 1.0 / np.arange(1, N_RATED_ITEMS + 1) ** 0.9
    popularity /= popularity.sum()
    # Every user has at least one rating; the rest follow a long tail, sorted by user as in
    # the real file.
    extra = rng.choice(N_USERS, N_RATINGS - N_USERS, p=_tail(N_USERS, rng))
    users = np.sort(np.concatenate([np.arange(N_USERS), extra])).astype(np.int32) + 1
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zipped:
        with zipped.open("ml-25m/ratings.csv", "w", force_zip64=True) as out:
            out.write(b"userId,movieId,rating,timestamp\n")
            for start in range(0, N_RATINGS, CHUNK_ROWS):
                n = min(CHUNK_ROWS, N_RATINGS - start)
                chunk = pd.DataFrame({
                    "userId": users[start:start + n],
                    "movieId": rng.choice(rated, n, p=popularity),
                    "rating": rng.integers(1, 11, n) / 2,
                    "timestamp": rng.integers(789_652_009, 1_574_327_703, n),
                })
                out.write(chunk.to_csv(header=False, index=False, float_format="%.1f").encode())
        titles = pd.Series([f"Movie {i}" for i in range(N_MOVIES)])
        titles[::7] = titles[::7] + ", The"  # quoted titles with commas, as in the real file
        years = rng.integers(1900, 2020, N_MOVIES).astype(str)
        movies = pd.DataFrame({"movieId": movie_ids, "title": titles + " (" + years + ")",
                               "genres": np.where(rng.random(N_MOVIES) < 0.1,
                                                  "(no genres listed)", "Comedy|Drama")})
        zipped.writestr("ml-25m/movies.csv", movies.to_csv(index=False))


def _tail(n: int, rng: np.random.Generator) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** 0.7
    weights = weights[rng.permutation(n)]
    return weights / weights.sum()


def child(home: str, digest: str, size: int) -> None:
    """One timed call in this process; prints a JSON line."""
    import dataclasses
    import resource

    from skembedrec import _download, _movielens
    from skembedrec.datasets import fetch_movielens

    spec = _movielens.VARIANTS["25m"]
    _movielens.VARIANTS["25m"] = dataclasses.replace(spec, sha256=digest, n_bytes=size)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    archive = Path(home) / "movielens" / "ml-25m.zip"
    cached = archive.with_suffix(".columns.npy").is_file()
    start = time.perf_counter()
    ml = fetch_movielens("25m", data_home=home, download_if_missing=False, verbose=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    _download.sha256_of_file(archive)
    hash_s = time.perf_counter() - start
    print(json.dumps({
        "cached": cached, "seconds": seconds, "hash_seconds": hash_s, "rss_before": rss_before,
        "peak_rss": peak, "rows": len(ml.frame), "users": int(ml.frame["user_id"].nunique()),
        "items": int(ml.frame["item_id"].nunique()),
        "dtypes": {k: str(v) for k, v in ml.frame.dtypes.items()},
    }))


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = re.search(r"Model name:\s*(.+)", lscpu).group(1).strip()
    except (OSError, AttributeError):
        model = platform.processor() or platform.machine()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} CPUs, {mem:.1f} GiB RAM, Python {platform.python_version()}"


def run(keep: str | None) -> dict:
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="skembedrec-loaders-"))
    try:
        archive = folder / "ml-25m.zip"
        if not archive.is_file():
            start = time.perf_counter()
            write_archive(archive)
            print(f"wrote {archive} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        from skembedrec._download import sha256_of_file

        digest, size = sha256_of_file(archive), archive.stat().st_size
        home = folder / "home"
        shutil.rmtree(home, ignore_errors=True)
        (home / "movielens").mkdir(parents=True)
        os.link(archive, home / "movielens" / "ml-25m.zip")
        calls = {}
        for name in ("first", "second"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(home), digest, str(size)],
                capture_output=True, text=True, check=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            ).stdout
            calls[name] = json.loads(out.strip().splitlines()[-1])
        return {"calls": calls, "archive_mb": size / 1e6,
                "csv_mb": zipfile.ZipFile(archive).getinfo("ml-25m/ratings.csv").file_size / 1e6,
                "load": os.getloadavg(), "machine": machine(),
                "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def report(result: dict) -> str:
    calls = result["calls"]
    rows = []
    for name, label in (("first", "1st call: verify + parse the archive + write the copy"),
                        ("second", "2nd call: verify + read the columnar copy")):
        c, target = calls[name], TARGETS_S[name]
        verdict = "met" if c["seconds"] <= target else f"missed by {c['seconds'] - target:.1f} s"
        rows.append(f"| {label} | {c['seconds']:.1f} | <= {target:.0f} ({verdict}) | "
                    f"{c['peak_rss']:.0f} | {c['peak_rss'] - c['rss_before']:.0f} |")
    first = calls["first"]
    load = " / ".join(f"{x:.2f}" for x in result["load"])
    return "\n".join([
        "Command: `python benchmarks/loaders.py --write`. Synthetic archive in the ML-25M "
        f"format and size: {first['rows']:,} ratings, {first['users']:,} users x "
        f"{first['items']:,} rated movies, `ratings.csv` {result['csv_mb']:.0f} MB "
        f"uncompressed, zip {result['archive_mb']:.0f} MB (the real one: 678 MB, 262 MB).",
        f"Measured {result['date']} on {result['machine']}. Load average at the end: {load}.",
        "Each call in a fresh process (after `import skembedrec`, which loads TensorFlow); "
        f"dtypes {', '.join(f'{k} {v}' for k, v in first['dtypes'].items())}.",
        "",
        "| call | seconds | target (s) | peak RSS MiB | over RSS after import (MiB) |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"SHA-256 of the archive, included in both calls: {calls['second']['hash_seconds']:.1f} s.",
    ])


def write_results(text: str) -> None:
    section = f"{START}\n{text}\n{END}"
    current = RESULTS.read_text()
    if START in current:
        before, rest = current.split(START, 1)
        current = before + section + rest.split(END, 1)[1]
    else:
        current = (current.rstrip("\n") + "\n\n## Loading MovieLens 25M\n\n"
                   "<!-- Section owned by benchmarks/loaders.py (issue 14); edit only this "
                   "section. -->\n" + section + "\n")
    RESULTS.write_text(current)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--keep", help="folder to keep (or reuse) the synthetic archive in")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    text = report(run(args.keep))
    print(text)
    if args.write:
        write_results(text)


if __name__ == "__main__":
    main()
