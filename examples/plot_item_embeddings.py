"""
A map of the item embeddings
============================

The model learns one vector per item; items that users rate alike end up close together.
Projecting :attr:`~skembedrec.EmbeddingRatingRegressor.item_embeddings_` onto their two
principal components (:class:`~sklearn.decomposition.PCA`) gives a 2-D map. On MovieLens the
most rated movies are labelled with their titles.

The data (:func:`~skembedrec.datasets.example_ratings`): MovieLens 100K when it is already
cached, otherwise synthetic ratings, so that the gallery builds offline. To switch to
MovieLens, download it once with ``fetch_movielens("100k")``, or run the script with a variant
(``python plot_item_embeddings.py 1m``, downloaded if missing) or the path of a ``u.data`` file.
"""

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow: no C++ log lines

import sys

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.decomposition import PCA

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import example_ratings

# Epochs per fit: SKEMBEDREC_EXAMPLE_EPOCHS (default 4, the estimator's own; tests use 1).
EPOCHS = int(os.environ.get("SKEMBEDREC_EXAMPLE_EPOCHS", "4"))
DATA = sys.argv[1] if len(sys.argv) > 1 else None  # a MovieLens variant or u.data path

ratings = example_ratings(DATA)
X, y, titles = ratings.data, ratings.target, ratings.titles
model = EmbeddingRatingRegressor(n_factors=32, epochs=EPOCHS, random_state=0).fit(X, y)

# %%
# One row per item seen in fit, indexed by the original item id.
embeddings = model.item_embeddings_
print(embeddings.shape)
coords = pd.DataFrame(
    PCA(n_components=2, random_state=0).fit_transform(embeddings),
    index=embeddings.index, columns=["pc1", "pc2"],
)

# %%
# Colour is each item's mean rating: the main direction of the map tracks how well liked an
# item is. The 20 most rated items are labelled.
stats = y.groupby(X["item_id"]).agg(["mean", "size"]).reindex(coords.index)
fig, ax = plt.subplots(figsize=(7, 6))
points = ax.scatter(coords["pc1"], coords["pc2"], c=stats["mean"], s=8, cmap="viridis")
fig.colorbar(points, ax=ax, label="mean rating")
for item in stats["size"].nlargest(20).index:
    label = titles.get(item, str(item)) if titles is not None else f"item {item}"
    ax.annotate(str(label)[:28], coords.loc[item], fontsize=7, alpha=0.8)
ax.set_xlabel("first principal component")
ax.set_ylabel("second principal component")
ax.set_title("Item embeddings (PCA)")
fig.tight_layout()
plt.show()
