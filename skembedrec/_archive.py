"""The containers of a model file (zip, JSON, ``.npz``, HDF5), written atomically and read
within limits.

Reading never trusts a size written in the file: the archive size and member count are
checked first; a member is refused when its declared size is over the limit or its
compression ratio is that of a zip bomb, and it is decompressed in chunks that stop at the
declared size (a member that decompresses to more is refused at that point, not after); a
member stored uncompressed is read only if it lies within the archive, in one read of its
declared size, and checked against its digest or CRC over exactly the bytes returned.
JSON is refused above a size and a nesting depth; ``.npz`` arrays are read from their
header (shape and dtype checked against the bytes present, object arrays refused, nothing
unpickled); HDF5 datasets must be plain numeric and fit in the bytes of the file. Every
refusal is a ``ValueError`` that names the file and the limit.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
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


class ZipReader:
    """An open zip (a file name, or the bytes of a nested zip) whose members are read one at
    a time, each within limits; use it as a context manager.

    ``expected`` is the exact set of member names (empty: any names); ``path`` names the
    file in errors, ``what`` the zip within it. Every member is checked against ``limits``
    when the zip is opened (:func:`read_zip` describes the checks).

    A member stored uncompressed (arrays and weights: all the bytes of a large model) is
    read without :mod:`zipfile`'s stream, with one copy from a file and none from bytes (a
    ``memoryview`` of them), then checked over exactly the bytes returned: against the
    SHA-256 digest the caller passes, else against the zip's CRC-32; ``verified=True``
    says the bytes of this zip were checked against a digest already (a nested zip), so
    its stored members need no CRC pass of their own. Deflated members (small: JSON) go
    through :mod:`zipfile`, in chunks that stop at the declared size.
    """

    def __init__(self, source: str | bytes | memoryview, path: str, expected: frozenset[str],
                 limits: Limits, what: str = "the file", *, verified: bool = False) -> None:
        self.path, self.what, self.limits, self.verified = path, what, limits, verified
        self._view: memoryview | None = None
        if isinstance(source, str):
            self._size = os.path.getsize(source)
        else:
            self._view = memoryview(source).cast("B")
            self._size = len(self._view)
        if self._size > limits.file_bytes:
            raise refuse(path, f"{what} is {self._size} bytes, over the limit of "
                         f"{limits.file_bytes} (limits={{'file_bytes': ...}} raises it)")
        self._file: Any = (open(source, "rb") if isinstance(source, str)
                           else _ViewFile(memoryview(source).cast("B")))
        try:
            self._archive = zipfile.ZipFile(self._file)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
                NotImplementedError) as exc:
            self._file.close()
            raise ValueError(
                f"{path!r} is not a skembedrec model file ({what} is not a zip archive written "
                f"by EmbeddingRatingRegressor.save; it may be truncated or corrupted): {exc}"
            ) from exc
        except BaseException:
            self._file.close()
            raise
        infos = self._archive.infolist()
        try:
            _check_members(infos, path, expected, limits, what)
        except BaseException:
            self.close()
            raise
        self.infos = {info.filename: info for info in infos}

    def __enter__(self) -> ZipReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the zip (and the file it opened)."""
        self._archive.close()
        self._file.close()

    def read(self, name: str, sha256: str | None = None) -> bytes | memoryview:
        """The bytes of the member ``name``; with ``sha256`` (hex), only if they have that
        digest, else a ValueError saying the file is corrupted."""
        info = self.infos[name]
        hasher = hashlib.sha256() if sha256 is not None else None
        if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & _NOT_PLAIN:
            data = self._stored(info, hasher)
            if hasher is None and not self.verified and zlib.crc32(data) != info.CRC:
                raise _corrupted(self.path, name, self.what, "its CRC-32 does not match")
        else:
            data = _read_member(self._archive, info, self.path, self.limits, self.what)
            if hasher is not None:
                hasher.update(data)
        if hasher is not None and hasher.hexdigest() != sha256:
            raise ValueError(f"{self.path!r} is corrupted: the member {name!r} does not match "
                             "the SHA-256 digest recorded for it.")
        return data

    def _stored(self, info: zipfile.ZipInfo,
                hasher: Any = None) -> bytes | memoryview:
        """A stored member's bytes, found from its local header as :mod:`zipfile` finds
        them, refused if they would reach past the end of the zip; fed to ``hasher``."""
        header = self._slice(info.header_offset, _LOCAL_HEADER.size, info)
        fields = _LOCAL_HEADER.unpack(header)
        if fields[0] != _LOCAL_MAGIC:
            raise _corrupted(self.path, info.filename, self.what, "no local file header")
        name_length, extra_length = fields[10], fields[11]
        raw_name = bytes(self._slice(info.header_offset + _LOCAL_HEADER.size, name_length,
                                     info))
        name = raw_name.decode("utf-8" if fields[3] & _UTF8_NAME else "cp437", "replace")
        if name != info.orig_filename:
            raise _corrupted(self.path, info.filename, self.what,
                             f"its local header names {name!r}")
        if info.compress_size != info.file_size:
            raise _corrupted(self.path, info.filename, self.what,
                             f"stored as {info.compress_size} bytes but declares "
                             f"{info.file_size}")
        start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        if hasher is not None and self._view is None:
            return self._read_hashing(start, info, hasher)
        data = self._slice(start, info.file_size, info)
        if hasher is not None:
            hasher.update(data)
        return data

    def _check_within(self, start: int, size: int, info: zipfile.ZipInfo) -> None:
        if start + size > self._size:
            raise _corrupted(self.path, info.filename, self.what,
                             f"{size} bytes at {start} reach past the end of {self._size}")

    def _slice(self, start: int, size: int, info: zipfile.ZipInfo) -> bytes | memoryview:
        self._check_within(start, size, info)
        if self._view is not None:
            return self._view[start:start + size]
        self._file.seek(start)
        data = self._file.read(size)  # one allocation of the size checked above
        if len(data) != size:
            raise _corrupted(self.path, info.filename, self.what,
                             f"{len(data)} bytes instead of {size}")
        return data

    def _read_hashing(self, start: int, info: zipfile.ZipInfo, hasher: Any) -> memoryview:
        """Read a stored member from the file in chunks, each hashed by a second thread
        while the next one is read (hashlib and file reads release the GIL): reading and
        hashing take about as long each, so together they take about as long as one."""
        size = info.file_size
        self._check_within(start, size, info)
        buffer = np.empty(size, dtype=np.uint8).data  # pages touched by the reads
        self._file.seek(start)
        position, hashing = 0, None
        with ThreadPoolExecutor(max_workers=1) as pool:
            while position < size:
                n = self._file.readinto(buffer[position:position + _HASH_CHUNK])
                if not n:
                    break
                if hashing is not None:
                    hashing.result()
                hashing = pool.submit(hasher.update, buffer[position:position + n])
                position += n
            if hashing is not None:
                hashing.result()
        if position != size:
            raise _corrupted(self.path, info.filename, self.what,
                             f"{position} bytes instead of {size}")
        return buffer


# zipfile's local file header (structFileHeader); the flags zipfile's own path handles
# (encrypted, patched, strongly encrypted), and the flag of a UTF-8 name.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_MAGIC = b"PK\x03\x04"
_NOT_PLAIN = 0x1 | 0x20 | 0x40
_UTF8_NAME = 0x800
_HASH_CHUNK = 8 * _MiB


class _ViewFile(io.RawIOBase):
    """A read-only, seekable file over a memoryview, without the copy ``io.BytesIO`` makes
    of anything but ``bytes``: for :mod:`zipfile` and h5py."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view, self._position = view, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._position:self._position + len(buffer)]
        buffer[:len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}
        position = base[whence] + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def tell(self) -> int:
        return self._position


def read_zip(source: str | bytes | memoryview, path: str, expected: frozenset[str],
             limits: Limits, what: str = "the file", *,
             verified: bool = False) -> dict[str, bytes | memoryview]:
    """The members of a zip (a file name, or bytes of a nested zip), each read within limits.

    ``expected`` is the exact set of member names (empty: any names). ``path`` names the
    file in errors, ``what`` the zip within it; ``verified`` as for :class:`ZipReader`.
    The archive size and member count are checked first; a member is refused when its
    declared size is over the limit or its compression ratio is that of a zip bomb.
    """
    with ZipReader(source, path, expected, limits, what, verified=verified) as reader:
        return {name: reader.read(name) for name in reader.infos}


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


def read_json(data: bytes | memoryview, path: str, name: str, limits: Limits) -> Any:
    """Parse a JSON member within the size and nesting-depth limits."""
    if len(data) > limits.json_bytes:
        raise refuse(path, f"{name} is {len(data)} bytes of JSON, over the limit of "
                     f"{limits.json_bytes}")
    try:
        value = json.loads(bytes(data))
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


def read_npz(data: bytes | memoryview, path: str, name: str, limits: Limits, *,
             verified: bool = False) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz``, each checked against its header before it is built.

    Only plain numeric and bool arrays are accepted: an object array (the carrier of
    pickles) is refused unread, and an array's shape must account for exactly the bytes
    present, so memory never exceeds the member's size. ``verified``: ``data`` was checked
    against a digest (see :class:`ZipReader`). Each array is one copy of its bytes in
    ``data``: writable, aligned, and not holding ``data`` alive.
    """
    arrays = {}
    with ZipReader(data, path, frozenset(), limits, what=name, verified=verified) as reader:
        for member in reader.infos:
            if not member.endswith(".npy"):
                raise ValueError(f"{path!r} is corrupted: {name} holds {member!r}, not an "
                                 "array.")
            arrays[member[:-4]] = _npy_array(reader.read(member), path, f"{name}/{member}")
    return arrays


# The most an .npy header may take: magic, version, its length, and the 10,000 bytes
# numpy's reader accepts (a longer one is refused as corrupted).
_NPY_PREFIX = 16 + 10_000


def _npy_array(raw: bytes | memoryview, path: str, what: str) -> np.ndarray:
    stream = io.BytesIO(raw[:_NPY_PREFIX])  # a copy of the header only
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
    body = memoryview(raw)[stream.tell():]
    if count * dtype.itemsize != len(body):
        raise ValueError(f"{path!r} is corrupted: {what} declares shape {shape} of {dtype} "
                         f"({count * dtype.itemsize} bytes) but holds {len(body)} bytes.")
    array = np.frombuffer(body, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def check_hdf5(data: bytes | memoryview, path: str, what: str) -> None:
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
        with h5py.File(_ViewFile(memoryview(data)), "r") as store:
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
