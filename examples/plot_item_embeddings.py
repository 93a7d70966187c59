"""
A map of the item embeddings
============================

The model learns one vector per item; items that users rate alike end up close together.
Projecting :attr:`~skembedrec.EmbeddingRatingRegressor.item_embeddings_` onto their two
principal components (:class:`~sklearn.decomposition.PCA`) gives a 2-D map. On MovieLens the
most rated movies are labelled with their titles.

The data: MovieLens 100K (:func:`~skembedrec.datasets.fetch_movielens`) when it is already in
the scikit-learn data home, otherwise synthetic ratings from
:func:`~skembedrec.datasets.make_ratings`, so that the gallery builds offline. To switch to
MovieLens, download it once with ``fetch_movielens("100k")``, or run the script with a variant
(``python plot_item_embeddings.py 1m``, downloaded if missing) or the path of a ``u.data`` file.
"""

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow: no C++ log lines

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.decomposition import PCA

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import fetch_movielens, make_ratings, read_ratings

# Epochs per fit: SKEMBEDREC_EXAMPLE_EPOCHS (default 4, the estimator's own; tests use 1).
EPOCHS = int(os.environ.get("SKEMBEDREC_EXAMPLE_EPOCHS", "4"))
DATA = sys.argv[1] if len(sys.argv) > 1 else None  # a MovieLens variant or u.data path


def load_ratings(source):
    """MovieLens if cached or asked for (a variant or a u.data path), else synthetic ratings.

    Returns X, y and the movie titles by item id (None for synthetic ratings).
    """
    if source is not None and Path(source).exists():
        X, y = read_ratings(source)
        return X, y, load_titles(source)
    try:
        ml = fetch_movielens(source or "100k", download_if_missing=source is not None)
    except FileNotFoundError:  # not cached and not asked for: stay offline
        X, y = make_ratings(n_users=300, n_items=400, n_ratings=20_000, random_state=0)
        return X, y, None
    return ml.data, ml.target, ml.movies["title"]


def load_titles(path):
    """Movie titles by item id from u.item (official zip) or items.tsv next to u.data."""
    if path is None:
        return None
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    if (folder / "u.item").is_file():
        items = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1")
        return items.set_index(0)[1]
    if (folder / "items.tsv").is_file():
        return pd.read_csv(folder / "items.tsv", sep="\t").set_index("movie_id")["title"]
    return None


X, y, titles = load_ratings(DATA)
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
