"""A snapshot of a registry answers for the instant a command asks about, or not at all.

A snapshot compiled from a registry holds the registrations that counted at
one instant (``evaluated_at``) plus the whole registry.  Between two lifecycle
boundaries (a ``valid_from`` or ``expires_at``) its answers are right; past
one, the commands compile the registry it carries for the instant asked
about (``--at``, default now) and say so on stderr.  A snapshot of registry
records without their lifecycle (written by an older ipallow) cannot do that:
with ``--at`` it is refused (exit 2), never answered for another instant.

Not a command: ``register`` is a no-op because ``ipallow.cli`` registers every
module of this package.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone

from typing import TYPE_CHECKING

from ipallow.errors import SnapshotError

if TYPE_CHECKING:
    from ipallow.allowlist import Allowlist

__all__ = ["at_instant", "format_instant"]


def register(subparsers) -> None:  # noqa: ARG001 - see the module docstring
    """Nothing: this module is a helper, not a command."""


def format_instant(t: float) -> str:
    from ipallow.registry import format_time
    return format_time(datetime.fromtimestamp(t, timezone.utc))


def at_instant(allowlist: Allowlist, at: float | None, name: str) -> Allowlist:
    """``allowlist`` as it stands at ``at`` (None: now); see the module docstring.

    Raises:
        SnapshotError: ``at`` was asked for and the snapshot cannot answer for it.
    """
    evaluated = getattr(allowlist, "_registry_at", None)
    if evaluated is None and at is None:
        # A plain list: the answer for now is the list itself, and the registry code stays unloaded
        # (a script calling `ipallow check` per address pays for every import).
        return allowlist
    try:
        current = allowlist.reevaluated(at)
    except ValueError as exc:
        if at is None:
            return allowlist      # an old registry snapshot: as compiled (nothing better to offer)
        raise SnapshotError(name, f"cannot answer for --at {format_instant(at)}: {exc}") from None
    if current is not allowlist and evaluated is not None and at is None:
        # Asked about now, the operator may not know the snapshot is out of date.
        since, until = allowlist._window()
        passed = until if current._registry_at >= until else since
        print(f"note: {name} was evaluated at {format_instant(evaluated)}; registrations start or "
              f"stop counting at {format_instant(passed)}, so it was evaluated again for now "
              f"from the registry it holds (compile it again to skip this)", file=sys.stderr)
    return current
