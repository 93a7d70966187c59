"""
Saving and loading a fitted model
=================================

A fitted :class:`~skembedrec.EmbeddingRatingRegressor` can be saved in two ways, and predicts
exactly the same after loading:

* :meth:`~skembedrec.EmbeddingRatingRegressor.save` /
  :meth:`~skembedrec.EmbeddingRatingRegressor.load`: one file with no pickle in it, safe to
  load even when it comes from someone else;
* :mod:`joblib` (or :mod:`pickle`), like any scikit-learn estimator.

.. warning::

   Loading a joblib or pickle file can run arbitrary code. Only load such files from sources
   you trust; to exchange models, use ``save`` / ``load``.

The data (:func:`~skembedrec.datasets.example_ratings`): MovieLens 100K when it is already
cached, otherwise synthetic ratings, so that the gallery builds offline. To switch to
MovieLens, download it once with ``fetch_movielens("100k")``, or run the script with a variant
(``python plot_persistence.py 1m``, downloaded if missing) or the path of a ``u.data`` file.
"""

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow: no C++ log lines

import sys
import tempfile
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import example_ratings

# Epochs per fit: SKEMBEDREC_EXAMPLE_EPOCHS (default 4, the estimator's own; tests use 1).
EPOCHS = int(os.environ.get("SKEMBEDREC_EXAMPLE_EPOCHS", "4"))
DATA = sys.argv[1] if len(sys.argv) > 1 else None  # a MovieLens variant or u.data path

ratings = example_ratings(DATA)
X, y = ratings.data, ratings.target
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=0)
model = EmbeddingRatingRegressor(n_factors=32, epochs=EPOCHS, random_state=0).fit(X_train, y_train)
before = model.predict(X_test)

# %%
# Save in both formats, load them back (here in the same process; usually in another one)
# and compare the predictions.
with tempfile.TemporaryDirectory() as folder:
    safe_path = Path(folder) / "model.skembedrec"
    model.save(safe_path)
    from_safe_file = EmbeddingRatingRegressor.load(safe_path)  # no pickle: safe to load

    joblib_path = Path(folder) / "model.joblib"
    joblib.dump(model, joblib_path)
    loaded = joblib.load(joblib_path)  # runs pickle: only ever load files you trust
    for path in (safe_path, joblib_path):
        print(f"Saved {path.name}: {path.stat().st_size / 1024:.0f} KiB")

after = loaded.predict(X_test)
print("save/load: identical predictions:", np.array_equal(before, from_safe_file.predict(X_test)))
print("joblib: identical predictions:", np.array_equal(before, after))
print("Same parameters:", loaded.get_params() == model.get_params())

# %%
# Every held-out prediction lies on the diagonal: the loaded model is the same model.
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.scatter(before, after, s=4, alpha=0.4)
lims = [min(before.min(), after.min()), max(before.max(), after.max())]
ax.plot(lims, lims, color="black", linewidth=0.8)
ax.set_xlabel("prediction before saving")
ax.set_ylabel("prediction after loading")
ax.set_title("Saved and loaded (joblib)")
fig.tight_layout()
plt.show()
