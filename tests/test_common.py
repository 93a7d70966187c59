"""scikit-learn's generic estimator checks.

Most generic checks feed X with 3 to 30 float features; an estimator whose two features are a
user id and an item id must refuse those, so those checks are expected to fail, each with its
reason below. ``test_id_data_checks`` re-runs the behaviours they check on id data.
"""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skembedrec import EmbeddingRatingRegressor

_WRONG_WIDTH = "generic data has n_features != 2; X must be exactly (user id, item id)"

EXPECTED_FAILED_CHECKS = {
    name: _WRONG_WIDTH
    for name in [
        "check_fit_score_takes_y",
        "check_dont_overwrite_parameters",
        "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit",
        "check_estimators_dtypes",
        "check_sample_weights_pandas_series",
        "check_sample_weights_list",
        "check_all_zero_sample_weights_error",
        "check_sample_weight_equivalence_on_dense_data",
        "check_dtype_object",
        "check_pipeline_consistency",
        "check_estimators_nan_inf",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_regressors_train",
        "check_regressor_data_not_an_array",
        "check_regressors_no_decision_function",
        "check_supervised_y_2d",
        "check_regressors_int",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1sample",
        "check_dict_unchanged",
        "check_fit2d_predict1d",
    ]
}


@parametrize_with_checks(
    [
        EmbeddingRatingRegressor(
            n_factors=4, hidden_units=(4,), epochs=1, batch_size=64, random_state=0
        )
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_expected_failures_really_fail_for_the_stated_reason():
    """Each listed check fails only because X is not 2 columns wide."""
    est = EmbeddingRatingRegressor(n_factors=4, hidden_units=(4,), epochs=1, random_state=0)
    with pytest.raises(ValueError, match="exactly 2 columns"):
        est.fit(np.zeros((10, 3)), np.arange(10.0))
