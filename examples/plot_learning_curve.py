"""
Learning curve from ``history_``
================================

After ``fit``, :attr:`~skembedrec.EmbeddingRatingRegressor.history_` holds the training
loss of every epoch (mean squared error in squared rating units, L2 penalty included). Plotting
it shows whether more epochs would still help. ``verbose=2`` prints one line per epoch while
training; ``verbose=1`` shows a progress bar instead.
"""

# %%
import os
import sys

import matplotlib.pyplot as plt
import numpy as np

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import make_ratings, read_ratings

# Epochs per fit: SKEMBEDREC_EXAMPLE_EPOCHS (default 4, the estimator's own; tests use 1).
EPOCHS = int(os.environ.get("SKEMBEDREC_EXAMPLE_EPOCHS", "4"))
DATA_PATH = sys.argv[1] if len(sys.argv) > 1 else None


def load_ratings(path):
    """Synthetic ratings by default; MovieLens 100K from u.data or the folder holding it."""
    if path is None:
        return make_ratings(n_users=300, n_items=400, n_ratings=20_000, random_state=0)
    return read_ratings(path)


X, y = load_ratings(DATA_PATH)
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
