"""Snapshot files: a compiled Allowlist written once, opened in milliseconds by every process.

Layout (all integers in the writer's byte order, which the header records)::

    header      magic, format version, byte-order mark, flags, counts, created,
                dir bits, header checksum           (HEADER, 80 bytes)
    sections    one row per section: id, item size, offset, size, count,
                checksum                            (SECTION, 40 bytes each)
    data        each section 64-byte aligned: the two Poptrie tables, the
                prefix table, registration offsets, registration data (JSON)

Opening validates, before any lookup is served: magic, version, byte order,
sizes, the header checksum (which covers the section table and so every
section's checksum), the checksums of the sections lookups read, and the
structure of both tables (the core refuses tables whose indices could leave
their arrays).  The sections only ``lookup()``'s details and iteration read
(prefix table, registration data) are verified on first use, so opening costs
one read of the file plus a few milliseconds; a registration's data is decoded
(and any fault in it reported as SnapshotError) when it is asked for.

A file is read into private memory unless sharing its pages is asked for
(``share=True``): then it is mapped under a Linux read lease, so that no
writer can change or truncate pages a lookup may read.  See docs/snapshots.md.

The package's modules, lowest first, each owning one part::

    _layout             where every byte is: magic, version, header and section structures
    _registration_data  each registration's data as JSON, decoded on access
    _lease              sharing a file's pages under a Linux read lease (signals, mremap, fork);
                        imported on first use (share=True)
    _header             validating the header and section table (read_header, info)
    _write              Compiled -> bytes, to a file object a section at a time, and to a
                        file atomically (to_bytes, write_to, save);
                        imported on first use
    _read               bytes or a file -> Compiled, verified (from_buffer, read_file, map_file)
"""

# Every name ipallow, its users, tests and docs reached in the single ipallow/snapshot.py.
from ipallow.errors import SnapshotError  # defined with the other exceptions; re-exported here
from ipallow.snapshot._layout import (ALIGN, BYTE_ORDER_MARK, DATA, EAGER, FLAG_HAS_DATA, FORMAT_VERSION,
                                      HEADER, LAZY, MAGIC, MAX_SECTIONS, PER_PREFIX, SECTION, SECTION_ID,
                                      SECTIONS)

__all__ = ["save", "map_file", "to_bytes", "write_to", "from_buffer", "SnapshotError", "NotSharedWarning",
           "register_json_type", "FORMAT_VERSION"]

# The names below are imported on first use, each from its module: a process that only opens
# snapshots (privately) loads neither the atomic-write machinery (tempfile, shutil) nor the
# lease's signal handling, and one that only reads a snapshot's header or prefix table (the
# command line's `export`, `info`) does not load numpy, which reading tables needs.  The
# command line's start reads MAGIC (is this file a snapshot?), and nothing else of these.
_FIRST_USE = {
    "save": "_write", "to_bytes": "_write", "write_to": "_write", "MAX_CREATED": "_write",
    "NotSharedWarning": "_lease", "LEASE_SIGNAL": "_lease",
    "from_buffer": "_read", "map_file": "_read", "read_file": "_read",
    "file_header": "_header", "info": "_header", "read_header": "_header",
    "register_json_type": "_registration_data",
}


def __getattr__(name: str):
    # Spelled out, not import_module: the layering test reads these imports.
    where = _FIRST_USE.get(name)
    if where == "_write":
        from ipallow.snapshot import _write as module
    elif where == "_lease":
        from ipallow.snapshot import _lease as module
    elif where == "_read":
        from ipallow.snapshot import _read as module
    elif where == "_header":
        from ipallow.snapshot import _header as module
    elif where == "_registration_data":
        from ipallow.snapshot import _registration_data as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value          # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FIRST_USE))
