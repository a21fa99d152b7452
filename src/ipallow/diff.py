"""Registry and coverage diffs: what changed between two registries (or allowlists).

Two views of one change:

* **registrations** - by id: added, removed, and changed field by field
  (``networks``, ``owner``, ``category``, ``status``, ``valid_from``,
  ``expires_at``, ``tags``, and each extra column as ``extra.NAME``);
  ``networks`` and ``tags`` compare as sets (order is not a change).  Every
  record is compared, whatever its status or validity window.
* **handovers** - prefixes that both registries register and count, whose
  *answering* registration changed: where several registrations share a prefix
  the first in natural id order answers (``PTA-9`` before ``PTA-10``; see
  :func:`ipallow.registry.id_key`), the same rule as ``lookup``, ``check``,
  ``--explain`` and ``validate``.  A new ``PTA-9`` on ``PTA-10``'s prefix adds
  no coverage, but every flow on it is now logged as ``PTA-9``.
* **coverage** - the address space that the new side allows and the old one
  did not (gained), and the reverse (lost), per IP family, with address
  counts.  Coverage is what an allowlist would *grant*: for a registry, the
  registrations that count at ``at`` (status ``active`` and inside their
  validity window); for an :class:`~ipallow.Allowlist`, what it contains.

IPv4 coverage algebra runs on :class:`pyroaring.BitMap` (run containers make
a /8 cost a few bytes); IPv6 on sorted, merged ``[first, last]`` integer
intervals.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, NamedTuple

import numpy as np
from pyroaring import BitMap

from ipallow import _parse
from ipallow._prefixes import Prefixes, ranges_to_ints, split
from ipallow.allowlist import Allowlist
from ipallow.registry import Registration, Registry, id_key, to_timestamp

__all__ = ["diff", "Diff", "Changed", "FieldChange", "Coverage", "Handover"]

_IPV4_SPACE = 1 << 32


class FieldChange(NamedTuple):
    """One field of a registration that differs: ``field`` is e.g. ``status`` or ``extra.region``."""

    field: str
    old: Any
    new: Any


class Changed(NamedTuple):
    """A registration present on both sides (same id) whose fields differ."""

    id: str
    old: Registration
    new: Registration
    fields: tuple          #: of :class:`FieldChange`, in field order


class Handover(NamedTuple):
    """A prefix registered and counting on both sides whose answering registration changed."""

    network: Any           #: the ``ipaddress`` network
    old: str               #: id of the registration that answered for it before
    new: str               #: id of the registration that answers for it now


class Coverage(NamedTuple):
    """Coverage change of one IP family.

    ``gained`` / ``lost`` are the minimal CIDR lists of the address space that
    became / stopped being covered; ``*_ranges`` the same as inclusive
    ``(first, last)`` address pairs; ``*_addresses`` how many addresses.
    """

    version: int
    gained: tuple
    lost: tuple
    gained_ranges: tuple
    lost_ranges: tuple
    gained_addresses: int
    lost_addresses: int
    old_addresses: int     #: addresses covered by the old side
    new_addresses: int     #: addresses covered by the new side


class Diff(NamedTuple):
    """The result of :func:`diff`.  Falsy when nothing changed."""

    added: tuple           #: Registrations only in new (natural id order, see registry.id_key)
    removed: tuple         #: Registrations only in old (natural id order)
    changed: tuple         #: :class:`Changed`, in natural id order
    unchanged: int         #: registrations equal on both sides
    coverage: dict         #: {4: Coverage, 6: Coverage}
    at: float | None       #: POSIX instant registry coverage was judged at (None: both sides allowlists)
    handovers: tuple = ()  #: :class:`Handover`, in address order (both sides registries)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.handovers
                    or any(c.gained_addresses or c.lost_addresses for c in self.coverage.values()))

    def summary(self) -> str:
        """A few lines for people, e.g. for a log."""
        lines = [f"registrations: +{len(self.added)} -{len(self.removed)} ~{len(self.changed)} "
                 f"={self.unchanged}"]
        if self.handovers:
            lines.append(f"answers: {len(self.handovers)} prefixes change hands")
        for version in (4, 6):
            c = self.coverage[version]
            lines.append(f"IPv{version}: +{c.gained_addresses:,} addresses in {len(c.gained)} CIDRs, "
                         f"-{c.lost_addresses:,} addresses in {len(c.lost)} CIDRs")
        return "\n".join(lines)


def diff(old: Any, new: Any, *, at: Any = None) -> Diff:
    """Registrations added, removed and changed, and coverage gained and lost per family.

    Arguments:
        old, new: each a file -- a registry (JSON Lines, or CSV with an ``id``
            column), a plain list or a snapshot, told apart as every command does
            (:func:`ipallow.loaders.load`) --, a :class:`~ipallow.Registry`, an
            iterable of :class:`~ipallow.Registration`, or an
            :class:`~ipallow.Allowlist`.  An allowlist built by
            :meth:`~ipallow.Allowlist.from_registry` contributes its full
            registry to the registration diff and its own contents to the
            coverage; other allowlists have no registrations to compare (their
            entries are not keyed by id), only coverage.
        at: the instant at which registry coverage is judged (default: now).

    Raises:
        ParseError / OSError: a file cannot be loaded.
        TypeError: an unsupported source.

    >>> d = diff([Registration("A", "10.0.0.0/24")], [Registration("A", "10.0.0.0/23")])
    >>> d.changed[0].fields[0].field, d.coverage[4].gained_addresses
    ('networks', 256)
    """
    t = to_timestamp(at)
    old_registry, old_prefixes, old_timed = _side(old, t)
    new_registry, new_prefixes, new_timed = _side(new, t)
    added: list = []
    removed: list = []
    changed: list = []
    unchanged = 0
    if old_registry is not None and new_registry is not None:
        for record in new_registry:
            before = old_registry.get(record.id)
            if before is None:
                added.append(record)
                continue
            differences = _field_changes(before, record)
            if differences:
                changed.append(Changed(record.id, before, record, differences))
            else:
                unchanged += 1
        removed = [r for r in old_registry if new_registry.get(r.id) is None]
        # Listed by id, as people look them up (PTA-9 before PTA-10), not by row.
        added.sort(key=lambda r: id_key(r.id))
        removed.sort(key=lambda r: id_key(r.id))
        changed.sort(key=lambda c: id_key(c.id))
    handovers: tuple = ()
    if old_registry is not None and new_registry is not None:
        handovers = _handovers(_answering(old_registry, t), _answering(new_registry, t))
    coverage = {4: _coverage4(old_prefixes, new_prefixes), 6: _coverage6(old_prefixes, new_prefixes)}
    return Diff(tuple(added), tuple(removed), tuple(changed), unchanged, coverage,
                t if old_timed or new_timed else None, handovers)


# ---------------------------------------------------------------------------
# sides
# ---------------------------------------------------------------------------

def _side(source: Any, t: float) -> tuple[Registry | None, dict[int, Prefixes], bool]:
    """(registry or None, the prefixes of what the side allows per version, whether ``t`` decided it)."""
    if source is None or isinstance(source, (bytes, bool)):
        raise TypeError(f"diff() takes registry files, registries, iterables of Registration "
                        f"or allowlists, not {type(source).__name__}")
    if isinstance(source, (str, os.PathLike)):
        from ipallow.loaders import load
        loaded = load(source)       # the loader every command uses: told apart by content
        source = loaded.registry if loaded.registry is not None else Allowlist._from_loaded(loaded)
    if isinstance(source, Allowlist):
        c = source.compiled
        return getattr(source, "_registry", None), split(c.version, c.hi, c.lo, c.prefixlen), False
    if not isinstance(source, Registry):
        if not isinstance(source, Iterable):
            raise TypeError(f"diff() takes registry files, registries, iterables of Registration "
                            f"or allowlists, not {type(source).__name__}")
        source = Registry(source)
    rows = source._mask_at(t)[source._owner]
    return source, split(source._version[rows], source._hi[rows], source._lo[rows], source._plen[rows]), True


_FIELDS = ("networks", "owner", "category", "status", "valid_from", "expires_at", "tags")


def _field_changes(old: Registration, new: Registration) -> tuple:
    if old == new:
        return ()
    out = []
    for name in _FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        same = set(a) == set(b) if name in ("networks", "tags") else a == b
        if not same:
            out.append(FieldChange(name, a, b))
    for key in sorted(set(old.extra) | set(new.extra)):
        a, b = old.extra.get(key), new.extra.get(key)
        if a != b or (key in old.extra) != (key in new.extra):
            out.append(FieldChange(f"extra.{key}", a, b))
    return tuple(out)


# ---------------------------------------------------------------------------
# handovers: who answers for a prefix several registrations share
# ---------------------------------------------------------------------------

def _answering(registry: Registry, t: float) -> tuple[list[np.ndarray], np.ndarray]:
    """([version, hi, lo, prefixlen] of each distinct prefix counting at ``t``, sorted; the id
    that answers for each), by the duplicate rule: the first registration in natural id order."""
    rows = registry._mask_at(t)[registry._owner]
    owner = registry._owner[rows]
    key = [registry._version[rows], registry._hi[rows], registry._lo[rows], registry._plen[rows]]
    # by prefix, and within a prefix by natural id order: the first row of each prefix answers
    order = np.lexsort((registry._id_rank()[owner], *key[::-1]))
    key, owner = [column[order] for column in key], owner[order]
    first = np.ones(len(owner), dtype=bool)
    first[1:] = np.logical_or.reduce([column[1:] != column[:-1] for column in key]) if len(owner) else []
    return [column[first] for column in key], registry._ids[owner[first]]


def _handovers(old: tuple[list[np.ndarray], np.ndarray], new: tuple[list[np.ndarray], np.ndarray]) -> tuple:
    (old_key, old_ids), (new_key, new_ids) = old, new
    # Both sides in one sort, the side last: a prefix on both sides is an (old, new) neighbour pair.
    key = [np.concatenate([a, b]) for a, b in zip(old_key, new_key)]
    ids = np.concatenate([old_ids, new_ids])
    side = np.repeat(np.array([0, 1], dtype=np.uint8), [len(old_ids), len(new_ids)])
    order = np.lexsort((side, *key[::-1]))
    key, ids, side = [column[order] for column in key], ids[order], side[order]
    if len(ids) < 2:
        return ()
    same = np.logical_and.reduce([column[1:] == column[:-1] for column in key])
    moved = np.flatnonzero(same & (ids[1:] != ids[:-1]))      # i: the old side, i + 1: the new
    out = []
    for i in moved.tolist():
        version, hi, lo, plen = (int(column[i]) for column in key)
        value = lo if version == 4 else (hi << 64) | lo
        out.append(Handover(_parse.network_object(version, value, plen), str(ids[i]), str(ids[i + 1])))
    return tuple(out)


# ---------------------------------------------------------------------------
# coverage
# ---------------------------------------------------------------------------

def _bitmap4(p: Prefixes) -> BitMap:
    bm = BitMap()
    starts = p.lo.astype(np.int64)
    sizes = np.left_shift(np.int64(1), (32 - p.prefixlen.astype(np.int64)))
    for start, size in zip(starts.tolist(), sizes.tolist()):
        bm.add_range(start, start + size)
    return bm


def _runs4(bm: BitMap) -> list[tuple[int, int]]:
    """Inclusive (first, last) runs of a bitmap over the IPv4 space."""
    if not bm:
        return []
    holes = bm.flip(0, _IPV4_SPACE)
    last_set = bm.max()
    last_hole = holes.max() if len(holes) else -1     # once: len() of a bitmap is not free
    runs = []
    start = bm.min()
    while True:
        end = holes.next_set_bit(start) if start <= last_hole else _IPV4_SPACE
        runs.append((start, end - 1))
        if end > last_set:
            return runs
        start = bm.next_set_bit(end)


def _coverage4(old: dict[int, Prefixes], new: dict[int, Prefixes]) -> Coverage:
    a, b = _bitmap4(old[4]), _bitmap4(new[4])
    gained, lost = b - a, a - b
    return _coverage(4, _runs4(gained), _runs4(lost), len(gained), len(lost), len(a), len(b))


def _subtract(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Intervals of ``a`` not in ``b`` (both sorted and merged)."""
    out = []
    j = 0
    for first, last in a:
        while j < len(b) and b[j][1] < first:
            j += 1
        k = j
        cursor = first
        while k < len(b) and b[k][0] <= last:
            if b[k][0] > cursor:
                out.append((cursor, b[k][0] - 1))
            cursor = max(cursor, b[k][1] + 1)
            k += 1
        if cursor <= last:
            out.append((cursor, last))
    return out


def _size(intervals: list[tuple[int, int]]) -> int:
    return sum(last - first + 1 for first, last in intervals)


def _coverage6(old: dict[int, Prefixes], new: dict[int, Prefixes]) -> Coverage:
    a, b = ranges_to_ints(*old[6].merged_ranges()), ranges_to_ints(*new[6].merged_ranges())
    gained, lost = _subtract(b, a), _subtract(a, b)
    return _coverage(6, gained, lost, _size(gained), _size(lost), _size(a), _size(b))


def _coverage(version: int, gained: list, lost: list, n_gained: int, n_lost: int,
              n_old: int, n_new: int) -> Coverage:
    def cidrs(runs):
        return tuple(_parse.network_object(*n) for first, last in runs
                     for n in _parse.range_to_networks(version, first, last))

    def pairs(runs):
        make = _parse.network_object
        return tuple((make(version, first, _parse.MAX_BITS[version]).network_address,
                      make(version, last, _parse.MAX_BITS[version]).network_address)
                     for first, last in runs)

    return Coverage(version, cidrs(gained), cidrs(lost), pairs(gained), pairs(lost),
                    n_gained, n_lost, n_old, n_new)
