"""Size-aware defaults: the settings a careful user changes with the number of ratings.

Each ``"auto"`` parameter of :class:`~skembedrec.EmbeddingRatingRegressor` is resolved here
from the number of training ratings of the fit (after zero-weight rows are dropped), by the
rules below; the estimator stores the resolved values as fitted attributes
(``batch_size_``, ``learning_rate_``, ``n_estimators_``, ``implicit_``, ``l2_``,
``epochs_``). At MovieLens 100K scale (90,000 ratings) they are the values the defaults were
tuned with there: batches of 4,096, a learning rate of 0.01, two ensemble members, implicit
feedback, ``l2=0.1`` and 4 epochs.

Three regimes, by the number of training ratings ``n``:

* **small** (``n < 30,000``): a model that learns the user and item biases well and little
  else (``benchmarks/small_data.py``: the ML-100K defaults lost to a damped-bias baseline at
  2,000 and 8,000 ratings, with 4 or 8 steps in all; this regime beats it on average there,
  on 8 and 9 of 10 seeds): no implicit term, ``l2=0.3``, 10 epochs of about 24 steps
  each, learning rate 0.01;
* **full** (up to 2,000,000): the ML-100K defaults, the L2 penalty falling beyond 90,000
  ratings (:func:`l2_for`); from here on the biases start at the damped-bias baseline
  (:func:`damped_biases_for`);
* **large** (beyond): one member, no implicit term (see :func:`implicit_for`), batches of
  65,536 at a learning rate of 0.04.
"""

from __future__ import annotations

import math
from typing import Any

AUTO = "auto"

# Below this many ratings, the small-data regime.
SMALL_DATA_BELOW = 30_000
# MovieLens 100K, where the defaults were tuned: batches of 4,096 at a learning rate of 0.01.
BASE_BATCH_SIZE = 4096
SMALL_BATCH_SIZE = 128
BASE_LEARNING_RATE = 0.01
BASE_L2 = 0.1
BASE_L2_RATINGS = 90_000
MAX_BATCH_SIZE = 65_536
STEPS_PER_EPOCH = 24
# Up to this many ratings the defaults train the full model: an ensemble of two members
# with implicit feedback; beyond, one member of plain biased matrix factorisation.
FULL_MODEL_UP_TO = 2_000_000


def is_small(n_ratings: int) -> bool:
    """Whether ``n_ratings`` training ratings fall in the small-data regime (< 30,000)."""
    return n_ratings < SMALL_DATA_BELOW


def batch_size_for(n_ratings: int) -> int:
    """4,096 in the full-model regime (up to 2,000,000 ratings), 65,536 beyond; in the
    small-data regime about :data:`STEPS_PER_EPOCH` steps per epoch, the power of two
    nearest to ``n_ratings / 24`` from 128 up.

    On 1M synthetic ratings batches of 4,096 / 8,192 / 16,384 / 32,768 gave test RMSE
    0.610 / 0.614 / 0.640 / 0.624 for the same fit time (Surprise SVD: 0.621): the implicit
    refreshes, not the batch count, set that time. Beyond 2,000,000 ratings a step of
    65,536 costs less per rating than smaller ones.

    Examples
    --------
    >>> [batch_size_for(n) for n in (2_000, 24_000, 90_000, 2_000_000, 25_000_000)]
    [128, 1024, 4096, 4096, 65536]
    """
    if is_small(n_ratings):
        power = round(math.log2(max(n_ratings, 1) / STEPS_PER_EPOCH))
        return int(min(BASE_BATCH_SIZE, max(SMALL_BATCH_SIZE, 2**power)))
    return BASE_BATCH_SIZE if n_ratings <= FULL_MODEL_UP_TO else MAX_BATCH_SIZE


def learning_rate_for(batch_size: int, n_ratings: int = SMALL_DATA_BELOW) -> float:
    """0.01 at batches of 4,096, scaled with the square root of the batch size (Adam's
    usual rule: the gradient noise falls with the square root of the batch); 0.01 in the
    small-data regime (a smaller rate left the biases under-trained there).

    Examples
    --------
    >>> learning_rate_for(4096), learning_rate_for(65_536), learning_rate_for(256, 6_000)
    (0.01, 0.04, 0.01)
    """
    if is_small(n_ratings):
        return BASE_LEARNING_RATE
    return BASE_LEARNING_RATE * math.sqrt(batch_size / BASE_BATCH_SIZE)


def l2_for(n_ratings: int) -> float:
    """0.3 in the small-data regime (little is left to the factors); in the full-model
    regime 0.1 up to 90,000 ratings (MovieLens 100K), then ``0.1 * sqrt(90,000 /
    n_ratings)``; 0.1 in the large regime.

    The penalty applies per rating, and ids gather more ratings as the data grows: on 1M
    synthetic ratings ``l2`` 0.1 / 0.03 / 0.01 gave test RMSE 0.6235 / 0.6133 / 0.6222
    (Surprise SVD 0.6211), with the training loss as high as the test error at 0.1. The
    large regime's model (one member, no implicit term, few large steps) is another story:
    at 10M / 25M ratings 0.1 gave 0.625 / 0.635 and the falling rule (0.0095 / 0.006)
    0.646 / 0.702.

    Examples
    --------
    >>> l2_for(5_000), l2_for(90_000), round(l2_for(1_000_000), 4), l2_for(10_000_000)
    (0.3, 0.1, 0.03, 0.1)
    """
    if is_small(n_ratings):
        return 0.3
    if n_ratings > FULL_MODEL_UP_TO:
        return BASE_L2
    return BASE_L2 * min(1.0, math.sqrt(BASE_L2_RATINGS / n_ratings))


def epochs_for(n_ratings: int) -> int:
    """10 in the small-data regime, else 4 (more started to overfit on MovieLens 100K).

    Examples
    --------
    >>> epochs_for(5_000), epochs_for(90_000)
    (10, 4)
    """
    return 10 if is_small(n_ratings) else 4


def n_estimators_for(n_ratings: int) -> int:
    """Two ensemble members up to 2,000,000 ratings, one beyond.

    Averaging two independently initialised members removes much of the seed-to-seed noise
    of a model fitted on little data per id (MovieLens 100K: 0.893 against 0.90 for one);
    with millions of ratings that noise is small, and the second member would double every
    table and every step.

    Examples
    --------
    >>> n_estimators_for(90_000), n_estimators_for(10_000_000)
    (2, 1)
    """
    return 2 if n_ratings <= FULL_MODEL_UP_TO else 1


def implicit_for(n_ratings: int) -> bool:
    """Implicit feedback from 30,000 up to 2,000,000 ratings, none outside.

    Below, with 10 epochs, it overfits (2,000 ratings: RMSE 1.095 with it, 1.079 without).

    Up to there an epoch refreshes the implicit sums at least 17 times (every step on
    MovieLens 100K; see :mod:`._optimization`), at a cost ∝ ratings. Beyond, the refreshes
    thin out to four per epoch, and with popular items
    rated tens of thousands of times one Adam step of the vector table moves an item's sum
    by ``sqrt(raters) * learning_rate``: on 10M MovieLens-shaped ratings such a model
    diverged (test RMSE 1.37 against 0.66 without the term). The term matters most for ids
    with few ratings, which large catalogues have proportionally less of.

    Examples
    --------
    >>> implicit_for(5_000), implicit_for(90_000), implicit_for(10_000_000)
    (False, True, False)
    """
    return not is_small(n_ratings) and n_ratings <= FULL_MODEL_UP_TO


def damped_biases_for(n_ratings: int) -> bool:
    """Whether the user and item biases start at the damped-bias baseline: from 30,000
    ratings on (outside the small-data regime).

    On five validation folds of MovieLens 100K's training ratings (issue 15,
    ``benchmarks/time_terms.py``) that start lowered the RMSE of the defaults with
    ``time_col`` by 0.004 (0.8964 against 0.9001): 4 epochs leave biases started at zero
    short of their optimum.
    In the small-data regime its 10 epochs of unpenalised biases carried them past it:
    ``benchmarks/small_data.py`` (10 seeds) lost to the baseline at 8,000 ratings (+0.04 %,
    5 of 10 seeds) where biases started at zero beat it on 9 of 10.
    """
    return not is_small(n_ratings)


def resolve(params: dict[str, Any], n_ratings: int) -> dict[str, Any]:
    """``params`` with each ``"auto"`` value (``batch_size``, ``learning_rate``,
    ``n_estimators``, ``implicit``, ``l2``, ``epochs``) replaced by its rule for
    ``n_ratings`` training ratings.

    An explicit ``batch_size`` is also what an ``"auto"`` learning rate scales with. With
    ``dot_product=False`` in ``params``, ``n_estimators`` and ``implicit`` (explicit or
    ``"auto"``) resolve to 1 and False: they describe the dot product, and the network
    built without one has a single set of embedding columns and no implicit layers.

    Examples
    --------
    >>> resolve({"batch_size": "auto", "learning_rate": "auto", "n_estimators": 3},
    ...         20_000_000)
    {'batch_size': 65536, 'learning_rate': 0.04, 'n_estimators': 3}
    >>> resolve({"dot_product": False, "n_estimators": 2, "implicit": "auto"}, 90_000)
    {'dot_product': False, 'n_estimators': 1, 'implicit': False}
    """
    resolved = dict(params)
    if resolved.get("batch_size") == AUTO:
        resolved["batch_size"] = batch_size_for(n_ratings)
    if resolved.get("learning_rate") == AUTO:
        resolved["learning_rate"] = learning_rate_for(resolved["batch_size"], n_ratings)
    if resolved.get("n_estimators") == AUTO:
        resolved["n_estimators"] = n_estimators_for(n_ratings)
    if resolved.get("implicit") == AUTO:
        resolved["implicit"] = implicit_for(n_ratings)
    if resolved.get("l2") == AUTO:
        resolved["l2"] = l2_for(n_ratings)
    if resolved.get("epochs") == AUTO:
        resolved["epochs"] = epochs_for(n_ratings)
    if not resolved.get("dot_product", True):
        # Both settings shape the dot product only: without it the network has one set of
        # embedding columns (read by the MLP tower, if any) and no implicit layers.
        for name, value in (("n_estimators", 1), ("implicit", False)):
            if name in resolved:
                resolved[name] = value
    return resolved
