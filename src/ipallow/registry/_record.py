"""The record: :class:`Registration`, its read-only ``extra`` map, and a registration's standing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import GeneratorType
from typing import Any, NamedTuple

from ipallow import _parse
from ipallow._formats import NETWORK_COLUMNS
from ipallow.registry._time import _coerce_time, format_time, to_timestamp

STATUSES = ("pending", "active", "suspended", "revoked")
CATEGORIES = ("company_vpn", "freelancer_vpn", "call_center", "video_conference", "other")

#: Column / key names that hold the networks, in order of preference.
REGISTRY_NETWORK_COLUMNS = (*NETWORK_COLUMNS[:2], "networks", *NETWORK_COLUMNS[2:])
_CORE_FIELDS = ("id", "networks", "owner", "category", "status", "valid_from", "expires_at", "tags")
_LIST_SEPARATORS = re.compile(r"[,;]")


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

