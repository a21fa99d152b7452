"""Defects the fuzz harnesses (tests/fuzz/) found, each pinned by the smallest input that shows it.

The failing inputs themselves are also kept in the seed corpus (tests/fuzz/make_corpus.py, FOUND),
so tests/fuzz/test_fuzz_corpus.py replays them too.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import numpy as np
import pytest

import ipallow
from ipallow import snapshot
from ipallow.allowlist import loads

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))
from fuzz_snapshot import reseal  # noqa: E402  (recomputes every checksum, as a forger would)


def with_data_blob(allowlist, rewrite) -> bytes:
    """The allowlist's snapshot with its registration data bytes rewritten, checksums resealed."""
    buffer = bytearray(snapshot.to_bytes(allowlist._compiled, created=0))
    _, sections = snapshot.read_header(bytes(buffer))
    offset, nbytes = sections["data_blob"][:2]
    buffer[offset:offset + nbytes] = rewrite(bytes(buffer[offset:offset + nbytes]))
    return reseal(bytes(buffer))


GOOD = ipallow.Allowlist([("10.0.0.0/8", {"id": "A"}), ("2001:db8::/32", {"id": "B"})])


@pytest.mark.parametrize("rewrite", [
    lambda blob: b"@" + blob[1:],            # not JSON
    lambda blob: b"\xff" + blob[1:],         # not UTF-8
    lambda blob: blob.replace(b'"A"}', b'"A]}'),   # UTF-8, JSON-like, unterminated
], ids=["not-json", "not-utf8", "broken-json"])
def test_snapshot_registration_data_that_cannot_be_decoded_is_a_snapshot_error(rewrite):
    # Found by fuzz_snapshot: with the checksums resealed, bad registration data escaped from
    # lookup() and iteration as json.JSONDecodeError / UnicodeDecodeError, not SnapshotError.
    allowlist = loads(with_data_blob(GOOD, rewrite))
    assert "10.1.2.3" in allowlist            # lookups that need no data still answer
    with pytest.raises(ipallow.SnapshotError, match=r"registration 0's data cannot be decoded"):
        allowlist.lookup("10.1.2.3")
    with pytest.raises(ipallow.SnapshotError, match=r"registration 0's data cannot be decoded"):
        list(allowlist)


def test_snapshot_registration_data_of_an_unknown_saved_type_is_a_snapshot_error():
    # A type tag this ipallow has no decoder for (e.g. written by a program that registered
    # its own type with snapshot.register_json_type) is a SnapshotError, not a bare ValueError.
    tagged = ipallow.Allowlist([("10.0.0.0/8", {"__ipallow_type__": "example.Thing", "value": 1})])
    allowlist = loads(bytes(snapshot.to_bytes(tagged._compiled, created=0)))
    with pytest.raises(ipallow.SnapshotError, match="example.Thing"):
        allowlist.lookup("10.1.2.3")


# -- misaligned buffers -------------------------------------------------------------------------
# Found by the UBSan build (tools/sanitize.sh) in test_dataframe's Dask run: buffers that arrive
# through pickle protocol 5 or Arrow IPC need not be aligned, and the core read them through
# uint32_t / int64_t pointers ("load of misaligned address"): undefined behaviour, a crash on
# strict-alignment CPUs. x86 tolerates it, so on a plain build these pass either way; under
# tools/sanitize.sh they abort without the fix.

ALIGNED = ipallow.Allowlist([("10.0.0.0/8", None), ("2001:db8::/32", None), ("192.0.2.7", None)])
PROBES = ["10.1.2.3", "2001:db8::1", "192.0.2.7", "8.8.8.8", "::1"]


def misaligned(array):
    """The same values, in an array starting one byte past an aligned address."""
    raw = bytearray(array.nbytes + 1)
    raw[1:] = array.tobytes()
    view = np.frombuffer(raw, dtype=array.dtype, offset=1).reshape(array.shape)
    assert not view.flags.aligned
    return view


def expected(probes):
    return [ALIGNED._registration_index(p) for p in probes]


def test_misaligned_uint32_batch():
    values = np.array([int(ipaddress.IPv4Address(p)) for p in ("10.1.2.3", "192.0.2.7", "8.8.8.8")],
                      dtype=np.uint32)
    assert ALIGNED.lookup_many(misaligned(values)).tolist() == ALIGNED.lookup_many(values).tolist()


def test_misaligned_uint64_pairs_batch():
    ints = [int(ipaddress.IPv6Address(p)) for p in ("2001:db8::1", "::1", "::ffff:10.1.2.3")]
    values = np.array([[i >> 64, i & (2**64 - 1)] for i in ints], dtype=np.uint64)
    assert ALIGNED.lookup_many(misaligned(values)).tolist() == ALIGNED.lookup_many(values).tolist()


def test_misaligned_unicode_text_batch():
    text = np.array(PROBES, dtype="U16")
    assert ALIGNED.lookup_many(misaligned(text)).tolist() == expected(PROBES)


def test_misaligned_arrow_offsets():
    pa = pytest.importorskip("pyarrow")
    column = pa.array(PROBES, type=pa.large_string())
    _, offsets, data = column.buffers()
    shifted = pa.py_buffer(bytes(misaligned(np.frombuffer(offsets, dtype=np.int64))))
    raw = bytearray(len(shifted) + 1)
    raw[1:] = shifted.to_pybytes()
    odd = pa.py_buffer(memoryview(raw)[1:])
    assert odd.address % 8 != 0
    rebuilt = pa.Array.from_buffers(pa.large_string(), len(PROBES), [None, odd, data])
    assert ALIGNED.lookup_many(rebuilt).tolist() == expected(PROBES)


def test_snapshot_in_a_misaligned_buffer():
    buffer = bytes(snapshot.to_bytes(ALIGNED._compiled, created=0))
    raw = bytearray(len(buffer) + 1)
    raw[1:] = buffer
    served = loads(memoryview(raw)[1:])
    assert [served._registration_index(p) for p in PROBES] == expected(PROBES)
    assert served.lookup_many(PROBES).tolist() == expected(PROBES)


def test_misaligned_out_array_is_refused():
    raw = np.zeros(4 * len(PROBES) + 1, dtype=np.uint8)
    out = raw[1:].view(np.int32)
    assert not out.flags.aligned
    with pytest.raises(ValueError, match="aligned"):
        ALIGNED.lookup_many(PROBES, out=out)


def section(buffer: bytearray, name: str) -> np.ndarray:
    _, sections = snapshot.read_header(bytes(buffer))
    offset, nbytes, count, _, dtype = sections[name]
    return np.frombuffer(buffer, dtype=dtype, count=count, offset=offset)


@pytest.mark.parametrize("corrupt", ["host-bit", "ipv4-over-32-bits"])
def test_snapshot_prefix_row_with_bits_past_its_length_is_a_snapshot_error(corrupt):
    # Found by fuzz_snapshot (resealed): a prefix row such as 0.10.0.0/8 passed every check, and
    # lookup() then failed building its network with ipaddress's ValueError("... has host bits set").
    buffer = bytearray(snapshot.to_bytes(GOOD._compiled, created=0))
    version, prefixlen, lo = (section(buffer, n) for n in ("version", "prefixlen", "lo"))
    row = int(np.flatnonzero((version == 4) & (prefixlen < 32))[0])
    lo[row] |= np.uint64(1) if corrupt == "host-bit" else np.uint64(1 << 40)
    allowlist = loads(reseal(bytes(buffer)))
    expected = (f"prefix at row {row} has host bits set" if corrupt == "host-bit"
                else f"IPv4 prefix at row {row} is wider than 32 bits")
    with pytest.raises(ipallow.SnapshotError, match=expected):
        allowlist.lookup("10.1.2.3")
