"""Slow, obviously-correct reference for ipallow, built only on the standard ``ipaddress`` module.

This is the test oracle and never a runtime fallback. It applies the documented semantics of
``notes/API.md`` itself, with a linear scan and no cleverness:

* an IPv6 address inside ``::ffff:0:0/96`` is looked up as the IPv4 address it maps;
* a registered IPv6 network inside ``::ffff:0:0/96`` with prefixlen >= 96 counts as the IPv4 network;
* otherwise an IPv4 address never matches an IPv6 prefix (and vice versa);
* lookup = the longest matching prefix; equal longest prefixes in several registrations -> lowest index.

``NetaddrOracle`` is a second, independent membership-only reference over ``netaddr.IPSet``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Union

import netaddr

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

MAPPED_NET = ipaddress.IPv6Network("::ffff:0:0/96")


def normalize_network(net: Network) -> Network:
    """An IPv4-mapped IPv6 network (inside ::ffff:0:0/96, prefixlen >= 96) -> the IPv4 network."""
    if net.version == 6 and net.prefixlen >= 96 and net.subnet_of(MAPPED_NET):  # type: ignore[arg-type]
        low32 = int(net.network_address) & 0xFFFFFFFF
        return ipaddress.IPv4Network((low32, net.prefixlen - 96))
    return net


def normalize_address(addr: Address) -> Address:
    """An IPv6 address inside ::ffff:0:0/96 -> the IPv4 address it maps."""
    if addr.version == 6 and addr in MAPPED_NET:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr


class Oracle:
    """Reference allowlist over a list of registrations (each a list of ``ipaddress`` networks)."""

    def __init__(self, registrations: Sequence[Iterable[Network]]):
        self.registrations: list[tuple[Network, ...]] = [
            tuple(normalize_network(n) for n in reg) for reg in registrations
        ]
        self._pairs: list[tuple[Network, int]] = [
            (net, index) for index, reg in enumerate(self.registrations) for net in reg
        ]

    def match(self, addr: Address) -> tuple[Network, int] | None:
        """(network, registration index) of the longest match, or None."""
        a = normalize_address(addr)
        best: tuple[Network, int] | None = None
        for net, index in self._pairs:
            if net.version != a.version or a not in net:
                continue
            if (
                best is None
                or net.prefixlen > best[0].prefixlen
                or (net.prefixlen == best[0].prefixlen and index < best[1])
            ):
                best = (net, index)
        return best

    def covering(self, addr: Address) -> list[tuple[Network, int]]:
        """Every (network, registration index) covering addr: longest first, ties in input order."""
        a = normalize_address(addr)
        hits = [(pos, net, index) for pos, (net, index) in enumerate(self._pairs) if net.version == a.version and a in net]
        hits.sort(key=lambda h: (-h[1].prefixlen, h[0]))
        return [(net, index) for _, net, index in hits]

    def lookup(self, addr: Address) -> int | None:
        m = self.match(addr)
        return None if m is None else m[1]

    def contains(self, addr: Address) -> bool:
        return self.match(addr) is not None


class DictOracle:
    """Longest match by exact dictionary look-ups, one per prefix length, longest first.

    Same semantics as :class:`Oracle` (and checked against it), but fast enough for tables of
    tens of thousands of prefixes: a lookup costs at most 33 / 129 dictionary probes.
    """

    def __init__(self, registrations: Sequence[Iterable[Network]]):
        self._by_key: dict[tuple[int, int, int], tuple[Network, int]] = {}
        for index, reg in enumerate(registrations):
            for raw in reg:
                net = normalize_network(raw)
                key = (net.version, net.prefixlen, int(net.network_address))
                self._by_key.setdefault(key, (net, index))  # first (lowest) index wins

    def match(self, addr: Address) -> tuple[Network, int] | None:
        a = normalize_address(addr)
        bits = a.max_prefixlen
        value = int(a)
        for plen in range(bits, -1, -1):
            masked = value & ~((1 << (bits - plen)) - 1)
            hit = self._by_key.get((a.version, plen, masked))
            if hit is not None:
                return hit
        return None

    def lookup(self, addr: Address) -> int | None:
        m = self.match(addr)
        return None if m is None else m[1]


class NetaddrOracle:
    """Membership-only reference over ``netaddr.IPSet`` (independent of ipaddress containment)."""

    def __init__(self, registrations: Sequence[Iterable[Network]]):
        self.ipset = netaddr.IPSet()
        for reg in registrations:
            for net in reg:
                self.ipset.add(netaddr.IPNetwork(str(normalize_network(net))))

    def contains(self, addr: Address) -> bool:
        a = normalize_address(addr)
        return netaddr.IPAddress(int(a), a.version) in self.ipset
