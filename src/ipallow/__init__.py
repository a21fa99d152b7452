"""ipallow: is this IP address inside a registered range, and which registration covers it?

A compiled (Cython) Poptrie-style index over registered IPv4 and IPv6 CIDRs.

>>> import ipallow
>>> al = ipallow.Allowlist(["203.0.113.0/24", "2001:db8::/32"])
>>> "203.0.113.9" in al, "8.8.8.8" in al
(True, False)
"""

import os as _os
import sys as _sys

from ipallow._version import __version__

#: Path of the small sample registry bundled with the package (CSV).
SAMPLE_LIST = _os.path.join(_os.path.dirname(__file__), "data", "sample.csv")

# The public names are imported on first use, so `import ipallow` (and `ipallow --version`)
# costs next to nothing, and a script that only checks addresses never loads the registry,
# live-reload or diff machinery (nor pyroaring).
_WHERE = {
    "Allowlist": "ipallow.allowlist", "Match": "ipallow.allowlist", "Entry": "ipallow.allowlist",
    "load": "ipallow.allowlist",
    "AddressError": "ipallow.errors", "ParseError": "ipallow.errors", "Problem": "ipallow.errors",
    "HostBitsWarning": "ipallow.errors", "TableError": "ipallow.errors",
    "SnapshotError": "ipallow.errors",
    "Registration": "ipallow.registry", "Registry": "ipallow.registry",
    "load_registry": "ipallow.registry", "Standing": "ipallow.registry",
    "Explanation": "ipallow.registry",
    "Diff": "ipallow.diff",
    "LiveAllowlist": "ipallow.live", "ReloadRefused": "ipallow.live",
}


def _import_module(name: str):
    """The module ``name`` (absolute), imported if need be.

    importlib's ``import_module`` does the same for an absolute name, but importing importlib
    (and warnings with it) costs every command's start-up ~0.35 ms.
    """
    __import__(name)
    return _sys.modules[name]


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is not None:
        value = getattr(_import_module(module), name)
    elif not name.startswith("__"):
        # A submodule (`ipallow.snapshot.register_json_type`, `ipallow.registry...`), as when
        # the package imported them all up front.
        try:
            value = _import_module(f"ipallow.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"ipallow.{name}":
                raise
            raise AttributeError(f"module 'ipallow' has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module 'ipallow' has no attribute {name!r}")
    globals()[name] = value          # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(type(_sys)):                # types.ModuleType, without importing types
    """``ipallow.diff`` names both a submodule and the function; the function wins, as it always has.

    Importing the submodule ``ipallow.diff`` (which ``from ipallow.diff import Diff``
    does) makes the import system set the package's ``diff`` attribute to the module;
    the setter below keeps the function in its place.
    """

    @property
    def diff(self):
        return _import_module("ipallow.diff").diff

    @diff.setter
    def diff(self, value) -> None:
        pass


_sys.modules[__name__].__class__ = _Package

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
