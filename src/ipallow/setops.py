"""Set algebra on compiled allowlists: union, intersection, difference, network queries.

The address sets are worked out per IP version as sorted, disjoint ranges of
integers (:meth:`Prefixes.merged_ranges` of each operand), combined in one
vectorised sweep over the range ends, and turned back into the minimal CIDR
list.  128-bit values stay two ``uint64`` words (high, low) throughout; IPv4
uses the low word.  IPv4 and IPv6 are never mixed.

Registrations survive (see docs/set-algebra.md): the result answers every
address as the left-most operand covering it does.  Operand ``k`` answers in
a *region* ``W_k`` (for ``a | b``: all of ``a``, then ``b`` outside ``a``; for
``a & b`` and ``a - b``: the result, all of it ``a``'s).  Each of its prefixes
is kept whole where it lies inside ``W_k``; a prefix cut by the region's edge
is replaced by the blocks of ``W_k`` (as a minimal CIDR list) inside it, and a
block that one of the operand's longer prefixes also yields is left to that
one, the prefix that answers there.  Longest match over what is kept then
gives the operand's own answer at every address of the result (the proof is
in docs/set-algebra.md).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Self, Sequence

import numpy as np

from ipallow import _parse
from ipallow._compile import Compiled, assemble
from ipallow._blocks import cut_ranges
from ipallow._prefixes import Prefixes, _dense_rank, split

__all__ = ["OPERATIONS", "Ranges", "address_ranges", "combine_ranges", "ranges_to_prefixes",
           "address_set", "combine", "covers", "overlaps", "query_networks"]

#: The operations, by the names of the ``set`` methods they mirror.
OPERATIONS = ("union", "intersection", "difference")

_ZERO = np.uint64(0)
_ONE = np.uint64(1)


class Ranges(NamedTuple):
    """The addresses of one IP version as sorted, disjoint, non-touching inclusive ranges."""

    version: int
    first_hi: np.ndarray    # uint64 words of each range's first address
    first_lo: np.ndarray
    last_hi: np.ndarray     # ... and of its last address
    last_lo: np.ndarray

    def __len__(self) -> int:
        return len(self.first_lo)

    def size(self) -> int:
        """How many addresses (exact, any size)."""
        return sum(((lh << 64) | ll) - ((fh << 64) | fl) + 1 for fh, fl, lh, ll in
                   zip(self.first_hi.tolist(), self.first_lo.tolist(), self.last_hi.tolist(),
                       self.last_lo.tolist()))


def address_ranges(compiled: Compiled) -> dict[int, Ranges]:
    """The addresses a compiled allowlist covers: ``{4: Ranges, 6: Ranges}``."""
    tables = split(compiled.version, compiled.hi, compiled.lo, compiled.prefixlen)
    return {v: Ranges(v, *p.merged_ranges()) for v, p in tables.items()}


# ---------------------------------------------------------------------------
# the sweep: several range sets -> their union, intersection or difference
# ---------------------------------------------------------------------------

def combine_ranges(operation: str, sides: Sequence[Ranges]) -> Ranges:
    """``sides[0]`` combined with the others: union, intersection (of all) or difference
    (the first minus every other one).  All of one IP version.

    Each range becomes two events, +1 at its first address and -1 just past its
    last; after sorting, a running count per position says how many sides cover
    the stretch up to the next position.  "Just past" the top of the space is
    2**128 for IPv6: it is written as (0, 0) with a carry flag that sorts it
    last, and subtracting one from (0, 0) wraps back to the top address.
    """
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}, not {operation!r}")
    version = sides[0].version
    if any(s.version != version for s in sides):
        raise ValueError("every side must be of the same IP version")
    sizes = [len(s) for s in sides]
    if operation == "intersection" and min(sizes) == 0 or operation == "difference" and sizes[0] == 0:
        return _empty(version)
    first_hi = np.concatenate([s.first_hi for s in sides])
    first_lo = np.concatenate([s.first_lo for s in sides])
    end_lo = np.concatenate([s.last_lo for s in sides]) + _ONE
    end_hi = np.concatenate([s.last_hi for s in sides]) + (end_lo == _ZERO).astype(np.uint64)
    n = len(first_lo)
    if n == 0:
        return _empty(version)
    carry = np.zeros(2 * n, dtype=bool)
    carry[n:] = (end_hi == _ZERO) & (end_lo == _ZERO)       # just past ffff...ffff
    pos_hi = np.concatenate([first_hi, end_hi])
    pos_lo = np.concatenate([first_lo, end_lo])
    delta = np.concatenate([np.ones(n, np.int64), -np.ones(n, np.int64)])
    first_side = np.zeros(2 * n, dtype=bool)                  # events of sides[0]
    first_side[:sizes[0]] = True
    first_side[n:n + sizes[0]] = True
    if version == 4:           # every position fits the low word: one sort key
        order = np.argsort(pos_lo, kind="stable")
    else:
        order = np.lexsort((pos_lo, pos_hi, carry))
    pos_hi, pos_lo, carry = pos_hi[order], pos_lo[order], carry[order]
    delta, first_side = delta[order], first_side[order]
    total = np.cumsum(delta)
    own = np.cumsum(np.where(first_side, delta, 0))
    # The state of a position is the count after its last event.
    last_of_group = np.ones(2 * n, dtype=bool)
    last_of_group[:-1] = (pos_hi[1:] != pos_hi[:-1]) | (pos_lo[1:] != pos_lo[:-1]) | (carry[1:] != carry[:-1])
    groups = np.flatnonzero(last_of_group)
    total, own = total[groups], own[groups]
    if operation == "union":
        inside = total > 0
    elif operation == "intersection":
        inside = total == len(sides)        # each side's ranges are disjoint: one count per side
    else:
        inside = (own > 0) & (total == own)
    # Runs of consecutive inside stretches make one range; the last position is
    # always outside (every range has ended), so each run has a next position.
    starts = np.flatnonzero(inside & ~np.concatenate([[False], inside[:-1]]))
    ends = np.flatnonzero(inside & ~np.concatenate([inside[1:], [False]])) + 1
    group_hi, group_lo = pos_hi[groups], pos_lo[groups]
    last_lo = group_lo[ends] - _ONE
    last_hi = group_hi[ends] - (group_lo[ends] == _ZERO).astype(np.uint64)
    return Ranges(version, group_hi[starts], group_lo[starts], last_hi, last_lo)


def _empty(version: int) -> Ranges:
    empty = np.zeros(0, np.uint64)
    return Ranges(version, empty, empty, empty, empty)


# ---------------------------------------------------------------------------
# ranges -> the minimal CIDR list
# ---------------------------------------------------------------------------

def ranges_to_prefixes(ranges: Ranges) -> Prefixes:
    """The minimal CIDR list covering exactly ``ranges`` (sorted by address).

    :func:`ipallow._prefixes.cut_ranges` cuts every range into aligned blocks; on
    maximal ranges (as :func:`combine_ranges` gives) the blocks are the maximal
    aligned blocks of the set, which is the unique minimal cover.
    """
    _, hi, lo, plen = cut_ranges(ranges.version, ranges.first_hi, ranges.first_lo,
                                 ranges.last_hi, ranges.last_lo)
    order = np.lexsort((lo, hi))
    return Prefixes(ranges.version, hi[order], lo[order], plen[order])


# ---------------------------------------------------------------------------
# whole allowlists
# ---------------------------------------------------------------------------

def _check_operation(operation: str) -> None:
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}, not {operation!r}")


def address_set(operation: str, operands: Sequence[Compiled]) -> dict[int, Prefixes]:
    """The addresses of ``operands[0]`` combined with the others, as the minimal CIDR list per
    version (``{4: Prefixes, 6: Prefixes}``, sorted).  No registrations: what
    ``ipallow merge | common | except`` write."""
    _check_operation(operation)
    per_operand = [address_ranges(c) for c in operands]
    return {v: ranges_to_prefixes(combine_ranges(operation, [r[v] for r in per_operand]))
            for v in _parse.MAX_BITS}


def _regions(operation: str, per_operand: list[dict[int, Ranges]], version: int) -> list[Ranges | None]:
    """Where each operand answers in the result (None: everywhere it covers)."""
    sides = [r[version] for r in per_operand]
    if operation == "intersection":
        return [combine_ranges("intersection", sides)] + [_empty(version)] * (len(sides) - 1)
    if operation == "difference":
        return [combine_ranges("difference", sides)] + [_empty(version)] * (len(sides) - 1)
    regions: list[Ranges | None] = [None]
    covered = sides[0]
    for side in sides[1:]:
        regions.append(combine_ranges("difference", [side, covered]))
        covered = combine_ranges("union", [covered, side])
    return regions


class _Kept(NamedTuple):
    """Rows of the result's prefix table that come from one operand."""

    hi: np.ndarray
    lo: np.ndarray
    plen: np.ndarray
    source: np.ndarray      # the operand's prefix row each one comes from


def _keys(*pairs: tuple[np.ndarray, np.ndarray], version: int) -> list[np.ndarray]:
    """One comparable int64 key per 128-bit value, the same order across all ``pairs``."""
    if version == 4:
        return [lo.astype(np.int64) for _, lo in pairs]
    rank = _dense_rank(np.concatenate([h for h, _ in pairs]), np.concatenate([l for _, l in pairs]))
    return np.split(rank, np.cumsum([len(h) for h, _ in pairs])[:-1])


def _clip(rows: np.ndarray, p: Prefixes, region: Prefixes) -> _Kept:
    """The operand's prefixes ``p`` (its rows ``rows``) kept where they lie in ``region``
    (disjoint blocks, sorted): whole when inside one block, else as the blocks inside them."""
    p_last = p.last_addresses()
    r_last = region.last_addresses()
    pf, pl, rf, rl = _keys((p.hi, p.lo), p_last, (region.hi, region.lo), r_last, version=p.version)
    holder = np.searchsorted(rf, pf, side="right") - 1       # the last block starting at or before p
    whole = (holder >= 0) & (rl[np.maximum(holder, 0)] >= pl)
    # Blocks starting inside a prefix lie inside it (blocks nest or are disjoint);
    # a prefix not inside one block is cut into exactly those.
    cut = np.flatnonzero(~whole)
    first = np.searchsorted(rf, pf[cut], side="left")
    count = np.searchsorted(rf, pl[cut], side="right") - first
    blocks = np.repeat(first - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
    owner = np.repeat(cut, count)
    keep = np.flatnonzero(whole)
    return _Kept(np.concatenate([p.hi[keep], region.hi[blocks]]),
                 np.concatenate([p.lo[keep], region.lo[blocks]]),
                 np.concatenate([p.prefixlen[keep], region.prefixlen[blocks]]),
                 np.concatenate([rows[keep], rows[owner]]))


def _answering(kept: _Kept, source_plen: np.ndarray) -> _Kept:
    """Leave out a block that a longer prefix of the same operand also yields: that one answers."""
    if len(kept.lo) < 2:
        return kept
    own = source_plen[kept.source].astype(np.int64)
    order = np.lexsort((-own, kept.plen, kept.lo, kept.hi))
    same = np.zeros(len(order), dtype=bool)
    s_hi, s_lo, s_len = kept.hi[order], kept.lo[order], kept.plen[order]
    same[1:] = (s_hi[1:] == s_hi[:-1]) & (s_lo[1:] == s_lo[:-1]) & (s_len[1:] == s_len[:-1])
    leader = np.maximum.accumulate(np.where(same, 0, np.arange(len(order))))
    best = own[order][leader]                 # the longest source of each group of equal blocks
    keep = np.sort(order[own[order] == best])
    return _Kept(kept.hi[keep], kept.lo[keep], kept.plen[keep], kept.source[keep])


def combine(operation: str, operands: Sequence[Compiled]) -> Compiled:
    """The compiled allowlist of ``operands[0]`` combined with the others, registrations kept.

    Covers exactly the combined address set; at every address it covers, its
    longest match is that of the left-most operand covering the address (for
    intersection and difference always the first operand).  Registrations
    keep their data and order (the first operand's first), each with the part
    of its networks that answers in the result; one with nothing left is
    dropped.
    """
    _check_operation(operation)
    per_operand = [address_ranges(c) for c in operands]
    parts: list[tuple[int, _Kept]] = []          # (operand, rows from it)
    for version in _parse.MAX_BITS:
        for k, region in enumerate(_regions(operation, per_operand, version)):
            c = operands[k]
            rows = np.flatnonzero(c.version == version)
            if not len(rows) or (region is not None and not len(region)):
                continue
            p = Prefixes(version, c.hi[rows], c.lo[rows], c.prefixlen[rows])
            if region is None:                 # answers wherever it covers: every prefix whole
                parts.append((k, _Kept(p.hi, p.lo, p.prefixlen, rows)))
                continue
            kept = _clip(rows, p, ranges_to_prefixes(region))
            parts.append((k, _answering(kept, c.prefixlen)))
    return _assemble(operands, parts)


def _assemble(operands: Sequence[Compiled], parts: list[tuple[int, _Kept]]) -> Compiled:
    """Lay the kept rows out by registration (operand order, then each one's own order,
    then each registration's networks in their order, cut ones in address order)."""
    versions, his, los, plens, operand_of, position, regs = [], [], [], [], [], [], []
    for k, kept in parts:
        c = operands[k]
        where = np.empty(len(c.reg_rows), dtype=np.int64)      # row -> its place in reg_rows
        where[c.reg_rows] = np.arange(len(c.reg_rows))
        versions.append(c.version[kept.source])
        his.append(kept.hi)
        los.append(kept.lo)
        plens.append(kept.plen)
        operand_of.append(np.full(len(kept.lo), k, np.int64))
        position.append(where[kept.source])
        regs.append(c.prefix_reg[kept.source].astype(np.int64))
    if not parts:
        empty = np.zeros(0, np.uint64)
        return assemble(np.zeros(0, np.uint8), empty, empty, np.zeros(0, np.uint8),
                        np.zeros(1, np.int64), None)
    version, hi, lo, plen = (np.concatenate(x) for x in (versions, his, los, plens))
    operand, pos, reg = np.concatenate(operand_of), np.concatenate(position), np.concatenate(regs)
    order = np.lexsort((lo, hi, pos, operand))
    version, hi, lo, plen, operand, reg = (x[order] for x in (version, hi, lo, plen, operand, reg))
    new_reg = np.ones(len(order), dtype=bool)
    new_reg[1:] = (operand[1:] != operand[:-1]) | (reg[1:] != reg[:-1])
    starts = np.flatnonzero(new_reg)
    reg_first = np.append(starts, len(order)).astype(np.int64)
    data = None
    if any(operands[k].data is not None for k in set(operand[starts].tolist())):
        data = [operands[k].data[r] if operands[k].data is not None else None
                for k, r in zip(operand[starts].tolist(), reg[starts].tolist())]
    return assemble(version.astype(np.uint8), hi, lo, plen.astype(np.uint8), reg_first, data)


# ---------------------------------------------------------------------------
# network queries
# ---------------------------------------------------------------------------

def query_networks(network: Any) -> list[_parse.Network]:
    """The networks of a query: anything a registered entry may be (CIDR / address / range
    text, ``ipaddress`` or ``netaddr`` network, address or range ...); host bits set is an error.

    Raises:
        TypeError: of no accepted type.
        AddressError: malformed.
    """
    if isinstance(network, tuple):       # an (entry, data) pair means nothing here
        raise TypeError("expected a network, address or range, got a tuple")
    return _parse.entry_networks(network, strict=True)[0]


def _count_at_most(hi: np.ndarray, lo: np.ndarray, value: int) -> int:
    """How many of the sorted 128-bit values (hi, lo) are <= ``value``."""
    q_hi, q_lo = np.uint64(value >> 64), np.uint64(value & 0xFFFFFFFFFFFFFFFF)
    below = int(np.searchsorted(hi, q_hi, side="left"))
    same = int(np.searchsorted(hi, q_hi, side="right"))
    return below + int(np.searchsorted(lo[below:same], q_lo, side="right"))


def _span(network: _parse.Network) -> tuple[int, int]:
    version, value, plen = network
    return value, value + (1 << (_parse.MAX_BITS[version] - plen)) - 1


def _holder(ranges: Ranges, first: int) -> int:
    """Index of the last range starting at or before ``first`` (-1: none)."""
    return _count_at_most(ranges.first_hi, ranges.first_lo, first) - 1


def _last(ranges: Ranges, i: int) -> int:
    return (int(ranges.last_hi[i]) << 64) | int(ranges.last_lo[i])


def _first(ranges: Ranges, i: int) -> int:
    return (int(ranges.first_hi[i]) << 64) | int(ranges.first_lo[i])


def covers(ranges: dict[int, Ranges], networks: list[_parse.Network]) -> bool:
    """Every address of every network lies in ``ranges``."""
    for network in networks:
        r = ranges[network[0]]
        first, last = _span(network)
        i = _holder(r, first)
        if i < 0 or _last(r, i) < last:        # ranges are maximal: one must hold it all
            return False
    return True


def overlaps(ranges: dict[int, Ranges], networks: list[_parse.Network]) -> bool:
    """Some address of some network lies in ``ranges``."""
    for network in networks:
        r = ranges[network[0]]
        first, last = _span(network)
        i = _holder(r, first)
        if i >= 0 and _last(r, i) >= first:
            return True
        if i + 1 < len(r) and _first(r, i + 1) <= last:
            return True
    return False


class SetAlgebra:
    """The set operations and network queries of :class:`~ipallow.Allowlist` (its base class).

    They live here, beside the interval code they call, so the facade stays a facade; they use
    only what every allowlist has: ``_compiled``, ``_from_compiled`` and the constructor.
    """

    def covers(self, network: Any) -> bool:
        """True when every address of ``network`` is in the allowlist (by any registrations).

        Arguments:
            network: CIDR, address or range text (``"a - b"``), an ``ipaddress``
                or ``netaddr`` network, address or range -- anything a registered
                entry may be.  ``::ffff:0:0/96`` networks of length >= 96 are
                their IPv4 networks, as everywhere.

        Raises:
            TypeError: ``network`` is of no accepted type.
            AddressError: malformed text, or host bits set (``10.0.0.1/8``).

        >>> al = ipallow.Allowlist(["10.0.0.0/9", "10.128.0.0/9"])
        >>> al.covers("10.0.0.0/8"), al.covers("10.0.0.0/7")
        (True, False)
        """
        return covers(self._address_ranges(), query_networks(network))

    def overlaps(self, network: Any) -> bool:
        """True when some address of ``network`` is in the allowlist.

        Takes what :meth:`covers` takes and raises as it does.

        >>> ipallow.Allowlist(["10.1.0.0/16"]).overlaps("10.0.0.0/8"), ipallow.Allowlist(["10.1.0.0/16"]).overlaps("11.0.0.0/8")
        (True, False)
        """
        return overlaps(self._address_ranges(), query_networks(network))

    def _address_ranges(self) -> dict:
        # Worked out once (O(n log n)), then each query is a few binary searches.  Racing
        # threads compute the same ranges: the allowlist is immutable.
        ranges = self.__dict__.get("_ranges")
        if ranges is None:
            ranges = self.__dict__["_ranges"] = address_ranges(self._compiled)
        return ranges

    def union(self, *others: Any) -> Self:
        """The addresses of this allowlist and of every other: a new allowlist.

        Each other is an :class:`~ipallow.Allowlist` or an iterable of entries (compiled
        first), as ``set.union`` takes any iterable.  At every address the
        result answers as the left-most operand covering it does: ``lookup``
        returns that operand's registration (its data, in the result's
        numbering), the network being its network, or the part of it that lies
        outside the operands before it.  See docs/set-algebra.md.

        >>> a = ipallow.Allowlist([("10.0.0.0/8", "A")]); b = ipallow.Allowlist([("10.1.0.0/16", "B"), ("11.0.0.0/8", "C")])
        >>> [m.data for m in map((a | b).lookup, ["10.1.2.3", "11.0.0.1"])]
        ['A', 'C']
        """
        return self._combined("union", others)

    def intersection(self, *others: Any) -> Self:
        """The addresses in this allowlist and in every other; this allowlist's registrations
        answer (cut to what remains).  Takes what :meth:`union` takes.

        >>> a = ipallow.Allowlist([("10.0.0.0/8", "A")]); b = ipallow.Allowlist([("10.1.0.0/16", "B")])
        >>> (a & b).lookup("10.1.2.3")
        Match(network=IPv4Network('10.1.0.0/16'), index=0, data='A')
        """
        return self._combined("intersection", others)

    def difference(self, *others: Any) -> Self:
        """The addresses of this allowlist in none of the others; its registrations answer
        (cut to what remains).  Takes what :meth:`union` takes.

        >>> [str(n) for n in (ipallow.Allowlist(["10.0.0.0/8"]) - ipallow.Allowlist(["10.0.0.0/9"]))[0].networks]
        ['10.128.0.0/9']
        """
        return self._combined("difference", others)

    def __or__(self, other: Any) -> Self:
        return self._combined("union", (other,)) if isinstance(other, SetAlgebra) else NotImplemented

    def __and__(self, other: Any) -> Self:
        return self._combined("intersection", (other,)) if isinstance(other, SetAlgebra) else NotImplemented

    def __sub__(self, other: Any) -> Self:
        return self._combined("difference", (other,)) if isinstance(other, SetAlgebra) else NotImplemented

    def _combined(self, operation: str, others: tuple) -> Self:
        operands = [self] + [o if isinstance(o, SetAlgebra) else type(self)(o) for o in others]
        return type(self)._from_compiled(combine(operation, [o._compiled for o in operands]))
