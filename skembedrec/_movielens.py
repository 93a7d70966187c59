"""The MovieLens archives: which file is which, their digests, and one parser per format.

Three formats cover the six archives:

* ``"100k"``: ``u.data`` (tab separated), ``u.item`` and ``u.user`` (``|`` separated, Latin-1);
* ``"dat"``: ``ratings.dat``, ``movies.dat`` and, in 1M only, ``users.dat``, fields separated
  by ``::`` (1M and 10M);
* ``"csv"``: ``ratings.csv`` and ``movies.csv`` with a header, titles quoted when they hold a
  comma (20M, 25M, latest-small).

Ratings are read by pandas' C parser straight into int32 ids, float32 ratings and int64
timestamps; only the small movie and user tables go through string operations.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

BASE_URL = "https://files.grouplens.org/datasets/movielens/"
# <data_home>/movielens/ holds the archives as downloaded and their columnar copies.
CACHE_FOLDER = "movielens"
# Where skembedrec < 0.2 extracted MovieLens 100K; still read.
LEGACY_100K_FOLDER = Path("movielens_100k") / "ml-100k"
# Declared uncompressed sizes above these are refused before reading (the largest official
# member, ml-25m/ratings.csv, is 678 MB; the largest table about 3 MB).
MAX_RATINGS_BYTES = 2 << 30
MAX_TABLE_BYTES = 64 << 20

RATING_DTYPES = {"user_id": "int32", "item_id": "int32", "rating": "float32",
                 "timestamp": "int64"}

_GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)
# Occupation codes of ML-1M's users.dat, from its README.
_OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)
_NO_GENRES = "(no genres listed)"
# SHA-256 of the original ml-100k/u.data (100,000 lines), measured with hashlib.
RATINGS_100K_SHA256 = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"


@dataclass(frozen=True)
class Variant:
    """One MovieLens archive: where it is, what it must hash to, how to read it."""

    name: str
    title: str
    archive: str
    folder: str
    sha256: str
    n_bytes: int
    fmt: str
    summary: str
    has_users: bool = False
    movies_encoding: str = "utf-8"
    # Digests of members checked after extraction: the 100K ratings file is also checked when
    # it comes from an already extracted folder (the layout of skembedrec < 0.2).
    member_sha256: dict[str, str] = field(default_factory=dict)
    updated_upstream: bool = False

    @property
    def members(self) -> dict[str, str]:
        """Role ("ratings", "movies", "users") -> file name inside ``folder``."""
        if self.fmt == "100k":
            return {"ratings": "u.data", "movies": "u.item", "users": "u.user"}
        ext = "dat" if self.fmt == "dat" else "csv"
        names = {"ratings": f"ratings.{ext}", "movies": f"movies.{ext}"}
        if self.has_users:
            names["users"] = f"users.{ext}"
        return names


VARIANTS: dict[str, Variant] = {
    "100k": Variant(
        "100k", "MovieLens 100K", "ml-100k.zip", "ml-100k",
        "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", 4_924_029, "100k",
        "100,000 ratings (1 to 5 stars) from 943 users on 1,682 movies, collected through the "
        "MovieLens web site from September 1997 to April 1998; each user rated at least 20 "
        "movies. Users come with age, gender, occupation and zip code.",
        has_users=True, movies_encoding="latin-1",
        member_sha256={"u.data": RATINGS_100K_SHA256},
    ),
    "1m": Variant(
        "1m", "MovieLens 1M", "ml-1m.zip", "ml-1m",
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", 5_917_549, "dat",
        "1,000,209 ratings (1 to 5 stars) from 6,040 users on about 3,700 movies, made by "
        "users who joined MovieLens in 2000. Users come with gender, an age group (the "
        "lower bound of the bracket: 1, 18, 25, 35, 45, 50, 56), occupation and zip code.",
        has_users=True, movies_encoding="latin-1",
    ),
    "10m": Variant(
        "10m", "MovieLens 10M", "ml-10m.zip", "ml-10M100K",
        "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862", 65_566_137, "dat",
        "10,000,054 ratings (0.5 to 5 stars in half stars) from 71,567 users on 10,681 "
        "movies, released in 2009. No user demographics.",
    ),
    "20m": Variant(
        "20m", "MovieLens 20M", "ml-20m.zip", "ml-20m",
        "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3", 198_702_078, "csv",
        "20,000,263 ratings (0.5 to 5 stars) from 138,493 users on 27,278 movies, from "
        "January 1995 to March 2015. No user demographics.",
    ),
    "25m": Variant(
        "25m", "MovieLens 25M", "ml-25m.zip", "ml-25m",
        "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa", 261_978_986, "csv",
        "25,000,095 ratings (0.5 to 5 stars) from 162,541 users on 59,047 of its 62,423 "
        "movies, from January 1995 to November 2019. No user demographics.",
    ),
    "latest-small": Variant(
        "latest-small", "MovieLens latest (small)", "ml-latest-small.zip", "ml-latest-small",
        "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", 978_202, "csv",
        "About 100,000 ratings (0.5 to 5 stars) from about 600 users on about 9,700 movies. "
        "GroupLens updates the 'latest' archives from time to time, so the counts change; "
        "it is meant for teaching and development, not for reproducible research.",
        updated_upstream=True,
    ),
}

DESCR = """\
{title}
{underline}

{summary}

Source: {url} (https://grouplens.org/datasets/movielens/), SHA-256 {sha256}.

Terms of use (summary; the README inside the archive is authoritative): research use only;
no commercial or revenue-bearing use without permission from GroupLens Research (University of
Minnesota); no endorsement by the University of Minnesota or GroupLens may be stated or
implied; redistribution only as that README allows (the older archives forbid it without
permission); publications using the data must cite:

F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context.
ACM Transactions on Interactive Intelligent Systems (TiiS) 5, 4, Article 19.
https://doi.org/10.1145/2827872
"""

OpenMember = Callable[[str, int], IO[bytes]]


def describe(variant: Variant, url: str) -> str:
    """The ``DESCR`` text of a variant."""
    return DESCR.format(title=variant.title, underline="=" * len(variant.title),
                        summary=variant.summary, url=url, sha256=variant.sha256)


def archive_path(data_root: Path, variant: Variant) -> Path:
    """Where the zip is kept (downloaded to, or put there by hand): ``<data_home>/movielens/``."""
    return data_root / CACHE_FOLDER / variant.archive


def folder_places(data_root: Path, variant: Variant) -> list[Path]:
    """Where a folder extracted from the zip is looked for, in this order.

    Examples
    --------
    >>> from pathlib import PurePosixPath as P
    >>> [str(p) for p in folder_places(P("/data"), VARIANTS["10m"])]
    ['/data/movielens/ml-10M100K', '/data/ml-10M100K']
    """
    places = [data_root / CACHE_FOLDER / variant.folder, data_root / variant.folder]
    if variant.name == "100k":
        places.append(data_root / LEGACY_100K_FOLDER)
    return places


def find_folder(data_root: Path, variant: Variant) -> Path | None:
    """The first of :func:`folder_places` that holds the ratings file, or None."""
    ratings = variant.members["ratings"]
    return next((p for p in folder_places(data_root, variant) if (p / ratings).is_file()), None)


def not_found_message(data_root: Path, variant: Variant, url: str) -> str:
    """Every way to provide ``variant``, with its exact paths and file names."""
    members = variant.members
    tables = [members[role] for role in ("movies", "users") if role in members]
    places = folder_places(data_root, variant)
    message = (
        f"{variant.title} was found neither as a zip nor as an extracted folder in "
        f"{data_root}, and download_if_missing=False. Any one of these works:\n"
        f"  * call again with download_if_missing=True: it downloads {url} "
        f"({variant.n_bytes / 1e6:.1f} MB) to {archive_path(data_root, variant)} and checks "
        "its SHA-256;\n"
        f"  * download {url} elsewhere and put it, unchanged and unextracted, at "
        f"{archive_path(data_root, variant)} (its SHA-256 must be {variant.sha256});\n"
        f"  * put the folder {variant.folder}/ extracted from {variant.archive}, holding "
        f"{members['ratings']} (the ratings and their timestamps) and, for the movie"
        f"{' and user tables' if len(tables) > 1 else ' table'}, {' and '.join(tables)}, at "
        f"{' or '.join(str(p) for p in places)}."
    )
    for place in places:  # a folder in the right place but with the wrong content
        if place.is_dir():
            held = sorted(p.name for p in place.iterdir())
            listing = ", ".join(held[:8]) + (", ..." if len(held) > 8 else "") or "nothing"
            message += f"\n{place} exists but has no {members['ratings']} (it holds {listing})."
    return message


def read_ratings(variant: Variant, open_member: OpenMember) -> dict[str, np.ndarray]:
    """The rating columns (``RATING_DTYPES``), in file order.

    ``open_member(name, max_bytes)`` returns a binary stream of a file of the archive.

    Examples
    --------
    >>> import io
    >>> member = lambda name, limit: io.BytesIO(b"1::10::4::881250949\\n2::10::3::881250950\\n")
    >>> columns = read_ratings(VARIANTS["1m"], member)
    >>> columns["item_id"].tolist(), columns["rating"].dtype
    ([10, 10], dtype('float32'))
    """
    names = list(RATING_DTYPES)
    with open_member(variant.members["ratings"], MAX_RATINGS_BYTES) as stream:
        if variant.fmt == "csv":
            frame = pd.read_csv(
                stream, header=0, engine="c", usecols=["userId", "movieId", "rating", "timestamp"],
                dtype={"userId": "int32", "movieId": "int32", "rating": "float32",
                       "timestamp": "int64"},
            ).rename(columns={"userId": "user_id", "movieId": "item_id"})
        elif variant.fmt == "dat":
            # "::" is two ":" separators around an empty field: the C parser splits on ":"
            # and skips the empty columns (a two-character separator would need the slow
            # Python engine). No field of ratings.dat contains ":".
            frame = pd.read_csv(
                stream, sep=":", header=None, engine="c", usecols=[0, 2, 4, 6],
                dtype=dict(zip([0, 2, 4, 6], RATING_DTYPES.values(), strict=True)),
            )
            frame.columns = names
        else:
            frame = pd.read_csv(stream, sep="\t", header=None, engine="c", names=names,
                                dtype=RATING_DTYPES)
    return {name: frame[name].to_numpy() for name in names}


def read_movies(variant: Variant, open_member: OpenMember) -> pd.DataFrame:
    """Movies indexed by ``item_id``: ``title`` (no year), ``year`` (Int64), ``genres`` (lists).

    Examples
    --------
    >>> import io
    >>> text = b'movieId,title,genres\\n1,"American President, The (1995)",Comedy|Drama\\n'
    >>> movies = read_movies(VARIANTS["25m"], lambda name, limit: io.BytesIO(text))
    >>> movies.loc[1, "title"], int(movies.loc[1, "year"]), movies.loc[1, "genres"]
    ('American President, The', 1995, ['Comedy', 'Drama'])
    """
    with open_member(variant.members["movies"], MAX_TABLE_BYTES) as stream:
        raw = stream.read()
    if variant.fmt == "csv":
        table = pd.read_csv(io.BytesIO(raw), header=0, dtype=str, keep_default_na=False,
                            encoding="utf-8")
        ids, titles, genres = table["movieId"], table["title"], table["genres"]
        dates = None
    elif variant.fmt == "dat":
        table = _split_dat(raw, variant.movies_encoding, 3)
        ids, titles, genres = table[0], table[1], table[2]
        dates = None
    else:
        table = pd.read_csv(io.BytesIO(raw), sep="|", header=None, dtype=str,
                            encoding="latin-1", keep_default_na=False)
        ids, titles, dates = table[0], table[1], table[2]
        flags = table.iloc[:, 5:5 + len(_GENRES_100K)].to_numpy() == "1"
        names = np.array(_GENRES_100K, dtype=object)
        genres = pd.Series(["|".join(names[row]) for row in flags], dtype=object)
    parts = titles.str.extract(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")
    year = parts["year"]
    if dates is not None:  # 100K: a title without "(YYYY)" may still have a release date
        year = year.fillna(dates.str.extract(r"(\d{4})$")[0])
    genre_lists = genres.str.split("|")
    no_genre = genres.isin(["", _NO_GENRES]).to_numpy()
    if no_genre.any():  # few rows: a new empty list each, not a shared one
        genre_lists[no_genre] = pd.Series([[] for _ in range(no_genre.sum())],
                                          index=genre_lists.index[no_genre], dtype=object)
    movies = pd.DataFrame({
        "title": parts["title"].fillna(titles).str.strip().to_numpy(),
        "year": pd.to_numeric(year).astype("Int64").to_numpy(),
        "genres": genre_lists.to_numpy(),
    }, index=pd.Index(ids.astype("int32").to_numpy(), name="item_id"))
    return movies


def read_users(variant: Variant, open_member: OpenMember) -> pd.DataFrame | None:
    """Users indexed by ``user_id``: ``age``, ``gender``, ``occupation``, ``zip_code``.

    None for the archives without a users file (10M, 20M, 25M, latest-small).
    """
    if not variant.has_users:
        return None
    with open_member(variant.members["users"], MAX_TABLE_BYTES) as stream:
        raw = stream.read()
    if variant.fmt == "100k":
        table = pd.read_csv(io.BytesIO(raw), sep="|", header=None, dtype=str,
                            encoding="latin-1", keep_default_na=False)
        ids, age, gender, occupation, zip_code = (table[i] for i in range(5))
    else:  # users.dat: UserID::Gender::Age::Occupation::Zip-code, occupation as a code
        table = _split_dat(raw, "latin-1", 5)
        ids, gender, age, codes, zip_code = (table[i] for i in range(5))
        occupation = pd.Series(np.array(_OCCUPATIONS_1M, dtype=object)[codes.astype(int)])
    return pd.DataFrame({
        "age": age.astype("int64").to_numpy(),
        "gender": gender.to_numpy(),
        "occupation": occupation.to_numpy(),
        "zip_code": zip_code.to_numpy(),
    }, index=pd.Index(ids.astype("int32").to_numpy(), name="user_id"))


def _split_dat(raw: bytes, encoding: str, n_fields: int) -> pd.DataFrame:
    """Split a small ``::``-separated table; titles may contain ":" so split at most n-1."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:  # files said to be UTF-8 that are in fact Latin-1
        text = raw.decode("latin-1")
    lines = pd.Series(text.splitlines(), dtype=object)
    lines = lines[lines.str.len() > 0]
    table = lines.str.split("::", n=n_fields - 1, expand=True)
    if table.shape[1] != n_fields or table.isna().any().any():
        raise ValueError(f"Expected {n_fields} '::'-separated fields on every line.")
    return table.reset_index(drop=True)
