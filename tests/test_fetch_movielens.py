"""fetch_movielens, offline: small archives in each format, served by a local HTTP server.

The archives are built here, in the four MovieLens formats; the variant table's digests are
replaced by theirs for the test only (``monkeypatch``). The one real file is
``../shared/data/ml-100k/u.data``, checked against its known SHA-256; ``u.item`` and
``u.user`` are rebuilt in the official format from the shared ``.tsv`` copies, in a temporary
folder (the data is never copied into the repository).
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import socket
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skembedrec import _movielens, datasets
from skembedrec.datasets import fetch_movielens, fetch_movielens_100k, load_movielens_100k

SHARED_ML100K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-100k"
DTYPES = {"user_id": np.int32, "item_id": np.int32, "rating": np.float32,
          "timestamp": np.int64}

# -- small archives in the four formats ---------------------------------------------------------

def _flags(*genres: str) -> str:
    return "|".join("1" if g in genres else "0" for g in _movielens._GENRES_100K)


FILES_100K = {
    "u.data": b"1\t10\t4\t881250949\n2\t20\t1\t881250950\n1\t20\t5\t881250951\n",
    "u.item": (f"10|Mis\u00e9rables, Les (1995)|01-Jan-1995||http://x/|{_flags('Drama')}\n"
               f"20|Nameless|01-Jan-1997||http://x/|{_flags('Comedy', 'War')}\n"
               ).encode("latin-1"),
    "u.user": b"1|24|M|technician|85711\n2|53|F|other|94043\n",
}
FILES_1M = {
    "ratings.dat": b"1::10::4::978300760\n2::20::1::978300761\n1::20::5::978300762\n",
    "movies.dat": ("10::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi\n"
                   "20::Caf\u00e9 au lait (1993)::Comedy\n").encode("latin-1"),
    "users.dat": b"1::F::1::10::48067\n2::M::56::16::70072\n",
}
FILES_10M = {
    "ratings.dat": b"1::10::4.5::838985046\n2::20::0.5::838985047\n1::20::5::838985048\n",
    "movies.dat": ("10::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi\n"
                   "20::Caf\u00e9 au lait (1993)::Comedy\n").encode("utf-8"),
}
FILES_CSV = {
    "ratings.csv": (b"userId,movieId,rating,timestamp\n1,10,4.5,1147880044\n"
                    b"2,20,0.5,1147868817\n1,20,5.0,1147868828\n"),
    "movies.csv": ('movieId,title,genres\n10,"American President, The (1995)",Comedy|Drama\n'
                   "20,Caf\u00e9 (no year),(no genres listed)\n").encode("utf-8"),
}
ARCHIVES = {  # variant -> files (the folder inside the zip comes from the variant table)
    "100k": FILES_100K, "1m": FILES_1M, "10m": FILES_10M, "20m": FILES_CSV, "25m": FILES_CSV,
    "latest-small": FILES_CSV,
}


def _zip(files: dict[str, bytes], folder: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, payload in files.items():
            zipped.writestr(f"{folder}/{name}" if folder else name, payload)
    return buffer.getvalue()


def _archive(variant: str, files: dict[str, bytes] | None = None) -> bytes:
    return _zip(ARCHIVES[variant] if files is None else files,
                _movielens.VARIANTS[variant].folder)


def _expect(monkeypatch, variant: str, body: bytes, keep_member_digests: bool = False) -> str:
    """Make ``body`` the official archive of ``variant`` for this test; return its digest."""
    digest = hashlib.sha256(body).hexdigest()
    spec = _movielens.VARIANTS[variant]
    members = spec.member_sha256 if keep_member_digests else {}
    monkeypatch.setitem(_movielens.VARIANTS, variant, dataclasses.replace(
        spec, sha256=digest, n_bytes=len(body), member_sha256=members))
    return digest


def _all_files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


# -- a local HTTP server ------------------------------------------------------------------------


class Server:
    """Serves ``routes[path] = (status, body, bytes_sent)`` on 127.0.0.1; records requests."""

    def __init__(self):
        self.routes: dict[str, tuple[int, bytes, int | None]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                status, body, sent = server.routes.get(self.path, (404, b"not found", None))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:sent])  # fewer bytes than announced: a cut download
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def serve(self, name: str, body: bytes, status: int = 200, sent: int | None = None):
        self.routes["/" + name] = (status, body, sent)


@pytest.fixture
def server(monkeypatch):
    """A server that stands in for files.grouplens.org (``_movielens.BASE_URL``)."""
    local = Server()
    thread = threading.Thread(target=local.httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(_movielens, "BASE_URL", local.url)
    yield local
    local.httpd.shutdown()
    local.httpd.server_close()
    thread.join()


def _publish(server, monkeypatch, variant, body=None, **kwargs) -> bytes:
    body = _archive(variant) if body is None else body
    _expect(monkeypatch, variant, body)
    server.serve(_movielens.VARIANTS[variant].archive, body, **kwargs)
    return body


# -- each format parses to the right Bunch ------------------------------------------------------


@pytest.mark.parametrize("variant", ["100k", "1m", "10m", "25m", "latest-small"])
def test_each_format_parses_to_a_bunch_with_compact_dtypes(variant, server, monkeypatch,
                                                           tmp_path):
    _publish(server, monkeypatch, variant)
    ml = fetch_movielens(variant, data_home=tmp_path)

    assert list(ml.frame.columns) == list(DTYPES)
    assert ml.frame.dtypes.to_dict() == {k: np.dtype(v) for k, v in DTYPES.items()}
    assert ml.data.equals(ml.frame[["user_id", "item_id"]]) and ml.target.name == "rating"
    np.testing.assert_array_equal(ml.frame["user_id"], [1, 2, 1])
    np.testing.assert_array_equal(ml.frame["item_id"], [10, 20, 20])
    half_stars = variant not in ("100k", "1m")
    np.testing.assert_array_equal(ml.target, [4.5, 0.5, 5] if half_stars else [4, 1, 5])
    assert ml.frame["timestamp"].iloc[0] > 8e8
    assert ml.movies.index.name == "item_id" and ml.movies.index.dtype == np.int32
    assert list(ml.movies.columns) == ["title", "year", "genres"]
    assert ml.feature_names == ["user_id", "item_id"] and "Harper" in ml.DESCR
    assert _movielens.VARIANTS[variant].title in ml.DESCR
    assert (ml.users is not None) == (variant in ("100k", "1m"))


def test_item_and_user_tables_of_each_format(server, monkeypatch, tmp_path):
    for variant in ARCHIVES:
        _publish(server, monkeypatch, variant)
    ml = fetch_movielens("100k", data_home=tmp_path)
    assert ml.movies.loc[10].tolist() == ["Misérables, Les", 1995, ["Drama"]]  # Latin-1
    assert ml.movies.loc[20].tolist() == ["Nameless", 1997, ["Comedy", "War"]]  # from the date
    assert ml.users.loc[2].tolist() == [53, "F", "other", "94043"]

    ml = fetch_movielens("1m", data_home=tmp_path)
    star_wars = "Star Wars: Episode IV - A New Hope"  # ":" inside a "::"-separated field
    assert ml.movies.loc[10].tolist() == [star_wars, 1977, ["Action", "Sci-Fi"]]
    assert ml.movies.loc[20, "title"] == "Café au lait"
    assert ml.users.loc[1].tolist() == [1, "F", "K-12 student", "48067"]
    assert ml.users.loc[2, "occupation"] == "self-employed"

    ml = fetch_movielens("10m", data_home=tmp_path)
    assert ml.movies.loc[20, "title"] == "Café au lait" and ml.users is None

    ml = fetch_movielens("20m", data_home=tmp_path)
    assert ml.movies.loc[10].tolist() == ["American President, The", 1995, ["Comedy", "Drama"]]
    assert ml.movies.loc[20, "title"] == "Café (no year)" and pd.isna(ml.movies.loc[20, "year"])
    assert ml.movies.loc[20, "genres"] == []


def test_return_X_y_and_as_frame_false(server, monkeypatch, tmp_path):
    _publish(server, monkeypatch, "1m")
    X, y = fetch_movielens("1m", data_home=tmp_path, return_X_y=True)
    assert isinstance(X, pd.DataFrame) and isinstance(y, pd.Series)
    ml = fetch_movielens("1m", data_home=tmp_path, as_frame=False)
    assert ml.frame is None and ml.data.dtype == np.int32 and ml.data.shape == (3, 2)
    assert ml.target.dtype == np.float32
    np.testing.assert_array_equal(ml.data, X.to_numpy())
    X_np, _ = fetch_movielens("ml-1M", data_home=tmp_path, return_X_y=True, as_frame=False)
    assert isinstance(X_np, np.ndarray)


def test_fetch_movielens_100k_shortcut(server, monkeypatch, tmp_path):
    _publish(server, monkeypatch, "100k")
    X, y = fetch_movielens_100k(data_home=tmp_path, return_X_y=True)
    assert X.shape == (3, 2) and y.dtype == np.float32


def test_unknown_variant_lists_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown MovieLens variant '5m'.*'latest-small'"):
        fetch_movielens("5m", data_home=tmp_path)


# -- caching ---------------------------------------------------------------------------------


def test_second_call_reads_the_columnar_copy_without_downloading(server, monkeypatch,
                                                                 tmp_path):
    _publish(server, monkeypatch, "25m")
    first = fetch_movielens("25m", data_home=tmp_path)
    assert _all_files(tmp_path) == ["movielens/ml-25m.columns.npy", "movielens/ml-25m.zip"]

    def no_parsing(*args):
        raise AssertionError("the ratings were parsed again")

    monkeypatch.setattr(_movielens, "read_ratings", no_parsing)
    second = fetch_movielens("25m", data_home=tmp_path)
    assert server.requests == ["/ml-25m.zip"]
    pd.testing.assert_frame_equal(first.frame, second.frame)
    pd.testing.assert_frame_equal(first.movies, second.movies)


def test_columnar_copy_of_another_archive_is_not_used(server, monkeypatch, tmp_path):
    _publish(server, monkeypatch, "25m")
    fetch_movielens("25m", data_home=tmp_path)
    # A new archive (say, re-downloaded after a correction) under the same name.
    changed = {**FILES_CSV, "ratings.csv": FILES_CSV["ratings.csv"].replace(b"4.5", b"3.0")}
    body = _archive("25m", changed)
    (tmp_path / "movielens" / "ml-25m.zip").write_bytes(body)
    _expect(monkeypatch, "25m", body)
    assert fetch_movielens("25m", data_home=tmp_path).target.iloc[0] == 3.0


def test_damaged_columnar_copy_is_rebuilt(server, monkeypatch, tmp_path):
    _publish(server, monkeypatch, "1m")
    first = fetch_movielens("1m", data_home=tmp_path)
    cache = tmp_path / "movielens" / "ml-1m.columns.npy"
    intact = cache.read_bytes()
    for damaged in (intact[: len(intact) // 2], b"", intact.replace(b"<i4", b"<i8")):
        cache.write_bytes(damaged)
        pd.testing.assert_frame_equal(fetch_movielens("1m", data_home=tmp_path).frame,
                                      first.frame)
        assert cache.read_bytes() == intact


def test_manual_route_archive_put_in_the_cache_folder(monkeypatch, tmp_path):
    body = _archive("10m")
    _expect(monkeypatch, "10m", body)
    (tmp_path / "movielens").mkdir()
    (tmp_path / "movielens" / "ml-10m.zip").write_bytes(body)
    ml = fetch_movielens("10m", data_home=tmp_path, download_if_missing=False)
    assert len(ml.frame) == 3


def test_scikit_learn_data_environment_variable_is_honoured(server, monkeypatch, tmp_path):
    _publish(server, monkeypatch, "latest-small")
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))
    fetch_movielens("latest-small")
    assert "movielens/ml-latest-small.zip" in _all_files(tmp_path)


# -- download: mirror, progress, failures that leave nothing behind ----------------------------


def test_mirror_replaces_the_base_url_but_not_the_checksum(server, monkeypatch, tmp_path):
    body = _archive("1m")
    _expect(monkeypatch, "1m", body)
    server.serve("mirror/ml-1m.zip", body)
    # Nothing listens on port 9: only the mirror can answer.
    monkeypatch.setattr(_movielens, "BASE_URL", "http://127.0.0.1:9/")
    ml = fetch_movielens("1m", data_home=tmp_path, mirror=server.url + "mirror")
    assert server.requests == ["/mirror/ml-1m.zip"] and len(ml.frame) == 3
    ml = fetch_movielens("1m", data_home=tmp_path / "slash", mirror=server.url + "mirror/")
    assert server.requests[-1] == "/mirror/ml-1m.zip" and "mirror/ml-1m.zip" in ml.DESCR
    # The digest is checked all the same: a mirror serving another file is refused.
    server.serve("mirror/ml-1m.zip", _archive("10m"))
    with pytest.raises(ValueError, match="expected"):
        fetch_movielens("1m", data_home=tmp_path / "third", mirror=server.url + "mirror")
    assert _all_files(tmp_path / "third") == []


def test_progress_bar_on_stderr_when_verbose(server, monkeypatch, tmp_path, capsys):
    _publish(server, monkeypatch, "100k")
    fetch_movielens("100k", data_home=tmp_path, verbose=True)
    err = capsys.readouterr().err
    assert "Downloading ml-100k.zip" in err and "100%" in err
    fetch_movielens("100k", data_home=tmp_path / "quiet", verbose=False)
    assert capsys.readouterr().err == ""


def test_wrong_checksum_names_url_expected_and_actual_and_keeps_nothing(server, monkeypatch,
                                                                         tmp_path):
    body = _publish(server, monkeypatch, "1m")
    spec = _movielens.VARIANTS["1m"]
    monkeypatch.setitem(_movielens.VARIANTS, "1m", dataclasses.replace(spec, sha256="0" * 64))
    actual = hashlib.sha256(body).hexdigest()
    with pytest.raises(ValueError, match=rf"ml-1m\.zip has SHA-256 {actual}, expected 0{{64}}"):
        fetch_movielens("1m", data_home=tmp_path)
    assert _all_files(tmp_path) == [] and not (tmp_path / "movielens").exists()


def test_latest_small_mismatch_says_grouplens_updates_it(server, monkeypatch, tmp_path):
    _publish(server, monkeypatch, "latest-small")
    spec = _movielens.VARIANTS["latest-small"]
    monkeypatch.setitem(_movielens.VARIANTS, "latest-small",
                        dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(ValueError, match="GroupLens updates the 'latest' archives"):
        fetch_movielens("latest-small", data_home=tmp_path)
    assert _all_files(tmp_path) == []


def test_truncated_download_keeps_nothing(server, monkeypatch, tmp_path):
    body = _archive("10m")
    _publish(server, monkeypatch, "10m", body, sent=len(body) // 2)
    with pytest.raises(OSError, match=f"interrupted: received {len(body) // 2:,} of"):
        fetch_movielens("10m", data_home=tmp_path)
    assert _all_files(tmp_path) == []


def test_server_error_keeps_nothing(server, monkeypatch, tmp_path):
    _publish(server, monkeypatch, "20m", status=500)
    with pytest.raises(OSError, match=r"Downloading http://127\.0\.0\.1:\d+/ml-20m\.zip failed"
                                      r".*HTTP Error 500"):
        fetch_movielens("20m", data_home=tmp_path)
    assert _all_files(tmp_path) == []


def test_unreachable_server_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(_movielens, "BASE_URL", "http://127.0.0.1:9/")
    with pytest.raises(OSError, match=r"Downloading http://127\.0\.0\.1:9/ml-1m\.zip failed"):
        fetch_movielens("1m", data_home=tmp_path)
    assert _all_files(tmp_path) == []


def test_zip_with_a_parent_directory_member_is_refused(server, monkeypatch, tmp_path):
    files = {f"ml-25m/{name}": payload for name, payload in FILES_CSV.items()}
    _publish(server, monkeypatch, "25m", _zip({**files, "../../evil.py": b"print('x')"}))
    with pytest.raises(ValueError, match=r"unsafe member name '\.\./\.\./evil\.py'"):
        fetch_movielens("25m", data_home=tmp_path)
    assert _all_files(tmp_path) == [] and not (tmp_path.parent / "evil.py").exists()


def test_zip_with_an_absolute_member_is_refused(server, monkeypatch, tmp_path):
    files = {f"ml-25m/{name}": payload for name, payload in FILES_CSV.items()}
    _publish(server, monkeypatch, "25m", _zip({**files, "/etc/evil": b"x"}))
    with pytest.raises(ValueError, match="unsafe member name"):
        fetch_movielens("25m", data_home=tmp_path)
    assert _all_files(tmp_path) == []


def test_oversized_member_is_refused_before_reading(server, monkeypatch, tmp_path):
    # 5 MB of newlines compress to a few kB: the declared size is what gives it away.
    huge = {**FILES_CSV, "movies.csv": FILES_CSV["movies.csv"] + b"\n" * 5_000_000}
    body = _publish(server, monkeypatch, "25m", _archive("25m", huge))
    assert len(body) < 100_000
    monkeypatch.setattr(_movielens, "MAX_TABLE_BYTES", 1_000_000)
    with pytest.raises(ValueError, match=r"declares 5,000,\d+ bytes .* limit of 1,000,000"):
        fetch_movielens("25m", data_home=tmp_path)
    assert _all_files(tmp_path) == []


def test_archive_without_a_member_is_refused(server, monkeypatch, tmp_path):
    _publish(server, monkeypatch, "1m", _archive("1m", {
        k: v for k, v in FILES_1M.items() if k != "users.dat"}))
    with pytest.raises(ValueError, match=r"no member 'ml-1m/users\.dat'"):
        fetch_movielens("1m", data_home=tmp_path)
    assert _all_files(tmp_path) == []


def test_missing_archive_without_download_names_the_manual_route(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_if_missing=False") as info:
        fetch_movielens("25m", data_home=tmp_path, download_if_missing=False)
    message = str(info.value)
    assert str(tmp_path / "movielens" / "ml-25m.zip") in message
    assert "https://files.grouplens.org/datasets/movielens/ml-25m.zip" in message
    assert _movielens.VARIANTS["25m"].sha256 in message and "unextracted" in message
    assert _all_files(tmp_path) == []


def test_altered_cached_archive_is_refused(server, monkeypatch, tmp_path):
    _publish(server, monkeypatch, "1m")
    fetch_movielens("1m", data_home=tmp_path)
    archive = tmp_path / "movielens" / "ml-1m.zip"
    archive.write_bytes(archive.read_bytes()[:-10])
    with pytest.raises(ValueError, match=rf"{archive.name} has SHA-256 .* expected .*Delete it"):
        fetch_movielens("1m", data_home=tmp_path)


# -- files the user already has: zip or extracted folder, no download --------------------------


def _folder_places(home: Path, variant: str) -> list[Path]:
    folder = _movielens.VARIANTS[variant].folder
    places = [home / "movielens" / folder, home / folder]
    return places + ([home / "movielens_100k" / "ml-100k"] if variant == "100k" else [])


def _extract(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True)
    for name, payload in files.items():
        (folder / name).write_bytes(payload)


@pytest.fixture
def offline(monkeypatch):
    """Nothing listens on port 9: any download attempt fails loudly. The small u.data above
    is not the original: its known digest is dropped for the test."""
    monkeypatch.setattr(_movielens, "BASE_URL", "http://127.0.0.1:9/")
    monkeypatch.setitem(_movielens.VARIANTS, "100k", dataclasses.replace(
        _movielens.VARIANTS["100k"], member_sha256={}))


@pytest.mark.parametrize("variant", list(ARCHIVES))
def test_extracted_folder_in_each_accepted_place_loads_everything(variant, offline,
                                                                   tmp_path):
    spec = _movielens.VARIANTS[variant]
    for place in _folder_places(tmp_path / variant, variant):
        _extract(place, ARCHIVES[variant])
        written = _all_files(tmp_path)
        ml = fetch_movielens(variant, data_home=tmp_path / variant, download_if_missing=False)
        assert ml.frame.dtypes.to_dict() == {k: np.dtype(v) for k, v in DTYPES.items()}
        np.testing.assert_array_equal(ml.frame["item_id"], [10, 20, 20])
        assert ml.frame["timestamp"].iloc[0] > 8e8 and ml.frame["timestamp"].is_unique
        assert ml.movies.loc[10, "genres"] and ml.movies.index.name == "item_id"
        assert (ml.users is not None) == spec.has_users
        assert spec.title in ml.DESCR
        assert _all_files(tmp_path) == written  # a folder is read as it is: nothing written
        for name in ARCHIVES[variant]:  # so that the next place is the one read
            (place / name).unlink()


def test_folder_with_download_allowed_is_read_without_downloading(server, monkeypatch,
                                                                   tmp_path):
    _publish(server, monkeypatch, "1m")
    _extract(tmp_path / "ml-1m", FILES_1M)
    assert len(fetch_movielens("1m", data_home=tmp_path).frame) == 3
    assert server.requests == []


@pytest.mark.parametrize("variant", ["100k", "1m", "25m"])
def test_folder_with_only_the_ratings_file_loads_ratings_with_timestamps(variant, offline,
                                                                          tmp_path):
    spec = _movielens.VARIANTS[variant]
    ratings = spec.members["ratings"]
    _extract(tmp_path / spec.folder, {ratings: ARCHIVES[variant][ratings]})
    others = [spec.members[r] for r in ("movies", "users") if r in spec.members]
    with pytest.warns(UserWarning, match=" or ".join(others) + ": the ratings are loaded"):
        ml = fetch_movielens(variant, data_home=tmp_path, download_if_missing=False)
    assert ml.movies is None and ml.users is None
    assert list(ml.frame.columns) == list(DTYPES) and len(ml.frame) == 3
    assert ml.frame["timestamp"].iloc[0] > 8e8


def test_folder_without_the_users_file_keeps_the_movies(offline, tmp_path):
    files = {k: v for k, v in FILES_100K.items() if k != "u.user"}
    _extract(tmp_path / "movielens" / "ml-100k", files)
    with pytest.warns(UserWarning, match=r"no u\.user: .* but `users` is None"):
        ml = fetch_movielens("100k", data_home=tmp_path, download_if_missing=False)
    assert ml.users is None and ml.movies.loc[20, "title"] == "Nameless"


def test_zip_comes_before_a_folder_and_is_still_checked(offline, monkeypatch, tmp_path):
    _extract(tmp_path / "movielens" / "ml-25m", FILES_CSV)
    changed = {**FILES_CSV, "ratings.csv": FILES_CSV["ratings.csv"].replace(b"4.5", b"3.0")}
    body = _archive("25m", changed)
    (tmp_path / "movielens" / "ml-25m.zip").write_bytes(body)
    _expect(monkeypatch, "25m", body)
    assert fetch_movielens("25m", data_home=tmp_path).target.iloc[0] == 3.0
    # A damaged zip is an error, not a silent fall back to the folder.
    monkeypatch.setitem(_movielens.VARIANTS, "25m", dataclasses.replace(
        _movielens.VARIANTS["25m"], sha256="0" * 64))
    with pytest.raises(ValueError, match="has SHA-256"):
        fetch_movielens("25m", data_home=tmp_path)


def test_altered_u_data_in_a_folder_is_refused(tmp_path):
    """100K's u.data has a known digest: a folder's copy is checked against it."""
    _extract(tmp_path / "ml-100k", FILES_100K)  # not the original u.data
    with pytest.raises(ValueError, match=r"u\.data in .*ml-100k.* not the original"):
        fetch_movielens("100k", data_home=tmp_path, download_if_missing=False)


@pytest.mark.parametrize("variant", list(ARCHIVES))
def test_not_found_error_lists_every_route_with_exact_names(variant, tmp_path):
    spec = _movielens.VARIANTS[variant]
    with pytest.raises(FileNotFoundError) as info:
        fetch_movielens(variant, data_home=tmp_path, download_if_missing=False)
    message = str(info.value)
    assert "download_if_missing=True" in message
    assert f"https://files.grouplens.org/datasets/movielens/{spec.archive}" in message
    assert str(tmp_path / "movielens" / spec.archive) in message and spec.sha256 in message
    for place in _folder_places(tmp_path, variant):
        assert str(place) in message
    for name in spec.members.values():
        assert name in message
    assert f"{spec.folder}/" in message and "unextracted" in message
    assert _all_files(tmp_path) == []


def test_not_found_error_points_at_a_folder_without_the_ratings_file(tmp_path):
    # Unzipped into a folder named after the zip: one level too deep.
    _extract(tmp_path / "ml-1m" / "ml-1m", FILES_1M)
    with pytest.raises(FileNotFoundError,
                       match=r"ml-1m exists but has no ratings\.dat \(it holds ml-1m\)"):
        fetch_movielens("1m", data_home=tmp_path, download_if_missing=False)


# -- the real MovieLens 100K ratings -----------------------------------------------------------


@pytest.fixture(scope="module")
def official_100k() -> dict[str, bytes]:
    """The real u.data; u.item and u.user rebuilt in the official format from the .tsv."""
    if not (SHARED_ML100K / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not found at {SHARED_ML100K}")
    items = pd.read_csv(SHARED_ML100K / "items.tsv", sep="\t", dtype=str, keep_default_na=False)
    known = items["year"].str.isdigit()
    titles = items["title"].where(~known, items["title"] + " (" + items["year"] + ")")
    dates = ("01-Jan-" + items["year"]).where(known, "")
    flags = pd.concat([items["genres"].str.split().map(lambda gs, g=g: "1" if g in gs else "0")
                       for g in _movielens._GENRES_100K], axis=1).agg("|".join, axis=1)
    item_lines = items["movie_id"] + "|" + titles + "|" + dates + "||http://x/|" + flags
    users = pd.read_csv(SHARED_ML100K / "users.tsv", sep="\t", dtype=str, keep_default_na=False)
    return {
        "u.data": (SHARED_ML100K / "u.data").read_bytes(),
        "u.item": ("\n".join(item_lines) + "\n").encode("latin-1"),
        "u.user": users.to_csv(sep="|", header=False, index=False).encode("latin-1"),
    }


def test_real_100k_ratings_are_checked_against_their_digest(official_100k, server,
                                                            monkeypatch, tmp_path):
    assert hashlib.sha256(official_100k["u.data"]).hexdigest() == datasets._RATINGS_SHA256
    body = _archive("100k", official_100k)
    _expect(monkeypatch, "100k", body, keep_member_digests=True)
    server.serve("ml-100k.zip", body)
    ml = fetch_movielens("100k", data_home=tmp_path)
    assert ml.frame.shape == (100_000, 4) and round(float(ml.target.mean()), 2) == 3.53
    assert ml.movies.shape == (1682, 3) and ml.users.shape == (943, 4)
    assert ml.movies.loc[1].tolist() == ["Toy Story", 1995, ["Animation", "Children's", "Comedy"]]

    altered = {**official_100k, "u.data": official_100k["u.data"].replace(b"\t5\t", b"\t1\t", 1)}
    body = _archive("100k", altered)
    _expect(monkeypatch, "100k", body, keep_member_digests=True)
    (tmp_path / "movielens" / "ml-100k.zip").write_bytes(body)
    (tmp_path / "movielens" / "ml-100k.columns.npy").unlink()
    with pytest.raises(ValueError, match="not the original MovieLens 100K file"):
        fetch_movielens("100k", data_home=tmp_path)


def test_legacy_folder_and_deprecated_alias_keep_working(official_100k, tmp_path):
    """skembedrec < 0.2 extracted 100K into movielens_100k/ml-100k/: still read, no download."""
    folder = tmp_path / "movielens_100k" / "ml-100k"
    folder.mkdir(parents=True)
    for name, payload in official_100k.items():
        (folder / name).write_bytes(payload)
    ml = fetch_movielens("100k", data_home=tmp_path, download_if_missing=False)
    assert ml.frame.shape == (100_000, 4)

    with pytest.warns(FutureWarning, match="fetch_movielens"):
        old = load_movielens_100k(tmp_path, False)
    assert old.data.dtypes.tolist() == [np.int64, np.int64] and old.target.dtype == np.float64
    movies = old.movies.set_index("movie_id")
    assert movies.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert old.users.loc[0].tolist() == [1, 24, "M", "technician", "85711"]
    with pytest.warns(FutureWarning):
        X, y = load_movielens_100k(data_home=tmp_path, return_X_y=True, as_frame=False)
    assert X.shape == (100_000, 2) and y.dtype == np.float64

    (folder / "u.data").write_bytes(official_100k["u.data"][:-100])
    with pytest.raises(ValueError, match="not the original MovieLens 100K file"):
        fetch_movielens("100k", data_home=tmp_path, download_if_missing=False)


def test_real_100k_folder_layout_loads_ratings_with_timestamps(tmp_path):
    """The shared copy holds u.data with items.tsv/users.tsv (not the release's u.item and
    u.user): the ratings load, checked against u.data's digest; the tables are None."""
    if not (SHARED_ML100K / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not found at {SHARED_ML100K}")
    (tmp_path / "ml-100k").symlink_to(SHARED_ML100K, target_is_directory=True)
    with pytest.warns(UserWarning, match=r"no u\.item or u\.user"):
        ml = fetch_movielens("100k", data_home=tmp_path, download_if_missing=False)
    assert ml.frame.shape == (100_000, 4) and ml.movies is None and ml.users is None
    assert ml.frame["timestamp"].between(874_724_710, 893_286_638).all()
    assert round(float(ml.target.mean()), 2) == 3.53
    assert _all_files(tmp_path) == []  # nothing written beside (or into) the shared copy


# -- the suite's network guard -----------------------------------------------------------------


def test_network_guard_refuses_non_loopback_connections():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(OSError, match="network access"):
            sock.connect(("192.0.2.1", 80))  # TEST-NET-1: would never answer anyway
    with pytest.raises(OSError, match="network access"):
        socket.create_connection(("files.grouplens.org", 443), timeout=1)
