"""The one prefix type (``ipallow._prefixes.Prefixes``) against independent oracles.

Random prefix tables (fixed seeds) mixing every length, the 64-bit word boundary
included, are checked against ``ipaddress`` (containment by brute force) and
netaddr's ``IPSet`` (merged ranges).
"""

from __future__ import annotations

import ipaddress
import random

import netaddr
import numpy as np
import pytest

from ipallow._prefixes import Prefixes, find_overlaps, ranges_to_ints, split

BITS = {4: 32, 6: 128}


def random_networks(version: int, n: int, seed: int) -> list:
    """``n`` prefixes clustered in a small space so that many nest, touch or repeat."""
    rng = random.Random(seed)
    bits = BITS[version]
    out = []
    for _ in range(n):
        plen = rng.choice([0, 1, 2, bits // 2 - 1, bits // 2, bits // 2 + 1, bits - 2, bits - 1, bits,
                           rng.randrange(bits + 1)])
        # A few distinct high bits only, so the prefixes collide.
        value = rng.randrange(4) << (bits - 2) | rng.randrange(4) << (bits // 2) | rng.randrange(4)
        out.append(ipaddress.ip_network((value, bits), strict=False).supernet(new_prefix=plen))
    return out


def table(nets: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    values = [int(n.network_address) for n in nets]
    return (np.array([n.version for n in nets], np.uint8),
            np.array([v >> 64 for v in values], np.uint64),
            np.array([v & (2**64 - 1) for v in values], np.uint64),
            np.array([n.prefixlen for n in nets], np.uint8))


def cases():
    return [(version, seed) for version in (4, 6) for seed in range(6)]


@pytest.mark.parametrize("version, seed", cases())
def test_merged_ranges_match_netaddr(version, seed):
    nets = random_networks(version, 40, seed)
    p = split(*table(nets))[version]
    expected = [(r.first, r.last) for r in netaddr.IPSet(str(n) for n in nets).iter_ipranges()]
    assert ranges_to_ints(*p.merged_ranges()) == expected


@pytest.mark.parametrize("version, seed", cases())
def test_outermost_drops_exactly_the_covered(version, seed):
    nets = random_networks(version, 40, seed)
    p = split(*table(nets))[version]
    kept = p.outermost()
    expected = sorted({n for n in nets if not any(o != n and n.subnet_of(o) for o in nets)},
                      key=lambda n: (int(n.network_address), n.prefixlen))
    got = [ipaddress.ip_network(s) for s in kept.strings()]
    assert got == expected


@pytest.mark.parametrize("seed", range(6))
def test_find_overlaps_match_brute_force(seed):
    nets = random_networks(4, 25, seed) + random_networks(6, 25, seed + 100)
    found = find_overlaps(*table(nets))
    got = {(int(k), int(i), int(o)) for k, i, o in zip(*found)}
    expected = set()
    for i, n in enumerate(nets):
        first_same = next(j for j, m in enumerate(nets) if m == n)
        if first_same != i:
            expected.add((0, i, first_same))
            continue
        outer = [j for j, m in enumerate(nets) if m != n and m.version == n.version and n.subnet_of(m)]
        if outer:
            shortest = min(nets[j].prefixlen for j in outer)
            expected.add((1, i, min(j for j in outer if nets[j].prefixlen == shortest)))
    assert got == expected


def test_last_addresses_across_the_word_boundary():
    nets = [ipaddress.ip_network(s) for s in ("::/0", "8000::/1", "::/63", "::/64", "::/65", "::1/128")]
    p = split(*table(nets))[6]
    hi, lo = p.last_addresses()
    assert [(h << 64) | l for h, l in zip(hi.tolist(), lo.tolist())] == [int(n.broadcast_address) for n in nets]


def test_empty_table():
    p = Prefixes(6, np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.uint8))
    assert ranges_to_ints(*p.merged_ranges()) == [] and len(p.outermost()) == 0 and p.strings() == []


def test_line_count_is_splitlines_without_the_lines():
    """validate places a generated list's warnings by counting its lines; the count must be
    ``len(str.splitlines())`` for every line break splitlines knows, mixed, at either end."""
    from ipallow.commands._overlaps import _line_count
    rng = random.Random(1550)
    pieces = ["10.0.0.0/8", "", " ", "\n", "\r", "\r\n", "\n\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e",
              "\x85", "\u2028", "\u2029"]
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        assert _line_count(text) == len(text.splitlines()), repr(text)


def test_text_entries_are_the_entries_iter_text_lines_finds():
    """The list reader takes a comment-free text's entries in bulk: they must be exactly the
    entries the line-by-line reader finds (whose places messages use), for any whitespace."""
    from ipallow._parse import iter_text_lines, text_entries
    rng = random.Random(1551)
    pieces = ["10.0.0.0/8", "1.2.3.4 - 1.2.3.9", "", " ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c",
              "\x1c", "\x85", "\xa0", "\u2028", "\u3000", "# note", "#"]
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert text_entries(text) == [entry for _, _, entry in iter_text_lines(text)], repr(text)
