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

# The package's modules, lowest first; every name the rest of ipallow (or a user) imported
# from the single ipallow/registry.py is still importable from ipallow.registry.
from ipallow.registry._time import UTC, format_time, to_timestamp, _parse_time_text
from ipallow.registry._ids import id_key, natural_order
from ipallow.registry._frozenmap import FrozenMap
from ipallow.registry._fields import CATEGORIES, REGISTRY_NETWORK_COLUMNS, STATUSES
from ipallow.registry._record import Explanation, Registration, Standing
from ipallow.registry._registry import (LIFECYCLE_FORMAT, Registry, decode_lifecycle, encode_lifecycle,
                                        explain_matches, lifecycle_head)
from ipallow.registry._rows import _csv_rows, _jsonl_rows
from ipallow.registry._io import is_registry_file, load_registry, parse_registry

__all__ = [
    "Registration", "Registry", "Standing", "Explanation", "FrozenMap",
    "load_registry", "parse_registry", "to_timestamp", "id_key",
    "STATUSES", "CATEGORIES",
]

# Public classes report the package users import them from (reprs, tracebacks, pickles), not
# the private module that defines them.
for _public in (Registration, Registry, Standing, Explanation, FrozenMap):
    _public.__module__ = __name__
del _public
