"""Rating datasets: the MovieLens loaders and a synthetic generator with latent structure.

:func:`fetch_movielens` downloads, verifies (SHA-256) and reads the six MovieLens archives
that GroupLens publishes, or reads the zip or extracted folder you already have;
:func:`make_ratings` makes synthetic ratings without any download;
:func:`read_ratings` reads a ``u.data`` file you already have.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import get_data_home
from sklearn.utils import Bunch, check_random_state

from . import _download, _movielens
from ._arrays import sorted_unique

__all__ = [
    "example_ratings", "fetch_movielens", "fetch_movielens_100k", "load_movielens_100k",
    "make_ratings", "read_ratings",
]

# SHA-256 of the original ml-100k/u.data (100,000 lines), checked whenever u.data is read.
_RATINGS_SHA256 = _movielens.VARIANTS["100k"].member_sha256["u.data"]
# Bumped when the layout of the columnar cache changes: older caches are then rebuilt.
_CACHE_VERSION = 1
_SIGNAL_BLOCK = 1 << 18


def make_ratings(
    n_users: int = 200,
    n_items: int = 300,
    n_ratings: int = 10_000,
    n_factors: int = 8,
    noise: float = 0.5,
    random_state: int | np.random.RandomState | None = None,
    *,
    compact: bool = False,
) -> tuple[pd.DataFrame, pd.Series]:
    """Generate 1-5 star ratings from latent user and item factors.

    Each rating is ``round(3.5 + b_u + b_i + p_u . q_i + noise)`` clipped to 1..5, where
    ``p_u`` and ``q_i`` are Gaussian factors of size ``n_factors`` and ``b_u``, ``b_i``
    Gaussian biases. Each (user, item) pair appears at most once, in random order.

    The degrees are long-tailed like MovieLens's: each user rates
    ``min(20, n_ratings // (5 * n_users))`` items plus a Gamma(0.65)-distributed excess (so
    every user is present, as in MovieLens where each user has at least 20 ratings), at most
    half the items (or the mean degree if more); items are picked in proportion to
    Gamma(0.35)-distributed popularities, and each item is rated at least once when
    ``n_items <= n_ratings``. At the ML-100K shape (943 users, 1,682 items, 100,000 ratings)
    the Gini coefficients of the user and item degrees are 0.48 and 0.63, ML-100K's 0.47 and
    0.63 (``benchmarks/scale.py --shape`` prints quantiles too). Requests denser than half of
    all pairs are drawn uniformly. ML-25M's shape (25M ratings) takes ~25 s and ~1 GB.

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
    compact : bool, default=False
        Return int32 ids and float32 ratings (12 instead of 24 bytes a rating; the values
        are the same as with ``compact=False``). For tens of millions of ratings.

    Returns
    -------
    X : DataFrame of shape (n_ratings, 2)
        Columns ``user_id`` and ``item_id`` (int64, int32 if ``compact``).
    y : Series of shape (n_ratings,)
        The ratings, named ``rating`` (float64, float32 if ``compact``; values 1..5).

    Examples
    --------
    >>> from skembedrec.datasets import make_ratings
    >>> X, y = make_ratings(n_users=10, n_items=20, n_ratings=50, random_state=0)
    >>> X.shape, sorted(X.columns), bool(y.between(1, 5).all())
    ((50, 2), ['item_id', 'user_id'], True)
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
    # In place and in blocks: gathering all factor rows at once costs 2 * n_ratings *
    # n_factors floats (2.6 GB at 10M ratings and 16 factors).
    raw = user_bias[users]
    raw += item_bias[items]
    for start in range(0, n_ratings, _SIGNAL_BLOCK):
        block = slice(start, start + _SIGNAL_BLOCK)
        raw[block] += np.einsum("ij,ij->i", user_factors[users[block]], item_factors[items[block]])
    raw += rng.normal(3.5, noise, n_ratings)
    ratings = np.clip(np.rint(raw, out=raw), 1, 5, out=raw)
    id_dtype, rating_dtype = (np.int32, np.float32) if compact else (np.int64, np.float64)
    # The arrays are this call's own: pandas (3.x copies by default) may keep them.
    X = pd.DataFrame({"user_id": users.astype(id_dtype, copy=False),
                      "item_id": items.astype(id_dtype, copy=False)}, copy=False)
    return X, pd.Series(ratings.astype(rating_dtype, copy=False), name="rating", copy=False)


# Shapes of the degree distributions, fitted to ML-100K's degree quantiles and Gini.
_USER_EXCESS_SHAPE, _ITEM_POPULARITY_SHAPE, _MIN_USER_RATINGS = 0.65, 0.35, 20


def _sample_pairs(
    n_users: int, n_items: int, n_ratings: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs (int64, shuffled) with MovieLens-like degrees."""
    if n_ratings > 0.5 * n_users * n_items:
        # Dense request: sampling with rejection would stall, so take a random subset. The
        # two permutations keep the random stream, so the data, of skembedrec <= 0.4.
        rng.permutation(n_users), rng.permutation(n_items)
        flat = rng.choice(n_users * n_items, size=n_ratings, replace=False)
        return flat // n_items, flat % n_items
    target = _user_degrees(n_users, n_items, n_ratings, rng)
    need, chosen = target, np.empty(0, dtype=np.int64)
    if n_items <= n_ratings:
        # Every item once first (as in MovieLens), each to a distinct random rating slot, so
        # to a user in proportion to its degree and never beyond it.
        slots = rng.choice(n_ratings, size=n_items, replace=False)
        seed_users = np.searchsorted(np.cumsum(target), slots, side="right")
        chosen = np.sort(seed_users * n_items + np.arange(n_items))
        need = target - np.bincount(seed_users, minlength=n_users)
    popularity = rng.gamma(_ITEM_POPULARITY_SHAPE, size=n_items)
    round_ = 0
    while need.any():  # a few rounds: the weights flatten until the last pairs are found
        draws = np.repeat(np.arange(n_users, dtype=np.int64), need)
        if round_ >= 5:  # popular items saturate: flatten so the heaviest users finish
            popularity = 0.5 * popularity + 0.5 * popularity.mean()
        cdf = np.cumsum(popularity)
        draws *= n_items
        picks = np.searchsorted(cdf, rng.random_sample(draws.size) * cdf[-1], side="right")
        draws += np.minimum(picks, n_items - 1)  # u * total may round up to the total
        del picks
        # Each user drew only what it lacks, so every distinct pair is kept.
        if round_ == 0:  # nearly all pairs at once: one sort
            chosen = sorted_unique(np.concatenate([chosen, draws]))
        else:  # a few: merge them into the sorted ones
            draws = sorted_unique(draws)
            at = np.searchsorted(chosen, draws)
            fresh = chosen[np.minimum(at, chosen.size - 1)] != draws
            chosen = np.insert(chosen, at[fresh], draws[fresh])
        need = target - np.bincount(chosen // n_items, minlength=n_users)
        round_ += 1
    rng.shuffle(chosen)
    return np.divmod(chosen, n_items)


def _user_degrees(n_users: int, n_items: int, n_ratings: int,
                  rng: np.random.RandomState) -> np.ndarray:
    """Ratings per user: a floor plus a Gamma excess, capped, summing to ``n_ratings``."""
    floor = min(_MIN_USER_RATINGS, n_ratings // (5 * n_users), n_items)
    cap = max(n_items // 2, -(-n_ratings // n_users))
    excess = rng.gamma(_USER_EXCESS_SHAPE, size=n_users)
    degrees = np.full(n_users, float(floor))
    free = np.ones(n_users, dtype=bool)
    while free.any():  # scale the excess to the budget; users over the cap stay at the cap
        budget = n_ratings - degrees[~free].sum() - floor * free.sum()
        degrees[free] = floor + excess[free] * (budget / excess[free].sum())
        over = free & (degrees > cap)
        if not over.any():
            break
        degrees[over] = cap
        free &= ~over
    counts = np.floor(degrees).astype(np.int64)
    room = np.flatnonzero(counts < cap)
    counts[rng.choice(room, size=n_ratings - counts.sum(), replace=False)] += 1
    return counts


def fetch_movielens(
    variant: str,
    *,
    data_home: str | os.PathLike | None = None,
    download_if_missing: bool = True,
    mirror: str | None = None,
    return_X_y: bool = False,
    as_frame: bool = True,
    verbose: bool | None = None,
) -> Bunch | tuple:
    """Load a MovieLens dataset (100K to 25M ratings), downloading it once if needed.

    The archive published by GroupLens (https://grouplens.org/datasets/movielens/) is kept,
    unextracted, in ``<data_home>/movielens/``. Its SHA-256 is checked against the published
    digest when it is downloaded (a download goes to a temporary file that is moved into
    place only once the digest matches) and again at every call, before anything is read
    from it. The first call also saves the rating columns next to the archive
    (``<archive name>.columns.npy``, tagged with the archive's digest), so later calls skip
    parsing.

    ========================  =============  =======  =======  ===========  =============
    ``variant``               ratings        users    movies   zip size     user table
    ========================  =============  =======  =======  ===========  =============
    ``"100k"``                100,000        943      1,682    4.9 MB       yes
    ``"1m"``                  1,000,209      6,040    3,883    5.9 MB       yes
    ``"10m"``                 10,000,054     71,567   10,681   65.6 MB      no
    ``"20m"``                 20,000,263     138,493  27,278   198.7 MB     no
    ``"25m"``                 25,000,095     162,541  62,423   262.0 MB     no
    ``"latest-small"``        ~100,000       ~600     ~9,700   1.0 MB       no
    ========================  =============  =======  =======  ===========  =============

    Files you already have are used as they are, first found first, and nothing is
    downloaded then (``ml-100k`` stands for the variant's names, given in the error below;
    10M's zip ``ml-10m.zip`` extracts to ``ml-10M100K/``):

    1. the zip, unchanged and unextracted, at ``<data_home>/movielens/ml-100k.zip``
       (checked against its SHA-256, then cached as above);
    2. the folder extracted from it, at ``<data_home>/movielens/ml-100k/`` or
       ``<data_home>/ml-100k/`` (for 100K also ``<data_home>/movielens_100k/ml-100k/``, where
       skembedrec < 0.2 put it). Only the ratings file is required (``u.data``,
       ``ratings.dat`` or ``ratings.csv``): without the movies or users file that table is
       None, with a warning. A folder is read as it is and parsed at every call (keep the
       zip for faster loads); only 100K's ``u.data`` has a known digest, checked.

    With ``download_if_missing=False`` and none of these, the :class:`FileNotFoundError`
    lists every accepted path with the exact file names, the URL and the digest.

    Parameters
    ----------
    variant : {"100k", "1m", "10m", "20m", "25m", "latest-small"}
        Which archive.
    data_home : str or path-like, default=None
        Where datasets are cached, as in :func:`sklearn.datasets.get_data_home`: by default
        ``~/scikit_learn_data``, or the ``SCIKIT_LEARN_DATA`` environment variable if set.
    download_if_missing : bool, default=True
        If False, raise a :class:`FileNotFoundError` instead of downloading a missing archive.
    mirror : str, default=None
        Base URL that replaces ``https://files.grouplens.org/datasets/movielens/`` (e.g. a
        corporate mirror); the archive's name is appended. The digest is checked all the
        same.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=True
        If True, ``data`` is a DataFrame and ``target`` a Series; if False, NumPy arrays,
        and ``frame`` is None. ``movies`` and ``users`` are DataFrames either way.
    verbose : bool, default=None
        Draw a download progress bar on stderr. By default, when stderr is a terminal.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : DataFrame of shape (n_ratings, 2) or ndarray
            ``user_id`` and ``item_id`` of each rating (int32), in file order.
        target : Series of shape (n_ratings,) or ndarray
            The ratings, named ``rating`` (float32; 1..5, in half stars from 10M on).
        frame : DataFrame of shape (n_ratings, 4) or None
            ``user_id``, ``item_id``, ``rating`` and ``timestamp`` (int64 seconds since the
            Unix epoch, for time-ordered splits). None when ``as_frame=False``.
        movies : DataFrame or None
            One row per movie, indexed by ``item_id``: ``title`` (without the year),
            ``year`` (nullable Int64) and ``genres`` (a list of genre names). Named
            ``movies`` because ``items`` is a dict method on a Bunch. None when read from a
            folder without the movies file.
        users : DataFrame or None
            For 100K and 1M, indexed by ``user_id``: ``age`` (1M: the age bracket's lower
            bound), ``gender``, ``occupation``, ``zip_code``. None for the other archives
            and for a folder without the users file.
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
        Neither the zip nor an extracted folder is in ``data_home`` and
        ``download_if_missing`` is False.
    OSError
        The download failed or was cut short. Nothing is kept.
    ValueError
        The archive's SHA-256 is not the published one, or it is not the expected zip
        (missing member, member name with ``..``, member larger than any official one).
        A download that fails these checks is not kept.

    See Also
    --------
    fetch_movielens_100k : Shortcut for ``fetch_movielens("100k")``.
    make_ratings : Synthetic ratings, no download.

    Notes
    -----
    The MovieLens data may not be used commercially or, for most archives, redistributed;
    see ``DESCR`` and the README in the archive. Please cite F. Maxwell Harper and Joseph A.
    Konstan (2015), "The MovieLens Datasets: History and Context", ACM TiiS 5(4).

    Examples
    --------
    The first call downloads the archive (here 262 MB; skipped when the docs are tested
    offline); later calls read the cached copy:

    >>> from skembedrec.datasets import fetch_movielens
    >>> ml = fetch_movielens("25m")  # doctest: +SKIP
    >>> ml.frame.dtypes.to_dict()  # doctest: +SKIP
    {'user_id': dtype('int32'), 'item_id': dtype('int32'), 'rating': dtype('float32'),
     'timestamp': dtype('int64')}
    >>> X, y = fetch_movielens("1m", return_X_y=True)  # doctest: +SKIP

    Offline, the error says where to put the zip or the folder you have:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as empty_home:
    ...     fetch_movielens("1m", data_home=empty_home, download_if_missing=False)
    ...     # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: MovieLens 1M was found neither as a zip nor as an extracted folder ...
    """
    spec = _variant(variant)
    if mirror is not None and not isinstance(mirror, str):
        raise TypeError(f"mirror must be a base URL (str) or None; got {mirror!r}.")
    base_url = mirror if mirror is not None else _movielens.BASE_URL
    url = base_url.rstrip("/") + "/" + spec.archive
    data_root = Path(get_data_home(data_home))
    archive = _movielens.archive_path(data_root, spec)
    folder = _movielens.find_folder(data_root, spec)
    if archive.is_file():
        ratings, movies, users = _read_archive(archive, spec)
    elif folder is not None:
        ratings, movies, users = _read_folder(folder, spec)
    elif not download_if_missing:
        raise FileNotFoundError(_movielens.not_found_message(data_root, spec, url))
    else:
        _download_archive(url, archive, spec, sys.stderr.isatty() if verbose is None else verbose)
        ratings, movies, users = _read_archive(archive, spec)
    return _bunch(ratings, movies, users, _movielens.describe(spec, url), return_X_y, as_frame)


def fetch_movielens_100k(
    *,
    data_home: str | os.PathLike | None = None,
    download_if_missing: bool = True,
    mirror: str | None = None,
    return_X_y: bool = False,
    as_frame: bool = True,
    verbose: bool | None = None,
) -> Bunch | tuple:
    """Load MovieLens 100K: shortcut for ``fetch_movielens("100k", ...)``.

    See :func:`fetch_movielens` for the parameters and the returned Bunch.

    Examples
    --------
    >>> from skembedrec.datasets import fetch_movielens_100k
    >>> X, y = fetch_movielens_100k(return_X_y=True)  # doctest: +SKIP
    >>> X.shape, round(float(y.mean()), 2)  # doctest: +SKIP
    ((100000, 2), 3.53)
    """
    return fetch_movielens(
        "100k", data_home=data_home, download_if_missing=download_if_missing, mirror=mirror,
        return_X_y=return_X_y, as_frame=as_frame, verbose=verbose,
    )


def load_movielens_100k(
    data_home: str | os.PathLike | None = None,
    download_if_missing: bool = True,
    return_X_y: bool = False,
    as_frame: bool = True,
) -> Bunch | tuple:
    """Deprecated: use :func:`fetch_movielens_100k` (or ``fetch_movielens("100k")``).

    Returns what it returned before, for old code: int64 ids, float64 ratings and a
    ``movies`` table with a ``movie_id`` column and genres joined with ``"|"``.

    .. deprecated:: 0.2
        Will be removed in a future release.

    Examples
    --------
    >>> from skembedrec.datasets import load_movielens_100k
    >>> X, y = load_movielens_100k(return_X_y=True)  # doctest: +SKIP
    """
    warnings.warn(
        "load_movielens_100k is deprecated and will be removed in a future release; use "
        "fetch_movielens('100k') or fetch_movielens_100k(), which return int32 ids, float32 "
        "ratings and a movies table indexed by item_id with genres as lists.",
        FutureWarning, stacklevel=2,
    )
    bunch = fetch_movielens_100k(data_home=data_home, download_if_missing=download_if_missing)
    assert isinstance(bunch, Bunch)  # return_X_y=False
    frame = bunch.frame.astype({"user_id": "int64", "item_id": "int64", "rating": "float64"})
    data, target = frame[["user_id", "item_id"]], frame["rating"]
    if not as_frame:
        data, target, frame = data.to_numpy(), target.to_numpy(), None
    if return_X_y:
        return data, target
    movies = users = None  # None when read from a folder without u.item or u.user
    if bunch.movies is not None:
        movies = bunch.movies.assign(genres=bunch.movies["genres"].str.join("|"))
        movies = movies.rename_axis("movie_id").reset_index().astype({"movie_id": "int64"})
    if bunch.users is not None:
        users = bunch.users.reset_index().astype({"user_id": "int64"})
    return Bunch(data=data, target=target, frame=frame, movies=movies, users=users,
                 feature_names=bunch.feature_names, target_names=bunch.target_names,
                 DESCR=bunch.DESCR)


def _variant(variant: str) -> _movielens.Variant:
    key = variant.lower().removeprefix("ml-") if isinstance(variant, str) else None
    if key not in _movielens.VARIANTS:
        raise ValueError(
            f"Unknown MovieLens variant {variant!r}; choose one of "
            f"{', '.join(map(repr, _movielens.VARIANTS))}."
        )
    return _movielens.VARIANTS[key]


def _download_archive(url: str, archive: Path, spec: _movielens.Variant, verbose: bool) -> None:
    created = not archive.parent.exists()
    archive.parent.mkdir(parents=True, exist_ok=True)
    advice = (
        f"GroupLens updates the 'latest' archives, so {spec.archive} may have changed since "
        "this version of skembedrec recorded its digest: check "
        "https://grouplens.org/datasets/movielens/latest/ and use a newer skembedrec, or a "
        "fixed archive such as '25m'." if spec.updated_upstream else "Call again to retry."
    )
    try:
        _download.download(
            url, archive, spec.sha256, expected_bytes=spec.n_bytes, verbose=verbose,
            check=lambda path: _check_archive(path, spec), mismatch_advice=advice,
        )
    except BaseException:
        if created:  # leave the data home as it was
            try:
                archive.parent.rmdir()
            except OSError:
                pass
        raise


def _check_archive(path: Path, spec: _movielens.Variant) -> None:
    """Names, presence and declared sizes of the members, before any is read."""
    try:
        with zipfile.ZipFile(path) as zipped:
            _download.check_member_names(zipped, str(path))
            opener = _zip_opener(zipped, spec, str(path))
            for role, name in spec.members.items():
                limit = (_movielens.MAX_RATINGS_BYTES if role == "ratings"
                         else _movielens.MAX_TABLE_BYTES)
                opener(name, limit).close()
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path} is not a readable zip archive: {exc}.") from None


def _read_archive(archive: Path, spec: _movielens.Variant) -> tuple:
    """Verify the cached archive, then read it (ratings from the columnar copy if valid)."""
    digest = _download.sha256_of_file(archive)
    if digest != spec.sha256:
        latest = (" GroupLens updates the 'latest' archives: this may be a newer one than "
                  "this version of skembedrec knows." if spec.updated_upstream else "")
        raise _download.digest_mismatch(
            str(archive), spec.sha256, digest,
            f"Delete it and call again to download a fresh copy.{latest}",
        )
    _check_archive(archive, spec)
    cache = archive.with_suffix(".columns.npy")
    ratings = _read_cache(cache, digest)
    with zipfile.ZipFile(archive) as zipped:
        opener = _zip_opener(zipped, spec, str(archive))
        if ratings is None:
            ratings = _movielens.read_ratings(spec, opener)
            _write_cache(cache, digest, ratings)
        return ratings, _movielens.read_movies(spec, opener), _movielens.read_users(spec, opener)


def _read_folder(folder: Path, spec: _movielens.Variant) -> tuple:
    """Read an extracted folder as it is (nothing is written): the ratings file must be
    there; a missing movies or users file gives None for that table, with a warning."""
    opener = _folder_opener(folder, spec)
    present = {role for role, name in spec.members.items() if (folder / name).is_file()}
    missing = [name for role, name in spec.members.items() if role not in present]
    if missing:
        tables = " and ".join(f"`{r}`" for r in spec.members if r not in present)
        warnings.warn(
            f"{folder} has no {' or '.join(missing)}: the ratings are loaded but {tables} "
            f"{'are' if len(missing) > 1 else 'is'} None. Put the missing file(s) from "
            f"{spec.archive} in that folder to get {'them' if len(missing) > 1 else 'it'}.",
            UserWarning, stacklevel=3,
        )
    movies = _movielens.read_movies(spec, opener) if "movies" in present else None
    users = _movielens.read_users(spec, opener) if "users" in present else None
    return _movielens.read_ratings(spec, opener), movies, users


def _zip_opener(zipped: zipfile.ZipFile, spec: _movielens.Variant, where: str):
    def open_member(name: str, max_bytes: int):
        stream = _download.open_member(zipped, f"{spec.folder}/{name}", max_bytes, where)
        return _checked(stream, spec, name, where)
    return open_member


def _folder_opener(folder: Path, spec: _movielens.Variant):
    def open_member(name: str, max_bytes: int):
        path = folder / name
        if path.stat().st_size > max_bytes:
            raise ValueError(f"{path} is larger than any official {spec.title} file.")
        return _checked(path.open("rb"), spec, name, str(folder))
    return open_member


def _checked(stream, spec: _movielens.Variant, name: str, where: str):
    """The stream itself, or for a member with a known digest its verified bytes."""
    expected = spec.member_sha256.get(name)
    if expected is None:
        return stream
    with stream:
        payload = stream.read()
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise _download.digest_mismatch(
            f"{name} in {where}", expected, actual,
            f"It is not the original {spec.title} file. Delete {where} and call again to "
            "download a fresh copy.",
        )
    return io.BytesIO(payload)


def _read_cache(path: Path, digest: str) -> dict[str, np.ndarray] | None:
    """The cached rating columns, or None if absent, stale (other archive) or unreadable."""
    try:
        with open(path, "rb") as stream:
            tag = np.load(stream, allow_pickle=False)
            if tag.tolist() != [digest, str(_CACHE_VERSION)]:
                return None
            columns = {name: np.load(stream, allow_pickle=False)
                       for name in _movielens.RATING_DTYPES}
    except (OSError, ValueError, EOFError):
        return None
    lengths = {len(column) for column in columns.values()}
    dtypes_ok = all(columns[n].dtype == d for n, d in _movielens.RATING_DTYPES.items())
    return columns if len(lengths) == 1 and dtypes_ok else None


def _write_cache(path: Path, digest: str, ratings: dict[str, np.ndarray]) -> None:
    """Save the columns under a temporary name and move them into place (atomic).

    The file is a sequence of ``.npy`` arrays: a tag (archive digest, cache version), then
    one array per column. Unlike ``.npz`` (a zip: CRC and copies), ``np.load`` reads each
    column straight into its array, about 3 times faster for the 25M ratings.
    """
    try:
        handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                           suffix=".part")
    except OSError:  # a read-only data home: read from the archive every time
        return
    try:
        with os.fdopen(handle, "wb") as out:
            np.save(out, np.array([digest, str(_CACHE_VERSION)]), allow_pickle=False)
            for name in _movielens.RATING_DTYPES:
                np.save(out, ratings[name], allow_pickle=False)
        os.replace(partial, path)
    except OSError:
        Path(partial).unlink(missing_ok=True)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _bunch(ratings, movies, users, descr: str, return_X_y: bool, as_frame: bool):
    if as_frame:
        # No copy: the frame holds the arrays just read (copying 25M rows costs a second).
        frame = pd.DataFrame(ratings, copy=False)
        data, target = frame[["user_id", "item_id"]], frame["rating"]
    else:
        frame = None
        data = np.column_stack([ratings["user_id"], ratings["item_id"]])
        target = ratings["rating"]
    if return_X_y:
        return data, target
    return Bunch(data=data, target=target, frame=frame, movies=movies, users=users,
                 feature_names=["user_id", "item_id"], target_names=["rating"], DESCR=descr)


def read_ratings(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.Series]:
    r"""Read ratings in MovieLens' ``u.data`` format (no download, no checksum).

    ``u.data`` is tab separated: user id, item id, rating, unix timestamp, no header. To
    load a whole MovieLens release you have (zip or extracted folder, with its movies and
    users), see :func:`fetch_movielens` and its ``data_home``.

    Parameters
    ----------
    path : str or path-like
        The ``u.data`` file, or the folder that holds it.

    Returns
    -------
    X : DataFrame of shape (n_ratings, 3)
        Columns ``user_id``, ``item_id`` and ``timestamp`` (unix seconds), int64. The
        estimator reads ``user_id`` and ``item_id`` by name and ignores ``timestamp`` unless
        it is given ``time_col="timestamp"``.
    y : Series of shape (n_ratings,)
        The ratings (float64), named ``rating``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "u.data").write_text("1\t10\t4\t881250949\n2\t10\t3\t881250950\n")
    >>> X, y = read_ratings(folder)
    >>> X.columns.tolist(), X["timestamp"].tolist(), y.tolist()
    (['user_id', 'item_id', 'timestamp'], [881250949, 881250950], [4.0, 3.0])
    """
    path = Path(path)
    frame = _read_ratings_frame(path / "u.data" if path.is_dir() else path)
    return frame[["user_id", "item_id", "timestamp"]], frame["rating"]


def example_ratings(source: str | os.PathLike | None = None, *,
                    data_home: str | os.PathLike | None = None) -> Bunch:
    """Ratings to try things on: MovieLens when asked for or already cached, else synthetic.

    What the gallery examples run on, so that they build offline and switch to real data
    with one argument. Nothing is downloaded unless a variant is named.

    Parameters
    ----------
    source : str, path-like or None, default=None
        None: MovieLens 100K if its archive or extracted folder is in ``data_home`` (see
        :func:`fetch_movielens`), otherwise 20,000 synthetic ratings of 300 users on 400
        items (:func:`make_ratings` with ``random_state=0``). A MovieLens variant name
        (``"100k"``, ``"1m"``, ...): :func:`fetch_movielens`, downloading it if missing. The
        path of a ``u.data`` file or its folder: :func:`read_ratings`, with the titles of
        ``u.item`` or ``items.tsv`` beside it when there is one.
    data_home : str or path-like, default=None
        As in :func:`fetch_movielens`.

    Returns
    -------
    ratings : Bunch
        ``data`` (DataFrame ``user_id``, ``item_id``), ``target`` (the ratings), ``titles``
        (Series of movie titles by item id, or None) and ``description`` (one line saying
        which ratings these are).

    Examples
    --------
    >>> import tempfile
    >>> ratings = example_ratings(data_home=tempfile.mkdtemp())  # nothing cached: synthetic
    >>> ratings.data.shape, ratings.titles is None
    ((20000, 2), True)
    """
    if source is not None and Path(source).exists():
        X, y = read_ratings(source)
        # The same two columns whatever the source: the examples fit without times.
        return Bunch(data=X[["user_id", "item_id"]], target=y,
                     titles=_titles_beside(Path(source)),
                     description=f"MovieLens ratings from {source}")
    variant = "100k" if source is None else os.fspath(source)
    try:
        ml = fetch_movielens(variant, data_home=data_home, download_if_missing=source is not None)
    except FileNotFoundError:  # not cached and not asked for: stay offline
        X, y = make_ratings(n_users=300, n_items=400, n_ratings=20_000, random_state=0)
        return Bunch(data=X, target=y, titles=None,
                     description="synthetic ratings (make_ratings)")
    assert isinstance(ml, Bunch)  # return_X_y=False
    titles = None if ml.movies is None else ml.movies["title"]
    return Bunch(data=ml.data, target=ml.target, titles=titles,
                 description=f"MovieLens {variant} (fetch_movielens)")


def _titles_beside(path: Path) -> pd.Series | None:
    """Movie titles by item id from u.item (the official zip) or items.tsv next to u.data."""
    folder = path if path.is_dir() else path.parent
    if (folder / "u.item").is_file():
        items = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1")
        return items.set_index(0)[1].rename("title").rename_axis("item_id")
    if (folder / "items.tsv").is_file():
        items = pd.read_csv(folder / "items.tsv", sep="\t")
        return items.set_index("movie_id")["title"].rename_axis("item_id")
    return None


def _read_ratings_frame(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(
        path, sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"],
        dtype="int64",
    )
    frame["rating"] = frame["rating"].astype("float64")
    return frame

