"""skembedrec: a scikit-learn rating regressor built on user and item embeddings."""

from ._estimator import EmbeddingRatingRegressor

__version__ = "0.1.0"

__all__ = ["EmbeddingRatingRegressor", "__version__"]
