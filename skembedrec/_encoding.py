"""User and item id encoding, and the policy for ids unseen at fit.

The vocabulary is learned by :class:`sklearn.preprocessing.OrdinalEncoder`, which also
rejects columns that mix strings and numbers. Lookups go through a :class:`pandas.Index`
built from the vocabulary: a vectorised hash lookup that is about 50x faster than
``OrdinalEncoder.transform`` on large batches and has no per-call validation overhead for
single-row serving.

Codes are append-only: the first fit numbers the ids in sorted order (``categories_``), and
ids added later (``partial_fit``, ``warm_start``) get the next codes, so the code of an id
never changes once it has a row in the embedding tables. The OrdinalEncoder still checks
every addition (one kind of id per column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.preprocessing import OrdinalEncoder

UNKNOWN = -1
_ID_DTYPE = np.int32


class IdEncoder:
    """Map user and item ids to contiguous codes ``0..n-1``.

    Each table reserves one extra code, ``n_users`` (resp. ``n_items``), for ids that were
    not seen at fit; the network keeps an "average" row at that position.

    Examples
    --------
    >>> import numpy as np
    >>> enc = IdEncoder().fit(np.array([10, 20, 10]), np.array(["a", "b", "c"]))
    >>> enc.n_users, enc.n_items
    (2, 3)
    >>> enc.transform(np.array([20, 99]), np.array(["c", "a"]))
    (array([1, 2], dtype=int32), array([2, 0], dtype=int32))
    """

    def fit(self, users: np.ndarray, items: np.ndarray) -> IdEncoder:
        """Learn the vocabularies; ``users`` and ``items`` may differ in length."""
        self.vocabulary_ = [_learn(users).categories_[0], _learn(items).categories_[0]]
        self._indexes: tuple[pd.Index, pd.Index] | None = None
        return self

    def extended(self, users: np.ndarray, items: np.ndarray) -> IdEncoder:
        """A copy of this encoder with the ids not known yet appended (in sorted order).

        Known ids keep their codes. Raises a ``TypeError`` naming the column if the new ids
        are of another kind (strings vs numbers) than the known ones.
        """
        vocabulary = []
        for kind, known, ids, index in zip(("user", "item"), self.vocabulary_, (users, items),
                                           self._lookup(), strict=True):
            new = np.asarray(ids)[index.get_indexer(ids) == UNKNOWN]
            if len(new):
                try:
                    _learn(np.concatenate([known.astype(object), new.astype(object)]))
                except TypeError as exc:
                    raise TypeError(
                        f"The new {kind} ids are of another kind than the {kind} ids seen "
                        f"before (e.g. {_plain(new[0])!r} after {_plain(known[0])!r}): ids "
                        "of one column "
                        "must all be strings or all numbers."
                    ) from exc
                known = np.concatenate([known, _learn(new).categories_[0]])
            vocabulary.append(known)
        encoder = IdEncoder()
        encoder.vocabulary_ = vocabulary
        encoder._indexes = None
        return encoder

    @property
    def user_ids(self) -> np.ndarray:
        """Known user ids, in code order."""
        return self.vocabulary_[0]

    @property
    def item_ids(self) -> np.ndarray:
        """Known item ids, in code order."""
        return self.vocabulary_[1]

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def _lookup(self) -> tuple[pd.Index, pd.Index]:
        # Derived from ``categories_`` on first use; not part of the pickled state.
        indexes = getattr(self, "_indexes", None)
        if indexes is None:
            indexes = self._indexes = (pd.Index(self.user_ids), pd.Index(self.item_ids))
        return indexes

    def codes(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes of the given ids, ``UNKNOWN`` (-1) where an id was not seen at fit."""
        user_index, item_index = self._lookup()
        return (
            user_index.get_indexer(users).astype(_ID_DTYPE, copy=False),
            item_index.get_indexer(items).astype(_ID_DTYPE, copy=False),
        )

    def transform(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes of the given ids, unknown ids mapped to the reserved code ``n``."""
        user_codes, item_codes = self.codes(users, items)
        user_codes[user_codes == UNKNOWN] = self.n_users
        item_codes[item_codes == UNKNOWN] = self.n_items
        return user_codes, item_codes

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_indexes"] = None
        return state


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _learn(ids: np.ndarray) -> OrdinalEncoder:
    """An OrdinalEncoder fitted on one id column (it refuses mixed strings and numbers)."""
    return OrdinalEncoder(dtype=np.float64).fit(pd.DataFrame({"id": ids}, copy=False))


def describe_unknown(ids: np.ndarray, known: np.ndarray, kind: str, limit: int = 10) -> str:
    """A message naming the ids of ``kind`` ('user'/'item') that are not ``known``."""
    unknown = pd.unique(np.asarray(ids, dtype=object)[~known])
    shown = ", ".join(repr(v) for v in unknown[:limit])
    more = f" and {len(unknown) - limit} more" if len(unknown) > limit else ""
    return f"{len(unknown)} unknown {kind} id(s) not seen during fit: {shown}{more}"
