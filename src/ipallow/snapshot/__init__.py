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
from ipallow.snapshot._registration_data import register_json_type
from ipallow.snapshot._header import file_header, info, read_header
from ipallow.snapshot._read import from_buffer, map_file, read_file

__all__ = ["save", "map_file", "to_bytes", "write_to", "from_buffer", "SnapshotError", "NotSharedWarning",
           "register_json_type", "FORMAT_VERSION"]

_WRITING = ("save", "to_bytes", "write_to", "MAX_CREATED")
_SHARING = ("NotSharedWarning", "LEASE_SIGNAL")


def __getattr__(name: str):
    # Writing and page sharing are imported on first use: a process that only opens
    # snapshots (privately) loads neither the atomic-write machinery (tempfile,
    # shutil) nor the lease's signal handling.
    if name in _WRITING:
        from ipallow.snapshot import _write as module
    elif name in _SHARING:
        from ipallow.snapshot import _lease as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value          # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WRITING) | set(_SHARING))
