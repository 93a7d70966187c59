"""The containers of a model file (zip, JSON, ``.npz``, HDF5), written atomically and read
within limits.

Reading never trusts a size written in the file: the archive size and member count are
checked first; a member is refused when its declared size is over the limit or its
compression ratio is that of a zip bomb, and it is decompressed in chunks that stop at the
declared size (a member that decompresses to more is refused at that point, not after).
JSON is refused above a size and a nesting depth; ``.npz`` arrays are read from their
header (shape and dtype checked against the bytes present, object arrays refused, nothing
unpickled); HDF5 datasets must be plain numeric and fit in the bytes of the file. Every
refusal is a ``ValueError`` that names the file and the limit.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

_GiB = 1 << 30
_MiB = 1 << 20
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds on what a model file may make :func:`read_zip` and friends allocate.

    The defaults hold a model fitted on MovieLens 25M (162,541 users x 59,047 items, 25M
    ratings, default parameters: a file of about 2 GiB) with room to spare.
    """

    file_bytes: int = 16 * _GiB  # the file on disk
    members: int = 10_000  # members of one zip (the .npz holds one per array)
    member_bytes: int = 8 * _GiB  # declared decompressed size of one member
    total_bytes: int = 16 * _GiB  # decompressed size of all members of one zip
    ratio: float = 200.0  # decompressed / compressed size, for members over 1 MiB
    json_bytes: int = 256 * _MiB
    json_depth: int = 64
    width: int = 65_536  # columns of one table (factors x members, feature widths)

    def updated(self, overrides: Mapping[str, Any] | None) -> Limits:
        """These limits with ``overrides`` (a mapping of field name to value) applied."""
        if not overrides:
            return self
        names = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"Unknown load limit(s) {unknown}; the limits are {sorted(names)}.")
        for name, value in overrides.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"The load limit {name!r} must be a positive number; got "
                                 f"{value!r}.")
        return replace(self, **overrides)


DEFAULT_LIMITS = Limits()
_RATIO_FLOOR = _MiB  # small members (JSON, config) compress well and are cheap anyway


def refuse(path: str, what: str) -> ValueError:
    """The ValueError for a file that fails a check: it names the file and what is wrong."""
    return ValueError(f"Refusing to load {path!r}: {what}. Nothing was loaded.")


# -- writing ---------------------------------------------------------------------------------


def write_zip(path: str, members: Mapping[str, bytes]) -> None:
    """Write ``members`` (name -> bytes) as a zip, atomically: members under 1 MiB (JSON)
    deflated, larger ones (arrays, weights) stored.

    Deflating the arrays and weights of a large model made ``save`` ~19x slower than
    ``joblib.dump`` for a file ~1/3 smaller (float weights compress poorly). The file is
    written next to ``path`` and renamed into place, so an interrupted save never leaves a
    half-written file under ``path``.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, partial = tempfile.mkstemp(prefix=".skembedrec-", suffix=".partial", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(out, "w") as zf:
            for name, data in members.items():
                compression = zipfile.ZIP_DEFLATED if len(data) < _MiB else zipfile.ZIP_STORED
                zf.writestr(name, data, compress_type=compression)
        os.chmod(partial, 0o666 & ~_umask())  # mkstemp's 0600 is for the partial file only
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """``arrays`` as the bytes of an uncompressed ``.npz`` (read by :func:`read_npz`)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


# -- reading ---------------------------------------------------------------------------------


def read_zip(source: str | bytes, path: str, expected: frozenset[str], limits: Limits,
             what: str = "the file") -> dict[str, bytes]:
    """The members of a zip (a file name, or bytes of a nested zip), each read within limits.

    ``expected`` is the exact set of member names (empty: any names). ``path`` names the
    file in errors, ``what`` the zip within it.
    """
    size = len(source) if isinstance(source, bytes) else os.path.getsize(source)
    if size > limits.file_bytes:
        raise refuse(path, f"{what} is {size} bytes, over the limit of {limits.file_bytes} "
                     "(limits={'file_bytes': ...} raises it)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            NotImplementedError) as exc:
        raise ValueError(
            f"{path!r} is not a skembedrec model file ({what} is not a zip archive written by "
            f"EmbeddingRatingRegressor.save; it may be truncated or corrupted): {exc}"
        ) from exc
    with archive:
        infos = archive.infolist()
        _check_members(infos, path, expected, limits, what)
        return {info.filename: _read_member(archive, info, path, limits, what)
                for info in infos}


def _check_members(infos: list[zipfile.ZipInfo], path: str, expected: frozenset[str],
                   limits: Limits, what: str) -> None:
    if len(infos) > limits.members:
        raise refuse(path, f"{what} has {len(infos)} members, over the limit of "
                     f"{limits.members}")
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise refuse(path, f"{what} repeats a member name")
    if expected and set(names) != expected:
        raise refuse(
            path, f"{what} is not a file written by EmbeddingRatingRegressor.save (unexpected "
            f"member(s) {sorted(set(names) - expected)}, missing member(s) "
            f"{sorted(expected - set(names))})")
    total = 0
    for info in infos:
        declared = info.file_size
        if declared > limits.member_bytes:
            raise refuse(path, f"the member {info.filename!r} of {what} declares {declared} "
                         f"bytes, over the limit of {limits.member_bytes} "
                         "(limits={'member_bytes': ...} raises it)")
        if declared > _RATIO_FLOOR and declared > limits.ratio * max(info.compress_size, 1):
            raise refuse(path, f"the member {info.filename!r} of {what} expands "
                         f"{declared / max(info.compress_size, 1):.0f}-fold, over the limit "
                         f"of {limits.ratio:.0f} (a zip bomb)")
        total += declared
    if total > limits.total_bytes:
        raise refuse(path, f"{what} declares {total} bytes in all, over the limit of "
                     f"{limits.total_bytes}")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, limits: Limits,
                 what: str) -> bytes:
    """Decompress one member in chunks, stopping as soon as it passes its declared size."""
    declared = info.file_size
    chunks, n = [], 0
    try:
        with archive.open(info) as member:
            while True:
                chunk = member.read(min(_CHUNK, declared - n + 1))
                if not chunk:
                    break
                n += len(chunk)
                if n > declared:
                    raise refuse(path, f"the member {info.filename!r} of {what} decompresses "
                                 f"to more than its declared {declared} bytes")
                chunks.append(chunk)
    except ValueError as exc:
        if str(exc).startswith("Refusing"):
            raise
        raise _corrupted(path, info.filename, what, exc) from exc
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError,
            zlib.error) as exc:
        raise _corrupted(path, info.filename, what, exc) from exc
    if n != declared:
        raise _corrupted(path, info.filename, what, f"{n} bytes instead of {declared}")
    return b"".join(chunks)


def _corrupted(path: str, name: str, what: str, exc: Any) -> ValueError:
    detail = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else exc
    return ValueError(f"{path!r} is truncated or corrupted: the member {name!r} of {what} "
                      f"cannot be read ({detail}).")


def read_json(data: bytes, path: str, name: str, limits: Limits) -> Any:
    """Parse a JSON member within the size and nesting-depth limits."""
    if len(data) > limits.json_bytes:
        raise refuse(path, f"{name} is {len(data)} bytes of JSON, over the limit of "
                     f"{limits.json_bytes}")
    try:
        value = json.loads(data)
    except RecursionError as exc:
        raise refuse(path, f"{name} nests JSON deeper than {limits.json_depth} levels") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path!r} is corrupted: {name} is not valid JSON ({exc}).") from exc
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.json_depth:
            raise refuse(path, f"{name} nests JSON deeper than {limits.json_depth} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return value


def read_npz(data: bytes, path: str, name: str, limits: Limits) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz``, each checked against its header before it is built.

    Only plain numeric and bool arrays are accepted: an object array (the carrier of
    pickles) is refused unread, and an array's shape must account for exactly the bytes
    present, so memory never exceeds the member's size.
    """
    members = read_zip(data, path, frozenset(), limits, what=name)
    arrays = {}
    for member, raw in members.items():
        if not member.endswith(".npy"):
            raise ValueError(f"{path!r} is corrupted: {name} holds {member!r}, not an array.")
        arrays[member[:-4]] = _npy_array(raw, path, f"{name}/{member}")
    return arrays


def _npy_array(raw: bytes, path: str, what: str) -> np.ndarray:
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        header = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}[version]
        shape, fortran, dtype = header(stream, max_header_size=10_000)
    except Exception as exc:  # numpy parses the header with tokenize and ast: TokenError...
        raise ValueError(f"{path!r} is corrupted: {what} has no valid array header "
                         f"({type(exc).__name__}: {exc}).") from exc
    if dtype.hasobject or dtype.kind not in "biufcmM":
        raise refuse(path, f"{what} holds pickled Python objects (an array of dtype {dtype}), "
                     "which could run code when unpickled; files written by "
                     "EmbeddingRatingRegressor.save never do. Nothing was unpickled")
    count = 1
    for n in shape:
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{path!r} is corrupted: {what} has the shape {shape}.")
        count *= n
    body = raw[stream.tell():]
    if count * dtype.itemsize != len(body):
        raise ValueError(f"{path!r} is corrupted: {what} declares shape {shape} of {dtype} "
                         f"({count * dtype.itemsize} bytes) but holds {len(body)} bytes.")
    array = np.frombuffer(body, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def check_hdf5(data: bytes, path: str, what: str) -> None:
    """Refuse an HDF5 file whose datasets are not plain numeric or do not fit in its bytes.

    Keras writes every weight as an uncompressed numeric dataset, so their sizes add up to
    less than the file; a dataset declaring more (compressed or sparse fill) would make the
    reader allocate what the file does not hold.
    """
    import h5py

    total = 0
    problems: list[str] = []

    def visit(name: str, node: Any) -> None:
        nonlocal total
        if isinstance(node, h5py.Dataset):
            if node.dtype.kind not in "biuf" or node.compression is not None:
                problems.append(f"{name} ({node.dtype}, compression {node.compression})")
            total += int(np.prod(node.shape, dtype=np.float64)) * node.dtype.itemsize

    try:
        with h5py.File(io.BytesIO(data), "r") as store:
            store.visititems(visit)
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError... on bad input
        raise ValueError(f"{path!r} is corrupted: {what} cannot be read "
                         f"({type(exc).__name__}: {exc}).") from exc
    if problems:
        raise refuse(path, f"{what} holds datasets that are not plain numeric arrays: "
                     f"{problems[:3]}")
    if total > len(data):
        raise refuse(path, f"the datasets of {what} declare {total} bytes, more than the "
                     f"{len(data)} bytes of the file")
