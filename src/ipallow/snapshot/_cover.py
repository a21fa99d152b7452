"""A snapshot's prefix table, verified and aggregated into its minimal CIDR cover, without numpy.

``ipallow export`` of a snapshot needs nothing else: not the tables lookups read, not the
registration data, not numpy (whose import alone takes longer than FireHOL iprange's whole
export of 100k CIDRs).  What is read is verified as :mod:`._read` verifies it on first use:
the header and section table (:func:`._header.read_header`), each section's checksum, and
the prefix table's structure (the core's ``check_prefix_table``).
"""

from __future__ import annotations

import mmap
import os

from ipallow import _trie
from ipallow.errors import SnapshotError
from ipallow.snapshot._header import check_prefix_table, header_of_open_file, verify_section
from ipallow.snapshot._layout import LAZY, aligned

#: The sections read: the prefix table and what its structure check needs.
READ = (*LAZY, "prefix_reg")


def _read_into(handle, target: memoryview, offset: int, name: str) -> None:
    handle.seek(offset)
    done = 0
    while done < len(target):
        got = handle.readinto(target[done:])
        if not got:
            raise SnapshotError(name, "truncated while being read")
        done += got


def _prefix_table(name: str):
    """``(header, sections, {section: its bytes})`` of the snapshot file ``name``, the header
    and section table validated; the sections of :data:`READ` only (not the lookup tables nor
    the registration data), or none for a registry's snapshot.

    One open file for all of it, so a file replaced meanwhile is never read half old, half new;
    each section lands in anonymous memory at a 64-byte boundary (the core reads it through
    uint64_t pointers), out of reach of a writer that rewrites or truncates the file.
    """
    with open(name, "rb", buffering=0) as handle:
        header, sections = header_of_open_file(handle, name)
        if "lifecycle" in sections:
            return header, sections, None
        places, total = {}, 0
        for section in READ:
            places[section] = total
            total += aligned(sections[section][1])
        memory = memoryview(mmap.mmap(-1, max(total, 1)))
        raw = {}
        for section in READ:
            offset, nbytes = sections[section][:2]
            raw[section] = memory[places[section]:places[section] + nbytes]
            _read_into(handle, raw[section], offset, name)
    return header, sections, raw


def read_cover(path: str | os.PathLike) -> tuple[int, tuple] | None:
    """``(registrations, cover)`` of the snapshot at ``path``: how many registrations it holds
    and the core's minimal CIDR cover of its prefixes (``_trie.aggregate_prefixes``'s tuple).

    None for a registry's snapshot (one with a lifecycle section): which of its registrations
    count depends on the time asked about, which the general loader works out.

    Raises:
        SnapshotError: the file is not a valid snapshot (as opening it would say).
        OSError: it cannot be read.
    """
    name = os.fspath(path)
    header, sections, raw = _prefix_table(name)
    if raw is None:
        return None
    columns = {}
    for section in READ:
        verify_section(raw[section], sections, section, name)
        columns[section] = raw[section].cast(sections[section][4])
    check_prefix_table(columns, columns["prefix_reg"], header, name)
    return header.n_registrations, _trie.aggregate_prefixes(
        columns["version"], columns["hi"], columns["lo"], columns["prefixlen"])
