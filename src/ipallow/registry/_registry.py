"""The registry: records with unique ids, which of them count when, compiled for lookups;
and a registry's lifecycle kept in a snapshot."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from ipallow._compile import Compiled, assemble
from ipallow._trie import LazyList
from ipallow.registry._columnar import RecordColumns
from ipallow.registry._fields import STATUSES
from ipallow.registry._ids import natural_order
from ipallow.registry._record import Explanation, Registration
from ipallow.registry._time import UTC, to_timestamp


def _merge_duplicate(first: Registration, other: Registration) -> Registration:
    """Rows with the same id and the same data cover several networks together."""
    differing = first._same_except_networks(other)
    if differing:
        raise ValueError(f"duplicate id {first.id!r} with different {', '.join(differing)}")
    return replace(first, networks=first.networks + tuple(
        n for n in other.networks if n not in first.networks))


class Registry(Sequence):
    """An immutable sequence of :class:`Registration` records with unique ids.

    Records with the same id are merged into one registration covering all
    their networks when every other field is equal; they are an error
    otherwise.  The registry knows which records count at any instant and
    compiles them (:meth:`ipallow.Allowlist.from_registry`).

    Arguments:
        registrations: an iterable of :class:`Registration`.
        source: where the records came from (a path), for messages.

    Raises:
        TypeError: an item is not a Registration (use :func:`load_registry`
            for files).
        ValueError: duplicate ids with different data.

    >>> reg = Registry([Registration("A", "10.0.0.0/8"), Registration("B", "10.1.0.0/16", status="revoked")])
    >>> [r.id for r in reg.active_at(0)], reg.get("B").status
    (['A'], 'revoked')
    """

    def __init__(self, registrations: Iterable[Registration] = (), *, source: str | None = None) -> None:
        if registrations is None or isinstance(registrations, (str, bytes, os.PathLike)):
            raise TypeError(f"Registry() takes an iterable of Registration, not "
                            f"{type(registrations).__name__}; use load_registry(path) for files")
        try:
            items = list(registrations)
        except TypeError:
            raise TypeError(f"Registry() takes an iterable of Registration, not "
                            f"{type(registrations).__name__}") from None
        records: list[Registration] = []
        index: dict[str, int] = {}
        for item in items:
            if not isinstance(item, Registration):
                raise TypeError(f"expected a Registration, got {type(item).__name__}")
            position = index.get(item.id)
            if position is None:
                index[item.id] = len(records)
                records.append(item)
            else:
                records[position] = _merge_duplicate(records[position], item)
        self._records: Sequence[Registration] = tuple(records)
        self._columns: RecordColumns | None = None
        self._positions: dict[str, int] | None = index
        self.source = source
        self._full = None   # every record compiled, for explain (see _every_record)
        self._build_arrays()

    @classmethod
    def _from_columns(cls, columns: RecordColumns, *, id_order: np.ndarray | None, active: np.ndarray,
                      valid_from: np.ndarray, expires_at: np.ndarray, version: np.ndarray, hi: np.ndarray,
                      lo: np.ndarray, plen: np.ndarray, source: str | None) -> "Registry":
        """A registry of records with unique ids, each with one network, from the columns a
        bulk loader already holds (``registry._bulk``): what ``__init__`` would work out
        record by record, and the records made when first read (``registry._columnar``).
        ``id_order``: the ids' natural order (:func:`natural_order`), when the loader knows
        it.  ``valid_from`` / ``expires_at``: POSIX seconds, -inf / inf open."""
        self = object.__new__(cls)
        count = len(columns.ids)
        self._records = LazyList(count, columns.make)
        self._columns = columns
        self._positions = None      # see _index
        self.source = source
        self._full = None
        self._set_arrays(columns.ids, active, valid_from, expires_at, np.ones(count, dtype=np.int64),
                         version, hi, lo, plen)
        if id_order is not None:
            self._rank = _rank_of(id_order)
        return self

    def _build_arrays(self) -> None:
        records = self._records
        # One pass over the records and one over their networks, not one per field; a registry
        # repeats its dates, so each is converted once.
        start_stamps: dict = {None: -math.inf}      # no valid_from: valid since always
        end_stamps: dict = {None: math.inf}         # no expires_at: never expires
        active, starts, ends, sizes, networks = [], [], [], [], []
        for r in records:
            active.append(r.status == "active")
            start, end = r.valid_from, r.expires_at
            if start not in start_stamps:
                start_stamps[start] = start.timestamp()
            if end not in end_stamps:
                end_stamps[end] = end.timestamp()
            starts.append(start_stamps[start])
            ends.append(end_stamps[end])
            sizes.append(len(r.networks))
            networks.extend(r.networks)
        total = len(networks)
        values = [int(n.network_address) for n in networks]
        self._set_arrays([r.id for r in records], np.array(active, dtype=bool),
                         np.array(starts, dtype=np.float64), np.array(ends, dtype=np.float64),
                         np.array(sizes, dtype=np.int64),
                         np.fromiter((n.version for n in networks), np.uint8, total),
                         np.fromiter((v >> 64 for v in values), np.uint64, total),
                         np.fromiter((v & 0xFFFFFFFFFFFFFFFF for v in values), np.uint64, total),
                         np.fromiter((n.prefixlen for n in networks), np.uint8, total))

    def _set_arrays(self, ids: list[str], active: np.ndarray, valid_from: np.ndarray, expires_at: np.ndarray,
                    sizes: np.ndarray, version: np.ndarray, hi: np.ndarray, lo: np.ndarray,
                    plen: np.ndarray) -> None:
        """The per-record arrays (id, status, window, how many networks) and the per-network
        ones (every record's networks in record order), and what follows from them."""
        count = len(self._records)
        self._id_list = ids
        self._status_active = active
        self._valid_from = valid_from
        self._expires_at = expires_at
        self._reg_first = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(sizes, out=self._reg_first[1:])
        self._version, self._hi, self._lo, self._plen = version, hi, lo, plen
        self._owner = np.repeat(np.arange(count, dtype=np.int64), sizes)
        live = self._status_active
        bounds = np.concatenate([self._valid_from[live], self._expires_at[live]])
        self._bounds = np.unique(bounds[np.isfinite(bounds)])
        self._id_array: np.ndarray | None = None    # see _ids
        self._rank = None   # natural id order (see id_key), computed on first compile
        self._inactive_statuses: dict[str, int] | None = None   # see _standing_counts

    @property
    def _ids(self) -> np.ndarray:
        """The ids as a numpy str array (diff and a snapshot's lifecycle sort and join them)."""
        ids = self._id_array
        if ids is None:
            ids = self._id_array = np.array(self._id_list, dtype=str)   # a race makes it twice, equally
        return ids

    def _id_rank(self) -> np.ndarray:
        rank = self._rank
        if rank is None:
            rank = self._rank = _rank_of(natural_order(self._id_list))
        return rank

    # -- sequence ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index):
        return self._records[index]

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._records)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Registry):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"<Registry{where}: {len(self):,} registrations, {int(self._status_active.sum()):,} active>"

    def __reduce__(self):
        return (_restore_registry, (tuple(self._records), self.source))

    @property
    def _index(self) -> dict[str, int]:
        """Each id's position (a bulk load makes it when first asked: it is a tenth of a load)."""
        positions = self._positions
        if positions is None:
            # a race makes it twice, equally
            positions = self._positions = dict(zip(self._id_list, range(len(self._id_list))))
        return positions

    def get(self, id: str, default: Any = None) -> Registration | Any:
        """The registration with this id, or ``default``."""
        position = self._index.get(id.strip() if isinstance(id, str) else id)
        return default if position is None else self._records[position]

    def index_of(self, id: str) -> int:
        """Position of the registration with this id (KeyError if none)."""
        return self._index[id]

    # -- lifecycle ----------------------------------------------------------------

    def _mask_at(self, t: float) -> np.ndarray:
        return self._status_active & (self._valid_from <= t) & (t < self._expires_at)

    def active_at(self, at: Any = None) -> list[Registration]:
        """The registrations that count at ``at`` (default: now), in registry order."""
        mask = self._mask_at(to_timestamp(at))
        return [self._records[i] for i in np.flatnonzero(mask)]

    @property
    def boundaries(self) -> tuple[datetime, ...]:
        """Every instant at which the set of counting registrations may change, sorted.

        Only ``active`` records have boundaries: the others never count.
        """
        return tuple(datetime.fromtimestamp(float(b), UTC) for b in self._bounds)

    def next_boundary(self, after: Any = None) -> datetime | None:
        """The first boundary strictly after ``after`` (default: now), or None."""
        t = self._next_boundary_ts(to_timestamp(after))
        return None if math.isinf(t) else datetime.fromtimestamp(t, UTC)

    def _next_boundary_ts(self, t: float) -> float:
        i = int(np.searchsorted(self._bounds, t, side="right"))
        return float(self._bounds[i]) if i < len(self._bounds) else math.inf

    def _prev_boundary_ts(self, t: float) -> float:
        i = int(np.searchsorted(self._bounds, t, side="right"))
        return float(self._bounds[i - 1]) if i > 0 else -math.inf

    def _standing_counts(self, t: float) -> dict[str, int]:
        """How many registrations have each :class:`Standing` code at POSIX time ``t`` (every
        code present, zeros included): the same answer as counting ``r.counts_at(t).code``,
        in array operations, because a metrics scrape asks it of million-record registries."""
        inactive = self._inactive_statuses
        if inactive is None:
            # A record's status never changes: counted once per registry (a race counts twice, equally).
            counts = (self._columns.status_counts() if self._columns is not None    # records not made
                      else Counter(r.status for r in self._records))
            inactive = {status: counts.get(status, 0) for status in STATUSES if status != "active"}
            self._inactive_statuses = inactive
        active = self._status_active
        not_yet_valid = active & (t < self._valid_from)       # checked first, as counts_at does
        expired = active & ~not_yet_valid & (t >= self._expires_at)
        return {"active": int(np.count_nonzero(self._mask_at(t))), **inactive,
                "expired": int(np.count_nonzero(expired)), "not_yet_valid": int(np.count_nonzero(not_yet_valid))}

    # -- compiling ------------------------------------------------------------------

    def _compile(self, t: float) -> Compiled:
        """The registrations that count at POSIX time ``t``, compiled."""
        return self._compile_mask(self._mask_at(t))

    def _compile_mask(self, mask: np.ndarray) -> Compiled:
        # Registrations are compiled in natural id order (id_key), not file
        # order: the same registry exported in any row order compiles (and
        # saves) identically, and of several registrations of one prefix the
        # lowest id answers (PTA-9 before PTA-10), whatever the row order.
        kept = np.flatnonzero(mask)
        kept = kept[np.argsort(self._id_rank()[kept])]
        starts, sizes = self._reg_first[kept], np.diff(self._reg_first)[kept]
        reg_first = np.zeros(len(kept) + 1, dtype=np.int64)
        np.cumsum(sizes, out=reg_first[1:])
        rows = np.repeat(starts - reg_first[:-1], sizes) + np.arange(int(reg_first[-1]))
        version, hi, lo, plen = (a[rows] for a in (self._version, self._hi, self._lo, self._plen))
        picked, records = kept.tolist(), self._records
        if isinstance(records, LazyList):   # records made when first read: so is the data
            data: Sequence = LazyList(len(picked), lambda position: records[picked[position]])
        else:
            data = [records[i] for i in picked]
        return assemble(version, hi, lo, plen, reg_first, data)

    def _every_record(self) -> Compiled:
        """Every record compiled, whatever its standing (for explain); built once."""
        full = self._full
        if full is None:
            full = self._full = self._compile_mask(np.ones(len(self._records), dtype=bool))
            # a race builds it twice; both results are equal
        return full


def _rank_of(order: np.ndarray) -> np.ndarray:
    """Each position's place in ``order``."""
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def _restore_registry(records: tuple, source: str | None) -> Registry:
    return Registry(records, source=source)


# -- a registry's lifecycle in a snapshot ----------------------------------------------

LIFECYCLE_FORMAT = 1


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def encode_lifecycle(registry: Registry, at: float, counting: Sequence) -> bytes:
    """The snapshot section that keeps a compiled registry's lifecycle.

    ``counting`` is the compiled registration data (the records counting at
    ``at``), already in the snapshot.  The section is two JSON lines: a small
    head (the instant and the boundaries around it, read without the rest) and
    a body (every id in natural id order and the records that do not count),
    so a snapshot can be judged again at any other instant.  The registry read
    back is in natural id order.
    """
    kept = {r.id for r in counting}
    since, until = registry._prev_boundary_ts(at), registry._next_boundary_ts(at)
    head = {"format": LIFECYCLE_FORMAT, "evaluated_at": at,
            "since": None if math.isinf(since) else since, "until": None if math.isinf(until) else until,
            "registrations": len(registry), "counting": len(counting)}
    # Natural id order (not the export's row order, nor its path): the same
    # registry in any row order gives byte-identical snapshots.
    ordered = [registry[i] for i in natural_order(registry._ids).tolist()]
    body = {"ids": [r.id for r in ordered], "others": [r.to_dict() for r in ordered if r.id not in kept]}
    return _json_bytes(head) + b"\n" + _json_bytes(body)


def lifecycle_head(raw: Any) -> dict[str, Any]:
    """The head of a lifecycle section: ``evaluated_at``, ``since`` and ``until``
    (POSIX seconds; -inf / inf when open), ``registrations``, ``counting``.

    Raises:
        ValueError: not a lifecycle section this ipallow reads.
    """
    view = memoryview(raw).cast("B")
    end = bytes(view[:1 << 16]).find(b"\n")
    try:
        head = json.loads(bytes(view[:end]).decode("utf-8"))
        if head.get("format") != LIFECYCLE_FORMAT:
            raise ValueError(f"lifecycle format {head.get('format')!r} is not {LIFECYCLE_FORMAT}")
        return {"evaluated_at": float(head["evaluated_at"]),
                "since": -math.inf if head["since"] is None else float(head["since"]),
                "until": math.inf if head["until"] is None else float(head["until"]),
                "registrations": int(head["registrations"]), "counting": int(head["counting"])}
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError, json.JSONDecodeError,
            RecursionError) as exc:     # json recurses once per level of nesting
        raise ValueError(f"unreadable lifecycle section: {exc}") from None


def decode_lifecycle(raw: Any, counting: Sequence | None) -> tuple[Registry, float]:
    """``(registry, evaluated_at)`` from :func:`encode_lifecycle`'s bytes and the compiled data.

    Raises:
        ValueError: the section does not describe a registry (the message says how).
    """
    head = lifecycle_head(raw)
    view = memoryview(raw).cast("B")
    try:
        end = bytes(view[:1 << 16]).find(b"\n")
        body = json.loads(bytes(view[end + 1:]).decode("utf-8"))
        records = {r.id: r for r in (counting or ())}
        if len(records) != head["counting"] or not all(isinstance(r, Registration) for r in records.values()):
            raise ValueError("its registration data are not the counting registrations")
        for record in body["others"]:
            registration = Registration.from_dict(record)
            records[registration.id] = registration
        ids = body["ids"]
        if len(ids) != len(records) or set(ids) != set(records):
            raise ValueError("its ids do not match the registrations it holds")
        registry = Registry(records[i] for i in ids)
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError, json.JSONDecodeError,
            RecursionError) as exc:     # json recurses once per level of nesting
        raise ValueError(f"unreadable lifecycle section: {exc}") from None
    return registry, head["evaluated_at"]


def explain_matches(matches: Iterable[Any], t: float) -> list[Explanation]:
    """The standing at ``t`` of the registrations covering an address.

    ``matches`` are the covering matches (``data`` is the :class:`Registration`,
    ``network``, ``index``), longest prefix first, in the table of every record
    (:meth:`Registry._every_record`), as :meth:`ipallow.Allowlist.explain` finds
    them.  Ties in prefix length go by natural id order (:func:`id_key`:
    ``PTA-9`` before ``PTA-10``), the order in which ``lookup`` picks among
    registrations of the same prefix; a registration appears once, with its
    longest covering network.
    """
    out: list[Explanation] = []
    seen: set[int] = set()
    for match in matches:
        if match.index in seen:
            continue
        seen.add(match.index)
        record = match.data            # the Registration (compiled in id order, not registry order)
        standing = record.counts_at(t)
        out.append(Explanation(record, match.network, standing.counts, standing.code, standing.reason))
    return out

