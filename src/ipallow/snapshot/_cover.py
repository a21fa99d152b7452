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
from ipallow.snapshot._header import read_header
from ipallow.snapshot._layout import LAZY, file_size


def _private_copy(name: str) -> memoryview:
    """The file read into anonymous memory: page-aligned (the core reads the sections through
    uint64_t pointers), and out of reach of a writer that rewrites or truncates the file."""
    with open(name, "rb", buffering=0) as handle:
        size = file_size(handle.fileno(), name)
        buffer = mmap.mmap(-1, size)
        view = memoryview(buffer)
        filled = 0
        while filled < size:
            got = handle.readinto(view[filled:])
            if not got:          # shrank while being read: the header check names it truncated
                break
            filled += got
    return view[:filled]


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
    view = _private_copy(name)
    header, sections = read_header(view, name)
    if "lifecycle" in sections:
        return None
    columns = {}
    for section in (*LAZY, "prefix_reg"):
        offset, nbytes, _count, checksum, code = sections[section]
        raw = view[offset:offset + nbytes]
        if _trie.checksum(raw) != checksum:
            raise SnapshotError(name, f"checksum mismatch in section {section}")
        columns[section] = raw.cast(code)
    problem = _trie.check_prefix_table(*(columns[section] for section in LAZY), columns["prefix_reg"],
                                       header.n_prefixes)
    if problem:
        raise SnapshotError(name, f"prefix table: {problem}")
    return header.n_registrations, _trie.aggregate_prefixes(
        columns["version"], columns["hi"], columns["lo"], columns["prefixlen"])
