"""Registration records, registry loaders (CSV, JSON Lines) and lifecycle filtering.

A *registry* is the export of the authority that hands out registrations: one
record per registration with an id, the networks it covers, an owner, a
category, a status and a validity window.  This module turns such an export
into immutable :class:`Registration` records (all or nothing, every problem
reported as ``path:line:col``), decides which records count at a given
instant, and compiles the ones that do into the tables an
:class:`~ipallow.Allowlist` serves.

Lifecycle rule: a registration *counts* at instant ``t`` when its status is
``active`` and ``valid_from <= t < expires_at`` (a missing bound is open).
The window is half-open: a registration expiring at 12:00:00 still counts at
11:59:59.999999 and no longer at 12:00:00.

Times are timezone-aware UTC :class:`datetime.datetime` objects.  Text
timestamps are ISO 8601 (``2025-01-31T12:00:00Z``, ``2025-01-31 12:00+05:00``,
``2025-01-31``); text without an offset is UTC, as the registry export
format says.  A naive :class:`datetime.datetime` *object* is refused instead
(``datetime.now()`` is local time; silently reading it as UTC would shift
every boundary by the machine's offset).  Instants (``at``) may also be
POSIX seconds (int or float).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timezone
from types import GeneratorType
from typing import Any, NamedTuple

import numpy as np

from ipallow import _csvrecords, _parse
from ipallow._compile import Compiled, assemble
from ipallow.errors import AddressError, HostBitsWarning, ParseError, Problem
from ipallow._formats import NETWORK_COLUMNS, decode as _decode, detect_format, problem as _problem

__all__ = [
    "Registration", "Registry", "Standing", "Explanation", "FrozenMap",
    "load_registry", "parse_registry", "explain", "to_timestamp", "id_key",
    "STATUSES", "CATEGORIES",
]

UTC = timezone.utc
STATUSES = ("pending", "active", "suspended", "revoked")
CATEGORIES = ("company_vpn", "freelancer_vpn", "call_center", "video_conference", "other")

#: Column / key names that hold the networks, in order of preference.
REGISTRY_NETWORK_COLUMNS = (*NETWORK_COLUMNS[:2], "networks", *NETWORK_COLUMNS[2:])
_CORE_FIELDS = ("id", "networks", "owner", "category", "status", "valid_from", "expires_at", "tags")
_LIST_SEPARATORS = re.compile(r"[,;]")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------
# time
# ---------------------------------------------------------------------------

def to_timestamp(at: Any = None) -> float:
    """An instant -> POSIX seconds (float).  ``None`` is now.

    Arguments:
        at: None (now), an aware :class:`datetime.datetime`, a
            :class:`datetime.date` (midnight UTC), or POSIX seconds.

    Raises:
        TypeError: ``at`` is of another type (``bool`` included).
        ValueError: a naive datetime, or a non-finite number.

    >>> to_timestamp(datetime(2025, 1, 1, tzinfo=UTC))
    1735689600.0
    """
    if at is None:
        return time.time()
    if isinstance(at, bool):
        raise TypeError("an instant must be a datetime, a date or POSIX seconds, not bool")
    if isinstance(at, (int, float)):
        value = float(at)
        if not math.isfinite(value):
            raise ValueError(f"instant must be finite, got {at!r}")
        return value
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"naive datetime {at.isoformat()!r}: give a timezone "
                             f"(e.g. datetime.now(timezone.utc)) or POSIX seconds")
        return at.timestamp()
    if isinstance(at, date):
        return datetime(at.year, at.month, at.day, tzinfo=UTC).timestamp()
    raise TypeError(f"an instant must be a datetime, a date or POSIX seconds, "
                    f"not {type(at).__name__}")


def _parse_time_text(text: str) -> datetime:
    """ISO 8601 text -> aware UTC datetime; text without an offset is UTC."""
    stripped = text.strip()
    try:
        value = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(f"unparseable timestamp {text!r}: expected ISO 8601 such as "
                         f"2025-01-31T12:00:00Z") from None
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp {text!r} is out of range in UTC") from None


def _coerce_time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name}: naive datetime {value.isoformat()!r}; give a timezone "
                             f"(registry times are UTC)")
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{name}: {value.isoformat()!r} is out of range in UTC") from None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        if not value.strip():
            return None
        return _parse_time_text(value)
    raise TypeError(f"{name} must be a datetime, a date, ISO 8601 text or None, "
                    f"not {type(value).__name__}")


def format_time(value: datetime) -> str:
    """``2025-01-31T12:00:00Z`` (microseconds only when there are some)."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


# ---------------------------------------------------------------------------
# id order: the one rule for a prefix registered by several registrations
# ---------------------------------------------------------------------------

_DIGIT_RUNS = re.compile(r"([0-9]+)")


def id_key(rid: str) -> tuple:
    """Sort key of a registration id in natural order: ``PTA-9`` before ``PTA-10``.

    Ids compare piece by piece; runs of ASCII digits compare as numbers, the
    rest as text (by code point).  Ids that only differ in leading zeros
    (``PTA-09`` and ``PTA-9``) fall back to plain text order, so the order is
    total.  This order decides which registration answers for a prefix that
    several registrations share (the first one), everywhere: ``lookup``,
    ``check``, ``--explain``, ``validate`` and ``diff`` listings.

    >>> sorted(["PTA-10", "PTA-9", "PTA-100"], key=id_key)
    ['PTA-9', 'PTA-10', 'PTA-100']
    """
    parts: list = _DIGIT_RUNS.split(rid)
    # Pieces alternate text, digits, text ...: compare a digit run by its value
    # (length without leading zeros, then the digits: no int() of huge runs).
    parts[1::2] = [(len(d.lstrip("0")), d.lstrip("0")) for d in parts[1::2]]
    return (parts, rid)


def natural_order(ids: np.ndarray) -> np.ndarray:
    """Positions of ``ids`` (a numpy str array) sorted by :func:`id_key`.

    Registry exports mostly use ids of one shape, text then a number
    (``PTA-12345``): those sort with numpy alone; any other shape takes
    :func:`id_key` per id.
    """
    count = len(ids)
    if count < 2:
        return np.arange(count)
    prefix = np.char.rstrip(ids, "0123456789")
    plain_prefix = np.ones(count, dtype=bool)
    for digit in "0123456789":
        plain_prefix &= np.strings.find(prefix, digit) < 0
    digits = np.strings.lstrip(np.strings.slice(ids, np.strings.str_len(prefix), None), "0")
    digit_len = np.strings.str_len(digits)
    if not plain_prefix.all() or int(digit_len.max()) > 18:
        return np.array(sorted(range(count), key=lambda i: id_key(str(ids[i]))), dtype=np.int64)
    has_digits = np.strings.str_len(ids) > np.strings.str_len(prefix)
    value = np.where(has_digits, np.where(digit_len > 0, digits, "0"), "0").astype(np.int64)
    # key order: prefix text, then no number before a number, then the number, then the raw id
    if (prefix == prefix[0]).all():
        order = np.lexsort((value, has_digits))
    else:
        order = np.lexsort((value, has_digits, prefix))
    keys = (prefix[order], has_digits[order], value[order])
    tied = np.zeros(count, dtype=bool)
    tied[1:] = (keys[0][1:] == keys[0][:-1]) & (keys[1][1:] == keys[1][:-1]) & (keys[2][1:] == keys[2][:-1])
    if tied.any():      # ids equal but for leading zeros: rare, so the full sort is fine
        order = np.lexsort((ids, value, has_digits, prefix))
    return order


# ---------------------------------------------------------------------------
# the record
# ---------------------------------------------------------------------------

class FrozenMap(Mapping):
    """A read-only, picklable mapping (the ``extra`` columns of a registration).

    Nested JSON values are frozen too: lists become tuples, objects FrozenMaps.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping | Iterable = ()) -> None:
        self._data = {k: _freeze(v) for k, v in dict(data).items()}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def __reduce__(self):
        return (FrozenMap, (self._data,))


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping) and not isinstance(value, FrozenMap):
        return FrozenMap(value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    return value


class Standing(NamedTuple):
    """Whether a registration counts at an instant, and why (not).

    ``code`` is one of ``active``, ``pending``, ``suspended``, ``revoked``,
    ``expired``, ``not_yet_valid`` (``listed`` for entries of an allowlist not
    built from a registry); ``reason`` is a sentence for people.  Truthy
    exactly when it counts.
    """

    counts: bool
    code: str
    reason: str

    def __bool__(self) -> bool:
        return self.counts


class Explanation(NamedTuple):
    """One registration covering an address (see :meth:`ipallow.Allowlist.explain`).

    ``registration`` is the :class:`Registration` (for an allowlist not built
    from a registry: the entry's data); ``network`` the registered prefix that
    covers the address.
    """

    registration: Any
    network: Any
    counts: bool
    code: str
    reason: str


_NETWORK_OBJECT_TYPES = (_parse._NETWORK_TYPES + _parse._ADDRESS_TYPES + _parse._INTERFACE_TYPES)


def _is_single_entry(value: Any) -> bool:
    if isinstance(value, (str, bytes, int) + _NETWORK_OBJECT_TYPES):
        return True
    netaddr = _parse._netaddr()
    return netaddr is not None and isinstance(
        value, (netaddr.IPAddress, netaddr.IPNetwork, netaddr.IPRange, netaddr.IPSet))


def _coerce_networks(value: Any) -> tuple:
    if value is None:
        raise TypeError("networks must be a network or an iterable of networks, not None")
    if _is_single_entry(value):
        entries: Iterable[Any] = (value,)
    elif isinstance(value, (list, tuple, set, frozenset, GeneratorType, Iterator)):
        entries = value
    else:
        raise TypeError(f"networks must be a network or an iterable of networks, "
                        f"not {type(value).__name__}")
    out: list = []
    seen: set = set()
    for entry in entries:
        if isinstance(entry, _parse._NETWORK_TYPES) and not (
                entry.version == 6 and entry.prefixlen >= 96
                and int(entry.network_address) >> 32 == 0xFFFF):
            if entry not in seen:          # already a plain network: keep the object
                seen.add(entry)
                out.append(entry)
            continue
        for version, first, prefixlen in _parse.entry_networks(entry, strict=True)[0]:
            network = _parse.network_object(version, first, prefixlen)
            if network not in seen:
                seen.add(network)
                out.append(network)
    if not out:
        raise ValueError("a registration needs at least one network")
    return tuple(out)


def _coerce_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    normal = value.strip().lower()
    if normal not in choices:
        raise ValueError(f"unknown {name} {value!r}: expected one of {', '.join(choices)}")
    return normal


def _coerce_tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = _LIST_SEPARATORS.split(value) if isinstance(value, str) else value
    if isinstance(items, (bytes, Mapping)) or not isinstance(items, Iterable):
        raise TypeError(f"tags must be a str or an iterable of str, not {type(value).__name__}")
    out: list[str] = []
    for tag in items:
        if not isinstance(tag, str):
            raise TypeError(f"each tag must be a str, not {type(tag).__name__}")
        tag = tag.strip()
        if tag and tag not in out:
            out.append(tag)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Registration:
    """One registration of the registry: immutable, hashable, picklable.

    Arguments:
        id: unique id (surrounding whitespace is removed).
        networks: a network, address or range in any form :class:`Allowlist`
            accepts, or an iterable of them; stored as a tuple of ``ipaddress``
            networks (a range becomes its minimal CIDRs, IPv4-mapped IPv6
            networks their IPv4 network, duplicates dropped).  Host bits set
            is an error.
        owner: who holds it.
        category: one of :data:`CATEGORIES` (case-insensitive; stored lowercase).
        status: one of :data:`STATUSES` (case-insensitive; stored lowercase).
        valid_from, expires_at: aware datetimes, dates, ISO 8601 text (no offset
            = UTC) or None (open); stored as UTC datetimes.  ``expires_at``
            must be after ``valid_from``.
        tags: a str (split at ``,`` / ``;``) or an iterable of str.
        extra: further columns (a mapping; frozen).

    Raises:
        TypeError: a field of the wrong type (``None`` id or networks).
        ValueError / AddressError: a bad value.

    >>> r = Registration("PTA-1", "192.0.2.0/24", status="active", expires_at="2030-01-01")
    >>> r.network, r.expires_at.isoformat()
    (IPv4Network('192.0.2.0/24'), '2030-01-01T00:00:00+00:00')
    """

    id: str
    networks: tuple
    owner: str = ""
    category: str = "other"
    status: str = "active"
    valid_from: datetime | None = None
    expires_at: datetime | None = None
    tags: tuple = ()
    extra: Mapping = field(default_factory=FrozenMap, hash=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        if not isinstance(self.id, str):
            raise TypeError(f"Registration id must be a str, not {type(self.id).__name__}")
        rid = self.id.strip()
        if not rid:
            raise ValueError("Registration id is empty")
        put(self, "id", rid)
        put(self, "networks", _coerce_networks(self.networks))
        owner = "" if self.owner is None else self.owner
        if not isinstance(owner, str):
            raise TypeError(f"owner must be a str, not {type(owner).__name__}")
        put(self, "owner", owner.strip())
        put(self, "category", _coerce_choice(self.category, "category", CATEGORIES))
        put(self, "status", _coerce_choice(self.status, "status", STATUSES))
        valid_from = _coerce_time(self.valid_from, "valid_from")
        expires_at = _coerce_time(self.expires_at, "expires_at")
        if valid_from is not None and expires_at is not None and expires_at <= valid_from:
            raise ValueError(f"expires_at {format_time(expires_at)} is not after "
                             f"valid_from {format_time(valid_from)}")
        put(self, "valid_from", valid_from)
        put(self, "expires_at", expires_at)
        put(self, "tags", _coerce_tags(self.tags))
        extra = FrozenMap() if self.extra is None else self.extra
        if not isinstance(extra, Mapping):
            raise TypeError(f"extra must be a mapping, not {type(extra).__name__}")
        for key in extra:
            if not isinstance(key, str):
                raise TypeError(f"extra keys must be str, not {type(key).__name__}")
            if key in _CORE_FIELDS or key in REGISTRY_NETWORK_COLUMNS:
                raise ValueError(f"extra key {key!r} clashes with a Registration field")
        put(self, "extra", extra if isinstance(extra, FrozenMap) else FrozenMap(extra))

    @property
    def network(self):
        """The first (usually the only) network."""
        return self.networks[0]

    def counts_at(self, at: Any = None) -> Standing:
        """Whether this registration counts at ``at`` (default: now), and why (not).

        Counts = status ``active`` and ``valid_from <= at < expires_at``.

        >>> Registration("X", "10.0.0.0/8", status="suspended").counts_at(0)
        Standing(counts=False, code='suspended', reason='suspended')
        """
        t = to_timestamp(at)
        window = self._window_problem(t)
        if self.status != "active":
            reason = {"pending": "pending: not yet approved", "suspended": "suspended",
                      "revoked": "revoked"}[self.status]
            if window is not None:
                reason += f" (and {window[1]})"
            return Standing(False, self.status, reason)
        if window is not None:
            return Standing(False, *window)
        until = f" until {format_time(self.expires_at)}" if self.expires_at is not None else ""
        return Standing(True, "active", "active" + until)

    def _window_problem(self, t: float) -> tuple[str, str] | None:
        if self.valid_from is not None and t < self.valid_from.timestamp():
            return "not_yet_valid", f"not valid until {format_time(self.valid_from)}"
        if self.expires_at is not None and t >= self.expires_at.timestamp():
            return "expired", f"expired on {format_time(self.expires_at)}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one JSON Lines record; extra columns at the top level)."""
        record: dict[str, Any] = {
            "id": self.id,
            "networks": [str(n) for n in self.networks],
            "owner": self.owner,
            "category": self.category,
            "status": self.status,
            "valid_from": format_time(self.valid_from) if self.valid_from else None,
            "expires_at": format_time(self.expires_at) if self.expires_at else None,
            "tags": list(self.tags),
        }
        record.update((k, _thaw(v)) for k, v in self.extra.items())
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "Registration":
        """The inverse of :meth:`to_dict` (keys other than the fields go to ``extra``)."""
        if not isinstance(record, Mapping):
            raise TypeError(f"expected a mapping, not {type(record).__name__}")
        values = dict(record)
        kwargs = {k: values.pop(k) for k in _CORE_FIELDS if k in values}
        if "networks" not in kwargs:
            key = next((k for k in REGISTRY_NETWORK_COLUMNS if k in values), None)
            if key is not None:
                kwargs["networks"] = values.pop(key)
        if "id" not in kwargs or "networks" not in kwargs:
            raise ValueError("a registration record needs an id and networks")
        return cls(extra=values, **kwargs)

    def _same_except_networks(self, other: "Registration") -> list[str]:
        """Names of the fields (other than networks) in which two records differ."""
        return [f.name for f in fields(self)
                if f.name not in ("networks", "id") and getattr(self, f.name) != getattr(other, f.name)]


# ---------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------

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
        self._records = tuple(records)
        self._index = index
        self.source = source
        self._full = None   # every record compiled, for explain (see _every_record)
        self._build_arrays()

    def _build_arrays(self) -> None:
        records = self._records
        count = len(records)
        self._status_active = np.fromiter((r.status == "active" for r in records), bool, count)
        self._valid_from = np.fromiter(
            (r.valid_from.timestamp() if r.valid_from else -math.inf for r in records), np.float64, count)
        self._expires_at = np.fromiter(
            (r.expires_at.timestamp() if r.expires_at else math.inf for r in records), np.float64, count)
        sizes = np.fromiter((len(r.networks) for r in records), np.int64, count)
        self._reg_first = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(sizes, out=self._reg_first[1:])
        total = int(self._reg_first[-1])
        values = [int(n.network_address) for r in records for n in r.networks]
        self._version = np.fromiter((n.version for r in records for n in r.networks), np.uint8, total)
        self._hi = np.fromiter((v >> 64 for v in values), np.uint64, total)
        self._lo = np.fromiter((v & 0xFFFFFFFFFFFFFFFF for v in values), np.uint64, total)
        self._plen = np.fromiter((n.prefixlen for r in records for n in r.networks), np.uint8, total)
        self._owner = np.repeat(np.arange(count, dtype=np.int64), sizes)
        self._ids = np.array([r.id for r in records], dtype=str)
        live = self._status_active
        bounds = np.concatenate([self._valid_from[live], self._expires_at[live]])
        self._bounds = np.unique(bounds[np.isfinite(bounds)])
        self._rank = None   # natural id order (see id_key), computed on first compile

    def _id_rank(self) -> np.ndarray:
        rank = self._rank
        if rank is None:
            rank = np.empty(len(self._records), dtype=np.int64)
            rank[natural_order(self._ids)] = np.arange(len(self._records))
            self._rank = rank
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
            return self._records == other._records
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"<Registry{where}: {len(self):,} registrations, {int(self._status_active.sum()):,} active>"

    def __reduce__(self):
        return (_restore_registry, (self._records, self.source))

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
        data = [self._records[i] for i in kept.tolist()]
        return assemble(version, hi, lo, plen, reg_first, data)

    def _every_record(self) -> Compiled:
        """Every record compiled, whatever its standing (for explain); built once."""
        full = self._full
        if full is None:
            full = self._full = self._compile_mask(np.ones(len(self._records), dtype=bool))
            # a race builds it twice; both results are equal
        return full


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
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
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
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
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


# ---------------------------------------------------------------------------
# loaders
# ---------------------------------------------------------------------------

def is_registry_file(name: str, head: bytes | None = None) -> bool:
    """Whether a file is a registry export (ids, statuses, validity windows), by the one rule
    of :func:`ipallow.loaders.detect_format` (content first, then the name).

    ``head`` is the start of the file; read from ``name`` when not given.
    """
    if head is None:
        with open(name, "rb") as handle:
            head = handle.read(65536)
    return detect_format(name, head) in ("jsonl", "registry-csv")


class _Cell(NamedTuple):
    value: Any
    line: int
    column: int


def load_registry(path: str | os.PathLike, *, format: str | None = None,
                  strict: bool = True) -> Registry:
    """Load a registry export: CSV with a header row, or JSON Lines.

    The format follows the suffix (``.csv``; ``.jsonl`` / ``.ndjson`` /
    ``.json``), else the content (a first ``{`` means JSON Lines), unless
    ``format`` (``"csv"`` or ``"jsonl"``) says.  Fields: ``id`` (required),
    the networks (``cidr`` / ``network`` / ``networks`` / ``ip``; several
    separated by ``,`` or ``;`` or, in JSON, a list; ranges ``a - b`` allowed),
    ``owner``, ``category`` (default ``other``), ``status`` (default
    ``active``), ``valid_from``, ``expires_at`` (empty = open), ``tags``
    (``,``/``;``-separated or a JSON list); any other column is kept in
    ``extra``.  A missing optional column takes its default; a present but
    empty ``status`` or ``category`` is an error.  Rows sharing an id and all
    other fields are one registration with several networks.  CSV column
    names match case-insensitively (extra columns keep their spelling); JSON
    keys match exactly.  An ``id`` may be a JSON integer (it becomes text).

    Raises:
        ParseError: every problem as ``path:line:col: message``; nothing loaded.
        OSError: the file cannot be read.
        TypeError: ``path`` is not a path.

    >>> load_registry(ipallow.SAMPLE_LIST).get("PTA-0003").owner
    'Indus Call Center'
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    with open(name, "rb") as handle:
        raw = handle.read()
    return parse_registry(raw, name, format=format, strict=strict)


def parse_registry(raw: bytes | str, name: str = "<registry>", *, format: str | None = None,
                   strict: bool = True) -> Registry:
    """Parse registry export content (see :func:`load_registry`); ``name`` is used in messages."""
    if isinstance(raw, bytes):
        text = _decode(raw, name)
    elif isinstance(raw, str):
        text = raw[1:] if raw.startswith("\ufeff") else raw
    else:
        raise TypeError(f"registry content must be bytes or str, not {type(raw).__name__}")
    kind = _detect_format(name, text, format)
    problems: list[Problem] = []
    rows = _csv_rows(text, name, problems) if kind == "csv" else _jsonl_rows(text, name, problems)
    masked = [0]
    records: dict[str, tuple[Registration, int]] = {}
    lines: list[str] = []

    def with_columns(row: dict[str, _Cell]) -> dict[str, _Cell]:
        """A JSON row read by the fast decoder, read again with column positions (for messages)."""
        if row["id"].column >= 0:
            return row
        if not lines:
            lines.extend(text.split("\n"))
        number = row["id"].line
        return _jsonl_cells(_json_fields(lines[number - 1].rstrip("\r")), number, name, []) or row

    for row in rows:
        if row["id"].column < 0:            # a JSON line read without column positions
            found: list[Problem] = []
            record = _build_record(row, name, strict, found, masked)
            if found:                       # rare: redo it with columns for the messages
                _build_record(with_columns(row), name, strict, problems, [0])
                continue
        else:
            record = _build_record(row, name, strict, problems, masked)
        if record is None:
            continue
        earlier = records.get(record.id)
        if earlier is None:
            records[record.id] = (record, row["id"].line)
            continue
        try:
            records[record.id] = (_merge_duplicate(earlier[0], record), earlier[1])
        except ValueError:
            differing = earlier[0]._same_except_networks(record)
            cell = with_columns(row)["id"]
            problems.append(Problem(name, cell.line, cell.column,
                                    f"duplicate id {record.id!r} with different "
                                    f"{', '.join(differing)} than line {earlier[1]}"))
    if problems:
        raise ParseError(sorted(problems, key=lambda p: (p.line, p.column)))
    if masked[0] and not strict:
        warnings.warn(HostBitsWarning(f"strict=False: host bits cleared in {masked[0]} "
                                      f"network{'s' if masked[0] != 1 else ''}"), stacklevel=3)
    return Registry((r for r, _ in records.values()), source=name)


def _detect_format(name: str, text: str, format: str | None) -> str:
    if format is not None:
        if format not in ("csv", "jsonl"):
            raise ValueError(f"format must be 'csv' or 'jsonl', not {format!r}")
        return format
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


# -- CSV ----------------------------------------------------------------------------

def _canonical_columns(keys: list[str]) -> dict[str, int]:
    """Header position of each core field; the first network column found wins."""
    lowered = [k.strip().lower() for k in keys]
    positions: dict[str, int] = {}
    for name in ("id", "owner", "category", "status", "valid_from", "expires_at", "tags"):
        if name in lowered:
            positions[name] = lowered.index(name)
    for name in REGISTRY_NETWORK_COLUMNS:
        if name in lowered:
            positions["networks"] = lowered.index(name)
            break
    return positions


def _csv_rows(text: str, name: str, problems: list[Problem]) -> list[dict[str, _Cell]]:
    reader = _csvrecords.records(text)
    try:
        header = next(reader)
    except StopIteration:
        problems.append(Problem(name, 1, 1, "empty CSV file: expected a header row"))
        return []
    except _csvrecords.CsvError as exc:
        problems.append(Problem(name, 1, 1, f"unreadable CSV header: {exc}"))
        return []
    keys = [h.strip() for h in header.fields]
    header_starts = header.starts
    seen: dict[str, int] = {}
    for position, key in enumerate(keys):
        line, column = header_starts[position] if position < len(header_starts) else (1, 1)
        if not key:
            problems.append(Problem(name, line, column, "empty column name in header"))
        elif key.lower() in seen:
            problems.append(Problem(name, line, column, f"duplicate column {key!r} in header"))
        seen.setdefault(key.lower(), position)
    columns = _canonical_columns(keys)
    network_columns = [k for k in keys if k.lower() in REGISTRY_NETWORK_COLUMNS]
    if len(network_columns) > 1:
        problems.append(Problem(name, 1, 1, f"several network columns ({', '.join(network_columns)}): "
                                            f"keep one"))
    for required, label in (("id", "no id column in header"),
                            ("networks", "no network column in header (expected one of "
                                         + ", ".join(REGISTRY_NETWORK_COLUMNS) + ")")):
        if required not in columns:
            problems.append(Problem(name, 1, 1, label))
    if problems:
        return []
    by_position = {position: canonical for canonical, position in columns.items()}
    rows: list[dict[str, _Cell]] = []
    for first_line, row, starts in _csvrecords.data_records(reader, len(keys), name, problems):
        cells: dict[str, _Cell] = {}
        extra: dict[str, Any] = {}
        for position, value in enumerate(row):
            line, column = starts[position] if position < len(starts) else (first_line, 1)
            canonical = by_position.get(position)
            if canonical is None:
                extra[keys[position]] = value
            else:
                cells[canonical] = _Cell(value, line, column)
        cells["extra"] = _Cell(extra, first_line, 1)
        rows.append(cells)
    return rows


# -- JSON Lines -------------------------------------------------------------------

_DECODER = json.JSONDecoder()
_JSON_SPACE = re.compile(r"[ \t\r\n]*")


class _JsonProblem(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


def _json_fields(line: str) -> dict[str, tuple[Any, int]]:
    """Top-level fields of a one-line JSON object -> {key: (value, 0-based index of the value)}."""
    def space(i: int) -> int:
        return _JSON_SPACE.match(line, i).end()

    def decode(i: int) -> tuple[Any, int]:
        try:
            return _DECODER.raw_decode(line, i)
        except json.JSONDecodeError as exc:
            raise _JsonProblem(exc.pos, f"invalid JSON: {exc.msg}") from None

    i = space(0)
    if line[i:i + 1] != "{":
        raise _JsonProblem(i, "expected a JSON object ({...}) on each line")
    i = space(i + 1)
    out: dict[str, tuple[Any, int]] = {}
    if line[i:i + 1] == "}":
        i += 1
    else:
        while True:
            if line[i:i + 1] != '"':
                raise _JsonProblem(i, "invalid JSON: expected a field name in double quotes")
            key_at = i
            key, i = decode(i)
            i = space(i)
            if line[i:i + 1] != ":":
                raise _JsonProblem(i, "invalid JSON: expected ':'")
            i = space(i + 1)
            value_at = i
            value, i = decode(i)
            if key in out:
                raise _JsonProblem(key_at, f"duplicate field {key!r}")
            out[key] = (value, value_at)
            i = space(i)
            if line[i:i + 1] == ",":
                i = space(i + 1)
                continue
            if line[i:i + 1] == "}":
                i += 1
                break
            raise _JsonProblem(i, "invalid JSON: expected ',' or '}'")
    i = space(i)
    if i != len(line):
        raise _JsonProblem(i, "extra data after the JSON object")
    return out


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Duplicate()
    return out


def _json_fields_fast(line: str) -> dict[str, tuple[Any, int]] | None:
    """Fields of a valid one-object line via the C decoder, columns unknown (-1); None if not that."""
    try:
        value = json.loads(line, object_pairs_hook=_no_duplicates)
    except (ValueError, _Duplicate):
        return None
    if not isinstance(value, dict):
        return None
    return {key: (item, -1) for key, item in value.items()}


def _jsonl_rows(text: str, name: str, problems: list[Problem]) -> list[dict[str, _Cell]]:
    rows: list[dict[str, _Cell]] = []
    # Only "\n" ends a JSON Lines record ("\r\n" too); str.splitlines would also
    # split at U+2028 and friends, which are legal raw inside JSON strings.
    for number, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():
            continue
        fields_ = _json_fields_fast(line)
        if fields_ is None or sum(k in fields_ for k in REGISTRY_NETWORK_COLUMNS) > 1:
            # not plain valid JSON (or a problem already): walk it for the exact column
            try:
                fields_ = _json_fields(line)
            except _JsonProblem as exc:
                problems.append(Problem(name, number, exc.index + 1, exc.message))
                continue
        cells = _jsonl_cells(fields_, number, name, problems)
        if cells is not None:
            rows.append(cells)
    return rows


def _jsonl_cells(fields_: dict[str, tuple[Any, int]], number: int, name: str,
                 problems: list[Problem]) -> dict[str, _Cell] | None:
    """The cells of one JSON record (column -1: not known), or None after reporting a problem."""
    network_keys = [k for k in REGISTRY_NETWORK_COLUMNS if k in fields_]
    if len(network_keys) > 1:
        index = fields_[network_keys[1]][1]
        problems.append(Problem(name, number, index + 1 if index >= 0 else 1,
                                f"several network fields ({', '.join(network_keys)}): keep one"))
        return None
    network_key = network_keys[0] if network_keys else None
    cells: dict[str, _Cell] = {}
    extra: dict[str, Any] = {}
    for key, (value, index) in fields_.items():
        column = index + 1 if index >= 0 else -1
        if key == network_key:
            cells["networks"] = _Cell(value, number, column)
        elif key in _CORE_FIELDS and key != "networks":
            cells[key] = _Cell(value, number, column)
        else:
            extra[key] = value
    missing = False
    for required, label in (("id", "no id field"),
                            ("networks", "no network field (expected one of "
                                         + ", ".join(REGISTRY_NETWORK_COLUMNS) + ")")):
        if required not in cells:
            problems.append(Problem(name, number, 1, label))
            missing = True
    if missing:
        return None
    cells["extra"] = _Cell(extra, number, 1)
    return cells


# -- one record -----------------------------------------------------------------------

def _split_pieces(text: str) -> Iterator[tuple[int, str]]:
    """(offset of the stripped piece, piece) for each ``,``/``;``-separated piece."""
    start = 0
    for part in _LIST_SEPARATORS.split(text):
        stripped = part.strip()
        if stripped:
            yield start + len(part) - len(part.lstrip()), stripped
        start += len(part) + 1


def _build_record(row: dict[str, _Cell], name: str, strict: bool, problems: list[Problem],
                  masked: list[int]) -> Registration | None:
    before = len(problems)

    def bad(cell: _Cell, message: str, offset: int = 0) -> None:
        problems.append(Problem(name, cell.line, cell.column + offset, message))

    # id
    cell = row["id"]
    rid = cell.value
    if isinstance(rid, int) and not isinstance(rid, bool):
        rid = str(rid)
    if not isinstance(rid, str):
        bad(cell, f"id must be a string, not {_json_type(cell.value)}")
        rid = None
    elif not rid.strip():
        bad(cell, "missing id")
        rid = None

    # networks
    cell = row["networks"]
    pieces: list[tuple[int, str]] = []
    if isinstance(cell.value, list):
        wrong = [v for v in cell.value if not isinstance(v, str)]
        if wrong:
            bad(cell, f"networks must be a string or a list of strings, found {_json_type(wrong[0])} "
                      f"in the list")
        else:
            for item in cell.value:
                pieces.extend((0, piece) for _, piece in _split_pieces(item))
            if not pieces:
                bad(cell, "missing network")
    elif isinstance(cell.value, str):
        pieces = list(_split_pieces(cell.value))
        if not pieces:
            bad(cell, "missing network")
    else:
        bad(cell, f"networks must be a string or a list of strings, not {_json_type(cell.value)}")
    networks: list = []
    for offset, piece in pieces:
        try:
            found, count = _parse.entry_networks(piece, strict)
        except AddressError as exc:
            problems.append(_problem(name, cell.line, cell.column + offset, exc))
            continue
        masked[0] += count
        networks.extend(_parse.network_object(*n) for n in found)

    # text fields
    values: dict[str, Any] = {}
    cell = row.get("owner")
    if cell is not None:
        if cell.value is None or isinstance(cell.value, str):
            values["owner"] = cell.value or ""
        else:
            bad(cell, f"owner must be a string, not {_json_type(cell.value)}")
    for key, choices in (("category", CATEGORIES), ("status", STATUSES)):
        cell = row.get(key)
        if cell is None:
            continue
        if not isinstance(cell.value, str):
            bad(cell, f"{key} must be a string, not {_json_type(cell.value)}")
        elif not cell.value.strip():
            bad(cell, f"missing {key} (the column is there but the value is empty)")
        elif cell.value.strip().lower() not in choices:
            bad(cell, f"unknown {key} {cell.value.strip()!r}: expected one of {', '.join(choices)}")
        else:
            values[key] = cell.value

    # times
    times: dict[str, datetime | None] = {}
    for key in ("valid_from", "expires_at"):
        cell = row.get(key)
        if cell is None or cell.value is None or (isinstance(cell.value, str) and not cell.value.strip()):
            times[key] = None
            continue
        if not isinstance(cell.value, str):
            bad(cell, f"{key} must be an ISO 8601 string, not {_json_type(cell.value)}")
            continue
        try:
            times[key] = _parse_time_text(cell.value)
        except ValueError as exc:
            bad(cell, f"{key}: {exc}", len(cell.value) - len(cell.value.lstrip()))
    if times.get("valid_from") and times.get("expires_at") and times["expires_at"] <= times["valid_from"]:
        bad(row["expires_at"], f"expires_at {format_time(times['expires_at'])} is not after "
                               f"valid_from {format_time(times['valid_from'])}")

    # tags
    cell = row.get("tags")
    if cell is not None:
        if cell.value is None or isinstance(cell.value, str) or (
                isinstance(cell.value, list) and all(isinstance(v, str) for v in cell.value)):
            values["tags"] = cell.value
        else:
            bad(cell, f"tags must be a string or a list of strings, not {_json_type(cell.value)}")

    extra = row["extra"].value
    if len(problems) != before or rid is None or not networks:
        return None
    try:
        return Registration(rid, tuple(networks), extra=extra, valid_from=times.get("valid_from"),
                            expires_at=times.get("expires_at"), **values)
    except (TypeError, ValueError) as exc:   # defensive: every check above should have caught it
        bad(row["id"], str(exc))
        return None


def _json_type(value: Any) -> str:
    return {type(None): "null", bool: "a boolean", int: "a number", float: "a number",
            str: "a string", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)
