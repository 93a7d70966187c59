"""
Cross-validation against simple baselines
=========================================

:class:`~skembedrec.EmbeddingRatingRegressor` is a regular scikit-learn regressor, so
:func:`~sklearn.model_selection.cross_validate` scores it fold by fold like any other model.
Here it is compared with predicting the mean rating (:class:`~sklearn.dummy.DummyRegressor`)
and with a pure matrix-factorisation variant of itself (no MLP tower).

The data (:func:`~skembedrec.datasets.example_ratings`): MovieLens 100K when it is already
cached, otherwise synthetic ratings, so that the gallery builds offline. To switch to
MovieLens, download it once with ``fetch_movielens("100k")``, or run the script with a variant
(``python plot_cross_validation.py 1m``, downloaded if missing) or the path of a ``u.data`` file.
"""

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow: no C++ log lines

import sys

import matplotlib.pyplot as plt
import numpy as np
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import KFold, cross_validate

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import example_ratings

# Epochs per fit: SKEMBEDREC_EXAMPLE_EPOCHS (default 4, the estimator's own; tests use 1).
EPOCHS = int(os.environ.get("SKEMBEDREC_EXAMPLE_EPOCHS", "4"))
DATA = sys.argv[1] if len(sys.argv) > 1 else None  # a MovieLens variant or u.data path

ratings = example_ratings(DATA)
X, y = ratings.data, ratings.target
print(f"{len(y):,} ratings, {X['user_id'].nunique()} users, {X['item_id'].nunique()} items")

# %%
# The same shuffled 3-fold split for every model, so the folds are comparable.
cv = KFold(n_splits=3, shuffle=True, random_state=0)
models = {
    "mean rating": DummyRegressor(),
    "matrix factorisation": EmbeddingRatingRegressor(
        n_factors=32, hidden_units=(), epochs=EPOCHS, random_state=0
    ),
    "embeddings + MLP": EmbeddingRatingRegressor(
        n_factors=32, hidden_units=(32,), epochs=EPOCHS, random_state=0
    ),
}
fold_rmse = {}
for step, (name, model) in enumerate(models.items(), start=1):
    print(f"[{step}/{len(models)}] cross-validating {name} ...")
    scores = cross_validate(model, X, y, cv=cv, scoring="neg_root_mean_squared_error")
    fold_rmse[name] = -scores["test_score"]
    print(f"    RMSE {fold_rmse[name].mean():.4f} +/- {fold_rmse[name].std():.4f} "
          f"(fit {scores['fit_time'].mean():.1f} s per fold)")

# %%
# RMSE per fold: lower is better. Both embedding models should beat the mean-rating baseline
# on every fold.
fig, ax = plt.subplots(figsize=(6, 4))
for offset, (name, rmse) in enumerate(fold_rmse.items()):
    folds = np.arange(1, len(rmse) + 1)
    ax.bar(folds + 0.25 * (offset - 1), rmse, width=0.25, label=name)
ax.set_xticks(np.arange(1, cv.get_n_splits() + 1))
ax.set_xlabel("fold")
ax.set_ylabel("RMSE")
ax.set_ylim(0.5 * min(r.min() for r in fold_rmse.values()), None)
ax.set_title("Held-out RMSE per fold")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, fontsize=8)
fig.tight_layout()
plt.show()
