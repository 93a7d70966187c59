"""MovieLens 100K loader (offline: prepared data homes, a local HTTP server) and make_ratings.

The loader reads the official file formats. The shared copy of the data holds the original
``u.data`` plus ``items.tsv`` / ``users.tsv``, so the tests write ``u.item`` / ``u.user`` in the
official pipe-separated, Latin-1 format from those into a temporary folder (never the repo).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skembedrec import datasets
from skembedrec.datasets import load_movielens_100k, make_ratings

SHARED_ML100K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-100k"


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Only the test's own server on 127.0.0.1 may be contacted."""
    real_urlopen = urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        if not str(url).startswith("http://127.0.0.1:"):
            raise AssertionError(f"test tried to reach the network: {url}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


def _official_files(source: Path) -> dict[str, bytes]:
    """u.data as is; u.item and u.user rebuilt in the official format from the .tsv copies."""
    if not (source / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not found at {source}")
    items = pd.read_csv(source / "items.tsv", sep="\t", dtype=str, keep_default_na=False)
    item_lines = []
    for row in items.itertuples(index=False):
        known_year = row.year.isdigit()
        title = f"{row.title} ({row.year})" if known_year else row.title
        date = f"01-Jan-{row.year}" if known_year else ""
        flags = "|".join("1" if g in row.genres.split() else "0" for g in datasets._GENRES)
        item_lines.append(f"{row.movie_id}|{title}|{date}||http://example.invalid/|{flags}\n")
    users = pd.read_csv(source / "users.tsv", sep="\t", dtype=str, keep_default_na=False)
    user_lines = ["|".join(row) + "\n" for row in users.itertuples(index=False)]
    return {
        "u.data": (source / "u.data").read_bytes(),
        "u.item": "".join(item_lines).encode("latin-1"),
        "u.user": "".join(user_lines).encode("latin-1"),
    }


@pytest.fixture(scope="module")
def official_files() -> dict[str, bytes]:
    return _official_files(SHARED_ML100K)


@pytest.fixture
def prepared_home(tmp_path, official_files) -> Path:
    folder = tmp_path / "movielens_100k" / "ml-100k"
    folder.mkdir(parents=True)
    for name, payload in official_files.items():
        (folder / name).write_bytes(payload)
    return tmp_path


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, payload in files.items():
            zipped.writestr(f"ml-100k/{name}", payload)
    return buffer.getvalue()


class _Server:
    """Serves one zip on 127.0.0.1; ``cut_at`` bytes sends a truncated body then hangs up."""

    def __init__(self, body: bytes, cut_at: int | None = None):
        self.body, self.cut_at, self.requests = body, cut_at, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body[: server.cut_at])
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ml-100k.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def _serve(monkeypatch, body: bytes, digest: str | None = None, cut_at: int | None = None):
    server = _Server(body, cut_at)
    monkeypatch.setattr(datasets, "_ARCHIVE_URL", server.url)
    monkeypatch.setattr(
        datasets, "_ARCHIVE_DIGEST", ("sha256", digest or hashlib.sha256(body).hexdigest())
    )
    return server


def _all_files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


# -- reading a prepared data home ------------------------------------------------------------


def test_prepared_data_home_gives_ratings_items_and_users(prepared_home):
    bunch = load_movielens_100k(data_home=prepared_home, download_if_missing=False)

    assert list(bunch.data.columns) == ["user_id", "item_id"]
    assert bunch.data.shape == (100_000, 2) and bunch.target.name == "rating"
    assert bunch.target.dtype == np.float64 and set(bunch.target.unique()) == {1, 2, 3, 4, 5}
    raw = pd.read_csv(SHARED_ML100K / "u.data", sep="\t", header=None)
    np.testing.assert_array_equal(bunch.data.to_numpy(), raw[[0, 1]].to_numpy())
    np.testing.assert_array_equal(bunch.target.to_numpy(), raw[2].to_numpy())
    assert list(bunch.frame.columns) == ["user_id", "item_id", "rating", "timestamp"]
    np.testing.assert_array_equal(bunch.frame["timestamp"], raw[3])

    items = bunch.movies.set_index("movie_id")
    assert len(items) == 1682 and set(bunch.data["item_id"]) <= set(items.index)
    assert items.loc[1, "title"] == "Toy Story" and items.loc[1, "year"] == 1995
    assert items.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert items.loc[543, "title"] == "Misérables, Les"  # Latin-1 decoded
    assert pd.isna(items.loc[267, "year"])
    users = bunch.users.set_index("user_id")
    assert len(users) == 943 and set(bunch.data["user_id"]) <= set(users.index)
    assert users.loc[1].tolist() == [24, "M", "technician", "85711"]
    assert bunch.feature_names == ["user_id", "item_id"] and "Harper" in bunch.DESCR


def test_return_X_y_and_as_frame_false(prepared_home):
    X, y = load_movielens_100k(data_home=prepared_home, return_X_y=True)
    assert isinstance(X, pd.DataFrame) and isinstance(y, pd.Series) and len(X) == len(y)

    bunch = load_movielens_100k(data_home=prepared_home, as_frame=False)
    assert isinstance(bunch.data, np.ndarray) and bunch.data.shape == (100_000, 2)
    assert isinstance(bunch.target, np.ndarray) and bunch.frame is None
    np.testing.assert_array_equal(bunch.data, X.to_numpy())
    _, y_np = load_movielens_100k(data_home=prepared_home, return_X_y=True, as_frame=False)
    np.testing.assert_array_equal(y_np, y.to_numpy())


def test_scikit_learn_data_environment_variable_is_honoured(prepared_home, monkeypatch):
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(prepared_home))
    X, _ = load_movielens_100k(download_if_missing=False, return_X_y=True)
    assert len(X) == 100_000


def test_missing_files_without_download_say_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_if_missing=False") as info:
        load_movielens_100k(data_home=tmp_path, download_if_missing=False)
    assert str(tmp_path / "movielens_100k" / "ml-100k") in str(info.value)
    assert "ml-100k.zip" in str(info.value)


def test_incomplete_data_home_is_missing(prepared_home):
    (prepared_home / "movielens_100k" / "ml-100k" / "u.user").unlink()
    with pytest.raises(FileNotFoundError, match="not found"):
        load_movielens_100k(data_home=prepared_home, download_if_missing=False)


def test_altered_ratings_file_is_refused(prepared_home):
    ratings = prepared_home / "movielens_100k" / "ml-100k" / "u.data"
    ratings.write_bytes(ratings.read_bytes().replace(b"\t5\t", b"\t1\t", 1))
    with pytest.raises(OSError, match=r"sha256 .* expected .*Delete"):
        load_movielens_100k(data_home=prepared_home, download_if_missing=False)


# -- downloading from a local server -----------------------------------------------------------


def test_download_with_good_checksum_extracts_and_caches(tmp_path, monkeypatch, official_files):
    with _serve(monkeypatch, _zip_bytes(official_files)) as server:
        X, _ = load_movielens_100k(data_home=tmp_path, return_X_y=True)
        assert server.requests == 1
        # Cached: the second call reads the files and does not download again.
        X_again, _ = load_movielens_100k(data_home=tmp_path, return_X_y=True)
        assert server.requests == 1
    assert X.shape == (100_000, 2) and X.equals(X_again)
    assert _all_files(tmp_path) == [f"movielens_100k/ml-100k/{name}" for name in datasets._FILES]
    for name, payload in official_files.items():
        assert (tmp_path / "movielens_100k" / "ml-100k" / name).read_bytes() == payload


def test_download_with_bad_checksum_keeps_nothing(tmp_path, monkeypatch, official_files):
    with _serve(monkeypatch, _zip_bytes(official_files), digest="0" * 64) as server:
        with pytest.raises(OSError, match=r"expected 0{64}.*Nothing was kept"):
            load_movielens_100k(data_home=tmp_path)
        assert server.requests == 1
    assert _all_files(tmp_path) == []


def test_interrupted_download_leaves_no_half_file(tmp_path, monkeypatch, official_files):
    body = _zip_bytes(official_files)
    with _serve(monkeypatch, body, cut_at=len(body) // 2):
        with pytest.raises(OSError, match=f"interrupted: received {len(body) // 2:,} of"):
            load_movielens_100k(data_home=tmp_path)
    assert _all_files(tmp_path) == []


def test_archive_with_altered_ratings_is_refused(tmp_path, monkeypatch, official_files):
    altered = {**official_files, "u.data": official_files["u.data"][:-100]}
    with _serve(monkeypatch, _zip_bytes(altered)):
        with pytest.raises(OSError, match="not the original MovieLens 100K file"):
            load_movielens_100k(data_home=tmp_path)
    assert _all_files(tmp_path) == []


def test_archive_without_a_member_is_refused(tmp_path, monkeypatch, official_files):
    partial = {k: v for k, v in official_files.items() if k != "u.user"}
    with _serve(monkeypatch, _zip_bytes(partial)):
        with pytest.raises(OSError, match=r"no ml-100k/u\.user"):
            load_movielens_100k(data_home=tmp_path)
    assert "movielens_100k/ml-100k.zip" not in _all_files(tmp_path)


def test_unreachable_server_gives_a_clear_error(tmp_path, monkeypatch):
    server = _Server(b"")
    url = server.url
    server.httpd.server_close()  # nothing listens on that port any more
    monkeypatch.setattr(datasets, "_ARCHIVE_URL", url)
    with pytest.raises(OSError, match=f"Downloading {url} failed"):
        load_movielens_100k(data_home=tmp_path)
    assert _all_files(tmp_path) == []


# -- make_ratings -----------------------------------------------------------------------------


def test_make_ratings_is_reproducible_with_distinct_pairs():
    X, y = make_ratings(n_users=30, n_items=40, n_ratings=500, random_state=1)
    X2, y2 = make_ratings(n_users=30, n_items=40, n_ratings=500, random_state=1)
    assert X.equals(X2) and y.equals(y2)
    assert not X.duplicated().any() and y.between(1, 5).all()


def test_make_ratings_has_latent_structure():
    # Item means carry signal: on held-out ratings they beat the global mean.
    X, y = make_ratings(n_users=200, n_items=100, n_ratings=8000, noise=0.3, random_state=0)
    train, test = slice(0, 6000), slice(6000, None)
    item_means = y[train].groupby(X["item_id"][train]).mean()
    pred = X["item_id"][test].map(item_means).fillna(y[train].mean())
    item_rmse = np.sqrt(np.mean((pred - y[test]) ** 2))
    mean_rmse = np.sqrt(np.mean((y[train].mean() - y[test]) ** 2))
    assert item_rmse < 0.95 * mean_rmse


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_users": 0}, "n_users must be a positive int"),
        ({"n_ratings": 10**9}, "exceeds"),
        ({"noise": -1.0}, "noise must be >= 0"),
    ],
)
def test_make_ratings_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_ratings(**kwargs)
