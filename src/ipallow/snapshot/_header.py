"""Validating a snapshot's header and section table, before any section is read.

:func:`read_header` checks, in order, everything a reader may trust without
touching the sections: magic, byte order, version, the section count and
sizes, the header checksum (which covers the section table and so every
section's checksum), and that the sections are known, lie inside the file,
do not overlap and have the row counts the header promises.  Each refusal
names what was wrong.  :func:`file_header` and :func:`info` do the same for
a file, reading only its first bytes.
"""

from __future__ import annotations

import os
import struct
import sys

TYPE_CHECKING = False           # typing is 2 ms of a start-up; only type checkers read this
if TYPE_CHECKING:
    from typing import Any

from ipallow import _trie
from ipallow.errors import SnapshotError
from ipallow.snapshot._layout import (ALIGN, BYTE_ORDER_MARK, DATA, EAGER, FLAG_HAS_DATA, FORMAT_VERSION,
                                      HEADER, LAZY, MAGIC, MAX_SECTIONS, PER_PREFIX, SECTION, SECTIONS,
                                      Header, file_size)


def read_header(buffer, source: str = "<buffer>",
                size: int | None = None) -> tuple[Header, dict[str, tuple]]:
    """Validate the header and section table; return them (no section is read).

    ``size`` is the whole snapshot's size when ``buffer`` holds only its start.
    """
    available = _length(buffer)
    size = available if size is None else size
    if min(size, available) < HEADER.size:
        raise SnapshotError(source, f"truncated: {min(size, available)} bytes, smaller than the "
                                    f"{HEADER.size}-byte header")
    header = Header(HEADER.unpack(_copy(buffer, 0, HEADER.size)))
    if header.magic != MAGIC:
        raise SnapshotError(source, "bad magic (not an ipallow snapshot)")
    if header.byte_order != BYTE_ORDER_MARK:
        if header.byte_order == int.from_bytes(BYTE_ORDER_MARK.to_bytes(4, "little"), "big"):
            raise SnapshotError(source, f"written on a machine of the other byte order "
                                        f"(this one is {sys.byteorder}-endian); recompile it here")
        raise SnapshotError(source, "corrupt byte-order mark")
    if header.version > FORMAT_VERSION:
        raise SnapshotError(source, f"format version {header.version} is newer than this ipallow "
                                    f"supports ({FORMAT_VERSION}); upgrade ipallow")
    if header.version < FORMAT_VERSION:
        raise SnapshotError(source, f"format version {header.version} was written by an older ipallow "
                                    f"(this one reads {FORMAT_VERSION}); compile the list again")
    if not 0 < header.n_sections <= MAX_SECTIONS or \
            header.header_size != HEADER.size + SECTION.size * header.n_sections:
        raise SnapshotError(source, "corrupt header (section count)")
    if header.file_size != size:
        what = "truncated" if size < header.file_size else "has trailing bytes"
        raise SnapshotError(source, f"{what}: expected {header.file_size} bytes, found {size}")
    if available < header.header_size:
        raise SnapshotError(source, "truncated: the section table is cut short")
    table = _copy(buffer, HEADER.size, header.header_size)
    zeroed = HEADER.pack(*[getattr(header, f) for f in Header.FIELDS[:-1]], 0)
    if _trie.checksum(zeroed + table) != header.checksum:
        raise SnapshotError(source, "header checksum mismatch (corrupt header or section table)")
    sections: dict[str, tuple] = {}
    for row in SECTION.iter_unpack(table):
        sid, item_size, offset, nbytes, count, checksum = row
        if sid not in SECTIONS:
            raise SnapshotError(source, f"unknown section id {sid}")
        name, dtype = SECTIONS[sid]
        if name in sections:
            raise SnapshotError(source, f"section {name} appears twice")
        if item_size != struct.calcsize(dtype) or nbytes != count * item_size:
            raise SnapshotError(source, f"section {name} has a wrong item size or length")
        if offset % ALIGN or offset < header.header_size or offset + nbytes > size:
            raise SnapshotError(source, f"section {name} lies outside the file or is misaligned")
        sections[name] = (offset, nbytes, count, checksum, dtype)
    _check_layout(header, sections, source)
    return header, sections


def _length(buffer) -> int:
    with memoryview(buffer) as view:
        return view.nbytes


def _copy(buffer, start: int, end: int) -> bytes:
    # Copies, and releases the view at once: a live view would keep an mmap
    # from closing (even from an exception's traceback).
    with memoryview(buffer) as view, view.cast("B") as raw:
        return bytes(raw[start:end])


def _check_layout(header: Header, sections: dict, source: str) -> None:
    required = EAGER + LAZY + (DATA if header.flags & FLAG_HAS_DATA else ())
    missing = [name for name in required if name not in sections]
    if missing:
        raise SnapshotError(source, f"missing section(s) {', '.join(missing)}")
    spans = sorted((offset, offset + nbytes, name) for name, (offset, nbytes, *_) in sections.items())
    for (_, end, name), (start, _, following) in zip(spans, spans[1:]):
        if start < end:
            raise SnapshotError(source, f"sections {name} and {following} overlap")
    for family, bits in (("4", header.dir_bits4), ("6", header.dir_bits6)):
        if not 1 <= bits <= 24 or sections["dir" + family][2] != 1 << bits:
            raise SnapshotError(source, f"IPv{family} level-0 size does not match its bit count")
    for name in PER_PREFIX:
        if sections[name][2] != header.n_prefixes:
            raise SnapshotError(source, f"section {name} does not have one row per prefix")
    if sections["reg_first"][2] != header.n_registrations + 1:
        raise SnapshotError(source, "section reg_first does not have one row per registration")
    if "data_offsets" in sections and sections["data_offsets"][2] != header.n_registrations + 1:
        raise SnapshotError(source, "section data_offsets does not have one row per registration")


def header_of_open_file(handle, name: str) -> tuple[Header, dict[str, tuple]]:
    """The validated header and section table of the snapshot open as ``handle`` (at its start)."""
    size = file_size(handle.fileno(), name)
    # Only the header and the section table, read (not mapped: a file
    # truncated meanwhile must not kill the process).
    start = handle.read(HEADER.size + SECTION.size * MAX_SECTIONS)
    return read_header(start, name, size)


def file_header(path: str | os.PathLike) -> tuple[Header, dict[str, tuple]]:
    """The validated header and section table of a snapshot file; no section is read."""
    name = os.fspath(path)
    with open(name, "rb") as handle:
        return header_of_open_file(handle, name)


def verify_section(raw, sections: dict, name: str, source: str) -> None:
    """SnapshotError unless section ``name``'s bytes ``raw`` match its checksum in the table."""
    if _trie.checksum(raw) != sections[name][3]:
        raise SnapshotError(source, f"checksum mismatch in section {name}")


def check_prefix_table(columns: dict, prefix_reg, header: Header, source: str) -> None:
    """SnapshotError unless the prefix table (``columns``: the sections of LAZY, any buffers)
    and ``prefix_reg`` are consistent, as the core's ``check_prefix_table`` judges them."""
    problem = _trie.check_prefix_table(*(columns[name] for name in LAZY), prefix_reg, header.n_prefixes)
    if problem:
        raise SnapshotError(source, f"prefix table: {problem}")


def info(path: str | os.PathLike) -> dict[str, Any]:
    """Header facts of a snapshot (validated) without loading its sections."""
    name = os.fspath(path)
    header, sections = file_header(name)
    return {
        "path": name, "format_version": header.version, "byte_order": sys.byteorder,
        "size": header.file_size, "created": header.created,
        "registrations": header.n_registrations, "prefixes": header.n_prefixes,
        "has_data": bool(header.flags & FLAG_HAS_DATA), "has_lifecycle": "lifecycle" in sections,
        "dir_bits": {4: header.dir_bits4, 6: header.dir_bits6},
        "sections": {n: {"offset": s[0], "bytes": s[1], "rows": s[2]} for n, s in sections.items()},
    }
