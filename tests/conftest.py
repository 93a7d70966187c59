"""Shared fixtures. TensorFlow's C++ log noise is silenced here, for the test run only."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import ipaddress
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings

REPO_ROOT = Path(__file__).resolve().parents[1]
ML100K_DIR = Path(
    os.environ.get("SKEMBEDREC_ML100K", REPO_ROOT.parent / "shared" / "data" / "ml-100k")
)

# Small settings so that a fit takes about a second; tests never rely on the defaults. The
# default ensemble with implicit feedback doubles the cost of each fit (graph tracing), so it
# is exercised by the tests that are about it (test_accuracy, test_persistence, ...).
FAST = dict(n_factors=8, hidden_units=(8,), epochs=2, batch_size=256, random_state=0,
            implicit=False, n_estimators=1)


class NetworkAccessBlocked(ConnectionRefusedError):
    """Raised by the suite's network guard (an OSError, so libraries fail the usual way)."""


def _is_loopback(host) -> bool:
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:  # a host name: resolving it would be network access already
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


@pytest.fixture(scope="session", autouse=True)
def no_network():
    """The suite runs offline: connecting outside 127.0.0.0/8 and ::1 raises, so does a DNS
    lookup of any other host (tests serve what they need from 127.0.0.1)."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo
    local_names = {"localhost", socket.gethostname()}

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise NetworkAccessBlocked(
                f"network access to {address!r} during the tests; serve the data from a "
                "local server on 127.0.0.1 instead"
            )

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and host not in local_names and not _is_loopback(host):
            raise NetworkAccessBlocked(f"network access (DNS lookup of {host!r}) during the tests")
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield

# The seed notebook's network and training settings, reached through parameters.
NOTEBOOK = dict(
    n_factors=64, hidden_units=(32,), dropout=0.5, embedding_dropout=0.1, use_bias=False,
    dot_product=False, l2=0.0, learning_rate=1e-3, batch_size=64, epochs=50,
)


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    if not (ML100K_DIR / "u.data").exists():
        pytest.skip(f"MovieLens 100K not found at {ML100K_DIR}")
    return ML100K_DIR


@pytest.fixture(scope="session")
def ml100k(ml100k_dir) -> pd.DataFrame:
    """The real ratings, sorted by user and time as in the seed notebook."""
    frame = pd.read_csv(
        ml100k_dir / "u.data",
        sep="\t",
        header=None,
        names=["user_id", "movie_id", "rating", "timestamp"],
    )
    return frame.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="session")
def ratings():
    """Synthetic ratings with latent structure: (X DataFrame, y Series)."""
    return make_ratings(n_users=60, n_items=80, n_ratings=3000, random_state=0)


@pytest.fixture(scope="session")
def fitted(ratings):
    """A small fitted estimator shared by read-only tests (do not mutate it)."""
    X, y = ratings
    return EmbeddingRatingRegressor(**FAST).fit(X, y)


@pytest.fixture
def rng():
    return np.random.RandomState(0)
