"""The snapshot reader (``ipallow.loads``) on mutated snapshot bytes.

Each input is tried twice: as it is (the checksums catch most mutations) and *resealed* (every
section checksum and the header checksum recomputed over the mutated bytes, as a forger would),
so the structural checks behind the checksums are reached. Opening and every later use may
refuse the buffer only with ``SnapshotError`` (or the core's ``TableError`` for tables it cannot
walk); whatever is served must answer lookups without crashing, with the batch path agreeing with
the scalar one, and registration data must decode.

``ipallow export``'s reader of a snapshot file's prefix table (``read_cover``, no numpy) gets
each buffer too: it may refuse only as opening does, and where both serve, its CIDR cover is the
one aggregated from the opened list.

The seed corpus (tests/fuzz/corpus/snapshot/) holds valid snapshots: see make_corpus.py.
"""

from __future__ import annotations

import atexit
import os
import shutil
import struct
import tempfile

import numpy as np

from fuzz_support import ipallow, main, outcome

with __import__("fuzz_support").instrumented():
    from ipallow import _trie, export, snapshot
    from ipallow.allowlist import loads
    from ipallow.snapshot._cover import read_cover

_DIRECTORY = tempfile.mkdtemp(prefix="ipallow-fuzz-")
atexit.register(shutil.rmtree, _DIRECTORY, True)
PATH = os.path.join(_DIRECTORY, "list.ipallow")

REFUSALS = (ipallow.SnapshotError, ipallow.TableError)
PROBES = ["0.0.0.0", "10.1.2.3", "10.255.0.1", "192.0.2.200", "203.0.113.9", "255.255.255.255",
          "::", "::1", "2001:db8::1", "2001:db8:1:2::10", "fe80::1", "ffff::1", "::ffff:10.1.2.3"]


def reseal(data: bytes) -> bytes | None:
    """The bytes with every checksum recomputed, or None where the section table is unreadable."""
    header, section = snapshot.HEADER, snapshot.SECTION
    if len(data) < header.size:
        return None
    fields = list(header.unpack_from(data, 0))
    n_sections = fields[4]
    end = header.size + section.size * n_sections
    if not 0 < n_sections <= snapshot.MAX_SECTIONS or end > len(data):
        return None
    buffer = bytearray(data)
    for k in range(n_sections):
        at = header.size + section.size * k
        row = list(section.unpack_from(buffer, at))
        offset, nbytes = row[2], row[3]
        if offset + nbytes <= len(buffer):
            row[5] = _trie.checksum(bytes(buffer[offset:offset + nbytes]))
            section.pack_into(buffer, at, *row)
    fields[-1] = 0
    zeroed = header.pack(*fields)
    fields[-1] = _trie.checksum(zeroed + bytes(buffer[header.size:end]))
    header.pack_into(buffer, 0, *fields)
    return bytes(buffer)


def use(allowlist) -> None:
    """Everything a served list offers; refusals allowed only as SnapshotError / TableError."""
    scalar = []
    for probe in PROBES:
        member = probe in allowlist
        kind, index = outcome(allowlist._registration_index, probe)
        assert kind == "ok", repr(index)
        assert member == (index >= 0), probe
        scalar.append(index)
    assert allowlist.lookup_many(PROBES).tolist() == scalar
    assert allowlist.lookup_many(np.array(PROBES)).tolist() == scalar
    for probe, index in zip(PROBES, scalar):
        kind, match = outcome(allowlist.lookup, probe)
        if kind == "raised":
            assert isinstance(match, REFUSALS), repr(match)
            return                  # the lazily checked prefix table was refused: nothing more
        if match is not None:       # a served prefix table is valid: its networks are made
            assert match.index == index
            assert match.network_text == str(match.network)
            assert match.prefixlen == match.network.prefixlen
    kind, entries = outcome(list, allowlist)
    if kind == "raised":
        assert isinstance(entries, REFUSALS), repr(entries)


def cover_agrees(buffer: bytes, allowlist) -> None:
    """read_cover on the buffer as a file: refusals as opening's; its cover the opened list's."""
    with open(PATH, "wb") as handle:
        handle.write(buffer)
    kind, found = outcome(read_cover, PATH)
    if kind == "raised":
        assert isinstance(found, REFUSALS), repr(found)
        return
    if found is None or allowlist is None:
        return                  # a registry's snapshot; or opening refused a section export skips
    served, want = outcome(export.aggregate_allowlist, allowlist)
    assert served == "ok", f"read_cover took a prefix table that opening refuses: {want!r}"
    got = export.as_prefixes(found[1])
    assert found[0] == len(allowlist)
    for v in (4, 6):
        assert export.cidr_texts(got[v]) == export.cidr_texts(want[v]), v


def test_one_input(data: bytes) -> None:
    candidates = [data]
    sealed = outcome(reseal, data)
    assert sealed[0] == "ok" or isinstance(sealed[1], struct.error), repr(sealed[1])
    if sealed[0] == "ok" and sealed[1] is not None and sealed[1] != data:
        candidates.append(sealed[1])
    for buffer in candidates:
        kind, allowlist = outcome(loads, buffer)
        cover_agrees(buffer, allowlist if kind == "ok" else None)
        if kind == "raised":
            assert isinstance(allowlist, REFUSALS), repr(allowlist)
            continue
        use(allowlist)


if __name__ == "__main__":
    main(test_one_input)
