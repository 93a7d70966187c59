"""Rating datasets: a synthetic generator with real latent structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

__all__ = ["make_ratings"]


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
    signal = np.einsum("ij,ij->i", user_factors[users], item_factors[items])
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
        chosen = np.unique(np.concatenate([chosen, u.astype(np.int64) * n_items + i]))
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
