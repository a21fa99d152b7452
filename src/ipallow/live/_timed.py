"""One compiled list and the interval of time in which it is right, built from a registry or a snapshot.

A registry's list changes only at lifecycle boundaries (a record's
``valid_from`` or ``expires_at``): compiled at instant ``t``, it is right
for ``[since, until)``, the boundaries around ``t``.  A live list serves one
:class:`TimedList` and keeps the next one ready; this module makes them and
knows nothing of files, threads or swapping.
"""

from __future__ import annotations

from ipallow import snapshot
from ipallow.allowlist import Allowlist
from ipallow.registry import Registry


class TimedList:
    """One compiled list and the interval of time in which it is right."""

    __slots__ = ("allowlist", "registry", "since", "until", "next", "generation")

    def __init__(self, allowlist: Allowlist, registry: Registry | None, since: float, until: float) -> None:
        self.allowlist = allowlist
        self.registry = registry
        self.since = since          # POSIX seconds; -inf: no earlier boundary
        self.until = until          # +inf: no later boundary
        self.next: TimedList | None = None   # prebuilt list for [until, ...)
        self.generation = 0

    @property
    def registrations(self) -> int:
        """Registrations in the source the list came from (a snapshot source: its own count)."""
        return len(self.registry) if self.registry is not None else len(self.allowlist)


def build_at(registry: Registry, t: float) -> TimedList:
    """The list of the registrations that count at ``t``, right until the next boundary."""
    allowlist = Allowlist.from_registry(registry, at=t)
    return TimedList(allowlist, registry, registry._prev_boundary_ts(t), registry._next_boundary_ts(t))


def open_snapshot(raw: bytes, path: str) -> TimedList:
    """Serve a compiled snapshot from the bytes read (private memory: a later rewrite of the
    file cannot change or fault it), with every section verified now."""
    compiled = snapshot.from_buffer(raw, path)
    for name in (*snapshot.LAZY, "data", "lifecycle"):
        getattr(compiled, name, None)    # verifies the sections lookups do not read eagerly
    # A plain list's snapshot is right at all times; a registry's serves until its
    # next boundary, then follows the clock like the CSV.
    allowlist = Allowlist._from_compiled(compiled)
    return TimedList(allowlist, getattr(allowlist, "_registry", None), *allowlist._window())
