"""Fuzzing ``EmbeddingRatingRegressor.load``: every mangled file loads identically or is refused.

Usage (from the repository root)::

    python benchmarks/fuzz_load.py [--cases 2000] [--seed 0]

A small model is fitted on synthetic ratings and saved; each case mangles the file with one
seeded mutation and loads it in this process:

``bit_flip``        1-8 random bits flipped anywhere
``truncate``        the file cut at a random length
``overwrite``       a random span (1-64 bytes) overwritten with random bytes
``member_swap``     the contents of two members swapped (names kept), in the file or in
                    its inner ``.keras``/``.npz`` zips, the zips rebuilt with valid CRCs
``size_field``      a size field (compressed or decompressed, central directory or local
                    header) of one member set to another value
``oversized``       one member (outer or inner) replaced by zeros beyond the member limit:
                    declared honestly, or with a small size written in the directory

A case passes when ``load`` returns an estimator that predicts exactly as the original, or
raises a ``ValueError`` naming the file, within 5 s; the run also reports the growth of the
process' peak RSS (limit: 300 MB). Loads use reduced limits (16 MiB per member) so that
oversized members stay cheap to build; every other check runs as by default.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import resource
import struct
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

KINDS = ("bit_flip", "truncate", "overwrite", "member_swap", "size_field", "oversized")
LIMITS = {"member_bytes": 16 << 20, "total_bytes": 32 << 20, "file_bytes": 64 << 20}
MAX_SECONDS = 5.0
MAX_RSS_MB = 300
_NESTED = ("model.keras", "arrays.npz")


def fitted_model():
    """A small fitted estimator (ensemble, implicit feedback) and its pairs."""
    from skembedrec import EmbeddingRatingRegressor
    from skembedrec.datasets import make_ratings

    X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
    est = EmbeddingRatingRegressor(n_factors=4, epochs=1, batch_size=256, random_state=0,
                                   n_estimators=2).fit(X, y)
    return est, X


# -- mutations -------------------------------------------------------------------------------


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, value in members.items():
            zf.writestr(name, value)
    return buffer.getvalue()


def bit_flip(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for position in rng.integers(0, len(out) * 8, rng.integers(1, 9)):
        out[position // 8] ^= 1 << (position % 8)
    return bytes(out)


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: rng.integers(0, len(data))]


def overwrite(data: bytes, rng: np.random.Generator) -> bytes:
    start, length = rng.integers(0, len(data)), rng.integers(1, 65)
    out = bytearray(data)
    out[start : start + length] = rng.bytes(int(length))[: len(out) - start]
    return bytes(out)


def member_swap(data: bytes, rng: np.random.Generator) -> bytes:
    members = _members(data)
    target = members
    nested = rng.random() < 0.5
    if nested:
        outer_name = _NESTED[rng.integers(len(_NESTED))]
        target = _members(members[outer_name])
    names = sorted(target)
    a, b = rng.choice(len(names), 2, replace=False)
    target[names[a]], target[names[b]] = target[names[b]], target[names[a]]
    if nested:
        members[outer_name] = _zip(target, zipfile.ZIP_STORED)
    return _zip(members)


def size_field(data: bytes, rng: np.random.Generator) -> bytes:
    # (signature, offset of compressed size, offset of size) in local and central headers
    headers = [(b"PK\x03\x04", 18, 22), (b"PK\x01\x02", 20, 24)]
    signature, compressed, uncompressed = headers[rng.integers(2)]
    starts = [i for i in range(len(data)) if data.startswith(signature, i)]
    start = starts[rng.integers(len(starts))] + (compressed if rng.random() < 0.5
                                                  else uncompressed)
    old = struct.unpack_from("<I", data, start)[0]
    choices = [0, 1, max(old - 1, 0), old + 1, old * 2, old // 2, 2**31, 0xFFFFFFFF,
               int(rng.integers(0, 2**32))]
    out = bytearray(data)
    struct.pack_into("<I", out, start, min(choices[rng.integers(len(choices))], 0xFFFFFFFF))
    return bytes(out)


def oversized(data: bytes, rng: np.random.Generator) -> bytes:
    members = _members(data)
    zeros = bytes(LIMITS["member_bytes"] + int(rng.integers(1, 8 << 20)))
    if rng.random() < 0.3:  # inside an inner zip
        outer_name = _NESTED[rng.integers(len(_NESTED))]
        inner = _members(members[outer_name])
        inner[sorted(inner)[rng.integers(len(inner))]] = zeros
        members[outer_name] = _zip(inner)
    else:
        name = sorted(members)[rng.integers(len(members))]
        members[name] = zeros
        if rng.random() < 0.5:  # the directory lies: it declares a small member
            return _lying_size(_zip(members), name, int(rng.integers(1, 4096)))
    return _zip(members)


def _lying_size(data: bytes, name: str, size: int) -> bytes:
    out = bytearray(data)
    entry = name.encode()
    for signature, offset, name_offset in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = 0
        while (start := out.find(signature, start)) >= 0:
            if out[start + name_offset : start + name_offset + len(entry)] == entry:
                struct.pack_into("<I", out, start + offset, size)
            start += 4
    return bytes(out)


MUTATIONS = {"bit_flip": bit_flip, "truncate": truncate, "overwrite": overwrite,
             "member_swap": member_swap, "size_field": size_field, "oversized": oversized}


# -- running ---------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process' peak RSS so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(kind: str, data: bytes, rng, est, X, expected, directory: str) -> tuple[str, float]:
    """Mutate, load, predict; returns (outcome, seconds). An outcome other than
    ``identical`` or ``refused`` is a failure, described in the outcome."""
    from skembedrec import EmbeddingRatingRegressor

    mangled = MUTATIONS[kind](data, rng)
    path = Path(directory) / f"case-{kind}.skembedrec"
    path.write_bytes(mangled)
    gc.disable()
    start = time.perf_counter()
    try:
        loaded = EmbeddingRatingRegressor.load(path, limits=LIMITS)
        outcome = ("identical" if np.array_equal(loaded.predict(X), expected)
                   else "FAILED: different predictions")
    except ValueError as exc:
        outcome = "refused" if path.name in str(exc) else f"FAILED: unnamed file: {exc}"
    except Exception as exc:
        outcome = f"FAILED: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        seconds = time.perf_counter() - start
        gc.enable()
    return outcome, seconds


def fuzz(n_cases: int, seed: int = 0, progress: bool = False) -> dict:
    """Run ``n_cases`` cases (the kinds in turn); returns counts, failures and maxima."""
    est, X = fitted_model()
    expected = est.predict(X)
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    failures, max_seconds = [], 0.0
    with tempfile.TemporaryDirectory() as directory:
        original = Path(directory) / "model.skembedrec"
        est.save(original)
        data = original.read_bytes()
        EmbeddingRatingRegressor = type(est)
        EmbeddingRatingRegressor.load(original, limits=LIMITS)  # warm-up: imports, tracing
        rss_before = peak_rss_mb()
        for case in range(n_cases):
            kind = KINDS[case % len(KINDS)]
            if case % 25 == 0:  # collected between cases: no collection pause is timed
                gc.collect()
            outcome, seconds = run_case(kind, data, rng, est, X, expected, directory)
            counts[kind, outcome if not outcome.startswith("FAILED") else "failed"] += 1
            if outcome.startswith("FAILED") or seconds > MAX_SECONDS:
                failures.append((case, kind, outcome, round(seconds, 2)))
                if progress:
                    print("FAILURE", failures[-1], flush=True)
            max_seconds = max(max_seconds, seconds)
            if progress and (case + 1) % 200 == 0:
                print(f"  {case + 1} cases, {len(failures)} failures", flush=True)
    return {"counts": counts, "failures": failures, "max_seconds": max_seconds,
            "rss_growth_mb": peak_rss_mb() - rss_before}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = fuzz(args.cases, args.seed, progress=True)
    print(f"\n{args.cases} cases, seed {args.seed}, {time.perf_counter() - started:.0f} s; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'mutation':<12} {'identical':>9} {'refused':>8} {'failed':>7}")
    for kind in KINDS:
        row = [result["counts"][kind, outcome] for outcome in ("identical", "refused", "failed")]
        print(f"{kind:<12} {row[0]:>9} {row[1]:>8} {row[2]:>7}")
    print(f"max time per case {result['max_seconds']:.2f} s (limit {MAX_SECONDS}); peak RSS "
          f"growth {result['rss_growth_mb']:.0f} MB (limit {MAX_RSS_MB})")
    for failure in result["failures"][:20]:
        print("FAILURE", failure)
    sys.exit(1 if result["failures"] or result["rss_growth_mb"] > MAX_RSS_MB else 0)


if __name__ == "__main__":
    main()
