"""Shared fixtures. TensorFlow's C++ log noise is silenced here, for the test run only."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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
