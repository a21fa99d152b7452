"""A registry read in bulk keeps its records as columns: each :class:`Registration` (and its
``ipaddress`` network) is made when it is first read.

Making them all at load was 40% of loading a 600k-row export and most of its objects; a
gateway reads the records its traffic matches, a reload may read none.  The registry's
sequence of records is a ``LazyList`` over :meth:`RecordColumns.make`, so every reader --
``registry[i]``, ``lookup().data``, a snapshot's writer -- gets the same object, made once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ipallow._parse import _NETWORK_MAKERS
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

    def __getitem__(self, i: int) -> Any:
        return self.values[self.codes[i]]


class RecordColumns:
    """Every field of the records, a column each: one network per record, as ``version`` /
    ``hi`` / ``lo`` / ``plen``; each other field :class:`Coded`."""

    __slots__ = ("ids", "_version", "_hi", "_lo", "_plen", "_owners", "_categories", "_statuses",
                 "_valid_from", "_expires_at", "_tags", "_extra_keys", "_extra_columns")

    def __init__(self, ids: list, version: np.ndarray, hi: np.ndarray, lo: np.ndarray, plen: np.ndarray,
                 owners: Coded, categories: Coded, statuses: Coded, valid_from: Coded,
                 expires_at: Coded, tags: Coded, extra_keys: list, extra_columns: list) -> None:
        self.ids = ids
        # make() reads one row of each column: a memoryview gives a Python int at once
        # (numpy's scalars are 5x slower), and a coded column is (values, codes).
        self._version, self._hi, self._lo, self._plen = map(memoryview, (version, hi, lo, plen))
        self._owners, self._categories, self._statuses, self._valid_from, self._expires_at, self._tags = (
            (column.values, memoryview(column.codes))
            for column in (owners, categories, statuses, valid_from, expires_at, tags))
        self._extra_keys, self._extra_columns = extra_keys, extra_columns

    def make(self, i: int) -> Registration:
        """Record ``i`` (unrolled: a gateway's first match of a registration waits for it)."""
        length = self._plen[i]
        if self._version[i] == 4:
            network = _MAKE_IPV4(self._lo[i], length)
        else:
            network = _MAKE_IPV6(self._hi[i] << 64 | self._lo[i], length)
        extra = (FrozenMap(zip(self._extra_keys, [column[i] for column in self._extra_columns]))
                 if self._extra_keys else _NO_EXTRA)
        owners, owner = self._owners
        categories, category = self._categories
        statuses, status = self._statuses
        starts, start = self._valid_from
        ends, end = self._expires_at
        tags, tag = self._tags
        return _ROW(self.ids[i], (network,), owners[owner[i]], categories[category[i]], statuses[status[i]],
                    starts[start[i]], ends[end[i]], tags[tag[i]], extra)

    def status_counts(self) -> dict[str, int]:
        """How many records have each status (the records are not made)."""
        values, codes = self._statuses
        counts: dict[str, int] = {}
        for status, count in zip(values, np.bincount(np.asarray(codes), minlength=len(values)).tolist()):
            counts[status] = counts.get(status, 0) + count     # 'Active' and 'active' are one status
        return counts


_MAKE_IPV4, _MAKE_IPV6 = _NETWORK_MAKERS[4], _NETWORK_MAKERS[6]
_ROW = Registration._from_row
