"""The types a skops file of the estimator holds, named without any private path in users' code."""

from __future__ import annotations

from typing import Any

import scipy.sparse as sp

__all__ = ["trusted_types"]

_PLAIN = (type(None), bool, int, float, str, bytes)


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(_is_plain(k) and _is_plain(v) for k, v in value.items())
    return isinstance(value, _PLAIN)


def _parameter_types(params: dict[str, Any]) -> set[str]:
    """The types skops asks about for the parameters that are not plain Python values."""
    objects = {name: value for name, value in params.items() if not _is_plain(value)}
    if not objects:
        return set()
    try:
        import skops.io as sio
    except ImportError as exc:
        raise ImportError(
            f"trusted_types needs skops to list the types of the parameters {sorted(objects)}: "
            "pip install skops (or skembedrec[serving])."
        ) from exc
    try:
        data = sio.dumps(objects)
    except Exception as exc:  # skops raises TypeError, AttributeError, ... by object
        raise ValueError(
            f"skops cannot serialise the parameters {sorted(objects)} "
            f"({type(exc).__name__}: {exc}); use est.save(path) and "
            "EmbeddingRatingRegressor.load(path), which store them safely."
        ) from exc
    return set(sio.get_untrusted_types(data=data))


def trusted_types(estimator: Any = None) -> list[str]:
    """The type names to trust when loading an estimator saved with skops (or MLflow).

    skops refuses to load any type it does not know unless the caller names it as trusted.
    This list names the estimator's own types by their current import paths, so code that
    loads a model never spells out a private module of this package (which a refactor may
    move). Pass the estimator to add the types its parameters bring (for example side-feature
    DataFrames, or callbacks); without it, the list covers any estimator whose parameters are
    plain values.

    Parameters
    ----------
    estimator : EmbeddingRatingRegressor, default=None
        The estimator being saved or loaded; only its parameters are read.

    Returns
    -------
    names : list of str
        Sorted type names, for ``skops.io.loads(data, trusted=names)`` or
        ``mlflow.sklearn.log_model(est, ..., skops_trusted_types=names)``.

    Raises
    ------
    ValueError
        When skops cannot serialise a parameter at all (then use ``est.save``).

    Examples
    --------
    >>> from skembedrec import trusted_types
    >>> trusted_types()
    ['scipy.sparse._csr.csr_array', 'skembedrec._encoding.IdEncoder', \
'skembedrec._estimator.EmbeddingRatingRegressor']
    """
    from ._encoding import IdEncoder
    from ._estimator import EmbeddingRatingRegressor

    names = {_type_name(EmbeddingRatingRegressor), _type_name(IdEncoder),
             _type_name(type(sp.csr_array((1, 1), dtype=bool)))}
    if estimator is not None:
        names |= _parameter_types(estimator.get_params(deep=False))
    return sorted(names)
