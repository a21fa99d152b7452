"""The public names of the modules issue #14 turned into packages stay importable from them."""

from __future__ import annotations

import importlib

import pytest

#: Names other modules, tests, examples and docs import from these packages (public or not).
IMPORTED = {
    "ipallow.registry": ["Registration", "Registry", "Standing", "Explanation", "FrozenMap", "load_registry",
                         "parse_registry", "to_timestamp", "id_key", "natural_order", "format_time",
                         "STATUSES", "CATEGORIES", "REGISTRY_NETWORK_COLUMNS", "UTC", "LIFECYCLE_FORMAT",
                         "encode_lifecycle", "decode_lifecycle", "lifecycle_head", "explain_matches",
                         "is_registry_file", "_parse_time_text", "_csv_rows", "_jsonl_rows"],
    "ipallow.dataframe": ["contains_many", "lookup_many", "match_codes", "classify", "ship", "Shipment",
                          "installed", "registration_labels", "worker_stats", "ColumnMatch", "BadRowError",
                          "NO_MATCH", "UNPARSEABLE", "NULL"],
    "ipallow.snapshot": ["save", "map_file", "to_bytes", "write_to", "from_buffer", "read_file", "read_header",
                         "file_header", "info", "register_json_type", "SnapshotError", "NotSharedWarning",
                         "LEASE_SIGNAL", "FORMAT_VERSION", "MAGIC", "HEADER", "SECTION", "MAX_SECTIONS",
                         "LAZY"],
    "ipallow.live": ["LiveAllowlist", "ReloadRefused", "CHECKSUM_SUFFIX"],
}


@pytest.mark.parametrize("module", sorted(IMPORTED))
def test_every_name_in_all_exists(module):
    names = importlib.import_module(module).__all__
    namespace: dict = {}
    exec(f"from {module} import *", namespace)       # fails on a name __all__ lists but nobody defines
    assert set(names) <= set(namespace)


@pytest.mark.parametrize("module", sorted(IMPORTED))
def test_the_names_others_import_are_there(module):
    imported = importlib.import_module(module)
    assert [name for name in IMPORTED[module] if not hasattr(imported, name)] == []
    assert set(imported.__all__) <= set(IMPORTED[module])


@pytest.mark.parametrize("module", ["ipallow", "ipallow.snapshot", "ipallow.live", "ipallow.registry",
                                    "ipallow.dataframe"])
def test_public_classes_name_a_public_module(module):
    # Reprs, tracebacks and warning filters (-W error::ipallow.snapshot.NotSharedWarning) show
    # __module__; a private module there would be a name users cannot rely on.
    import importlib
    import inspect
    package = importlib.import_module(module)
    for name in getattr(package, "__all__", []):
        value = getattr(package, name)
        if inspect.isclass(value) and value.__module__.startswith("ipallow"):
            assert "._" not in value.__module__ and not value.__module__.startswith("ipallow._"), \
                (module, name, value.__module__)
            assert getattr(importlib.import_module(value.__module__), value.__qualname__) is value
