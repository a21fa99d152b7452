"""Shared Hypothesis strategies and input-form helpers for the ipallow tests.

Tables mix IPv4/IPv6 with nested, overlapping and duplicate prefixes: children are derived from
already drawn parents so nesting really happens, a few "hot" parents (/0, 10/8, 2001:db8::/32,
::ffff:0:0/96 ...) make independent draws collide, and every registration is handed to
``Allowlist`` in one of the documented entry forms (CIDR text, address text, range text, int,
bytes, ipaddress address/network/interface, netaddr IPAddress/IPNetwork/IPRange/IPSet),
with or without attached data.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import netaddr
import numpy as np
from hypothesis import strategies as st

from oracle import MAPPED_NET, Address, Network, normalize_network

MAX4 = 2**32 - 1
MAX6 = 2**128 - 1
MASK64 = 2**64 - 1

NO_DATA = object()  # sentinel: the registration was given without data

HOT_V4 = [ipaddress.IPv4Network(s) for s in ("0.0.0.0/0", "10.0.0.0/8", "192.168.0.0/16", "203.0.113.0/24")]
HOT_V6 = [
    ipaddress.IPv6Network(s)
    for s in ("::/0", "2001:db8::/32", "::ffff:0:0/96", "::/96", "::/64", "fe80::/10", "::fffe:0:0/95")
]

FIXED_PROBES: list[Address] = [
    ipaddress.ip_address(s)
    for s in (
        "0.0.0.0",
        "0.0.0.1",
        "1.2.3.4",
        "10.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::1.2.3.4",  # IPv4-compatible (deprecated), NOT mapped: stays IPv6
        "::ffff:0.0.0.0",
        "::ffff:1.2.3.4",
        "::ffff:255.255.255.255",
        "::fffe:ffff:ffff",  # just below the mapped block
        "::1:0:0:0",  # just above the mapped block
        "2001:db8::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    )
]


def make_network(version: int, value: int, prefixlen: int) -> Network:
    bits = 32 if version == 4 else 128
    host_mask = (1 << (bits - prefixlen)) - 1
    return ipaddress.ip_network((value & ~host_mask & ((1 << bits) - 1), prefixlen))


def mapped_network(net4: ipaddress.IPv4Network) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(((0xFFFF << 32) | int(net4.network_address), 96 + net4.prefixlen))


def mapped_address(addr4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address((0xFFFF << 32) | int(addr4))


# ---------------------------------------------------------------------------------------------
# networks


def prefixlens(version: int) -> st.SearchStrategy[int]:
    if version == 4:
        # 11-13 and 17-19 straddle the core's first-level widths (12 and 18 bits)
        common = st.sampled_from([0, 1, 8, 11, 12, 13, 16, 17, 18, 19, 23, 24, 25, 30, 31, 32])
        return st.one_of(common, st.integers(0, 32))
    # 9-11 and 15-17 straddle the core's first-level widths (10 and 16 bits)
    common = st.sampled_from([0, 1, 9, 10, 11, 15, 16, 17, 32, 48, 63, 64, 65, 95, 96, 97, 120, 127, 128])
    return st.one_of(common, st.integers(0, 128))


@st.composite
def fresh_networks(draw: st.DrawFn, version: int | None = None) -> Network:
    if version is None:
        version = draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    return make_network(version, draw(st.integers(0, (1 << bits) - 1)), draw(prefixlens(version)))


@st.composite
def children(draw: st.DrawFn, parent: Network) -> Network:
    bits = parent.max_prefixlen
    plen = draw(st.one_of(st.integers(parent.prefixlen, bits), st.just(bits)))
    offset = draw(st.integers(0, parent.num_addresses - 1))
    return make_network(parent.version, int(parent.network_address) + offset, plen)


@st.composite
def pool_network(draw: st.DrawFn, pool: list[Network]) -> Network:
    """A network that tends to nest in / overlap / duplicate what is already in ``pool``."""
    choices = ["fresh", "hot", "mapped"]
    if pool:
        choices += ["child", "child", "child", "dup", "grandchild"]
    kind = draw(st.sampled_from(choices))
    if kind == "fresh":
        return draw(fresh_networks())
    if kind == "hot":
        return draw(st.sampled_from(HOT_V4 + HOT_V6))
    if kind == "mapped":
        base = draw(st.one_of(fresh_networks(4), st.sampled_from(HOT_V4)))
        if pool and draw(st.booleans()):
            v4 = [normalize_network(n) for n in pool if normalize_network(n).version == 4]
            if v4:
                base = draw(children(draw(st.sampled_from(v4))))  # type: ignore[arg-type]
        return mapped_network(base)  # type: ignore[arg-type]
    parent = draw(st.sampled_from(pool))
    if kind == "dup":
        return parent
    child = draw(children(parent))
    if kind == "grandchild":
        child = draw(children(child))
    return child


# ---------------------------------------------------------------------------------------------
# registrations (one Allowlist item each)


@dataclass
class Registration:
    item: Any  # what is handed to Allowlist (entry or (entry, data))
    networks: list[Network]  # as registered, before IPv4-mapped normalisation
    data: Any = NO_DATA
    form: str = ""

    @property
    def normalized(self) -> list[Network]:
        return [normalize_network(n) for n in self.networks]


@dataclass
class Table:
    registrations: list[Registration] = field(default_factory=list)

    @property
    def items(self) -> list[Any]:
        return [r.item for r in self.registrations]

    @property
    def networks(self) -> list[list[Network]]:
        return [r.networks for r in self.registrations]


def network_entry_forms(net: Network) -> list[tuple[str, Any]]:
    """Every documented entry form that denotes exactly ``net``."""
    forms: list[tuple[str, Any]] = [
        ("cidr-str", str(net)),
        ("ipaddress-network", net),
        ("netaddr-network", netaddr.IPNetwork(str(net))),
        ("netaddr-ipset", netaddr.IPSet([str(net)])),
    ]
    # An interface with host bits set is a CIDR with host bits (strict-mode error), so only
    # the network address itself is used here.
    iface_cls = ipaddress.IPv4Interface if net.version == 4 else ipaddress.IPv6Interface
    forms.append(("ipaddress-interface", iface_cls((int(net.network_address), net.prefixlen))))
    if net.version == 6:
        forms.append(("cidr-str-exploded", net.exploded))
    if net.prefixlen == net.max_prefixlen:
        addr = net.network_address
        forms += [
            ("address-str", str(addr)),
            ("ipaddress-address", addr),
            ("netaddr-address", netaddr.IPAddress(int(addr), addr.version)),
            ("bytes", addr.packed),
        ]
        if addr.version == 4 or int(addr) > MAX4:
            forms.append(("int", int(addr)))
    return forms


@st.composite
def range_registrations(draw: st.DrawFn, pool: list[Network]) -> Registration:
    if pool and draw(st.booleans()):
        anchor = draw(st.sampled_from(pool))
        version = anchor.version
        start = int(anchor.network_address) + draw(st.integers(-3, 3))
    else:
        version = draw(st.sampled_from([4, 6]))
        start = draw(st.integers(0, MAX4 if version == 4 else MAX6))
    top = MAX4 if version == 4 else MAX6
    span = draw(st.one_of(st.integers(0, 300), st.integers(0, top)))
    start = min(max(start, 0), top)
    end = min(start + span, top)
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    a, b = cls(start), cls(end)
    nets = list(ipaddress.summarize_address_range(a, b))  # type: ignore[type-var]
    style = draw(st.sampled_from(["spaced", "tight", "netaddr-range"]))
    entry: Any
    if style == "spaced":
        entry = f"{a} - {b}"
    elif style == "tight":
        entry = f"{a}-{b}"
    else:
        entry = netaddr.IPRange(str(a), str(b))
    return Registration(item=entry, networks=nets, form=f"range-{style}")


@st.composite
def tables(draw: st.DrawFn, max_size: int = 20) -> Table:
    n = draw(st.integers(0, max_size))
    pool: list[Network] = []
    table = Table()
    for i in range(n):
        kind = draw(st.sampled_from(["single"] * 6 + ["range", "ipset"]))
        if kind == "range":
            reg = draw(range_registrations(pool))
        elif kind == "ipset":
            members = [draw(pool_network(pool)) for _ in range(draw(st.integers(1, 3)))]
            ipset = netaddr.IPSet([str(m) for m in members])
            nets = [ipaddress.ip_network(str(c)) for c in ipset.iter_cidrs()]
            reg = Registration(item=ipset, networks=nets, form="netaddr-ipset-multi")
        else:
            net = draw(pool_network(pool))
            form, entry = draw(st.sampled_from(network_entry_forms(net)))
            reg = Registration(item=entry, networks=[net], form=form)
        if draw(st.booleans()):
            reg.data = {"registration": i, "tag": draw(st.text(max_size=3))}
            reg.item = (reg.item, reg.data)
        pool.extend(reg.networks)
        table.registrations.append(reg)
    return table


# ---------------------------------------------------------------------------------------------
# probes


def boundary_probes(nets: list[Network]) -> set[Address]:
    """first, last, first-1, last+1 of every network (raw and normalised), plus mapped forms of IPv4."""
    out: set[Address] = set()
    for raw in nets:
        for net in {raw, normalize_network(raw)}:
            top = MAX4 if net.version == 4 else MAX6
            cls = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
            first, last = int(net.network_address), int(net.broadcast_address)
            for v in (first, last, first - 1, last + 1):
                if 0 <= v <= top:
                    out.add(cls(v))
    for a in list(out):
        if a.version == 4:
            out.add(mapped_address(a))  # type: ignore[arg-type]
    return out


@st.composite
def scenarios(draw: st.DrawFn, max_size: int = 20) -> tuple[Table, list[Address]]:
    """A random table plus the addresses to probe it with (boundaries, inside points, random)."""
    table = draw(tables(max_size=max_size))
    nets = [n for r in table.registrations for n in r.networks]
    probes = boundary_probes(nets) | set(FIXED_PROBES)
    for net in nets[:10]:
        inner = draw(children(net))
        probes.add(inner.network_address)
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            probes.add(ipaddress.IPv4Address(draw(st.integers(0, MAX4))))
        else:
            probes.add(ipaddress.IPv6Address(draw(st.integers(0, MAX6))))
    ordered = sorted(probes, key=lambda a: (a.version, int(a)))
    return table, ordered


# ---------------------------------------------------------------------------------------------
# input forms of one address (scalar) and of a list of addresses (batch)


def scalar_forms(addr: Address) -> list[tuple[str, Any]]:
    forms: list[tuple[str, Any]] = [
        ("str", str(addr)),
        ("ipaddress", addr),
        ("bytes", addr.packed),
        ("netaddr", netaddr.IPAddress(int(addr), addr.version)),
    ]
    if addr.version == 4 or int(addr) > MAX4:
        forms.append(("int", int(addr)))
    if addr.version == 6:
        forms.append(("str-exploded", addr.exploded))
        forms.append(("str-upper", str(addr).upper()))
        if addr in MAPPED_NET:
            forms.append(("str-mapped-dotted", f"::ffff:{ipaddress.IPv4Address(int(addr) & MAX4)}"))
    return forms


def v4_batches(addrs: list[ipaddress.IPv4Address]) -> list[tuple[str, Any]]:
    packed = b"".join(a.packed for a in addrs)
    return [
        ("uint32", np.array([int(a) for a in addrs], dtype=np.uint32)),
        ("uint8x4", np.frombuffer(packed, dtype=np.uint8).reshape(-1, 4)),
        ("S4", np.frombuffer(packed, dtype="S4")),
    ]


def v6_batches(addrs: list[ipaddress.IPv6Address]) -> list[tuple[str, Any]]:
    packed = b"".join(a.packed for a in addrs)
    return [
        ("uint64x2", np.array([[int(a) >> 64, int(a) & MASK64] for a in addrs], dtype=np.uint64).reshape(-1, 2)),
        ("uint8x16", np.frombuffer(packed, dtype=np.uint8).reshape(-1, 16)),
        ("S16", np.frombuffer(packed, dtype="S16")),
        ("V16", np.frombuffer(packed, dtype="V16")),
    ]


def mixed_batches(addrs: list[Address]) -> list[tuple[str, Any]]:
    strs = [str(a) for a in addrs]
    return [
        ("list-str", strs),
        ("ndarray-str", np.array(strs)),
        ("ndarray-object-str", np.array(strs, dtype=object)),
        ("list-ipaddress", list(addrs)),
        ("list-netaddr", [netaddr.IPAddress(int(a), a.version) for a in addrs]),
        ("list-bytes", [a.packed for a in addrs]),
    ]
