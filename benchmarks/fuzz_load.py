"""Fuzzing ``EmbeddingRatingRegressor.load``: every mangled file loads or is refused.

Usage (from the repository root)::

    python benchmarks/fuzz_load.py [--cases 2000] [--seed 0]

A small model is fitted on synthetic ratings and saved; each case mangles the file with one
seeded mutation (the kinds in turn) and loads it in this process. Mutations of the bytes,
which the manifest's SHA-256 digests catch when the zip survives:

``bit_flip``        1-8 random bits flipped anywhere
``truncate``        the file cut at a random length
``overwrite``       a random span (1-64 bytes) overwritten with random bytes
``member_swap``     the contents of two members swapped (names kept), in the file or in
                    its inner ``.keras``/``.npz`` zips, the zips rebuilt with valid CRCs
``size_field``      a size field (compressed or decompressed, central directory or local
                    header) of one member set to another value
``oversized``       one member (outer or inner) replaced by zeros beyond the member limit:
                    declared honestly, or with a small size written in the directory

and mutations inside the members with the digests rewritten to match, as anyone editing a
file would (a digest in the file guards against accidents, not attackers):

``manifest_value``  one value of the manifest JSON (a leaf mostly, or a whole list or
                    mapping) replaced: another type (list, dict, str, None, bool, a codec
                    tag), 10**30, a negative number, NaN/inf, a 100,000-character string,
                    or a number near the old one
``manifest_key``    a key of one of the manifest's mappings removed, renamed or added
``config_value``    the same in the Keras ``config.json``
``config_key``      the same for the keys of the Keras config
``array_bits``      1-8 bits flipped in one array of ``arrays.npz`` (its values mostly,
                    its header sometimes)
``weights_bits``    1-8 bits flipped in the Keras weights file (HDF5)

A case passes when ``load`` returns an estimator that predicts (exactly as the original
after a byte mutation, finite ratings after one inside the members), or raises a
``ValueError`` naming the file, within 5 s; any other exception is a failure. The run also
reports the growth of the process' peak RSS (limit: 300 MB). Loads use reduced limits
(16 MiB per member) so that oversized members stay cheap to build; every other check runs
as by default. The mutations are imported by ``tests/test_fuzz_load.py``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import json
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

BYTE_KINDS = ("bit_flip", "truncate", "overwrite", "member_swap", "size_field", "oversized")
# Mutations inside the members, with the manifest's digests rewritten to match: what an
# attacker (or a careless script) editing a file produces.
DIGEST_KINDS = ("manifest_value", "manifest_key", "config_value", "config_key", "array_bits",
                "weights_bits")
KINDS = BYTE_KINDS + DIGEST_KINDS
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


# -- mutations inside the members, digests rewritten --------------------------------------

_META, _ARRAYS, _MODEL, _CONFIG, _WEIGHTS = ("skembedrec.json", "arrays.npz", "model.keras",
                                             "config.json", "model.weights.h5")


def hostile_values(rng: np.random.Generator, old=None) -> list:
    """Values of every JSON type, extremes included, and some near ``old``."""
    values = [[], [1, "a"], {}, {"x": 1}, "", "text", "x" * 100_000, None, True, False, 0, 1,
              -1, 10**30, -(10**30), 2**63, 1.5, -2.5, float("nan"), float("inf"),
              float("-inf"), 1e308, {"__array__": "user_ids"}, {"__float__": "nan"},
              {"__tuple__": [1]}, {"__dict__": {"a": []}}, {"__objects__": [[1]]},
              {"__array__": "missing"}, {"__bytes__": "!!"}]
    if isinstance(old, bool):
        values.append(not old)
    elif isinstance(old, int):
        values += [old + 1, old - 1, old * 2, -old, old // 2, old * 1000]
    elif isinstance(old, float):
        values += [old * 2, -old, old + 1e-3, old * 1e30]
    elif isinstance(old, str):
        values += [old + "_", old.upper(), old[:-1]]
    return values


def _nodes(value, path=()):
    """Every (path, node) of a JSON value, containers and leaves."""
    yield path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, child in items:
        yield from _nodes(child, (*path, key))


def _parent(document, path):
    node = document
    for key in path[:-1]:
        node = node[key]
    return node


def mutate_json_value(document, rng: np.random.Generator):
    """``document`` with one node (leaf or container) replaced by a hostile value."""
    nodes = list(_nodes(document))[1:]
    if not nodes:
        return hostile_values(rng)[0]
    if rng.random() < 0.7:  # leaves: the values the loader reads
        nodes = [node for node in nodes if not isinstance(node[1], dict | list)] or nodes
    path, old = nodes[rng.integers(len(nodes))]
    choices = hostile_values(rng, old)
    _parent(document, path)[path[-1]] = choices[rng.integers(len(choices))]
    return document


def mutate_json_key(document, rng: np.random.Generator):
    """``document`` with a key of one of its mappings removed, renamed or added."""
    mappings = [node for _, node in _nodes(document) if isinstance(node, dict) and node]
    mapping = mappings[rng.integers(len(mappings))]
    key = sorted(mapping)[rng.integers(len(mapping))]
    action = rng.integers(3)
    if action == 0:
        del mapping[key]
    elif action == 1:
        mapping[key + "_renamed" if rng.random() < 0.5 else key.upper()] = mapping.pop(key)
    else:
        choices = hostile_values(rng)
        mapping[f"added_{rng.integers(100)}"] = choices[rng.integers(len(choices))]
    return document


def flip_bits(data: bytes, rng: np.random.Generator, n_max: int = 8) -> bytes:
    out = bytearray(data)
    for position in rng.integers(0, len(out) * 8, rng.integers(1, n_max + 1)):
        out[position // 8] ^= 1 << (position % 8)
    return bytes(out)


def with_digests(members: dict[str, bytes]) -> bytes:
    """The file of ``members`` with the manifest's SHA-256 digests recomputed."""
    meta = json.loads(members[_META])
    if isinstance(meta, dict):
        meta["sha256"] = {name: hashlib.sha256(members[name]).hexdigest()
                          for name in (_ARRAYS, _MODEL)}
        members[_META] = json.dumps(meta).encode()
    return _zip(members)


def _edit_manifest(data: bytes, rng, edit) -> bytes:
    members = _members(data)
    meta = json.loads(members[_META])
    # The digests themselves are not a target: they are rewritten anyway.
    digests = meta.pop("sha256")
    meta = edit(meta, rng)
    if isinstance(meta, dict):
        meta["sha256"] = digests
    members[_META] = json.dumps(meta).encode()
    return with_digests(members)


def _edit_model(data: bytes, rng, edit) -> bytes:
    members = _members(data)
    inner = _members(members[_MODEL])
    inner = edit(inner, rng)
    members[_MODEL] = _zip(inner)
    return with_digests(members)


def manifest_value(data: bytes, rng: np.random.Generator) -> bytes:
    return _edit_manifest(data, rng, mutate_json_value)


def manifest_key(data: bytes, rng: np.random.Generator) -> bytes:
    return _edit_manifest(data, rng, mutate_json_key)


def _config_edit(mutate):
    def edit(inner, rng):
        inner[_CONFIG] = json.dumps(mutate(json.loads(inner[_CONFIG]), rng)).encode()
        return inner
    return edit


def config_value(data: bytes, rng: np.random.Generator) -> bytes:
    return _edit_model(data, rng, _config_edit(mutate_json_value))


def config_key(data: bytes, rng: np.random.Generator) -> bytes:
    return _edit_model(data, rng, _config_edit(mutate_json_key))


def array_bits(data: bytes, rng: np.random.Generator) -> bytes:
    """Bits flipped in one ``.npy`` of the arrays, mostly in its values, header sometimes."""
    members = _members(data)
    arrays = _members(members[_ARRAYS])
    name = sorted(arrays)[rng.integers(len(arrays))]
    raw = arrays[name]
    body = raw.index(b"\n") + 1 if b"\n" in raw else 0
    if rng.random() < 0.8 and body < len(raw):
        arrays[name] = raw[:body] + flip_bits(raw[body:], rng)
    else:
        arrays[name] = flip_bits(raw, rng)
    members[_ARRAYS] = _zip(arrays, zipfile.ZIP_STORED)
    return with_digests(members)


def weights_bits(data: bytes, rng: np.random.Generator) -> bytes:
    def edit(inner, rng):
        inner[_WEIGHTS] = flip_bits(inner[_WEIGHTS], rng)
        return inner
    return _edit_model(data, rng, edit)


MUTATIONS = {"bit_flip": bit_flip, "truncate": truncate, "overwrite": overwrite,
             "member_swap": member_swap, "size_field": size_field, "oversized": oversized,
             "manifest_value": manifest_value, "manifest_key": manifest_key,
             "config_value": config_value, "config_key": config_key,
             "array_bits": array_bits, "weights_bits": weights_bits}


# -- running ---------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process' peak RSS so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(kind: str, data: bytes, rng, est, X, expected, directory: str) -> tuple[str, float]:
    """Mutate, load, predict; returns (outcome, seconds): ``loaded`` (identical predictions
    after a byte mutation, finite ones after a digest-rewriting one), ``refused`` (a
    ValueError naming the file) or a failure, described in the outcome."""
    from skembedrec import EmbeddingRatingRegressor

    mangled = MUTATIONS[kind](data, rng)
    path = Path(directory) / f"case-{kind}.skembedrec"
    path.write_bytes(mangled)
    gc.disable()
    start = time.perf_counter()
    try:
        loaded = EmbeddingRatingRegressor.load(path, limits=LIMITS)
    except ValueError as exc:
        outcome = "refused" if path.name in str(exc) else f"FAILED: unnamed file: {exc}"
    except Exception as exc:
        outcome = f"FAILED: {type(exc).__name__}: {str(exc)[:300]}"
    else:
        outcome = _check_predictions(kind, loaded, X, expected)
    finally:
        seconds = time.perf_counter() - start
        gc.enable()
    return outcome, seconds


def _check_predictions(kind: str, loaded, X, expected) -> str:
    try:
        predicted = loaded.predict(X)
    except Exception as exc:
        return f"FAILED: loaded, then predict raised {type(exc).__name__}: {str(exc)[:300]}"
    if kind in BYTE_KINDS:  # the digests must catch any change
        return "loaded" if np.array_equal(predicted, expected) else \
            "FAILED: different predictions"
    if predicted.shape != expected.shape or not np.isfinite(predicted).all():
        return f"FAILED: predictions of shape {predicted.shape}, finite: " \
               f"{np.isfinite(predicted).all()}"
    return "loaded"


def fuzz(n_cases: int, seed: int = 0, progress: bool = False,
         kinds: tuple[str, ...] = KINDS) -> dict:
    """Run ``n_cases`` cases (``kinds`` in turn); returns counts, failures and maxima."""
    est, X = fitted_model()
    expected = est.predict(X)
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    failures, max_seconds = [], 0.0
    max_seconds_by_kind: Counter = Counter()
    with tempfile.TemporaryDirectory() as directory:
        original = Path(directory) / "model.skembedrec"
        est.save(original)
        data = original.read_bytes()
        EmbeddingRatingRegressor = type(est)
        EmbeddingRatingRegressor.load(original, limits=LIMITS)  # warm-up: imports, tracing
        rss_before = peak_rss_mb()
        for case in range(n_cases):
            kind = kinds[case % len(kinds)]
            if case % 25 == 0:  # collected between cases: no collection pause is timed
                gc.collect()
            outcome, seconds = run_case(kind, data, rng, est, X, expected, directory)
            counts[kind, outcome if not outcome.startswith("FAILED") else "failed"] += 1
            if outcome.startswith("FAILED") or seconds > MAX_SECONDS:
                failures.append((case, kind, outcome, round(seconds, 2)))
                if progress:
                    print("FAILURE", failures[-1], flush=True)
            max_seconds = max(max_seconds, seconds)
            max_seconds_by_kind[kind] = max(max_seconds_by_kind[kind], seconds)
            if progress and (case + 1) % 200 == 0:
                print(f"  {case + 1} cases, {len(failures)} failures", flush=True)
    return {"counts": counts, "failures": failures, "max_seconds": max_seconds,
            "max_seconds_by_kind": dict(max_seconds_by_kind),
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
    print(f"{'mutation':<15} {'cases':>6} {'loaded+finite':>13} {'ValueError':>10} "
          f"{'other':>6} {'max s':>6}")
    for kind in (*KINDS, "total"):
        kinds = KINDS if kind == "total" else (kind,)
        row = [sum(result["counts"][k, outcome] for k in kinds)
               for outcome in ("loaded", "refused", "failed")]
        seconds = max(result["max_seconds_by_kind"].get(k, 0.0) for k in kinds)
        print(f"{kind:<15} {sum(row):>6} {row[0]:>13} {row[1]:>10} {row[2]:>6} "
              f"{seconds:>6.2f}")
    print(f"max time per case {result['max_seconds']:.2f} s (limit {MAX_SECONDS}); peak RSS "
          f"growth {result['rss_growth_mb']:.0f} MB (limit {MAX_RSS_MB})")
    for failure in result["failures"][:20]:
        print("FAILURE", failure)
    sys.exit(1 if result["failures"] or result["rss_growth_mb"] > MAX_RSS_MB else 0)


if __name__ == "__main__":
    main()
