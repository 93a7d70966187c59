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
  on 8 and 9 of 10 seeds): no implicit term, ``l2=1.0``, 10 epochs of about 24 steps
  each, learning rate 0.01, and biases held near their prior (:func:`bias_penalty_for`);
* **full** (up to 1,000,000): the ML-100K defaults, the L2 penalty falling beyond 90,000
  ratings (:func:`l2_for`); with time terms or side features 6 epochs at half the rate
  (:func:`longer_schedule`);
* **large** (from 1,000,000): one member of biased matrix factorisation (no implicit term),
  batches of 65,536 at a learning rate of 0.01, ``l2=0.04``, 8 epochs up to 4,000,000
  ratings; beyond, 4 epochs at a rate of 0.007, and from 16,000,000 ratings batches of
  262,144 at 0.014; trained in compiled epochs (:func:`compiled_for`).

The large regime was chosen on validation ratings (the last 5 % of the training ratings of
``benchmarks/scale.py``'s splits: ``make_ratings(compact=True)`` data of MovieLens shapes,
seed 0), issue 25. Validation RMSE of the full model (two members, implicit feedback) against
the large regime's: 2M ratings 0.6170 against 0.5989 (and 36 s against 4 s to fit); at 1M
the full model's test RMSE was 0.6133 (issue 25) where the large regime's validation RMSE is
0.6003. Grids (batch 65,536, 4 epochs unless said):

* 1M: learning rate 0.01 / 0.02 with ``l2`` 0.04: 0.6089 / 0.6006, 8 epochs 0.6003 /
  0.6023; ``l2`` 0.06: 0.6146 / 0.6100, 8 epochs 0.6011 / 0.5994;
* 2M: rate 0.005 / 0.01 / 0.02 / 0.04 with ``l2`` 0.04: 0.6148 / 0.6037 / 0.6017 / 0.6076
  (8 epochs: - / 0.5989 / 0.6017 / 0.6064); ``l2`` 0.01 / 0.02 / 0.08 at rate 0.01:
  0.6206 / 0.6087 / 0.6178; batches of 8,192 were no better (best 0.5901 at rate 0.005,
  three times the time per epoch);
* 10M: rate 0.01 / 0.02 with ``l2`` 0.02: 0.6028 / 0.6112, with 0.04: 0.6010 / 0.6092;
  6 / 8 epochs at 0.01 and 0.04: 0.6000 / 0.6002; rate 0.005 / 0.007 at ``l2`` 0.04:
  0.5998 / 0.5993; batches of 131,072 at 0.014: 0.6011; of 262,144 at 0.01 / 0.014 /
  0.02: 0.6091 / 0.6029 / 0.6014 (13 % less time per epoch);
* 25M: rate 0.01 with ``l2`` 0.02 / 0.04: 0.6160 / 0.6095; at ``l2`` 0.04, rate 0.005 /
  0.007: 0.6032 / 0.6052; batches of 131,072 at 0.014: 0.6094; of 262,144 at 0.007 / 0.01
  / 0.014 / 0.02: 0.6131 / 0.6067 / 0.6057 / 0.6091 (15-20 % less time per epoch than
  65,536, 2026-12-05 under load 2-5); of 524,288 at 0.014 / 0.02 / 0.028: 0.6154 /
  0.6088 / 0.6083 (no faster than 262,144). Rate 0.005 at 65,536 is 0.0025 better than the
  262,144 rule and a fifth slower: ``batch_size=65_536, learning_rate=0.005`` is the
  accurate choice there (the tuning guide says so).
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
LARGE_BATCH_SIZE = 65_536
STEPS_PER_EPOCH = 24
# From this many ratings on, the large regime: one member of plain biased matrix
# factorisation in compiled epochs; below, the full model (two members, implicit feedback).
LARGE_FROM = 1_000_000
# From this many ratings on, batches of 262,144: each compiled step also makes one Adam pass
# over every table row, and the tables grow with the catalogue.
LARGEST_FROM = 16_000_000
LARGEST_BATCH_SIZE = 262_144
# The large regime's rate at batches of 65,536: 0.01 up to MORE_EPOCHS_UP_TO ratings, 0.007
# beyond (with more steps, a lower rate).
LARGE_LEARNING_RATE = 0.01
LARGE_LEARNING_RATE_BEYOND = 0.007
LARGE_L2 = 0.04
# Up to this many ratings the large regime takes 8 epochs, beyond 4.
MORE_EPOCHS_UP_TO = 4_000_000
# The full regime's schedule for networks with time terms or side features.
LONGER_LEARNING_RATE = 0.005
LONGER_EPOCHS = 6


def is_small(n_ratings: int) -> bool:
    """Whether ``n_ratings`` training ratings fall in the small-data regime (< 30,000)."""
    return n_ratings < SMALL_DATA_BELOW


def is_large(n_ratings: int) -> bool:
    """Whether ``n_ratings`` training ratings fall in the large regime (>= 1,000,000)."""
    return n_ratings >= LARGE_FROM


def longer_schedule(n_ratings: int, extra_terms: bool) -> bool:
    """Whether a network with time terms or side features (``extra_terms``) trains longer
    at a lower rate: 6 epochs at a learning rate of 0.005 (at batches of 4,096) instead
    of 4 at 0.01, in the full-model regime (30,000 to 1,000,000 ratings).

    Chosen on five validation folds of MovieLens 100K's training ratings
    (``benchmarks/time_terms.py``'s folds, issue 24), mean of seeds 0-2, against 4 epochs
    at 0.01: with ``time_col`` 0.8955 against 0.8970, with it and the user and item tables
    0.8875 against 0.8910; fit time 1.35x. One knob at a time (seed 0, with ``time_col`` /
    with time and tables): 5 or 6 epochs at 0.01 overfit (+0.0014 / +0.0030, +0.0045 /
    +0.0080), 48 or 64 factors +0.0004 to +0.0030, ``l2`` 0.07 or 0.15 +0.0016 to +0.0060,
    rate 0.007 -0.0002 / -0.0025, 3 members -0.0006 / -0.0018: a lower rate is what lets
    more epochs help. Three members on top (0.8944 / 0.8861) took 1.5x the fit time, which
    with the time terms' own cost would break the bound of a fit with time at 1.5x the fit
    without (issue 15). The time terms' own settings (drift penalty and exponent, bin
    width, the prior's damping) moved nothing beyond 0.0004. Ratings alone gained too
    (0.8993 against 0.9010) but keep the faster schedule (issue 25: no slower on
    MovieLens 100K); sizes other than 90,000 were not measured.

    Examples
    --------
    >>> longer_schedule(90_000, True), longer_schedule(90_000, False)
    (True, False)
    >>> longer_schedule(10_000, True), longer_schedule(2_000_000, True)
    (False, False)
    """
    return extra_terms and not is_small(n_ratings) and not is_large(n_ratings)


def batch_size_for(n_ratings: int) -> int:
    """4,096 in the full-model regime, 65,536 in the large regime (from 1,000,000
    ratings), 262,144 from 16,000,000 ratings; in the small-data regime about
    :data:`STEPS_PER_EPOCH` steps per epoch, the power of two nearest to ``n_ratings / 24``
    from 128 up.

    On 1M synthetic ratings, with the full model, batches of 4,096 / 8,192 / 16,384 /
    32,768 gave test RMSE 0.610 / 0.614 / 0.640 / 0.624 for the same fit time (Surprise
    SVD: 0.621): the implicit refreshes, not the batch count, set that time. In the large
    regime a compiled step of 65,536 ran 0.36-0.55 s an epoch at 2M ratings against
    1.2-1.9 s for 8,192 and reached a lower validation RMSE (0.5989 against 0.5901-0.6150,
    see the module docstring). Each compiled step also makes one Adam pass over every table
    row, and the tables grow with the catalogue (80,000 rows at 10M MovieLens-shaped
    ratings, 221,000 at 25M): at 25M batches of 262,144 (rate 0.014) matched 65,536 at the
    rate the rule gives it (validation RMSE 0.6057 against 0.6052 at 0.007; 0.6032 at
    0.005) in a fifth less time per epoch, while at 10M they lost (0.6014 against 0.5993);
    the threshold lies between the two.

    Examples
    --------
    >>> [batch_size_for(n) for n in (2_000, 24_000, 90_000, 2_000_000, 25_000_000)]
    [128, 1024, 4096, 65536, 262144]
    """
    if is_small(n_ratings):
        power = round(math.log2(max(n_ratings, 1) / STEPS_PER_EPOCH))
        return int(min(BASE_BATCH_SIZE, max(SMALL_BATCH_SIZE, 2**power)))
    if n_ratings >= LARGEST_FROM:
        return LARGEST_BATCH_SIZE
    return LARGE_BATCH_SIZE if is_large(n_ratings) else BASE_BATCH_SIZE


def learning_rate_for(batch_size: int, n_ratings: int = SMALL_DATA_BELOW, *,
                      extra_terms: bool = False) -> float:
    """0.01 at the full-model regime's batch of 4,096; in the large regime 0.01 at a batch of
    65,536 up to 4,000,000 ratings (8 epochs) and 0.007 beyond (4 epochs, far more steps);
    scaled with the square root of the batch size from there (Adam's usual rule: the
    gradient noise falls with the square root of the batch), for the regime's own larger
    batches and for one set by hand; 0.01 in the small-data regime (a smaller rate left
    the biases under-trained there). With time terms or side features (``extra_terms``) in
    the full-model regime, 0.005 at 4,096 (:func:`longer_schedule`).

    In the large regime the square-root rule from 4,096 gave 0.04, which lost 0.004 to 0.01
    at 2M ratings, and 0.02 lost 0.008 at 10M; at 10M and 25M 0.007 beat 0.01 (module
    docstring), and from 0.007 at 65,536 the rule gives 0.014 at 262,144, the best of four
    rates at 25M.

    Examples
    --------
    >>> learning_rate_for(4096, 90_000), learning_rate_for(65_536, 2_000_000)
    (0.01, 0.01)
    >>> learning_rate_for(65_536, 10_000_000), round(learning_rate_for(262_144, 25_000_000), 4)
    (0.007, 0.014)
    >>> learning_rate_for(16_384, 2_000_000), learning_rate_for(256, 6_000)
    (0.005, 0.01)
    >>> learning_rate_for(4096, 90_000, extra_terms=True)
    0.005
    """
    if is_small(n_ratings):
        return BASE_LEARNING_RATE
    if is_large(n_ratings):
        rate = (LARGE_LEARNING_RATE if n_ratings <= MORE_EPOCHS_UP_TO
                else LARGE_LEARNING_RATE_BEYOND)
        return rate * math.sqrt(batch_size / LARGE_BATCH_SIZE)
    rate = LONGER_LEARNING_RATE if longer_schedule(n_ratings, extra_terms) else BASE_LEARNING_RATE
    return rate * math.sqrt(batch_size / BASE_BATCH_SIZE)


def l2_for(n_ratings: int) -> float:
    """1.0 in the small-data regime (little is left to the factors); in the full-model
    regime 0.1 up to 90,000 ratings (MovieLens 100K), then ``0.1 * sqrt(90,000 /
    n_ratings)``; 0.04 in the large regime.

    The penalty applies per rating, and ids gather more ratings as the data grows: on 1M
    synthetic ratings, with the full model, ``l2`` 0.1 / 0.03 / 0.01 gave test RMSE 0.6235 /
    0.6133 / 0.6222 (Surprise SVD 0.6211). The large regime's model (one member, no implicit
    term, Adam over the whole tables at every step) kept its best at 0.04 from 1M to 10M
    ratings (module docstring; 0.1, the rule before issue 25, gave 0.6277 at 10M).

    In the small-data regime, with the biases' prior (issue 24; ``benchmarks/small_data.py
    --seeds 10``, RMSE minus the damped baseline's, worst seed): 0.3 lost by up to +0.0043 at
    2,000 ratings and +0.0035 at 5,000; 1.0 stayed within +0.0014 on seeds 0-19 at 2,000,
    5,000, 8,000 and 15,000 ratings, with lower means (2,000: 1.0719 against 1.0764; 5,000:
    1.0476 against 1.0542; 8,000: 1.0287 against 1.0330; 15,000: 0.9920 against 0.9934).

    Examples
    --------
    >>> l2_for(5_000), l2_for(90_000), round(l2_for(500_000), 4), l2_for(10_000_000)
    (1.0, 0.1, 0.0424, 0.04)
    """
    if is_small(n_ratings):
        return 1.0
    if is_large(n_ratings):
        return LARGE_L2
    return BASE_L2 * min(1.0, math.sqrt(BASE_L2_RATINGS / n_ratings))


def epochs_for(n_ratings: int, *, extra_terms: bool = False) -> int:
    """10 in the small-data regime, 4 in the full-model regime (more started to overfit on
    MovieLens 100K at a rate of 0.01), 6 there with time terms or side features (at a
    lower rate, :func:`longer_schedule`); in the large regime 8 up to 4,000,000 ratings, 4
    beyond.

    With batches of 65,536, 4 epochs of 1M ratings are 64 steps: 8 epochs lowered the
    validation RMSE by 0.009 at 1M and 0.005 at 2M, while at 10M (600 steps in 4 epochs)
    6 or 8 epochs gained 0.001 for half as much time again (module docstring).

    Examples
    --------
    >>> epochs_for(5_000), epochs_for(90_000), epochs_for(2_000_000), epochs_for(10**7)
    (10, 4, 8, 4)
    >>> epochs_for(90_000, extra_terms=True)
    6
    """
    if is_small(n_ratings):
        return 10
    if longer_schedule(n_ratings, extra_terms):
        return LONGER_EPOCHS
    return 8 if is_large(n_ratings) and n_ratings <= MORE_EPOCHS_UP_TO else 4


def n_estimators_for(n_ratings: int) -> int:
    """Two ensemble members below 1,000,000 ratings, one from there on.

    Averaging two independently initialised members removes much of the seed-to-seed noise
    of a model fitted on little data per id (MovieLens 100K: 0.893 against 0.90 for one);
    with millions of ratings that noise is small, and the second member would double every
    table and every step.

    Examples
    --------
    >>> n_estimators_for(90_000), n_estimators_for(10_000_000)
    (2, 1)
    """
    return 1 if is_large(n_ratings) else 2


def implicit_for(n_ratings: int) -> bool:
    """Implicit feedback from 30,000 up to 1,000,000 ratings, none outside.

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
    return not is_small(n_ratings) and not is_large(n_ratings)


def damped_biases_for(n_ratings: int, *, side_features: bool = False) -> bool:
    """Whether the user and item biases get the damped-bias baseline as their prior: at
    every size (see :func:`bias_penalty_for` for how hard it holds them), except in the
    small-data regime with side features, where they start at zero unpenalised.

    The prior (:class:`~._layers.DampedBias`) is each id's damped bias (items shrunk by 25
    ratings, then users by 10), fixed; the network learns a deviation from it. On five
    validation folds of MovieLens 100K's training ratings (issue 15,
    ``benchmarks/time_terms.py``) it lowered the RMSE of the defaults with ``time_col`` by
    0.004 (0.8964 against 0.9001): 4 epochs leave biases started at zero short of their
    optimum. In the small-data regime it holds only with its penalty: unpenalised, 10
    epochs carried the biases past the damped values (``benchmarks/small_data.py``, 10
    seeds: the baseline beaten on 5 of 10 seeds at 8,000 ratings, where biases started at
    zero won 9 of 10). With side features and few ratings, a prior that already holds each
    rated user's offset leaves the features nothing to learn for ids without ratings: the
    cold-start gain of ``tests/test_side_features.py`` (4,000 ratings, a feature worth one
    star) fell from more than 0.2 RMSE to 0.09 with it.

    Examples
    --------
    >>> damped_biases_for(2_000), damped_biases_for(90_000)
    (True, True)
    >>> damped_biases_for(2_000, side_features=True)
    False
    """
    return not (side_features and is_small(n_ratings))


# Below this many ratings the learned biases are pulled back to their prior at full
# strength (see bias_penalty_for).
FULL_BIAS_PENALTY_BELOW = 10_000


def bias_penalty_for(n_ratings: int) -> float:
    """How hard each learned bias is pulled back to its prior, as a multiple of the
    damped-bias shrinkage per id (:func:`~._network.set_damped_biases`): 1.0 below 10,000
    ratings, 0.3 up to 30,000 (the small-data regime), 0 from there on.

    Measured on samples of MovieLens 100K (``benchmarks/small_data.py``, seeds 0-9, 80 %
    of each sample trained on; RMSE minus the damped baseline's, mean over the seeds):

    * 5,000 ratings: penalty 0 / 0.5 / 1 / 3 / 10 gave +0.0124 / -0.0064 / -0.0048 /
      -0.0002 / +0.0025 (worst seed +0.041 / +0.005 / +0.004 / +0.006 / +0.010): without
      a pull ids with a rating or two run past their damped values, a strong one leaves the
      factors alone to fit the residuals, and they overfit;
    * 15,000 / 30,000 ratings: 0 / 0.3 / 1 gave -0.0114 / -0.0161 / -0.0119 and
      -0.0181 / -0.0188 / -0.0146;
    * MovieLens 100K (five validation folds of the notebook split's training ratings,
      ``benchmarks/time_terms.py``'s folds, with ``time_col``): 0 / 0.3 / 1 gave
      0.8964 / 0.8965 / 0.8968: with hundreds of ratings per id the data outweighs the
      prior, which is then where the biases start.

    Examples
    --------
    >>> bias_penalty_for(5_000), bias_penalty_for(20_000), bias_penalty_for(90_000)
    (1.0, 0.3, 0.0)
    """
    if not is_small(n_ratings):
        return 0.0
    return 1.0 if n_ratings < FULL_BIAS_PENALTY_BELOW else 0.3


def prior_damping_for(n_ratings: int, *, side_features: bool = False) -> float:
    """How many times the baseline's shrinkage (25 ratings per item, 10 per user) damps the
    biases' prior: 4 with side features in the full regime (30,000 to 1,000,000 ratings),
    else 1.

    Five validation folds of MovieLens 100K's training ratings (``benchmarks/time_terms.py``'s
    folds; the defaults, prior unpenalised there), damping 1 / 4 / 10: with the user and item
    tables 0.8957 / 0.8934 / -, with them and ``time_col`` 0.8935 / 0.8912 / 0.8910, with
    ``time_col`` alone 0.8964 / 0.8960 / 0.8963, neither 0.9004 / 0.9004 / -. A prior
    shrunk harder leaves more of a rarely rated id's bias to what its side features say;
    without them it bought nothing on those folds (and on the notebook split's test ratings
    it was mixed: 5-fold 0.8960 against 0.8972, the mean of seeds 0-4 0.8908 against
    0.8887). Outside the full regime it is the baseline's own: the small-data penalty was
    chosen with it, and the large regime was not measured with another.

    Examples
    --------
    >>> prior_damping_for(90_000), prior_damping_for(90_000, side_features=True)
    (1.0, 4.0)
    >>> prior_damping_for(5_000, side_features=True)
    1.0
    """
    in_full_regime = not is_small(n_ratings) and not is_large(n_ratings)
    return 4.0 if side_features and in_full_regime else 1.0


def compiled_for(n_ratings: int) -> bool:
    """Whether epochs run compiled (``jit_compile="auto"``, :mod:`._compiled`): in the
    large regime (from 1,000,000 training ratings).

    Below, the full model's implicit term keeps Keras' ``fit`` (its refreshes are sparse
    products XLA cannot compile), and for networks without it XLA's compile time (1-3 s per
    fit on these 2-core machines) costs more than compiled epochs save on small data.

    Examples
    --------
    >>> compiled_for(90_000), compiled_for(10_000_000)
    (False, True)
    """
    return is_large(n_ratings)


def resolve(params: dict[str, Any], n_ratings: int, *,
            extra_terms: bool = False) -> dict[str, Any]:
    """``params`` with each ``"auto"`` value (``batch_size``, ``learning_rate``,
    ``n_estimators``, ``implicit``, ``l2``, ``epochs``) replaced by its rule for
    ``n_ratings`` training ratings (``extra_terms``: the network has time terms or side
    features, see :func:`longer_schedule`).

    An explicit ``batch_size`` is also what an ``"auto"`` learning rate scales with. With
    ``dot_product=False`` in ``params``, ``n_estimators`` and ``implicit`` (explicit or
    ``"auto"``) resolve to 1 and False: they describe the dot product, and the network
    built without one has a single set of embedding columns and no implicit layers.

    Examples
    --------
    >>> resolve({"batch_size": "auto", "learning_rate": "auto", "n_estimators": 3},
    ...         20_000_000)
    {'batch_size': 262144, 'learning_rate': 0.014, 'n_estimators': 3}
    >>> resolve({"dot_product": False, "n_estimators": 2, "implicit": "auto"}, 90_000)
    {'dot_product': False, 'n_estimators': 1, 'implicit': False}
    """
    resolved = dict(params)
    if resolved.get("batch_size") == AUTO:
        resolved["batch_size"] = batch_size_for(n_ratings)
    if resolved.get("learning_rate") == AUTO:
        resolved["learning_rate"] = learning_rate_for(resolved["batch_size"], n_ratings,
                                                      extra_terms=extra_terms)
    if resolved.get("n_estimators") == AUTO:
        resolved["n_estimators"] = n_estimators_for(n_ratings)
    if resolved.get("implicit") == AUTO:
        resolved["implicit"] = implicit_for(n_ratings)
    if resolved.get("l2") == AUTO:
        resolved["l2"] = l2_for(n_ratings)
    if resolved.get("epochs") == AUTO:
        resolved["epochs"] = epochs_for(n_ratings, extra_terms=extra_terms)
    if resolved.get("jit_compile") == AUTO:
        resolved["jit_compile"] = compiled_for(n_ratings)
    if not resolved.get("dot_product", True):
        # Both settings shape the dot product only: without it the network has one set of
        # embedding columns (read by the MLP tower, if any) and no implicit layers.
        for name, value in (("n_estimators", 1), ("implicit", False)):
            if name in resolved:
                resolved[name] = value
    return resolved
