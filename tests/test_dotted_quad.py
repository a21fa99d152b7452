"""Dotted-quad parsing (the core has a branch-free fast path beside the exact parser)
checked against the standard library on valid, near-valid and random text."""

import ipaddress
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipallow import _trie


def stdlib(text: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def ours(text: str) -> int | None:
    try:
        version, value = _trie.parse_address(text)
    except ValueError:
        return None
    return value if version == 4 else None


def near_valid(rnd: random.Random) -> str:
    """A dotted quad with octets of 0-4 characters, sometimes a stray character or dot."""
    def octet() -> str:
        if rnd.random() < 0.85:
            return str(rnd.randrange(256))
        return rnd.choice(["", str(rnd.randrange(256, 1000)), "0" + str(rnd.randrange(100)),
                           str(rnd.randrange(10000))])
    octets = [octet() for _ in range(4 if rnd.random() < 0.9 else rnd.choice([3, 5]))]
    text = ".".join(octets)
    if rnd.random() < 0.1 and text:
        at = rnd.randrange(len(text) + 1)
        text = text[:at] + rnd.choice(". x/:0\t-") + text[at:]
    return text


def test_every_octet_width_and_value_at_each_position():
    rnd = random.Random(11)
    edge = [0, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255]
    for position in range(4):
        for value in edge:
            octets = [rnd.choice(edge) for _ in range(4)]
            octets[position] = value
            text = ".".join(map(str, octets))
            assert ours(text) == stdlib(text) == int(ipaddress.IPv4Address(text))


def test_near_valid_text_agrees_with_the_stdlib():
    rnd = random.Random(12)
    accepted = 0
    for _ in range(100_000):
        text = near_valid(rnd)
        expected = stdlib(text)
        assert ours(text) == expected, text
        accepted += expected is not None
    assert 20_000 < accepted < 90_000          # both outcomes well exercised


@pytest.mark.parametrize("text", ["1.2.3.4", "1.2.3.04", "1.2.3.256", "1.2.3.", ".1.2.3", "1.2.3.4.",
                                  "1..3.4", "1.2.3.4 ", "1.2.3.4/8", "255.255.255.255", "0.0.0.0",
                                  "255.255.255.2555", "1234.1.1.1", "1.2.3.4\x00", "１.2.3.4"])
def test_named_cases(text):
    assert ours(text) == stdlib(text)


@given(st.text(alphabet="0123456789.", max_size=17))
def test_digit_and_dot_strings_agree_with_the_stdlib(text):
    assert ours(text) == stdlib(text)
