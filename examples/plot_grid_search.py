"""
Tuning with GridSearchCV
========================

Every constructor argument of :class:`~skembedrec.EmbeddingRatingRegressor` is a
hyper-parameter that :class:`~sklearn.model_selection.GridSearchCV` can tune, with the usual
scorers (``"neg_root_mean_squared_error"`` here). The best model is refitted on all the data.

The data (:func:`~skembedrec.datasets.example_ratings`): MovieLens 100K when it is already
cached, otherwise synthetic ratings, so that the gallery builds offline. To switch to
MovieLens, download it once with ``fetch_movielens("100k")``, or run the script with a variant
(``python plot_grid_search.py 1m``, downloaded if missing) or the path of a ``u.data`` file.
"""

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow: no C++ log lines

import sys

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.model_selection import GridSearchCV, KFold, train_test_split

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import example_ratings

# Epochs per fit: SKEMBEDREC_EXAMPLE_EPOCHS (default 4, the estimator's own; tests use 1).
EPOCHS = int(os.environ.get("SKEMBEDREC_EXAMPLE_EPOCHS", "4"))
DATA = sys.argv[1] if len(sys.argv) > 1 else None  # a MovieLens variant or u.data path

ratings = example_ratings(DATA)
X, y = ratings.data, ratings.target
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=0)

# %%
# Four settings x two folds = eight fits plus the final refit. ``verbose=3`` makes the search
# print each fit and its score as it finishes. ``n_jobs=1`` keeps the example light; on a
# bigger machine ``n_jobs=-1`` runs the fits in parallel (see the user guide for a cluster).
search = GridSearchCV(
    EmbeddingRatingRegressor(epochs=EPOCHS, random_state=0),
    param_grid={"n_factors": [8, 32], "l2": [0.03, 0.1]},
    scoring="neg_root_mean_squared_error",
    cv=KFold(n_splits=2, shuffle=True, random_state=0),
    verbose=3,
)
search.fit(X_train, y_train)
print("Best parameters:", search.best_params_)
print(f"Best CV RMSE: {-search.best_score_:.4f}; held-out RMSE of the refitted model: "
      f"{-search.score(X_test, y_test):.4f}")

# %%
# ``cv_results_`` is a dict of arrays; as a DataFrame it reads like a table.
results = pd.DataFrame(search.cv_results_)
results["rmse"] = -results["mean_test_score"]
table = results.pivot(index="param_n_factors", columns="param_l2", values="rmse")
print(table.round(4))

fig, ax = plt.subplots(figsize=(6, 4))
for l2, column in table.items():
    ax.plot(table.index, column, marker="o", label=f"l2={l2:g}")
ax.set_xlabel("n_factors")
ax.set_ylabel("mean CV RMSE")
ax.set_title("Grid search results")
ax.legend()
fig.tight_layout()
plt.show()
