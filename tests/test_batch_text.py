"""Batches of address text in numpy arrays, and the packed-versus-text ambiguity of S4/S16."""

from __future__ import annotations

import ipaddress
import random

import numpy as np
import pytest

import ipallow

AL = ipallow.Allowlist(["2001:db8::/32", "10.0.0.0/8", ("192.0.2.0/24", {"id": "doc"})])
TEXT = ["2001:db8:1:2::10", "10.0.0.1", "8.8.8.8", "::ffff:192.0.2.5", "2001:db9::1"]
EXPECTED = [True, True, False, True, False]


@pytest.mark.parametrize("dtype", ["U", "U40", "S20", "S40"])
def test_text_arrays_are_parsed_in_place_like_lists(dtype):
    array = np.array(TEXT, dtype=dtype)
    assert AL.contains_many(array).tolist() == EXPECTED
    assert AL.lookup_many(array).tolist() == AL.lookup_many(TEXT).tolist()
    assert AL.lookup_many(array[::2]).tolist() == AL.lookup_many(TEXT[::2]).tolist()


def test_s16_text_is_refused_rather_than_read_as_packed_bytes():
    text16 = np.array([b"2001:db8:1:2::10", b"10.0.0.1"])       # dtype S16: exactly 16 characters
    assert text16.dtype == np.dtype("S16")
    with pytest.raises(ValueError, match="holds address text, not packed addresses"):
        AL.contains_many(text16)
    assert AL.contains_many(text16.astype(str)).tolist() == [True, True]
    # Real packed addresses in S16 (or V16) still work.
    packed = np.array([ipaddress.ip_address(a).packed for a in ("2001:db8::1", "::ffff:10.1.1.1", "::1")],
                      dtype="S16")
    assert AL.contains_many(packed).tolist() == [True, True, False]
    assert AL.contains_many(packed.view("V16")).tolist() == [True, True, False]


def test_bad_row_in_a_text_array_names_its_position_and_text():
    with pytest.raises(ipallow.AddressError) as info:
        AL.contains_many(np.array(["10.0.0.1", "10.0.0.256"]))
    assert str(info.value) == "invalid IP address '10.0.0.256': octet greater than 255 at column 8"
    assert info.value.__notes__ == ["at position 1 of the batch"]
    with pytest.raises(ipallow.AddressError, match="'nope'"):
        AL.lookup_many(np.array([b"10.0.0.1", b"nope"]))


@pytest.mark.parametrize("value", [2**63, 2**64 - 1, 2**64, 2**127 + 5, 2**128 - 1])
def test_large_ints_are_ipv6(value):
    full = ipallow.Allowlist(["::/0"])
    assert value in full
    assert full.lookup(value).network == ipaddress.IPv6Network("::/0")
    assert ipaddress.IPv6Address(value) in full


@pytest.mark.parametrize("value", [-1, -2**63, -2**64 - 3, 2**128, 2**200])
def test_out_of_range_ints_are_address_errors(value):
    with pytest.raises(ipallow.AddressError, match="integer outside 0 .. 2\\*\\*128-1"):
        value in AL


def test_ipaddress_subclasses_take_the_general_path():
    class Tagged(ipaddress.IPv4Address):
        pass

    assert Tagged("10.9.9.9") in AL and Tagged("11.0.0.1") not in AL
    assert AL.lookup(ipaddress.IPv6Address("::ffff:192.0.2.1")).data == {"id": "doc"}


def test_arrow_and_pandas_columns_go_straight_to_the_batch_methods():
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    for column in (pa.array(TEXT), pa.chunked_array([TEXT[:2], TEXT[2:]]), pd.Series(TEXT),
                   pd.Series(TEXT, dtype="string[pyarrow]")):
        assert AL.contains_many(column).tolist() == EXPECTED
        assert AL.lookup_many(column).tolist() == AL.lookup_many(TEXT).tolist()
    with pytest.raises(ValueError, match="row 1: null"):
        AL.contains_many(pa.array(["10.0.0.1", None]))


def test_nul_inside_text_is_unparseable_in_every_array_form():
    for array in (np.array(["10.1.2.3\x00junk"]), np.array([b"10.1.2.3\x00junk"])):
        with pytest.raises(ipallow.AddressError, match="unexpected character"):
            AL.contains_many(array)
        assert AL._match_text_fixed(array).tolist() == [ipallow._trie.UNPARSEABLE]


# -- S4 / S16: packed bytes or text, decided row by row against a slow reading ---------------------

ADDRESS_CHARS = set(b"0123456789abcdefABCDEF.:")


def _slow_reading(rows: list[bytes]) -> tuple[str, int | None]:
    """What an S4/S16 array holds, read the obvious way: ("text", first address row),
    ("printable", None) or ("packed", None)."""
    all_printable = bool(rows)
    for i, row in enumerate(rows):
        body = row.rstrip(b"\0")
        if body and set(body) <= ADDRESS_CHARS:
            try:
                ipallow._trie.parse_address(body.decode())
                return "text", i
            except ValueError:
                pass
        all_printable = all_printable and all(0x20 <= b <= 0x7E for b in body)
    return ("printable", None) if all_printable else ("packed", None)


def _random_row(rng: random.Random, width: int) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:                                   # packed bytes, any value
        return bytes(rng.randrange(256) for _ in range(width))
    if kind == 1:                                   # printable, not an address
        body = bytes(rng.randrange(0x20, 0x7F) for _ in range(rng.randrange(width + 1)))
    elif kind == 2:                                 # address characters, valid or not
        body = bytes(rng.choice(b"0123456789abcdef.:") for _ in range(rng.randrange(1, width + 1)))
    elif kind == 3:                                 # a real address that fits
        body = rng.choice([b"1::2", b"::", b"10.0.0.1", b"2001:db8::7", b"::12", b"1.2.3.4", b"fe80::1"])
    elif kind == 4:                                 # empty
        body = b""
    else:                                           # address characters then a NUL inside
        body = b"1::" + b"\0" + b"2"
    body = body[:width]
    return body + b"\0" * (width - len(body))


@pytest.mark.parametrize("seed", range(8))
def test_s4_and_s16_arrays_are_read_like_the_slow_reading(seed):
    """Packed or text, decided over every row (the core reads the rows chunk by chunk as it
    looks them up), with the first row of address text named."""
    rng = random.Random(seed)
    seen = set()
    for _ in range(300):
        width = rng.choice((4, 16))
        n = rng.randrange(0, 12)
        # Mostly one kind with a few others mixed in, at any position.
        rows = [_random_row(rng, width) for _ in range(n)]
        if rng.random() < 0.5:
            # Packed rows ahead, sometimes past the core's first chunks of 128 rows.
            rows = [bytes(rng.randrange(256) for _ in range(width)) for _ in range(rng.randrange(400))] + rows
        if rng.random() < 0.3:
            rng.shuffle(rows)
        array = np.frombuffer(b"".join(rows), dtype=f"S{width}") if rows else np.zeros(0, f"S{width}")
        kind, row = _slow_reading(rows)
        seen.add(kind)
        if kind == "packed" or not rows:
            assert AL.lookup_many(array).tolist() == AL.lookup_many(array.view(f"V{width}")).tolist()
            continue
        with pytest.raises(ValueError) as info:
            AL.lookup_many(array)
        if kind == "text":
            assert f"row {row} (" in str(info.value) and "is address text" in str(info.value)
        else:
            assert "every row is printable text or empty" in str(info.value)
    assert seen == {"text", "printable", "packed"}         # every verdict was put to the test
