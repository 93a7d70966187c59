"""skembedrec: a scikit-learn rating regressor built on user and item embeddings."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._estimator import EmbeddingRatingRegressor
    from ._trusted import trusted_types

__version__ = "0.1.0"

__all__ = ["EmbeddingRatingRegressor", "__version__", "trusted_types"]

# Public name -> the module that defines it. The estimator imports TensorFlow and Keras
# (seconds, and their log lines), so it is imported on first use (PEP 562): the dataset
# loaders and metrics stay usable without paying for it.
_LAZY = {"EmbeddingRatingRegressor": "._estimator", "trusted_types": "._trusted"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
