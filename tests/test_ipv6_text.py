"""IPv6 text parsing (the core reads hex-and-colon text with a fast reader, and leaves
everything else to the exact parser) checked against the standard library on every form of
valid text, near-valid text and random text.

``_trie._parse_ipv6_fast`` is the fast reader alone: whatever it accepts it must read as
``ipaddress`` does, and it must accept the common forms (else the fast path is dead code).
``_trie.parse_address`` is the whole parser, whichever reader answers.
"""

import ipaddress
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipallow import _trie


def stdlib(text: str) -> int | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version != 6 or "%" in text:       # zones are refused by ipallow on purpose
        return None
    return int(address)


def ours(text: str) -> int | None:
    try:
        version, value = _trie.parse_address(text)
    except ValueError:
        return None
    return value if version == 6 else None


def fast(text: str) -> int | None:
    return _trie._parse_ipv6_fast(text.encode("utf-8", "surrogatepass"))


def random_address(rnd: random.Random) -> int:
    """128 random bits with runs of zero groups (what '::' compresses) at random places."""
    groups = [rnd.getrandbits(rnd.choice([4, 8, 12, 16])) for _ in range(8)]
    for _ in range(rnd.randrange(3)):
        start = rnd.randrange(8)
        for k in range(start, min(8, start + rnd.randrange(1, 8))):
            groups[k] = 0
    value = 0
    for group in groups:
        value = value << 16 | group
    return value


def written_forms(value: int) -> set[str]:
    """Every way to write ``value`` with hex groups and colons: exploded, groups without
    leading zeros, and '::' in place of each run of zero groups (any part of it), in lower
    and upper case."""
    groups = [value >> (112 - 16 * k) & 0xFFFF for k in range(8)]
    plain = [f"{g:x}" for g in groups]
    forms = {":".join(f"{g:04x}" for g in groups), ":".join(plain)}
    for start in range(8):
        for end in range(start + 1, 9):
            if all(g == 0 for g in groups[start:end]):
                forms.add(":".join(plain[:start]) + "::" + ":".join(plain[end:]))
    return forms | {form.upper() for form in forms}


def test_every_form_of_random_addresses_is_read_by_the_fast_reader():
    rnd = random.Random(21)
    checked = 0
    for _ in range(3_000):
        value = random_address(rnd)
        for text in written_forms(value):
            assert stdlib(text) == value, text
            assert fast(text) == value, text
            assert ours(text) == value, text
            checked += 1
    assert checked > 20_000


@pytest.mark.parametrize("value", [0, 1, 2**128 - 1, 1 << 127, (2**64 - 1) << 64, 2**64 - 1,
                                   0x20010DB8 << 96, 0xFFFF << 32 | 0x01020304])
def test_edge_values_in_every_form(value):
    for text in written_forms(value):
        assert fast(text) == value == ours(text) == stdlib(text), text


@pytest.mark.parametrize("text", [
    "::", "::1", "1::", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", "1::8",
    "0000:0000:0000:0000:0000:0000:0000:0000", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "1:2:3:4:5:6::8", "1::3:4:5:6:7:8", "ABCD:EF01::", "aBcD::eF01",
])
def test_valid_text_the_fast_reader_takes(text):
    assert fast(text) == ours(text) == stdlib(text) is not None


@pytest.mark.parametrize("text", [
    # left to the exact parser: it refuses these (and owns the message) ...
    "", ":", ":::", "1:::2", "1::2::3", ":1::2", "1::2:", ":1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:",
    "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "12345::",
    "::12345", "1:2:3:4:5:6:7:12345", "g::", "::g", "1 ::", ":: ", "1::2%eth0", "1::/64",
    "0000:0000:0000:0000:0000:0000:0000:00000", "1:2:3:4:5:6:7:8:9:10:11:12:13", "1::\x00",
    "1:2:3:4:5:6:7::8", "::1:2:3:4:5:6:7::",
    # ... or takes, in a form the fast reader does not read (an embedded IPv4 address)
    "::ffff:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1::1.2.3.4",
])
def test_text_left_to_the_exact_parser(text):
    assert fast(text) is None
    assert ours(text) == stdlib(text)


def text_of_length(length: int) -> str:
    """A valid hex-and-colon text of ``length`` characters (2 to 39)."""
    if length >= 15:                          # eight groups of 1 to 4 digits
        digits = [1] * 8
        for k in range(length - 15):
            digits[k % 8] += 1
        return ":".join("f" * d for d in digits)
    groups, rest = [], length - 2             # '::' then groups of up to 4 digits
    while rest > 0:
        rest -= 1 if groups else 0            # the colon before this group
        d = min(4, rest)
        if rest - d == 1:                     # leave no lone colon for the next group
            d -= 1
        groups.append("e" * d)
        rest -= d
    return "::" + ":".join(groups)


def test_every_length_the_fast_reader_takes():
    """2 to 39 characters, around the reader's 16- and 32-byte blocks; 40 is too long."""
    for length in range(2, 40):
        text = text_of_length(length)
        assert len(text) == length
        assert fast(text) == stdlib(text) is not None, text
    assert fast("0" * 4 + ":0000" * 6 + ":00000") is None      # 40 characters


def test_edits_at_every_length_agree_with_the_stdlib():
    rnd = random.Random(22)
    for _ in range(40_000):
        value = random_address(rnd)
        text = rnd.choice(sorted(written_forms(value)))
        if rnd.random() < 0.5:
            at = rnd.randrange(len(text) + 1)
            text = text[:at] + rnd.choice(["0", "f", ":", "::", "00000"]) + text[at + rnd.randrange(2):]
        expected = stdlib(text)
        assert ours(text) == expected, text
        got = fast(text)
        assert got is None or got == expected, text


def near_valid(rnd: random.Random) -> str:
    """A written address with one to three characters inserted, deleted or repeated."""
    text = rnd.choice(sorted(written_forms(random_address(rnd))))
    for _ in range(rnd.randrange(1, 4)):
        at = rnd.randrange(len(text) + 1)
        roll = rnd.random()
        if roll < 0.4:
            text = text[:at] + rnd.choice("0123456789abcdefABCDEFg:.% ") + text[at:]
        elif roll < 0.7:
            text = text[:at] + text[at + 1:]
        else:
            text = text[:at] + rnd.choice(":0f") * rnd.randrange(1, 4) + text[at:]
    return text


def test_near_valid_text_agrees_with_the_stdlib():
    rnd = random.Random(23)
    valid = fast_taken = 0
    for _ in range(100_000):
        text = near_valid(rnd)
        expected = stdlib(text)
        assert ours(text) == expected, text
        got = fast(text)
        assert got is None or got == expected, text
        valid += expected is not None
        fast_taken += got is not None
    assert 10_000 < valid < 90_000             # both outcomes well exercised
    assert fast_taken > valid // 2


@given(st.text(alphabet="0123456789abcdefABCDEF:", max_size=41))
def test_hex_and_colon_strings_agree_with_the_stdlib(text):
    expected = stdlib(text)
    assert ours(text) == expected
    got = fast(text)
    assert got is None or got == expected


@given(st.binary(max_size=41))
def test_any_bytes_are_read_as_the_stdlib_reads_them_or_left(data):
    got = _trie._parse_ipv6_fast(data)
    if got is not None:
        assert got == stdlib(data.decode("ascii"))
