"""ipallow.diff: registrations added / removed / changed field by field, coverage gained / lost per family."""

from __future__ import annotations

import ipaddress
import random
from datetime import datetime, timedelta, timezone

import netaddr
import pytest

import ipallow
from ipallow import Allowlist, Registration, Registry, diff
from ipallow.diff import FieldChange

UTC = timezone.utc
T0 = datetime(2025, 1, 1, tzinfo=UTC)
S0 = T0.timestamp()
N = ipaddress.ip_network


def ids(records):
    return [r.id for r in records]


def test_registrations_added_removed_and_changed_field_by_field():
    old = [
        Registration("KEEP", "10.0.0.0/24", owner="a", tags=("x", "y")),
        Registration("GONE", "10.0.1.0/24"),
        Registration("EDIT", ["10.0.2.0/24", "10.0.3.0/24"], owner="a", status="active",
                     extra={"region": "Sindh", "seats": 5}),
        Registration("ORDER", ["10.0.4.0/24", "10.0.5.0/24"], tags=("p", "q")),
    ]
    new = [
        Registration("NEW", "10.0.6.0/24"),
        Registration("ORDER", ["10.0.5.0/24", "10.0.4.0/24"], tags=("q", "p")),   # order only: no change
        Registration("EDIT", ["10.0.2.0/24"], owner="b", status="suspended",
                     expires_at=T0, extra={"region": "Punjab", "contact": "c"}),
        Registration("KEEP", "10.0.0.0/24", owner="a", tags=("y", "x")),
    ]
    d = diff(old, new, at=S0 - 10)
    assert ids(d.added) == ["NEW"] and ids(d.removed) == ["GONE"] and d.unchanged == 2
    (changed,) = d.changed
    assert changed.id == "EDIT" and changed.old is not changed.new
    assert changed.fields == (
        FieldChange("networks", (N("10.0.2.0/24"), N("10.0.3.0/24")), (N("10.0.2.0/24"),)),
        FieldChange("owner", "a", "b"),
        FieldChange("status", "active", "suspended"),
        FieldChange("expires_at", None, T0),
        FieldChange("extra.contact", None, "c"),
        FieldChange("extra.region", "Sindh", "Punjab"),
        FieldChange("extra.seats", 5, None),
    )
    # coverage at S0-10: EDIT (suspended now) loses both /24s; GONE loses one; NEW gains one
    c4 = d.coverage[4]
    assert c4.gained == (N("10.0.6.0/24"),) and c4.gained_addresses == 256
    assert c4.lost == (N("10.0.1.0/24"), N("10.0.2.0/23")) and c4.lost_addresses == 768
    assert c4.old_addresses == 6 * 256 and c4.new_addresses == 4 * 256
    assert c4.lost_ranges == ((ipaddress.ip_address("10.0.1.0"), ipaddress.ip_address("10.0.3.255")),)
    assert d.coverage[6].gained == () and d.coverage[6].lost_addresses == 0
    assert bool(d)
    assert d.summary().splitlines() == [
        "registrations: +1 -1 ~1 =2",
        "IPv4: +256 addresses in 1 CIDRs, -768 addresses in 2 CIDRs",
        "IPv6: +0 addresses in 0 CIDRs, -0 addresses in 0 CIDRs",
    ]


def test_identical_sides_give_an_empty_falsy_diff():
    records = [Registration("A", ["10.0.0.0/8", "2001:db8::/32"])]
    d = diff(records, list(records))
    assert not d and d.unchanged == 1 and d.coverage[4].old_addresses == 2**24
    assert d.coverage[6].new_addresses == 2**96


def test_coverage_follows_the_lifecycle_at_the_given_instant():
    old = [Registration("A", "192.0.2.0/24", expires_at=T0)]
    new = [Registration("A", "192.0.2.0/24", expires_at=T0 + timedelta(days=30))]
    before = diff(old, new, at=S0 - 1)
    assert before.coverage[4].gained_addresses == 0 and len(before.changed) == 1
    after = diff(old, new, at=T0)          # expired in old, still valid in new
    assert after.coverage[4].gained == (N("192.0.2.0/24"),)
    assert after.at == S0


def test_whole_spaces_and_empty_sides():
    d = diff([], [Registration("ALL", ["0.0.0.0/0", "::/0"])])
    assert d.coverage[4].gained == (N("0.0.0.0/0"),) and d.coverage[4].gained_addresses == 2**32
    assert d.coverage[6].gained == (N("::/0"),) and d.coverage[6].gained_addresses == 2**128
    back = diff([Registration("ALL", ["0.0.0.0/0", "::/0"])], [Registration("X", "255.255.255.255")])
    assert back.coverage[4].lost_addresses == 2**32 - 1
    assert back.coverage[4].lost[-1] == N("255.255.255.254/32")
    assert back.coverage[4].lost_ranges == ((ipaddress.ip_address("0.0.0.0"),
                                             ipaddress.ip_address("255.255.255.254")),)
    empty = diff([], [])
    assert not empty and empty.coverage[4].gained == ()


def random_records(rng: random.Random, count: int, prefix: str) -> list[Registration]:
    out = []
    for i in range(count):
        if rng.random() < 0.6:
            plen = rng.choice([9, 12, 16, 20, 22, 24, 24, 27, 31, 32])
            value = (10 << 24) | rng.getrandbits(24)
            net = ipaddress.IPv4Network((value >> (32 - plen) << (32 - plen), plen))
            if rng.random() < 0.05:
                net = ipaddress.IPv4Network((rng.getrandbits(4) << 28, 4))      # wide, outside 10/8 too
        else:
            plen = rng.choice([33, 40, 48, 48, 56, 64, 100, 127, 128])
            value = (0x20010DB8 << 96) | rng.getrandbits(96)
            net = ipaddress.IPv6Network((value >> (128 - plen) << (128 - plen), plen))
        status = rng.choices(["active", "suspended"], [9, 1])[0]
        out.append(Registration(f"{prefix}{i}", net, status=status))
    return out


def ipset(records, version):
    return netaddr.IPSet(str(n) for r in records if r.status == "active"
                         for n in r.networks if n.version == version)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_coverage_equals_netaddr_ipset_algebra(seed):
    rng = random.Random(seed)
    shared = random_records(rng, 150, "S")
    old = shared + random_records(rng, 120, "O")
    new = [r for r in shared if rng.random() < 0.8] + random_records(rng, 120, "N")
    d = diff(old, new, at=S0)
    for version in (4, 6):
        a, b = ipset(old, version), ipset(new, version)
        gained, lost = b - a, a - b
        c = d.coverage[version]
        assert [str(n) for n in c.gained] == [str(n) for n in gained.iter_cidrs()], version
        assert [str(n) for n in c.lost] == [str(n) for n in lost.iter_cidrs()], version
        assert c.gained_addresses == gained.size and c.lost_addresses == lost.size
        assert c.old_addresses == a.size and c.new_addresses == b.size
        ranges = [(int(f), int(l)) for f, l in c.gained_ranges]
        assert sum(l - f + 1 for f, l in ranges) == c.gained_addresses
        assert all(l1 + 1 < f2 for (_, l1), (f2, _) in zip(ranges, ranges[1:]))   # disjoint, not adjacent
    assert {r.id for r in d.added} == {r.id for r in new} - {r.id for r in old}
    assert {r.id for r in d.removed} == {r.id for r in old} - {r.id for r in new}


def test_every_kind_of_side(tmp_path):
    old_csv = tmp_path / "old.csv"
    old_csv.write_text("id,cidr,status\nA,192.0.2.0/24,active\nB,198.51.100.0/24,active\n")
    new_jsonl = tmp_path / "new.jsonl"
    new_jsonl.write_text('{"id": "A", "cidr": "192.0.2.0/24", "status": "revoked"}\n'
                         '{"id": "C", "cidr": "2001:db8::/48"}\n')
    text_list = tmp_path / "list.txt"
    text_list.write_text("192.0.2.0/25\n")
    d = diff(old_csv, new_jsonl, at=S0)
    assert ids(d.added) == ["C"] and ids(d.removed) == ["B"] and d.changed[0].fields[0].field == "status"
    assert d.coverage[4].lost_addresses == 512 and d.coverage[6].gained == (N("2001:db8::/48"),)
    # a registry-built allowlist: full registry for records, its own contents for coverage
    reg_al = Allowlist.from_registry(new_jsonl, at=S0)
    same = diff(ipallow.load_registry(old_csv), reg_al, at=S0)
    assert ids(same.added) == ["C"] and same.coverage[4].lost_addresses == 512
    # plain allowlists and text lists: coverage only
    plain = diff(str(text_list), Allowlist(["192.0.2.0/24"]))
    assert plain.added == plain.removed == plain.changed == () and plain.at is None
    assert plain.coverage[4].gained == (N("192.0.2.128/25"),)
    mixed = diff(Registry(ipallow.load_registry(old_csv)), text_list, at=S0)
    assert mixed.coverage[4].lost_addresses == 384 and mixed.added == ()


@pytest.mark.parametrize("bad", [None, 5, b"x.csv", True])
def test_bad_sides_raise_type_error(bad):
    with pytest.raises(TypeError):
        diff(bad, [])
    with pytest.raises(TypeError):
        diff([], bad)


def test_missing_file_raises_os_error(tmp_path):
    with pytest.raises(OSError):
        diff(tmp_path / "missing.csv", [])


def test_plain_csv_lists_are_not_mistaken_for_registries(tmp_path):
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old.write_text("cidr,owner\n10.0.0.0/24,a\n")
    new.write_text("cidr,owner\n10.0.0.0/23,a\n")
    result = ipallow.diff(old, new)
    assert result.coverage[4].gained_addresses == 256 and result.coverage[4].lost_addresses == 0


@pytest.mark.parametrize("seed", range(4))
def test_handovers_are_the_prefixes_whose_lookup_answer_changed(seed):
    # Registrations share prefixes from a small pool of disjoint networks (so looking up a
    # prefix's first address finds that prefix): a prefix changes hands exactly when
    # lookup() on the two sides answers with different registrations -- the duplicate
    # rule of diff is the one of lookup, in any row order.
    rng = random.Random(seed)
    pool = [N(f"10.{i}.0.0/24") for i in range(12)] + [N(f"2001:db8:{i:x}::/48") for i in range(12)]

    def side():
        records = [Registration(f"PTA-{rng.randrange(1, 40)}", rng.sample(pool, rng.randrange(1, 3)),
                                status=rng.choice(["active", "active", "revoked"])) for _ in range(25)]
        unique = {r.id: r for r in records}          # one record per id
        rows = list(unique.values())
        rng.shuffle(rows)
        return Registry(rows)

    old, new = side(), side()
    d = diff(old, new, at=T0)
    al_old, al_new = Allowlist.from_registry(old, at=T0), Allowlist.from_registry(new, at=T0)
    want = []
    for net in pool:
        a, b = al_old.lookup(net.network_address), al_new.lookup(net.network_address)
        if a is not None and b is not None and a.data.id != b.data.id:
            want.append((net, a.data.id, b.data.id))
    assert [tuple(h) for h in d.handovers] == want
    assert bool(d) or not want
    # the same registries, rows in another order: the same handovers
    assert diff(Registry(list(old)[::-1]), Registry(list(new)[::-1]), at=T0).handovers == d.handovers

