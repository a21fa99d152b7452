"""The snapshot file's layout: magic, version, header and section-table structures, section ids.

Everything that says where a byte of a snapshot is, and nothing that reads or
writes one: the writer (:mod:`._write`) and the validator (:mod:`._header`)
both build on these definitions, so the two can never disagree about the
format.  docs/snapshot-format.md describes the same layout for readers of the
file.
"""

from __future__ import annotations

import os
import struct

from ipallow.errors import SnapshotError

MAGIC = b"IPALLOW\x00"
FORMAT_VERSION = 2      # 2: one node heap per family, prefix rows in answer order
BYTE_ORDER_MARK = 0x01020304
FLAG_HAS_DATA = 1
ALIGN = 64

HEADER = struct.Struct("=8sIIIIQQqQQIIQ")     # see Header below for the field order
SECTION = struct.Struct("=IIQQQQ")            # id, item size, offset, nbytes, count, checksum
MAX_SECTIONS = 64

# Section ids -> (name, element type).  Names are Compiled attributes (tables by position).  The
# types are typecodes of struct, array and memoryview.cast (native sizes), which numpy reads as
# dtypes too: this module, which the command line's start reads, needs no numpy.
SECTIONS = {
    1: ("dir4", "I"),
    2: ("heap4", "I"),
    4: ("dir6", "I"),
    5: ("heap6", "I"),
    7: ("prefix_reg", "i"),
    8: ("version", "B"),
    9: ("hi", "Q"),
    10: ("lo", "Q"),
    11: ("prefixlen", "B"),
    12: ("reg_first", "q"),
    13: ("data_offsets", "Q"),
    14: ("data_blob", "B"),
    15: ("reg_rows", "i"),
    16: ("lifecycle", "B"),
}   # ids 3 and 6 were format 1's leaf arrays; ids are never reused
# Optional: "lifecycle" (a registry's instant, ids and non-counting records, JSON;
# see ipallow.registry.encode_lifecycle).  A reader that does not know it refuses
# the file (unknown section id) rather than serve a registry frozen in time.
SECTION_ID = {name: sid for sid, (name, _) in SECTIONS.items()}
# Verified when a snapshot is opened (lookups read them), and on first use (details, iteration).
EAGER = ("dir4", "heap4", "dir6", "heap6", "prefix_reg")
LAZY = ("version", "hi", "lo", "prefixlen", "reg_first", "reg_rows")
PER_PREFIX = ("prefix_reg", "version", "hi", "lo", "prefixlen", "reg_rows")
DATA = ("data_offsets", "data_blob")


class Header:
    """The header's fields by name (:data:`HEADER` unpacked, in this order)."""

    FIELDS = ("magic", "version", "byte_order", "flags", "n_sections", "header_size",
              "file_size", "created", "n_registrations", "n_prefixes", "dir_bits4", "dir_bits6",
              "checksum")

    def __init__(self, values: tuple) -> None:
        for name, value in zip(self.FIELDS, values):
            setattr(self, name, value)


def aligned(offset: int) -> int:
    """``offset`` rounded up to the next section boundary (:data:`ALIGN` bytes)."""
    return (offset + ALIGN - 1) // ALIGN * ALIGN


def file_size(fd: int, name: str) -> int:
    """The size of the open file ``fd``; an empty file, which no snapshot is, is refused."""
    size = os.fstat(fd).st_size
    if size == 0:
        raise SnapshotError(name, "empty file")
    return size
