"""make_ratings and read_ratings. The MovieLens loaders are tested in test_fetch_movielens.py."""

from __future__ import annotations

import numpy as np
import pytest

from skembedrec.datasets import example_ratings, make_ratings, read_ratings


def test_read_ratings_reads_u_data_from_a_file_or_its_folder_with_timestamps(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t4\t881250949\n2\t10\t3\t881250950\n")
    for path in (tmp_path, tmp_path / "u.data", str(tmp_path)):
        X, y = read_ratings(path)
        assert X.columns.tolist() == ["user_id", "item_id", "timestamp"]
        assert X.to_numpy().tolist() == [[1, 10, 881250949], [2, 10, 881250950]]
        assert X.dtypes.tolist() == [np.int64] * 3
        assert y.tolist() == [4.0, 3.0] and y.name == "rating" and y.dtype == np.float64


def test_read_ratings_output_fits_with_its_times(tmp_path):
    """read_ratings' X goes to fit as it is; time_col="timestamp" uses the times (without
    it the estimator reads user_id and item_id by name, as the examples do)."""
    from conftest import FAST

    from skembedrec import EmbeddingRatingRegressor

    X, y = make_ratings(n_users=20, n_items=30, n_ratings=300, random_state=0)
    lines = [f"{u}\t{i}\t{int(r)}\t{881250949 + 3600 * k}"
             for k, (u, i, r) in enumerate(zip(X["user_id"], X["item_id"], y, strict=True))]
    (tmp_path / "u.data").write_text("\n".join(lines) + "\n")
    X, y = read_ratings(tmp_path)
    timed = EmbeddingRatingRegressor(**FAST, time_col="timestamp").fit(X, y)
    assert timed.feature_names_in_.tolist() == ["user_id", "item_id", "timestamp"]
    assert timed.time_max_ == X["timestamp"].max()
    assert np.isfinite(timed.predict(X.iloc[:5])).all()


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


def test_example_ratings_offline_from_a_path_and_from_the_cache(ml100k_dir, tmp_path):
    """What the gallery runs on: synthetic when nothing is cached (never a download), the
    ratings and titles of a u.data path, and nothing else."""
    synthetic = example_ratings(data_home=tmp_path)
    assert synthetic.data.shape == (20_000, 2) and synthetic.titles is None
    assert synthetic.description.startswith("synthetic")
    real = example_ratings(ml100k_dir / "u.data")
    assert real.data.shape == (100_000, 2) and real.target.between(1, 5).all()
    assert real.titles.loc[1] == "Toy Story" and real.titles.index.name == "item_id"


def test_make_ratings_is_reproducible_and_pair_unique_at_scale_and_compact():
    """The rejection sampler keeps every pair once; compact=True changes dtypes, not values."""
    kwargs = dict(n_users=500, n_items=300, n_ratings=40_000, random_state=3)
    X, y = make_ratings(**kwargs)
    X2, y2 = make_ratings(**kwargs, compact=True)
    assert X.dtypes.tolist() == [np.int64] * 2 and y.dtype == np.float64
    assert X2.dtypes.tolist() == [np.int32] * 2 and y2.dtype == np.float32
    assert (X.to_numpy() == X2.to_numpy()).all() and (y.to_numpy() == y2.to_numpy()).all()
    assert not X.duplicated().any() and len(X) == 40_000
    assert X.equals(make_ratings(**kwargs)[0])


@pytest.mark.parametrize("shape", [(10, 10, 80), (5, 1000, 50), (2, 3, 6), (1, 1, 1)])
def test_make_ratings_dense_and_sparse_corners_keep_pairs_unique(shape):
    n_users, n_items, n_ratings = shape
    X, y = make_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings, random_state=0)
    assert len(X) == n_ratings and not X.duplicated().any() and y.between(1, 5).all()
    assert X["user_id"].between(0, n_users - 1).all()
    assert X["item_id"].between(0, n_items - 1).all()


def _gini(degrees):
    degrees = np.sort(degrees)
    n = degrees.size
    return 2 * np.sum(np.arange(1, n + 1) * degrees) / (n * degrees.sum()) - (n + 1) / n


def test_make_ratings_degrees_are_long_tailed_like_movielens_100k():
    """At ML-100K's shape: every user has >= 20 ratings and every item one, and the Gini
    coefficients are near ML-100K's (0.472 for users, 0.629 for items)."""
    X, _ = make_ratings(n_users=943, n_items=1682, n_ratings=100_000, random_state=0)
    users = np.bincount(X["user_id"], minlength=943)
    items = np.bincount(X["item_id"], minlength=1682)
    assert users.min() >= 20 and items.min() >= 1
    assert abs(_gini(users) - 0.472) < 0.04 and abs(_gini(items) - 0.629) < 0.04
    assert np.median(users) < 0.75 * users.mean() and users.max() > 5 * users.mean()


def test_make_ratings_gives_exactly_n_distinct_pairs_at_any_small_shape():
    rng = np.random.RandomState(0)
    for seed in range(300):
        n_users, n_items = (int(n) for n in rng.randint(1, 30, 2))
        n_ratings = int(rng.randint(1, n_users * n_items + 1))
        X, _ = make_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings,
                            random_state=seed)
        assert len(X) == n_ratings and not X.duplicated().any(), (n_users, n_items, n_ratings)
        assert X["user_id"].max() < n_users and X["item_id"].max() < n_items
