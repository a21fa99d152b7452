"""What the benchmark asks: random addresses drawn from the list, or a file of addresses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ipallow import synth
from ipallow._trie import address_key
from ipallow.bench._table import PrefixTable


class QueryProblem(tuple):
    """``(line, text, message)``: a line of a query file that is not an address."""

    __slots__ = ()

    def __new__(cls, line: int, text: str, message: str):
        return super().__new__(cls, (line, text, message))

    line = property(lambda self: self[0])
    text = property(lambda self: self[1])
    message = property(lambda self: self[2])


@dataclass
class FamilyQueries:
    """The queries of one family: keys as the batch API takes them, text, ints, labels."""

    family: int
    keys: np.ndarray                 # uint32 (IPv4) or (n, 2) uint64 (IPv6)
    texts: list[str]                 # normalised address text, what every peer is asked
    labels: list[str] | None = None  # query file: "line N: original text"

    @property
    def size(self) -> int:
        return int(self.keys.shape[0])

    @property
    def ints(self) -> list[int]:
        if self.family == 4:
            return self.keys.tolist()
        return [(h << 64) | l_ for h, l_ in self.keys.tolist()]

    def label(self, i: int) -> str:
        return self.labels[i] if self.labels is not None else self.texts[i]


@dataclass
class Queries:
    """What the benchmark asks: per family, plus where the queries came from."""

    origin: str                          # "random" or the query file's name
    families: dict[int, FamilyQueries]
    problems: list[QueryProblem] = field(default_factory=list)
    seed: int | None = None

    @property
    def count(self) -> int:
        return sum(f.size for f in self.families.values())


def ipv4_texts(keys: np.ndarray) -> list[str]:
    """Dotted-quad text of each uint32 address.

    >>> ipv4_texts(np.array([0xC0000201], dtype=np.uint32))
    ['192.0.2.1']
    """
    return [s[:-3] for s in synth.ipv4_strings(keys, np.full(keys.size, 32, np.uint8))]


def ipv6_texts(rows: np.ndarray) -> list[str]:
    """RFC 5952 text of each (hi, lo) uint64 row.

    >>> ipv6_texts(np.array([[0x20010DB800000000, 1]], dtype=np.uint64))
    ['2001:db8::1']
    """
    rows = np.asarray(rows, dtype=np.uint64).reshape(-1, 2)
    return [s[:-4] for s in synth.ipv6_strings(rows[:, 0], rows[:, 1], np.full(rows.shape[0], 128, np.uint8))]


def _family_queries(family: int, keys: np.ndarray, labels: list[str] | None = None) -> FamilyQueries:
    texts = ipv4_texts(keys) if family == 4 else ipv6_texts(keys)
    return FamilyQueries(family, keys, texts, labels)


def random_queries(table: PrefixTable, n: int, seed: int = 1) -> Queries:
    """``n`` addresses drawn like ``ipallow.synth``'s query generators, from the list's own prefixes.

    The count is split between the families in proportion to their prefix counts (every
    family with prefixes gets at least one query); within a family, half the queries lie
    inside randomly chosen prefixes and half are uniform over the family's whole space.
    A list with no prefixes at all gets uniform IPv4 queries.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"the number of queries must be at least 1, got {n}")
    c4, c6 = table.count(4), table.count(6)
    if c4 + c6 == 0:
        n4 = n
    else:
        n4 = round(n * c4 / (c4 + c6))
        if c4 and n4 == 0:
            n4 = 1
        if c6 and n4 == n and n > 1:
            n4 = n - 1
    n6 = n - n4
    families = {}
    if n4:
        families[4] = _family_queries(4, synth.ipv4_queries(table.v4_keys, table.v4_plens, n4, seed=seed))
    if n6:
        families[6] = _family_queries(6, synth.ipv6_queries(table.v6_hi, table.v6_lo, table.v6_plens, n6,
                                                            seed=seed + 1))
    return Queries("random", families, seed=seed)


def read_queries(lines: Iterable[str], name: str) -> Queries:
    """Addresses from a file, one a line (blank lines and ``#`` comments skipped).

    Every accepted address form (dotted quad, any RFC 4291 IPv6 text) is taken, the
    surrounding whitespace of a line ignored.  Lines that are not an address are
    returned as :class:`QueryProblem` ``(line, text, message)``; they are not asked.
    """
    v4: list[int] = []
    v4_labels: list[str] = []
    v6: list[int] = []
    v6_labels: list[str] = []
    problems: list[QueryProblem] = []
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            version, value = address_key(text)
        except (ValueError, TypeError) as exc:
            problems.append(QueryProblem(number, text, str(exc)))
            continue
        if version == 4:
            v4.append(value)
            v4_labels.append(f"line {number}: {text}")
        else:
            v6.append(value)
            v6_labels.append(f"line {number}: {text}")
    families = {}
    if v4:
        families[4] = _family_queries(4, np.array(v4, dtype=np.uint32), v4_labels)
    if v6:
        rows = np.array([(v >> 64, v & 0xFFFFFFFFFFFFFFFF) for v in v6], dtype=np.uint64).reshape(-1, 2)
        families[6] = _family_queries(6, rows, v6_labels)
    return Queries(name, families, problems)
