"""User and item id encoding, and the policy for ids unseen at fit (in one place).

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

import warnings

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
    >>> enc.encode(np.array([20, 99]), np.array(["c", "a"]))
    array([[1, 2],
           [2, 0]], dtype=int32)
    """

    @classmethod
    def from_vocabulary(cls, user_ids: np.ndarray, item_ids: np.ndarray) -> IdEncoder:
        """An encoder whose codes are the positions in ``user_ids`` and ``item_ids``."""
        encoder = cls()
        encoder.vocabulary_ = [np.asarray(user_ids), np.asarray(item_ids)]
        encoder._indexes = None
        return encoder

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
        return IdEncoder.from_vocabulary(*vocabulary)

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

    def encode(self, users: np.ndarray, items: np.ndarray, *, handle_unknown: str = "fallback",
               advice: str = "") -> np.ndarray:
        """The ``(n, 2)`` int32 codes of (user, item) pairs; the unknown-id rule lives here.

        Under ``handle_unknown="fallback"`` an id not seen at fit gets its table's reserved
        code (``n_users`` or ``n_items``), the row of an average id. Under ``"error"`` a
        ValueError names the unknown ids, followed by ``advice``.
        """
        user_codes, item_codes = self.codes(users, items)
        _check_known([(users, user_codes, "user"), (items, item_codes, "item")],
                     handle_unknown, advice)
        user_codes[user_codes == UNKNOWN] = self.n_users
        item_codes[item_codes == UNKNOWN] = self.n_items
        return np.column_stack([user_codes, item_codes])

    def encode_one_side(self, ids: np.ndarray, kind: str, *, handle_unknown: str = "fallback",
                        advice: str = "") -> np.ndarray:
        """Codes of user (``kind="user"``) or item ids alone, under the same rule."""
        index = self._lookup()[0 if kind == "user" else 1]
        codes = index.get_indexer(ids).astype(_ID_DTYPE, copy=False)
        _check_known([(ids, codes, kind)], handle_unknown, advice)
        codes[codes == UNKNOWN] = self.n_users if kind == "user" else self.n_items
        return codes

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_indexes"] = None
        return state


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _learn(ids: np.ndarray) -> OrdinalEncoder:
    """An OrdinalEncoder fitted on one id column (it refuses mixed strings and numbers)."""
    return OrdinalEncoder(dtype=np.float64).fit(pd.DataFrame({"id": ids}, copy=False))


def warn_if_columns_swapped(encoder: IdEncoder, users: np.ndarray, items: np.ndarray,
                            codes: np.ndarray, user_col: object, item_col: object,
                            sample: int = 1000) -> None:
    """Warn when most pairs are unknown but would be known with the two columns swapped.

    Meant for plain arrays, whose column order is the only thing that says which column is
    which (as scikit-learn warns when feature names do not match). ``codes`` are the pairs'
    codes from :meth:`IdEncoder.encode`; only the first ``sample`` pairs are looked at, and
    looked up again only when most of them are unknown.
    """
    users, items, codes = users[:sample], items[:sample], codes[:sample]
    unknown = float(np.mean((codes[:, 0] == encoder.n_users) | (codes[:, 1] == encoder.n_items)))
    if unknown <= 0.5:
        return
    swapped_users, swapped_items = encoder.codes(items, users)
    known_if_swapped = float(np.mean((swapped_users != UNKNOWN) & (swapped_items != UNKNOWN)))
    if known_if_swapped > 0.5:
        warnings.warn(
            f"{unknown:.0%} of the (user, item) pairs in X have an id not seen during fit, "
            f"but {known_if_swapped:.0%} would be known with the two columns swapped. An "
            f"array is read as column 0 = user ids (user_col={user_col!r}) and column 1 = "
            f"item ids (item_col={item_col!r}): pass the columns in that order, or a "
            "DataFrame with named columns.",
            UserWarning, stacklevel=3,
        )


def _check_known(columns: list, handle_unknown: str, advice: str) -> None:
    if handle_unknown != "error":
        return
    problems = [describe_unknown(ids, codes != UNKNOWN, kind) for ids, codes, kind in columns
                if (codes == UNKNOWN).any()]
    if problems:
        raise ValueError("; ".join(problems) + advice)


def describe_unknown(ids: np.ndarray, known: np.ndarray, kind: str, limit: int = 10) -> str:
    """A message naming the ids of ``kind`` ('user'/'item') that are not ``known``."""
    unknown = pd.unique(np.asarray(ids, dtype=object)[~known])
    shown = ", ".join(repr(v) for v in unknown[:limit])
    more = f" and {len(unknown) - limit} more" if len(unknown) > limit else ""
    return f"{len(unknown)} unknown {kind} id(s) not seen during fit: {shown}{more}"
