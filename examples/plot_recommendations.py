"""
Top-N recommendations
=====================

A rating model becomes a recommender by ranking, for each user, the items they have not rated
by predicted rating. :meth:`~skembedrec.EmbeddingRatingRegressor.recommend` does this for many
users at once and returns a tidy DataFrame (``user_id``, ``item_id``, ``predicted_rating``,
``rank``), leaving out the items each user rated in training.

The data (:func:`~skembedrec.datasets.example_ratings`): MovieLens 100K when it is already
cached, otherwise synthetic ratings, so that the gallery builds offline. To switch to
MovieLens, download it once with ``fetch_movielens("100k")``, or run the script with a variant
(``python plot_recommendations.py 1m``, downloaded if missing) or the path of a ``u.data`` file.
"""

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow: no C++ log lines

import sys

import matplotlib.pyplot as plt

from skembedrec import EmbeddingRatingRegressor
from skembedrec.datasets import example_ratings

# Epochs per fit: SKEMBEDREC_EXAMPLE_EPOCHS (default 4, the estimator's own; tests use 1).
EPOCHS = int(os.environ.get("SKEMBEDREC_EXAMPLE_EPOCHS", "4"))
DATA = sys.argv[1] if len(sys.argv) > 1 else None  # a MovieLens variant or u.data path

ratings = example_ratings(DATA)
X, y, titles = ratings.data, ratings.target, ratings.titles
model = EmbeddingRatingRegressor(n_factors=32, epochs=EPOCHS, random_state=0).fit(X, y)

# %%
# Ten recommendations for each of three users, best first.
users = X["user_id"].drop_duplicates().head(3).tolist()
top = model.recommend(users, n=10)
if titles is not None:
    top["title"] = top["item_id"].map(titles)
print(top.head(10).to_string(index=False))

# %%
# The predicted ratings equal what ``predict`` says for the same pairs (the columns are
# named after the model's ``user_col`` and ``item_col``).
print("Same as predict:", (model.predict(top) == top["predicted_rating"]).all())

# %%
# The first user's list, with what they actually rated in training for comparison: the
# recommended items are predicted to please them more than their average rating.
first = top[top["user_id"] == users[0]]
their_mean = y[X["user_id"] == users[0]].mean()
labels = first["title"] if titles is not None else "item " + first["item_id"].astype(str)
fig, ax = plt.subplots(figsize=(6, 4))
ax.barh(labels[::-1], first["predicted_rating"][::-1])
ax.axvline(their_mean, color="black", linestyle="--", label="their mean rating")
ax.set_xlabel("predicted rating")
ax.set_title(f"Top {len(first)} for user {users[0]}")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15))
fig.tight_layout()
plt.show()
