"""The list's prefixes as every builder is given them, and the numpy ``searchsorted`` baseline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import ipallow
from ipallow._prefixes import Prefixes, split


@dataclass
class PrefixTable:
    """The prefixes an allowlist counts, per family, as numpy arrays (and CIDR text on demand).

    ``v4_keys`` uint32 network addresses, ``v4_plens``; ``v6_hi`` / ``v6_lo`` uint64
    halves, ``v6_plens``.  Every builder (ipallow included) is given the same text.
    A thin view: :meth:`family` gives the package's one prefix type, which does the work.
    """

    v4_keys: np.ndarray
    v4_plens: np.ndarray
    v6_hi: np.ndarray
    v6_lo: np.ndarray
    v6_plens: np.ndarray
    _text: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_allowlist(cls, allowlist: "ipallow.Allowlist") -> "PrefixTable":
        c = allowlist.compiled
        v4, v6 = split(c.version, c.hi, c.lo, c.prefixlen).values()
        return cls(v4.lo.astype(np.uint32), v4.prefixlen, v6.hi, v6.lo, v6.prefixlen)

    def family(self, family: int) -> Prefixes:
        """The family's prefixes as :class:`ipallow._prefixes.Prefixes`."""
        if family == 4:
            return Prefixes(4, np.zeros(self.v4_keys.size, np.uint64), self.v4_keys.astype(np.uint64),
                            self.v4_plens)
        return Prefixes(6, self.v6_hi, self.v6_lo, self.v6_plens)

    def count(self, family: int) -> int:
        return int(self.v4_keys.size if family == 4 else self.v6_hi.size)

    def strings(self, family: int) -> list[str]:
        """The family's prefixes as CIDR text (cached)."""
        if family not in self._text:
            self._text[family] = self.family(family).strings()
        return self._text[family]

    def ranges(self, family: int) -> tuple[list[int], list[int]]:
        """Per prefix, its first and last address as Python ints (for range-based peers)."""
        spans = self.family(family).spans()
        return [first for first, _ in spans], [last for _, last in spans]


def merged_ranges(table: PrefixTable, family: int) -> tuple[np.ndarray, np.ndarray]:
    """The family's prefixes merged into sorted, disjoint, non-touching closed ranges.

    IPv4: ``uint32`` start and end arrays.  IPv6: big-endian ``S16`` keys, which numpy
    compares byte by byte, i.e. in the order of the 128-bit numbers.  This is the table
    of the ``searchsorted`` baseline; it is built from the prefix list, not from
    ipallow's compiled trie, so the baseline checks the trie independently.
    """
    first_hi, first_lo, last_hi, last_lo = table.family(family).merged_ranges()
    if family == 4:
        return first_lo.astype(np.uint32), last_lo.astype(np.uint32)
    return (rows_to_s16(np.column_stack((first_hi, first_lo))),
            rows_to_s16(np.column_stack((last_hi, last_lo))))


def rows_to_s16(rows: np.ndarray) -> np.ndarray:
    """``(n, 2)`` uint64 (hi, lo) rows -> big-endian ``S16`` keys."""
    return np.ascontiguousarray(np.asarray(rows).astype(">u8")).view("S16").reshape(-1)


def searchsorted_contains(starts: np.ndarray, ends: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Membership in sorted disjoint closed ranges: the last start <= q, then q <= its end."""
    if starts.size == 0:
        return np.zeros(q.shape[0], dtype=bool)
    idx = np.searchsorted(starts, q, side="right") - 1
    return (idx >= 0) & (q <= ends[idx])   # ends[-1] for idx == -1 is masked by idx >= 0
