"""Defects the fuzz harnesses (tests/fuzz/) found, each pinned by the smallest input that shows it.

The failing inputs themselves are also kept in the seed corpus (tests/fuzz/make_corpus.py, FOUND),
so tests/fuzz/test_fuzz_corpus.py replays them too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import ipallow
from ipallow import snapshot

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
    allowlist = snapshot.loads(with_data_blob(GOOD, rewrite))
    assert "10.1.2.3" in allowlist            # lookups that need no data still answer
    with pytest.raises(ipallow.SnapshotError, match="registration data"):
        allowlist.lookup("10.1.2.3")
    with pytest.raises(ipallow.SnapshotError, match="registration data"):
        list(allowlist)


def test_snapshot_registration_data_of_an_unknown_saved_type_is_a_snapshot_error():
    # A type tag this ipallow has no decoder for (e.g. written by a program that registered
    # its own type with snapshot.register_json_type) is a SnapshotError, not a bare ValueError.
    tagged = ipallow.Allowlist([("10.0.0.0/8", {"__ipallow_type__": "example.Thing", "value": 1})])
    allowlist = snapshot.loads(bytes(snapshot.to_bytes(tagged._compiled, created=0)))
    with pytest.raises(ipallow.SnapshotError, match="example.Thing"):
        allowlist.lookup("10.1.2.3")
