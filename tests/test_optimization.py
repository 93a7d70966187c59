"""The mechanisms behind a training cost ∝ ratings (skembedrec._optimization, _defaults).

Timings live in benchmarks/scale.py; these tests guard what makes them possible: a step
touches only the rows of its batch (and their optimizer moments), the implicit sums stay the
exact product between refreshes and give the exact gradient when refreshed every step, and
the "auto" settings follow their documented rules.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from skembedrec import EmbeddingRatingRegressor
from skembedrec._defaults import (
    batch_size_for,
    compiled_for,
    epochs_for,
    implicit_for,
    l2_for,
    learning_rate_for,
    n_estimators_for,
)
from skembedrec._network import NetworkConfig, build_network, set_training_pairs
from skembedrec._optimization import DENSE_ROWS, RowSparseAdam, refresh_interval

N_USERS, N_ITEMS = 300, 200


def _network(seed: int = 0, **architecture) -> keras.Model:
    keras.utils.set_random_seed(seed)
    config = NetworkConfig(n_users=N_USERS, n_items=N_ITEMS, n_factors=4,
                           **{"implicit": True, "l2": 0.1, **architecture})
    return build_network(config)


def _pairs(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    codes = np.column_stack([rng.randint(0, N_USERS, n), rng.randint(0, N_ITEMS, n)])
    return codes.astype(np.int32), rng.normal(size=n).astype(np.float32)


def _slots(optimizer, variable) -> list[np.ndarray]:
    index = optimizer._get_variable_index(variable)
    return [optimizer._momentums[index].numpy(), optimizer._velocities[index].numpy()]


def test_a_step_changes_only_the_rows_and_moments_its_batch_touches():
    """Tables above DENSE_ROWS rows (and larger than the batch) take the row-sparse step."""
    rng = np.random.RandomState(0)
    n_users, n_items = DENSE_ROWS + 5000, DENSE_ROWS + 1
    codes = np.column_stack([rng.randint(0, n_users, 2000),
                             rng.randint(0, n_items, 2000)]).astype(np.int32)
    ratings = rng.normal(size=2000).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = build_network(NetworkConfig(n_users=n_users, n_items=n_items, n_factors=2,
                                        implicit=False, l2=0.1))
    set_training_pairs(model, codes[:, 0], codes[:, 1], epoch=(len(codes), 64))
    model.optimizer.build(model.trainable_variables)
    model.train_on_batch(codes[:64], ratings[:64])  # every touched row now has moments
    batch = codes[64:128]
    before = {v.path: (v.numpy(), *_slots(model.optimizer, v))
              for v in model.trainable_variables}
    model.train_on_batch(batch, ratings[64:128])
    for variable in model.trainable_variables:
        side = 0 if variable.path.startswith("user") else 1
        touched = np.zeros(variable.shape[0], dtype=bool)
        touched[np.unique(batch[:, side])] = True
        for old, new in zip(before[variable.path],
                            (variable.numpy(), *_slots(model.optimizer, variable)),
                            strict=True):
            # Tables larger than the batch: rows outside it and their moments are untouched.
            np.testing.assert_array_equal(old[~touched], new[~touched])
            assert (np.abs(old[touched] - new[touched]).sum(axis=1) > 0).all()


@pytest.mark.parametrize("n_rows", [20, DENSE_ROWS + 20])
def test_tables_up_to_dense_rows_or_the_batch_take_keras_adams_step(n_rows):
    rng = np.random.RandomState(0)
    start = rng.normal(size=(n_rows, 3)).astype(np.float32)
    n_lookups = 24 if n_rows == 20 else n_rows + 4
    row_sparse, dense = keras.Variable(start), keras.Variable(start)
    ours, theirs = RowSparseAdam(0.05), keras.optimizers.Adam(0.05)
    ours.build([row_sparse])
    theirs.build([dense])
    for _ in range(5):
        rows = rng.randint(0, n_rows, n_lookups)  # repeated rows among them
        gradient = tf.IndexedSlices(
            tf.constant(rng.normal(size=(n_lookups, 3)), tf.float32), tf.constant(rows),
            dense_shape=start.shape)
        ours.apply([gradient], [row_sparse])
        theirs.apply([gradient], [dense])
    np.testing.assert_allclose(row_sparse.numpy(), dense.numpy(), rtol=1e-5, atol=1e-6)


def test_row_update_sums_repeated_rows_as_keras_adam_does():
    """One step from zero moments: the sparse update equals Keras' dense Adam on the touched
    rows (summed gradient for the momentum, summed squares for the velocity) and leaves the
    others alone."""
    start = np.ones((DENSE_ROWS + 50, 2), dtype=np.float32)
    row_sparse, dense = keras.Variable(start), keras.Variable(start)
    ours, theirs = RowSparseAdam(0.1), keras.optimizers.Adam(0.1)
    ours.build([row_sparse])
    theirs.build([dense])
    gradient = tf.IndexedSlices(tf.constant([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]]),
                                tf.constant([4, 4, 7]), dense_shape=start.shape)
    ours.apply([gradient], [row_sparse])
    theirs.apply([gradient], [dense])
    # From zero moments, Keras' Adam moves only the rows with a gradient too.
    np.testing.assert_allclose(row_sparse.numpy(), dense.numpy(), rtol=1e-5)
    untouched = ~np.isin(np.arange(len(start)), [4, 7])
    np.testing.assert_array_equal(row_sparse.numpy()[untouched], start[untouched])


def _train(model, codes, ratings, batch_size, steps):
    for step in range(steps):
        block = slice(step * batch_size, (step + 1) * batch_size)
        model.train_on_batch(codes[block], ratings[block])


def test_implicit_sums_refreshed_every_step_give_the_exact_gradient():
    """On a schedule refreshed at every step, training on the stored sums is the same as
    differentiating through the full product at every step (the unscheduled path)."""
    codes, ratings = _pairs()
    scheduled, exact = _network(seed=1), _network(seed=1)
    set_training_pairs(scheduled, codes[:, 0], codes[:, 1], epoch=(len(codes), 4000))
    set_training_pairs(exact, codes[:, 0], codes[:, 1])
    assert refresh_interval(len(codes), 4000) == 1
    for model in (scheduled, exact):
        model.optimizer.build(model.trainable_variables)
        _train(model, codes, ratings, 400, 4)
    for ours, reference in zip(scheduled.trainable_weights, exact.trainable_weights,
                               strict=True):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["user", "item"])
def test_stored_sums_equal_the_full_product_and_move_only_at_refreshes(kind, monkeypatch):
    import skembedrec._network as network

    monkeypatch.setattr(network, "refresh_interval", lambda n_ratings, batch_size: 3)
    codes, ratings = _pairs()
    model = _network()
    set_training_pairs(model, codes[:, 0], codes[:, 1], epoch=(len(codes), 100))
    model.optimizer.build(model.trainable_variables)
    layer = model.get_layer(f"{kind}_implicit")
    rows, columns = (codes[:, 0], codes[:, 1]) if kind == "user" else (codes[:, 1], codes[:, 0])
    pairs = np.unique(np.column_stack([rows, columns]), axis=0)
    counts = np.bincount(pairs[:, 0], minlength=layer.n_rows)
    matrix = np.zeros((layer.n_rows, layer.n_columns))
    matrix[pairs[:, 0], pairs[:, 1]] = 1 / np.sqrt(counts[pairs[:, 0]])
    table = layer.embeddings.numpy()
    for step in range(7):
        _train(model, codes[step * 100:], ratings[step * 100:], 100, 1)
        changed = not np.array_equal(table, layer.embeddings.numpy())
        assert changed == ((step + 1) % 3 == 0)  # the table moves at refreshes only
        table = layer.embeddings.numpy()
        np.testing.assert_allclose(layer.cached_vectors.numpy(), matrix @ table,
                                   rtol=1e-4, atol=1e-6)


def test_refresh_interval_follows_its_rule():
    for n_ratings, batch_size in [(90_000, 4096), (1_000_000, 32_768), (2_000, 4096),
                                  (10_000_000, 65_536), (25_000_000, 65_536)]:
        steps = -(-n_ratings // batch_size)
        every = refresh_interval(n_ratings, batch_size)
        refreshes = -(-steps // every)
        assert refreshes == min(steps, max(4, -(-2**25 // n_ratings))) or (
            refreshes < min(steps, max(4, -(-2**25 // n_ratings))) + every)
        # What makes an epoch cost ∝ ratings: products over at most max(4 n, 2**25) pairs.
        assert refreshes * n_ratings <= max(4 * n_ratings, 2**25) + every * n_ratings
    assert refresh_interval(90_000, 4096) == 1  # MovieLens 100K: exact
    assert refresh_interval(25_000_000, 65_536) == 96  # 382 steps, 4 refreshes


def test_auto_rules():
    # Small data: about 24 steps per epoch from 128 up; then 4,096, 65,536 from 1M and
    # 262,144 from 16M.
    sizes = (1_000, 6_400, 29_999, 30_000, 90_000, 999_999, 1_000_000, 15_999_999,
             16_000_000, 10**8)
    assert [batch_size_for(n) for n in sizes] == [
        128, 256, 1024, 4096, 4096, 4096, 65_536, 65_536, 262_144, 262_144]
    assert learning_rate_for(4096, 90_000) == 0.01
    assert learning_rate_for(16_384, 500_000) == pytest.approx(0.02)
    assert learning_rate_for(256, 6_000) == 0.01  # the small-data regime does not scale it
    assert learning_rate_for(65_536, 1_000_000) == 0.01  # the large regime's own base
    # Beyond 4M ratings (4 epochs) 0.007 at 65,536, scaled for the larger batches.
    assert learning_rate_for(16_384, 4_000_000) == pytest.approx(0.005)
    assert learning_rate_for(65_536, 4_000_001) == pytest.approx(0.007)
    assert learning_rate_for(262_144, 25_000_000) == pytest.approx(0.014)
    assert [n_estimators_for(n) for n in (90_000, 999_999, 1_000_000)] == [2, 2, 1]
    assert [implicit_for(n) for n in (29_999, 30_000, 999_999, 1_000_000)] == [
        False, True, True, False]
    assert [(l2_for(n), epochs_for(n)) for n in (29_999, 30_000)] == [(1.0, 10), (0.1, 4)]
    assert l2_for(90_000) == 0.1 and l2_for(360_000) == pytest.approx(0.05)
    assert [(l2_for(n), epochs_for(n)) for n in (1_000_000, 4_000_000, 4_000_001)] == [
        (0.04, 8), (0.04, 8), (0.04, 4)]
    assert [compiled_for(n) for n in (999_999, 1_000_000)] == [False, True]
    # Time terms or side features: 6 epochs at half the rate, in the full regime only.
    assert [(learning_rate_for(batch_size_for(n), n, extra_terms=True),
             epochs_for(n, extra_terms=True))
            for n in (29_999, 30_000, 999_999, 1_000_000)] == [
        (0.01, 10), (0.005, 6), (0.005, 6), (0.01, 8)]
    assert learning_rate_for(16_384, 90_000, extra_terms=True) == pytest.approx(0.01)


@pytest.mark.slow
def test_auto_settings_are_resolved_per_fit_and_kept_by_partial_fit(ratings):
    X, y = ratings  # 3,000 ratings: the small-data regime
    est = EmbeddingRatingRegressor(n_factors=4, random_state=0).fit(X, y)
    assert (est.batch_size_, est.learning_rate_, est.n_estimators_, est.implicit_,
            est.l2_, est.epochs_, est.n_iter_) == (128, 0.01, 2, False, 1.0, 10, 10)
    assert est.get_params()["batch_size"] == "auto"  # the parameter is left as given
    big = pd.concat([X] * 11, ignore_index=True), pd.concat([y] * 11, ignore_index=True)
    est.set_params(epochs=1).fit(*big)  # 33,000 ratings
    assert (est.batch_size_, est.learning_rate_) == (4096, 0.01)
    est.set_params(batch_size=16_384).fit(*big)
    assert est.learning_rate_ == pytest.approx(0.02)  # an explicit batch size scales it
    # A time column (or a feature table) gives the longer schedule at half the rate.
    timed = big[0].assign(timestamp=np.arange(len(big[0])) * 3_600)
    with_time = EmbeddingRatingRegressor(n_factors=4, time_col="timestamp",
                                         random_state=0).fit(timed, big[1])
    assert (with_time.batch_size_, with_time.learning_rate_, with_time.epochs_,
            with_time.n_iter_) == (4096, 0.005, 6, 6)
    assert (est.implicit_, est.l2_) == (True, 0.1)
    est.partial_fit(X.head(100), y.head(100))
    assert (est.n_estimators_, est.implicit_, est.batch_size_) == (2, True, 16_384)
