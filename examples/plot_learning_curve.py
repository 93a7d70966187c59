"""
Learning curve from ``history_``
================================

After ``fit``, :attr:`~skembedrec.EmbeddingRatingRegressor.history_` holds the training
loss of every epoch (mean squared error in squared rating units, L2 penalty included). Plotting
it shows whether more epochs would still help. ``verbose=2`` prints one line per epoch while
training; ``verbose=1`` shows a progress bar instead.

The data (:func:`~skembedrec.datasets.example_ratings`): MovieLens 100K when it is already
cached, otherwise synthetic ratings, so that the gallery builds offline. To switch to
MovieLens, download it once with ``fetch_movielens("100k")``, or run the script with a variant
(``python plot_learning_curve.py 1m``, downloaded if missing) or the path of a ``u.data`` file.
"""

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow: no C++ log lines

import sys

import matplotlib.pyplot as plt
import numpy as np

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import example_ratings

# Epochs per fit: SKEMBEDREC_EXAMPLE_EPOCHS (default 4, the estimator's own; tests use 1).
EPOCHS = int(os.environ.get("SKEMBEDREC_EXAMPLE_EPOCHS", "4"))
DATA = sys.argv[1] if len(sys.argv) > 1 else None  # a MovieLens variant or u.data path

ratings = example_ratings(DATA)
X, y = ratings.data, ratings.target
print(f"{len(y):,} ratings, {X['user_id'].nunique()} users, {X['item_id'].nunique()} items")

# %%
# Fit two models that differ only in the L2 penalty on the embeddings, printing each epoch.
curves = {}
for l2 in (1e-4, 1e-2):
    print(f"Fitting with l2={l2:g}:")
    model = EmbeddingRatingRegressor(n_factors=32, l2=l2, epochs=EPOCHS, verbose=2, random_state=0)
    model.fit(X, y)
    curves[l2] = model.history_["loss"]

# %%
# The loss falls quickly in the first epochs and then flattens; a larger penalty ends higher
# because it is part of the loss.
fig, ax = plt.subplots(figsize=(6, 4))
for l2, loss in curves.items():
    ax.plot(np.arange(1, len(loss) + 1), loss, marker="o", label=f"l2={l2:g}")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss (squared rating units)")
ax.set_title("Training loss per epoch")
ax.legend()
fig.tight_layout()
plt.show()
