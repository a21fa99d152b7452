"""A registry read in bulk keeps its records as columns: each :class:`Registration` (and its
``ipaddress`` network) is made when it is first read.

Making them all at load was 40% of loading a 600k-row export and most of its objects; a
gateway reads the records its traffic matches, a reload may read none.  The registry's
sequence of records is a ``LazyList`` over :meth:`RecordColumns.make`, so every reader --
``registry[i]``, ``lookup().data``, a snapshot's writer -- gets the same object, made once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ipallow._parse import network_object
from ipallow.registry._fields import _NO_EXTRA
from ipallow.registry._frozenmap import FrozenMap
from ipallow.registry._record import Registration


class Coded:
    """A column as a code per row and the value each code stands for: a registry repeats
    its statuses, categories, dates and owners, so each distinct text is checked and
    normalised once, and a row costs 4 bytes that the cyclic collector never has to visit."""

    __slots__ = ("codes", "values")

    def __init__(self, codes: np.ndarray, values: list) -> None:
        self.codes, self.values = codes, values

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> Any:
        return self.values[self.codes[i]]

    def __iter__(self) -> Iterator[Any]:
        return map(self.values.__getitem__, self.codes.tolist())


class RecordColumns:
    """Every field of the records, a column each (one network per record, as ``version`` /
    ``hi`` / ``lo`` / ``plen``)."""

    __slots__ = ("ids", "version", "hi", "lo", "plen", "owners", "categories", "statuses",
                 "valid_from", "expires_at", "tags", "extra_keys", "extra_columns")

    def __init__(self, ids: list, version: np.ndarray, hi: np.ndarray, lo: np.ndarray, plen: np.ndarray,
                 owners: Sequence, categories: Sequence, statuses: Sequence, valid_from: Sequence,
                 expires_at: Sequence, tags: Sequence, extra_keys: list, extra_columns: list) -> None:
        self.ids, self.version, self.hi, self.lo, self.plen = ids, version, hi, lo, plen
        self.owners, self.categories, self.statuses = owners, categories, statuses
        self.valid_from, self.expires_at, self.tags = valid_from, expires_at, tags
        self.extra_keys, self.extra_columns = extra_keys, extra_columns

    def make(self, i: int) -> Registration:
        """Record ``i``."""
        network = network_object(int(self.version[i]), int(self.hi[i]) << 64 | int(self.lo[i]),
                                 int(self.plen[i]))
        extra = (FrozenMap(zip(self.extra_keys, [column[i] for column in self.extra_columns]))
                 if self.extra_keys else _NO_EXTRA)
        return Registration._from_row(self.ids[i], (network,), self.owners[i], self.categories[i], self.statuses[i], self.valid_from[i],
                                      self.expires_at[i], self.tags[i], extra)
