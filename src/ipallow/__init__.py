"""ipallow: is this IP address inside a registered range, and which registration covers it?

A compiled (Cython) Poptrie-style index over registered IPv4 and IPv6 CIDRs.

>>> import ipallow
>>> al = ipallow.Allowlist(["203.0.113.0/24", "2001:db8::/32"])
>>> "203.0.113.9" in al, "8.8.8.8" in al
(True, False)
"""

import os as _os

from ipallow import _parse  # noqa: F401  (installs the core's object converter)
from ipallow.allowlist import Allowlist, Entry, Match, load
from ipallow.registry import Explanation, Registration, Registry, Standing, load_registry
from ipallow.diff import Diff, diff
from ipallow.live import LiveAllowlist, ReloadRefused
from ipallow.errors import AddressError, HostBitsWarning, ParseError, Problem, TableError
from ipallow.snapshot import SnapshotError, register_json_type as _register_json_type

# Registry-built allowlists carry Registration records: let snapshots (and so pickles) hold them.
_register_json_type("ipallow.Registration", Registration, Registration.to_dict, Registration.from_dict)

from ipallow._version import __version__

#: Path of the small sample registry bundled with the package (CSV).
SAMPLE_LIST = _os.path.join(_os.path.dirname(__file__), "data", "sample.csv")

__all__ = [
    "Allowlist",
    "Match",
    "Entry",
    "AddressError",
    "ParseError",
    "Problem",
    "HostBitsWarning",
    "SnapshotError",
    "TableError",
    "load",
    "SAMPLE_LIST",
    "Registration",
    "Registry",
    "load_registry",
    "Standing",
    "Explanation",
    "diff",
    "Diff",
    "LiveAllowlist",
    "ReloadRefused",
    "__version__",
]
