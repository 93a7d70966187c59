"""Archive integrity: download to a temporary file, SHA-256, progress bar, safe zip reading.

Nothing here knows about MovieLens; :mod:`skembedrec._movielens` says which URL, which digest
and which members. The rules kept here:

* a download goes to a temporary file in the destination folder and is moved into place
  (``os.replace``) only after the SHA-256 of the whole file matches and the caller's check of
  its contents passed; on any failure the temporary file is removed;
* no zip member is read before its name is known to be safe (no absolute path, no ``..``)
  and its declared size is under a limit: a member of a few kilobytes can decompress to
  gigabytes.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO

_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60
_PROGRESS_EVERY_S = 0.2


def sha256_of_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in chunks (constant memory)."""
    hasher = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


def digest_mismatch(what: str, expected: str, actual: str, advice: str = "") -> ValueError:
    """The error for a file whose SHA-256 is not the published one."""
    return ValueError(
        f"{what} has SHA-256 {actual}, expected {expected}: it is corrupt, truncated or not "
        f"the official archive.{' ' + advice if advice else ''}"
    )


def download(
    url: str,
    target: Path,
    sha256: str,
    *,
    expected_bytes: int | None = None,
    verbose: bool = False,
    check: Callable[[Path], None] | None = None,
    mismatch_advice: str = "",
) -> Path:
    """Download ``url`` to ``target``, moving it into place only once it is verified.

    Parameters
    ----------
    url : str
        Where to download from (``http``/``https``; ``file`` works too).
    target : Path
        Final path; its folder must exist. A temporary ``.part`` file is written next to it.
    sha256 : str
        Expected SHA-256 (hex) of the whole file.
    expected_bytes : int, default=None
        Expected size, used for the progress bar and to stop a server that sends more.
    verbose : bool, default=False
        Draw a progress bar on stderr.
    check : callable, default=None
        Called with the verified temporary file before it is moved into place (e.g. to
        check a zip's member names); whatever it raises aborts the download.
    mismatch_advice : str, default=""
        Appended to the message of a digest mismatch.

    Returns
    -------
    target : Path

    Raises
    ------
    OSError
        The download failed, was cut short or sent more than ``expected_bytes``.
    ValueError
        The SHA-256 does not match (nothing is kept).

    Examples
    --------
    >>> import hashlib, tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> source = folder / "source.bin"
    >>> _ = source.write_bytes(b"ratings")
    >>> digest = hashlib.sha256(b"ratings").hexdigest()
    >>> download(source.as_uri(), folder / "copy.bin", digest).read_bytes()
    b'ratings'
    >>> download(source.as_uri(), folder / "bad.bin", "0" * 64)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: The file downloaded from file://... has SHA-256 ..., expected 000...
    >>> sorted(p.name for p in folder.iterdir())
    ['copy.bin', 'source.bin']
    """
    handle, partial_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    partial = Path(partial_name)
    try:
        with os.fdopen(handle, "wb") as out:
            actual = _stream(url, out, expected_bytes, verbose)
        if actual != sha256:
            raise digest_mismatch(
                f"The file downloaded from {url}", sha256, actual,
                f"Nothing was kept in {target.parent}. {mismatch_advice}".strip(),
            )
        if check is not None:
            check(partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


def _stream(url: str, out: IO[bytes], expected_bytes: int | None, verbose: bool) -> str:
    """Copy the body of ``url`` into ``out``; return its SHA-256."""
    hasher = hashlib.sha256()
    received, overflow = 0, False
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            announced = response.headers.get("Content-Length")
            total = int(announced) if announced else expected_bytes
            bar = _ProgressBar(url.rsplit("/", 1)[-1], total) if verbose else None
            while chunk := response.read(_CHUNK_BYTES):
                received += len(chunk)
                # A server that keeps sending would fill the disk before the digest fails.
                if expected_bytes is not None and received > expected_bytes:
                    overflow = True
                    break
                out.write(chunk)
                hasher.update(chunk)
                if bar is not None:
                    bar.update(received)
            if bar is not None:
                bar.close(received)
    # HTTPError, URLError, timeouts and resets are OSErrors; a cut body is an HTTPException.
    except (OSError, http.client.HTTPException) as exc:
        raise OSError(f"Downloading {url} failed: {exc}. Call again to retry.") from exc
    if overflow:
        raise OSError(
            f"{url} sent more than the expected {expected_bytes:,} bytes: it is not the "
            "official archive (wrong URL or mirror?). Nothing was kept."
        )
    if announced is not None and received != int(announced):
        raise OSError(
            f"Downloading {url} was interrupted: received {received:,} of {int(announced):,} "
            "bytes. Nothing was kept; call again to retry."
        )
    return hasher.hexdigest()


class _ProgressBar:
    """A one-line text progress bar on stderr, redrawn at most every 0.2 s."""

    def __init__(self, name: str, total: int | None):
        self.name, self.total, self.last = name, total, 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= _PROGRESS_EVERY_S:
            self.last = now
            self._draw(done)

    def close(self, done: int) -> None:
        self._draw(done)
        sys.stderr.write("\n")
        sys.stderr.flush()

    def _draw(self, done: int) -> None:
        mib = done / 2**20
        if self.total:
            share = min(done / self.total, 1.0)
            filled = int(30 * share)
            line = (f"Downloading {self.name}: [{'=' * filled}{' ' * (30 - filled)}] "
                    f"{100 * share:3.0f}% {mib:.1f}/{self.total / 2**20:.1f} MiB")
        else:
            line = f"Downloading {self.name}: {mib:.1f} MiB"
        sys.stderr.write("\r" + line)
        sys.stderr.flush()


def check_member_names(archive: zipfile.ZipFile, where: str) -> None:
    """Refuse a zip with an absolute or ``..`` member name, before anything is read.

    Examples
    --------
    >>> import io, zipfile
    >>> buffer = io.BytesIO()
    >>> with zipfile.ZipFile(buffer, "w") as zipped:
    ...     zipped.writestr("../evil.txt", b"x")
    >>> check_member_names(zipfile.ZipFile(buffer), "evil.zip")
    Traceback (most recent call last):
    ...
    ValueError: evil.zip has an unsafe member name '../evil.txt' (absolute or with '..'); \
it is not an official archive. Delete it and download it again.
    """
    for name in archive.namelist():
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise ValueError(
                f"{where} has an unsafe member name {name!r} (absolute or with '..'); it is "
                "not an official archive. Delete it and download it again."
            )


def open_member(archive: zipfile.ZipFile, name: str, max_bytes: int, where: str) -> IO[bytes]:
    """Open one member for streaming, after checking that it exists and its declared size.

    ``zipfile`` never returns more than the declared size (and checks the CRC at the end), so
    checking the declared size bounds what reading the member can cost.
    """
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ValueError(
            f"{where} has no member {name!r}; it is not the expected archive. Delete it and "
            "download it again."
        ) from None
    if info.file_size > max_bytes:
        raise ValueError(
            f"{where}: member {name!r} declares {info.file_size:,} bytes uncompressed, over "
            f"the limit of {max_bytes:,} for this file; it is not the expected archive."
        )
    return archive.open(info)
