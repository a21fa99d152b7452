"""The record: :class:`Registration` (its fields checked by :mod:`._fields`), and a registration's standing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, NamedTuple

from ipallow.registry._fields import FIELD_NAMES, REGISTRY_NETWORK_COLUMNS, _CORE_FIELDS, check_fields
from ipallow.registry._frozenmap import FrozenMap, _thaw
from ipallow.registry._time import format_time, to_timestamp


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
        checked = check_fields({name: getattr(self, name) for name in FIELD_NAMES}, from_file=False)
        if checked.problems:
            raise checked.problems[0].error
        for name, value in checked.values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def _from_checked(cls, values: Mapping[str, Any]) -> "Registration":
        """The record of values :func:`check_fields` has checked and normalised (every
        field given): a loader's, which are not checked a second time."""
        return cls._from_row(*map(values.__getitem__, FIELD_NAMES))

    @classmethod
    def _from_row(cls, id: str, networks: tuple, owner: str, category: str, status: str,
                  valid_from: datetime | None, expires_at: datetime | None, tags: tuple,
                  extra: Mapping) -> "Registration":
        """:meth:`_from_checked` for values given one by one (a registry loaded in bulk makes
        each record so, when it is first read: a loop over the fields took twice as long)."""
        record = object.__new__(cls)
        (set_id, set_networks, set_owner, set_category, set_status, set_valid_from, set_expires_at,
         set_tags, set_extra) = _FIELD_SETTERS
        set_id(record, id)
        set_networks(record, networks)
        set_owner(record, owner)
        set_category(record, category)
        set_status(record, status)
        set_valid_from(record, valid_from)
        set_expires_at(record, expires_at)
        set_tags(record, tags)
        set_extra(record, extra)
        return record

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
        if self.extra:          # most records have none (the generator alone was ~1 us a record)
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


# Each field's slot setter, looked up once (frozen: the dataclass's own __setattr__ refuses).
_FIELD_SETTERS = tuple(getattr(Registration, name).__set__ for name in FIELD_NAMES)
