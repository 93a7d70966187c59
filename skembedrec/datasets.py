"""Rating datasets: the MovieLens 100K loader and a synthetic generator with latent structure."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import get_data_home
from sklearn.utils import Bunch, check_random_state

from ._arrays import sorted_unique

__all__ = ["load_movielens_100k", "make_ratings", "read_ratings"]

_ARCHIVE_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
# Digest of the official zip as (hashlib algorithm, hex digest). Its SHA-256 was not available
# where this module was written (no network); this MD5 is the one published for the same URL by
# several independent loaders (e.g. torchtext's MovieLens100K and datarec), not re-measured
# here. MD5 catches corrupt or truncated downloads but not a deliberately forged archive, which
# is why the ratings file itself is also checked against _RATINGS_SHA256 below. Replace it with
# ("sha256", <digest>) once the official zip has been hashed. Tests override this attribute.
_ARCHIVE_DIGEST: tuple[str, str] = ("md5", "0e33842e24a9c977be4e0107933c0723")
# SHA-256 of the original ml-100k/u.data (100,000 lines), measured with hashlib on an original
# copy of the file. Checked after every extraction and every load.
_RATINGS_SHA256 = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
_SUBFOLDER = "movielens_100k"
_FILES = ("u.data", "u.item", "u.user")
_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)
_DOWNLOAD_TIMEOUT_S = 60
_CHUNK_BYTES = 1 << 16
_SIGNAL_BLOCK = 1 << 18


def make_ratings(
    n_users: int = 200,
    n_items: int = 300,
    n_ratings: int = 10_000,
    n_factors: int = 8,
    noise: float = 0.5,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Generate 1-5 star ratings from latent user and item factors.

    Each rating is ``round(3.5 + b_u + b_i + p_u . q_i + noise)`` clipped to 1..5, where
    ``p_u`` and ``q_i`` are Gaussian factors of size ``n_factors`` and ``b_u``, ``b_i``
    Gaussian biases. Users and items are drawn with a long-tailed (Zipf-like) activity and
    popularity, as in real rating data, and each (user, item) pair appears at most once.

    Parameters
    ----------
    n_users : int, default=200
        Number of users (ids ``0..n_users-1``).
    n_items : int, default=300
        Number of items (ids ``0..n_items-1``).
    n_ratings : int, default=10_000
        Number of ratings; at most ``n_users * n_items``.
    n_factors : int, default=8
        Size of the latent factors.
    noise : float, default=0.5
        Standard deviation of the Gaussian noise added before rounding.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible data.

    Returns
    -------
    X : DataFrame of shape (n_ratings, 2)
        Columns ``user_id`` and ``item_id`` (int64).
    y : Series of shape (n_ratings,)
        The ratings, named ``rating`` (float64, values 1..5).

    Examples
    --------
    >>> from skembedrec.datasets import make_ratings
    >>> X, y = make_ratings(n_users=10, n_items=20, n_ratings=50, random_state=0)
    >>> X.shape, sorted(X.columns), y.between(1, 5).all()
    ((50, 2), ['item_id', 'user_id'], np.True_)
    """
    for name, value in (("n_users", n_users), ("n_items", n_items), ("n_ratings", n_ratings)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}.")
    if n_ratings > n_users * n_items:
        raise ValueError(
            f"n_ratings={n_ratings} exceeds the {n_users * n_items} possible (user, item) pairs."
        )
    if not isinstance(n_factors, (int, np.integer)) or n_factors < 1:
        raise ValueError(f"n_factors must be a positive int; got {n_factors!r}.")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise!r}.")
    rng = check_random_state(random_state)

    users, items = _sample_pairs(n_users, n_items, n_ratings, rng)
    user_factors = rng.normal(0, 1 / np.sqrt(n_factors), size=(n_users, n_factors))
    item_factors = rng.normal(0, 1 / np.sqrt(n_factors), size=(n_items, n_factors))
    user_bias = rng.normal(0, 0.4, size=n_users)
    item_bias = rng.normal(0, 0.5, size=n_items)
    # In blocks: gathering all rows at once costs 2 * n_ratings * n_factors floats (2.6 GB at
    # 10M ratings and 16 factors).
    signal = np.empty(n_ratings)
    for start in range(0, n_ratings, _SIGNAL_BLOCK):
        block = slice(start, start + _SIGNAL_BLOCK)
        signal[block] = np.einsum(
            "ij,ij->i", user_factors[users[block]], item_factors[items[block]]
        )
    raw = 3.5 + user_bias[users] + item_bias[items] + signal + rng.normal(0, noise, n_ratings)
    ratings = np.clip(np.rint(raw), 1, 5)
    X = pd.DataFrame({"user_id": users.astype(np.int64), "item_id": items.astype(np.int64)})
    return X, pd.Series(ratings, name="rating")


def _sample_pairs(
    n_users: int, n_items: int, n_ratings: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs with long-tailed user activity and item popularity."""
    user_weights = _zipf_weights(n_users, rng)
    item_weights = _zipf_weights(n_items, rng)
    if n_ratings > 0.5 * n_users * n_items:
        # Dense request: sampling with rejection would stall, so take a random subset.
        flat = rng.choice(n_users * n_items, size=n_ratings, replace=False)
        return flat // n_items, flat % n_items
    chosen = np.empty(0, dtype=np.int64)
    while chosen.size < n_ratings:
        draw = int((n_ratings - chosen.size) * 1.3) + 16
        u = rng.choice(n_users, size=draw, p=user_weights)
        i = rng.choice(n_items, size=draw, p=item_weights)
        chosen = sorted_unique(np.concatenate([chosen, u.astype(np.int64) * n_items + i]))
        if chosen.size >= n_ratings:
            chosen = rng.choice(chosen, size=n_ratings, replace=False)
            break
        # Popular pairs saturate; flatten the weights so the rest can still be reached.
        user_weights = 0.5 * user_weights + 0.5 / n_users
        item_weights = 0.5 * item_weights + 0.5 / n_items
    rng.shuffle(chosen)
    return chosen // n_items, chosen % n_items


def _zipf_weights(n: int, rng: np.random.RandomState) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** 0.8
    weights = weights[rng.permutation(n)]
    return weights / weights.sum()


def load_movielens_100k(
    data_home: str | os.PathLike | None = None,
    download_if_missing: bool = True,
    return_X_y: bool = False,
    as_frame: bool = True,
) -> Bunch | tuple:
    """Load the MovieLens 100K ratings, with item titles and user demographics.

    100,000 ratings (1-5 stars) that 943 users gave 1,682 movies, released by GroupLens
    (https://grouplens.org/datasets/movielens/100k/). The files are read from
    ``<data_home>/movielens_100k/ml-100k/`` (``u.data``, ``u.item``, ``u.user`` in the
    official pipe/tab-separated formats). When they are missing and ``download_if_missing``
    is True, the official zip is downloaded once from
    ``https://files.grouplens.org/datasets/movielens/ml-100k.zip``, its digest is checked and
    the three files are extracted. ``u.data`` is checked against the SHA-256 of the original
    file after every extraction and every load, so a corrupt or altered copy is refused.

    To use a copy you already have (no network), put the three files of the official zip in
    ``<data_home>/movielens_100k/ml-100k/``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Where datasets are cached, as in :func:`sklearn.datasets.get_data_home`: by default
        ``~/scikit_learn_data``, or the ``SCIKIT_LEARN_DATA`` environment variable if set.
    download_if_missing : bool, default=True
        If False, raise a :class:`FileNotFoundError` instead of downloading missing files.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=True
        If True, ``data`` is a DataFrame with columns ``user_id`` and ``item_id`` and
        ``target`` a Series named ``rating``. If False, they are NumPy arrays and ``frame``
        is None. ``movies`` and ``users`` are DataFrames either way.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : DataFrame of shape (100000, 2) or ndarray
            The ``user_id`` and ``item_id`` of each rating (int64), in file order.
        target : Series of shape (100000,) or ndarray
            The ratings, named ``rating`` (float64, values 1..5).
        frame : DataFrame of shape (100000, 4) or None
            ``user_id``, ``item_id``, ``rating`` and ``timestamp`` (seconds since the Unix
            epoch, useful for time-ordered splits). None when ``as_frame=False``.
        movies : DataFrame of shape (1682, 4)
            The items: ``movie_id`` (equal to ``item_id``), ``title`` (without the year), ``year``
            (nullable Int64, from the title's "(YYYY)" or else the release date) and
            ``genres`` (names joined with ``"|"``).
        users : DataFrame of shape (943, 5)
            ``user_id``, ``age``, ``gender``, ``occupation`` and ``zip_code`` (str).
        feature_names : list of str
            ``["user_id", "item_id"]``.
        target_names : list of str
            ``["rating"]``.
        DESCR : str
            Description of the dataset, its citation and terms of use.

    (data, target) : tuple if ``return_X_y`` is True
        ``data`` and ``target`` as described above.

    Raises
    ------
    FileNotFoundError
        If the files are missing and ``download_if_missing`` is False.
    OSError
        If the download fails or is interrupted, or a digest does not match. No partial file
        is left behind.

    Notes
    -----
    The MovieLens data may not be redistributed; see the terms in ``DESCR``. Please cite
    F. Maxwell Harper and Joseph A. Konstan (2015), "The MovieLens Datasets: History and
    Context", ACM TiiS 5(4).

    Examples
    --------
    >>> from skembedrec.datasets import load_movielens_100k
    >>> ratings = load_movielens_100k()  # doctest: +SKIP
    >>> ratings.data.shape, ratings.target.mean().round(2)  # doctest: +SKIP
    ((100000, 2), np.float64(3.53))
    >>> X, y = load_movielens_100k(return_X_y=True)  # doctest: +SKIP

    Without the files and with downloads disabled, the error says where to put them:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as empty_home:
    ...     load_movielens_100k(data_home=empty_home, download_if_missing=False)
    ...     # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: MovieLens 100K not found in ...
    """
    folder = Path(get_data_home(data_home)) / _SUBFOLDER / "ml-100k"
    if not all((folder / name).is_file() for name in _FILES):
        if not download_if_missing:
            raise FileNotFoundError(
                f"MovieLens 100K not found in {folder} and download_if_missing=False. Call "
                f"again with download_if_missing=True, or download {_ARCHIVE_URL} and put "
                f"its files {', '.join(_FILES)} in that folder."
            )
        _download_and_extract(folder)
    _check_ratings_file(folder / "u.data")

    frame = _read_ratings_frame(folder / "u.data")
    data, target = frame[["user_id", "item_id"]], frame["rating"]
    if not as_frame:
        data, target, frame = data.to_numpy(), target.to_numpy(), None
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        frame=frame,
        # Not "items": that name is dict.items on a Bunch.
        movies=_read_items(folder / "u.item"),
        users=_read_users(folder / "u.user"),
        feature_names=["user_id", "item_id"],
        target_names=["rating"],
        DESCR=_DESCR.format(url=_ARCHIVE_URL),
    )


_DESCR = """\
MovieLens 100K
==============

100,000 ratings (1 to 5 stars) from 943 users on 1,682 movies, collected by the GroupLens
Research Project at the University of Minnesota through the MovieLens web site between
September 1997 and April 1998. Each user rated at least 20 movies. Users come with simple
demographics (age, gender, occupation, zip code); movies with title, release date and 19
genre flags.

Source: {url}
(https://grouplens.org/datasets/movielens/100k/)

Terms of use (summary; see the README in the zip): the data may be used for research, must not
be redistributed without permission, and publications using it must cite:

F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context.
ACM Transactions on Interactive Intelligent Systems (TiiS) 5, 4, Article 19.
https://doi.org/10.1145/2827872
"""


def read_ratings(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.Series]:
    r"""Read ratings in MovieLens' ``u.data`` format (no download, no checksum).

    ``u.data`` is tab separated: user id, item id, rating, unix timestamp, no header.

    Parameters
    ----------
    path : str or path-like
        The ``u.data`` file, or the folder that holds it.

    Returns
    -------
    X : DataFrame of shape (n_ratings, 2)
        Columns ``user_id`` and ``item_id``.
    y : Series of shape (n_ratings,)
        The ratings (float64), named ``rating``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "u.data").write_text("1\t10\t4\t881250949\n2\t10\t3\t881250950\n")
    >>> X, y = read_ratings(folder)
    >>> X.shape, y.tolist()
    ((2, 2), [4.0, 3.0])
    """
    path = Path(path)
    frame = _read_ratings_frame(path / "u.data" if path.is_dir() else path)
    return frame[["user_id", "item_id"]], frame["rating"]


def _read_ratings_frame(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(
        path, sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"],
        dtype="int64",
    )
    frame["rating"] = frame["rating"].astype("float64")
    return frame


def _download_and_extract(folder: Path) -> None:
    """Fetch the zip into ``folder``'s parent, verify it, extract the files, remove the zip.

    Every file is written under a temporary name in its final folder and moved into place with
    ``os.replace``, so an interrupted run never leaves a partial file under a final name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    archive = _download(_ARCHIVE_URL, folder.parent, _ARCHIVE_DIGEST)
    try:
        with zipfile.ZipFile(archive) as zipped:
            # Only the known members, written to fixed paths: no path from the zip is trusted.
            for name in _FILES:
                try:
                    payload = zipped.read(f"ml-100k/{name}")
                except KeyError:
                    raise OSError(
                        f"The archive from {_ARCHIVE_URL} has no ml-100k/{name}; it is not the "
                        "MovieLens 100K zip."
                    ) from None
                if name == "u.data":
                    _check_digest(payload, "sha256", _RATINGS_SHA256, f"ml-100k/{name}")
                _write_atomically(folder / name, payload)
    finally:
        archive.unlink(missing_ok=True)


def _download(url: str, folder: Path, digest: tuple[str, str]) -> Path:
    """Download ``url`` to ``folder`` under its own name, checking size and digest."""
    target = folder / url.rsplit("/", 1)[-1]
    algorithm, expected = digest
    hasher = hashlib.new(algorithm)
    handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
    try:
        received = 0
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                    announced = response.headers.get("Content-Length")
                    while chunk := response.read(_CHUNK_BYTES):
                        out.write(chunk)
                        hasher.update(chunk)
                        received += len(chunk)
            # URLError, timeouts and resets are OSErrors; a cut chunked body is an HTTPException.
            except (OSError, http.client.HTTPException) as exc:
                raise OSError(f"Downloading {url} failed: {exc}") from exc
        if announced is not None and received != int(announced):
            raise OSError(
                f"Downloading {url} was interrupted: received {received:,} of "
                f"{int(announced):,} bytes. Call again to retry."
            )
        if hasher.hexdigest() != expected:
            raise OSError(
                f"The file downloaded from {url} has {algorithm} {hasher.hexdigest()}, expected "
                f"{expected}: it is corrupt or not the official archive. Nothing was kept; call "
                "again to retry."
            )
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return target


def _write_atomically(path: Path, payload: bytes) -> None:
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _check_digest(payload: bytes, algorithm: str, expected: str, what: str) -> None:
    actual = hashlib.new(algorithm, payload).hexdigest()
    if actual != expected:
        raise OSError(
            f"{what} has {algorithm} {actual}, expected {expected}: it is not the original "
            "MovieLens 100K file."
        )


def _check_ratings_file(path: Path) -> None:
    try:
        _check_digest(path.read_bytes(), "sha256", _RATINGS_SHA256, str(path))
    except OSError as exc:
        raise OSError(
            f"{exc} Delete {path.parent} and call load_movielens_100k again to download a "
            "fresh copy."
        ) from None


def _read_items(path: Path) -> pd.DataFrame:
    # u.item is Latin-1 encoded: movie id | title | release date | video release date |
    # IMDb URL | 19 genre flags.
    raw = pd.read_csv(
        path, sep="|", header=None, encoding="latin-1", dtype=str, keep_default_na=False,
        names=["movie_id", "title", "release_date", "video_release_date", "url", *_GENRES],
    )
    parts = raw["title"].str.extract(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")
    title = parts["title"].fillna(raw["title"]).str.strip()
    year = parts["year"].fillna(raw["release_date"].str.extract(r"(\d{4})$")[0])
    flags = (raw[list(_GENRES)] == "1").to_numpy()
    names = np.array(_GENRES, dtype=object)
    genres = ["|".join(names[row]) for row in flags]
    return pd.DataFrame({
        "movie_id": raw["movie_id"].astype("int64"),
        "title": title,
        "year": pd.to_numeric(year).astype("Int64"),
        "genres": genres,
    })


def _read_users(path: Path) -> pd.DataFrame:
    users = pd.read_csv(
        path, sep="|", header=None, encoding="latin-1",
        names=["user_id", "age", "gender", "occupation", "zip_code"],
        dtype={"user_id": "int64", "age": "int64", "gender": str, "occupation": str,
               "zip_code": str},
    )
    return users
