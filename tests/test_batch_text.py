"""Batches of address text in numpy arrays, and the packed-versus-text ambiguity of S4/S16."""

from __future__ import annotations

import ipaddress

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
