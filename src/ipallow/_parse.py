"""Every accepted input form -> integers the core understands.

Text is parsed by the compiled core (``_trie.parse_network`` /
``_trie.address_key``), so the C and Python paths share one parser and one
table of error messages.  This module adds what is rare and not worth C:
ranges, ``ipaddress`` and ``netaddr`` objects, ints and packed bytes as
registered entries.

A *network* here is ``(version, value, prefixlen)`` with ``value`` the first
address as an int; IPv4-mapped IPv6 networks of length >= 96 are returned as
IPv4 (they could never match otherwise: lookups of ::ffff:a.b.c.d go to IPv4).
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Any, Iterator

from ipallow import _trie
from ipallow.errors import AddressError

Network = tuple[int, int, int]          # (version, first address, prefixlen)

MAX_BITS = {4: 32, 6: 128}
_MAPPED_PREFIX = 0xFFFF << 32            # ::ffff:0:0/96

_ADDRESS_TYPES = (ipaddress.IPv4Address, ipaddress.IPv6Address)
_NETWORK_TYPES = (ipaddress.IPv4Network, ipaddress.IPv6Network)
_INTERFACE_TYPES = (ipaddress.IPv4Interface, ipaddress.IPv6Interface)


def _netaddr():
    """netaddr, if the caller could have handed us one of its objects (never imported eagerly)."""
    return sys.modules.get("netaddr")


def address_from_object(obj: Any) -> tuple[int, int]:
    """(version, value) of an ``ipaddress`` or ``netaddr`` address object.

    The core calls this for every address that is not a str, int or bytes.

    Raises:
        TypeError: ``obj`` is not an address (networks included: use a CIDR's
            address, or test coverage with ``lookup``).
    """
    if isinstance(obj, _INTERFACE_TYPES):
        return obj.version, int(obj.ip)
    if isinstance(obj, _ADDRESS_TYPES):
        return obj.version, int(obj)
    netaddr = _netaddr()
    if netaddr is not None and isinstance(obj, netaddr.IPAddress):
        return obj.version, int(obj)
    if isinstance(obj, _NETWORK_TYPES) or (
            netaddr is not None and isinstance(obj, (netaddr.IPNetwork, netaddr.IPRange))):
        raise TypeError(f"expected an IP address, got the network {type(obj).__name__} {obj}")
    raise TypeError(f"expected an IP address (str, int, bytes, ipaddress or netaddr address), "
                    f"got {type(obj).__name__}")


def _unmapped(version: int, value: int, prefixlen: int) -> Network:
    if version == 6 and prefixlen >= 96 and (value >> 32) == 0xFFFF and value >> 48 == 0:
        return 4, value & 0xFFFFFFFF, prefixlen - 96
    return version, value, prefixlen


def range_to_networks(version: int, first: int, last: int) -> list[Network]:
    """The minimal list of CIDRs covering exactly ``first..last`` (inclusive)."""
    bits = MAX_BITS[version]
    networks = []
    while first <= last:
        # The largest block that starts at `first` (alignment) and fits before `last`.
        aligned = (first & -first).bit_length() - 1 if first else bits
        size_bits = min(aligned, (last - first + 1).bit_length() - 1)
        networks.append((version, first, bits - size_bits))
        first += 1 << size_bits
    return networks


def _parse_range(text: str) -> list[Network]:
    left, _, right = text.partition("-")
    parts = []
    for part, offset in ((left, 0), (right, len(left) + 1)):
        stripped = part.strip()
        try:
            parts.append(_trie.parse_address(stripped))
        except AddressError as exc:
            column = offset + (len(part) - len(part.lstrip())) + (exc.column or 1)
            raise AddressError(text, exc.reason, column, "range") from None
    (v1, first), (v2, last) = parts
    if v1 != v2:
        raise AddressError(text, "range ends are of different IP versions", None, "range")
    if first > last:
        raise AddressError(text, "range start is after its end", None, "range")
    return [_unmapped(*net) for net in range_to_networks(v1, first, last)]


def parse_network_text(text: str, strict: bool = True) -> tuple[list[Network], int]:
    """Networks of a text entry (a CIDR, an address or a range 'a - b'), and how many had host bits masked."""
    if "-" in text:
        return _parse_range(text), 0
    version, value, prefixlen, masked = _trie.parse_network(text, strict)
    return [(version, value, prefixlen)], int(masked)


def _from_prefix(version: int, value: int, prefixlen: int, shown: Any,
                 strict: bool) -> tuple[list[Network], int]:
    host = MAX_BITS[version] - prefixlen
    masked = value & ((1 << host) - 1)
    if masked:
        if strict:
            raise AddressError(str(shown), "host bits set", None, "network")
        value &= ~((1 << host) - 1)
    return [_unmapped(version, value, prefixlen)], int(bool(masked))


def entry_networks(entry: Any, strict: bool = True) -> tuple[list[Network], int]:
    """Networks of one registered entry in any accepted form, and the masked count.

    Raises:
        TypeError: ``entry`` is of no accepted type.
        AddressError: ``entry`` is malformed (or has host bits set, when strict).
    """
    if isinstance(entry, str):
        return parse_network_text(entry, strict)
    if isinstance(entry, bool):
        raise TypeError("expected a network or address, got bool")
    if isinstance(entry, (int, bytes)):
        version, value = _trie.address_key(entry) if not isinstance(entry, int) else (
            _int_version(entry), entry)
        return [_unmapped(version, value, MAX_BITS[version])], 0
    if isinstance(entry, _NETWORK_TYPES):
        return [_unmapped(entry.version, int(entry.network_address), entry.prefixlen)], 0
    if isinstance(entry, _INTERFACE_TYPES):
        return _from_prefix(entry.version, int(entry.ip), entry.network.prefixlen, entry, strict)
    if isinstance(entry, _ADDRESS_TYPES):
        return [_unmapped(entry.version, int(entry), MAX_BITS[entry.version])], 0
    netaddr = _netaddr()
    if netaddr is not None:
        if isinstance(entry, netaddr.IPAddress):
            return [_unmapped(entry.version, int(entry), MAX_BITS[entry.version])], 0
        if isinstance(entry, netaddr.IPNetwork):
            return _from_prefix(entry.version, int(entry.ip), entry.prefixlen, entry, strict)
        if isinstance(entry, netaddr.IPRange):
            return [_unmapped(*n) for n in range_to_networks(entry.version, entry.first, entry.last)], 0
        if isinstance(entry, netaddr.IPSet):
            nets = [_unmapped(c.version, c.first, c.prefixlen) for c in entry.iter_cidrs()]
            if not nets:
                raise AddressError(repr(entry), "empty IPSet", None, "network")
            return nets, 0
    raise TypeError(f"expected a network, address or range (str, int, bytes, ipaddress or "
                    f"netaddr object), got {type(entry).__name__}")


def _int_version(value: int) -> int:
    if value < 0 or value >= 1 << 128:
        raise AddressError(str(value), "integer outside 0 .. 2**128-1", None)
    return 4 if value < 1 << 32 else 6


def split_item(item: Any) -> tuple[Any, Any]:
    """An input item -> (entry, data); a 2-tuple carries data, anything else has none."""
    if isinstance(item, tuple):
        if len(item) != 2:
            raise TypeError(f"a registration tuple must be (entry, data), got {len(item)} items")
        return item[0], item[1]
    return item, None


def _direct_network(network_type: type, address_type: type):
    """A maker of ``network_type`` objects from a first address and a prefix length known
    to be valid, which sets the attributes ``__init__`` would (5-10x faster: a registry
    makes one per network), or None when this Python's ``ipaddress`` does not give equal
    objects that way (then the ordinary constructor is used)."""
    make_netmask = network_type._make_netmask
    full = address_type._max_prefixlen
    # IPv6Address (3.9+) also has a zone slot; __init__ sets it to None for an integer.
    has_scope = "_scope_id" in getattr(address_type, "__slots__", ())

    def make(value: int, prefixlen: int):
        if prefixlen >= full - 1:          # __init__ also sets `hosts` for these two
            return network_type((value, prefixlen))
        address = object.__new__(address_type)
        address._ip = value
        if has_scope:
            address._scope_id = None
        network = object.__new__(network_type)
        network.network_address = address
        network.netmask, network._prefixlen = make_netmask(prefixlen)
        return network

    try:
        for value, prefixlen in ((0, 0), (0x0A000000, 8) if full == 32 else (0x20010DB8 << 96, 32),
                                 (1 << (full - 8), full - 8)):
            made, real = make(value, prefixlen), network_type((value, prefixlen))
            if (type(made) is not type(real) or vars(made) != vars(real) or str(made) != str(real)
                    or hash(made) != hash(real) or repr(made.network_address) != repr(real.network_address)):
                return None
    except Exception:                      # internals changed: use the constructor
        return None
    return make


_NETWORK_MAKERS = {4: _direct_network(ipaddress.IPv4Network, ipaddress.IPv4Address)
                   or (lambda value, prefixlen: ipaddress.IPv4Network((value, prefixlen))),
                   6: _direct_network(ipaddress.IPv6Network, ipaddress.IPv6Address)
                   or (lambda value, prefixlen: ipaddress.IPv6Network((value, prefixlen)))}


def network_object(version: int, value: int, prefixlen: int):
    """The ``ipaddress`` network object for (version, value, prefixlen) (value: the first
    address, host bits clear)."""
    return _NETWORK_MAKERS[version](value, prefixlen)


def iter_text_lines(text: str) -> Iterator[tuple[int, int, str]]:
    """(line number, column of the entry, entry) for each non-blank, non-comment line.

    Everything from '#' on is a comment; surrounding whitespace is ignored.
    """
    # Lines end at '\n' only (as in editors, sed and csv), not at every
    # character str.splitlines() knows ('\f', '\x85', U+2028 ...).
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        body = line.split("#", 1)[0]
        entry = body.strip()
        if entry:
            yield number, len(body) - len(body.lstrip()) + 1, entry


def text_entries(text: str) -> list[str]:
    """The entries :func:`iter_text_lines` yields, without their places.

    Without a comment anywhere, an entry is a line stripped of surrounding whitespace (a
    trailing ``\r`` included): split, strip and drop the blank ones in C, not line by line
    in Python (a third of compiling a large list that the core's one-pass scanner leaves to
    this reader: UTF-8, or a host-bits warning to place).
    """
    if "#" in text:
        return [entry for _, _, entry in iter_text_lines(text)]
    return list(filter(None, map(str.strip, text.split("\n"))))


_trie.set_object_converter(address_from_object)
