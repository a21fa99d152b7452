"""The loaders' fast paths (#15) give exactly what the careful paths give, and leave every problem
to them: messages, places and rules are the careful paths'."""

from __future__ import annotations

import gc
import ipaddress
import pickle
import random

import pytest

import numpy as np

from ipallow import ParseError, _compile, _parse, _trie
from ipallow.errors import Problem
from ipallow.registry import parse_registry
from ipallow.registry._fields import check_fields, quick_fields
from ipallow.registry._rows import _csv_rows

GOOD_NETWORKS = ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32", "2001:DB8:1::/48", "198.51.100.7",
                 "198.51.100.0 - 198.51.100.9", "::ffff:192.0.2.0/120", "203.0.113.0/31", "::/0",
                 "2001:db8::1/128", " 10.1.0.0/16 "]
BAD_NETWORKS = ["10.0.0.1/24", "300.1.1.0/24", "10.0.0.0/33", "zz", "1.2.3.4 - 1.2.3.0", "", " ; ",
                "::1 - 1.2.3.4", "2001:db8::/129"]
GOOD_TIMES = [None, "", "  ", "2030-01-01", "2030-01-01T12:00:00Z", "2030-01-01T12:00:00+02:00", " 2031-05-05 "]
BAD_TIMES = ["2024-13-01", "tomorrow", 5, True, [], "0001-01-01T00:00:00+01:00"]


def random_values(rng: random.Random, bad: bool) -> dict:
    """A row's values as a loader hands them over (CSV text or JSON values), good or with faults."""
    def pick(good, wrong):
        return rng.choice(wrong) if bad and rng.random() < 0.15 else rng.choice(good)

    networks = [pick(GOOD_NETWORKS, BAD_NETWORKS) for _ in range(rng.choice([1, 1, 2, 3]))]
    values = {"id": pick(["A", " B-7 ", 12, "x"], ["", "  ", None, True, 1.5, []]),
              "networks": rng.choice([",", ";", " , "]).join(networks) if rng.random() < 0.7 else networks}
    if bad and rng.random() < 0.1:
        values["networks"] = rng.choice([None, 5, [1], {}, ["10.0.0.0/8", None]])
    optional = {"owner": pick(["", " Owner ", None, "é"], [5, []]),
                "category": pick(["other", " Call_Center ", "COMPANY_VPN"], ["", "bogus", None, 3]),
                "status": pick(["active", "Revoked ", "pending", "suspended"], ["", "gone", None]),
                "valid_from": pick(GOOD_TIMES[:4], BAD_TIMES),
                "expires_at": pick(GOOD_TIMES[:1] + GOOD_TIMES[3:], BAD_TIMES + ["1999-01-01"]),
                "tags": pick([None, "", "a", "a, b;a", ["x", " y ", "x"]], [5, [1], {"a": 1}]),
                "extra": pick([{}, {"note": "n"}, {"note": "", "site": "s"}],
                              [{"status": "x"}, {"cidr": "1"}, {1: "x"}, ["x"]])}
    for name, value in optional.items():
        if rng.random() < 0.8:
            values[name] = value
    return values


@pytest.mark.parametrize("strict", [True, False])
def test_quick_fields_stores_what_check_fields_stores_or_leaves_the_row_to_it(strict):
    rng = random.Random(15)
    used = 0
    for i in range(4000):
        values = random_values(rng, bad=i % 2 == 1)
        careful = check_fields(values, from_file=True, strict=strict)
        quick = quick_fields(values, strict)
        if careful.problems:
            assert quick is None, (values, careful.problems)
        elif quick is None:
            # only a well-formed row of the kinds quick_fields does not take may get here
            assert not isinstance(values["networks"], str) and not isinstance(values["networks"], list), values
        else:
            used += 1
            assert quick[0] == careful.values and list(quick[0]) == list(careful.values), values
            assert quick[1] == careful.masked
            assert [type(n) for n in quick[0]["networks"]] == [type(n) for n in careful.values["networks"]]
    assert used > 1000        # the fast path is the common one


def test_network_objects_are_made_directly_for_both_versions():
    """The direct maker checks itself against the constructor at import and steps aside when
    they differ; on the Pythons we support it must be in use for IPv6 too (it once stepped
    aside silently: a test network with host bits set, and no ``_scope_id`` on the address)."""
    for version in (4, 6):
        maker = _parse._NETWORK_MAKERS[version]
        assert maker.__qualname__.startswith("_direct_network"), (version, maker)
    made = _parse.network_object(6, 0x20010DB8 << 96, 32)
    assert made.network_address.scope_id is None and str(made) == "2001:db8::/32"


def test_network_object_equals_the_ipaddress_constructor():
    rng = random.Random(7)
    cases = [(4, 0, 0), (4, 0, 32), (4, 0xC0000200, 31), (6, 0, 0), (6, 1, 128), (6, 2, 127)]
    for _ in range(3000):
        version = rng.choice((4, 6))
        bits = 32 if version == 4 else 128
        prefixlen = rng.randint(0, bits)
        cases.append((version, rng.getrandbits(prefixlen) << (bits - prefixlen) if prefixlen else 0, prefixlen))
    for version, value, prefixlen in cases:
        made = _parse.network_object(version, value, prefixlen)
        real = (ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network)((value, prefixlen))
        assert type(made) is type(real) and made == real and hash(made) == hash(real)
        assert str(made) == str(real) and made.netmask == real.netmask and made.hostmask == real.hostmask
        assert made.broadcast_address == real.broadcast_address and made.num_addresses == real.num_addresses
        assert pickle.loads(pickle.dumps(made)) == real
        if real.num_addresses <= 4:
            assert list(made.hosts()) == list(real.hosts())


REGISTRY_WITH_FAULTS = (
    'id,cidr,owner,category,status,expires_at\n'
    'A,10.0.0.0/8,Ann,other,active,2030-01-01\n'
    'B,10.0.0.1/24,Bob,other,active,\n'                         # host bits (line 3)
    '"C\n",192.0.2.0/24,"two\nlines",bogus,active,\n'           # over three lines, bad category
    'D, 198.51.100.0/24 ;zz,Dee,other,  ,never\n'                # bad network piece, empty status, time
    '"E",2001:db8::/32,"Eve, ""E""",other,active,2030-01-01\n'
    'A,10.0.0.0/8,Ann,other,revoked,2030-01-01\n'                # duplicate id, different status
)


def test_csv_problems_are_placed_as_the_positions_read_places_them():
    with pytest.raises(ParseError) as caught:
        parse_registry(REGISTRY_WITH_FAULTS, "r.csv")
    places = [(p.line, p.column) for p in caught.value.problems]
    # the oracle: the cells' places read with positions for every record (the former way)
    cells = _csv_rows(REGISTRY_WITH_FAULTS, "r.csv", [], positions=True)
    assert (3, cells[1]["networks"].column) in places                     # B's network
    assert cells[2]["category"].line == 6 and (6, cells[2]["category"].column) in places
    assert cells[3]["networks"].column == 3 and (7, 3 + len(" 198.51.100.0/24 ;")) in places
    assert (7, cells[3]["status"].column) in places and (7, cells[3]["expires_at"].column) in places
    assert (9, cells[5]["id"].column) in places
    assert "duplicate id 'A' with different status than line 2" in str(caught.value)
    assert len(places) == 6


def test_csv_rows_without_positions_have_the_same_values():
    with_positions = _csv_rows(REGISTRY_WITH_FAULTS, "r.csv", [], positions=True)
    without = _csv_rows(REGISTRY_WITH_FAULTS, "r.csv", [], positions=False)
    assert [{k: c.value for k, c in row.items()} for row in without] == \
           [{k: c.value for k, c in row.items()} for row in with_positions]
    # a record on one line waits for its columns; the one over three lines has them
    assert without[0]["id"].column < 0 and without[2] == with_positions[2]


@pytest.mark.parametrize("enabled", [True, False])
def test_a_load_leaves_the_cyclic_collector_as_it_found_it(enabled):
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        parse_registry("id,cidr\nA,10.0.0.0/8\n", "ok.csv")
        assert gc.isenabled() is enabled
        with pytest.raises(ParseError):
            parse_registry("id,cidr\nA,10.0.0.1/8\n", "bad.csv")
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_block_ranges_compile_as_one_by_one(monkeypatch):
    """Text ranges of both versions are compiled in bulk (one CIDR block or several); the result,
    and the problems of the items left to the one-by-one path, are those of that path alone."""
    rng = random.Random(11)
    items: list = []
    for _ in range(5000):
        v6 = rng.random() < 0.3
        bits, net_type, addr_type = (128, ipaddress.IPv6Network, ipaddress.IPv6Address) if v6 else (
            32, ipaddress.IPv4Network, ipaddress.IPv4Address)
        prefixlen = rng.randint(0, bits)
        network = net_type((rng.getrandbits(prefixlen) << (bits - prefixlen) if prefixlen else 0, prefixlen))
        first, last = network.network_address, network.broadcast_address
        ragged = addr_type(min(int(first) + rng.randint(0, 999), 2**bits - 1))
        items.append(rng.choice([f"{first} - {last}", f"{first}-{last}", f" {first}\t- {last}\r",
                                 (f"{first} - {last}", "data"), str(network), f"{first} - {ragged}",
                                 f"::ffff:{ipaddress.IPv4Address(rng.getrandbits(32))} - ::ffff:255.255.255.255",
                                 rng.choice(["1.2.3.4 - 1.2.3.0", "::1 - ::2", "1.2.3.0/24 - 1.2.3.255",
                                             "1.2.3.4-", "::ffff:1.2.3.0 - ::ffff:1.2.3.255", "a - b",
                                             "1.2.3.4 - 1.2.3.7 - 1.2.3.9", "0.0.0.0 - 255.255.255.255",
                                             "1.2.3.4 - 1.2.3.5 # note", "1.2.3.4 -\n1.2.3.5", "1.2.3.4 – 1.2.3.5",
                                             ":: - ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"])]))

    def compiled():
        problems: list = []
        _compile.compile_entries(items, on_error=lambda i, exc: problems.append((i, type(exc), str(exc))))
        bad = {i for i, _, _ in problems}
        result = _compile.compile_entries([item for i, item in enumerate(items) if i not in bad])
        fields = ("version", "hi", "lo", "prefixlen", "reg_first", "prefix_reg", "reg_rows")
        return [np.asarray(getattr(result, f)).tolist() for f in fields], result.data, problems

    cut = []
    real_bulk = _compile._ranges_in_bulk
    monkeypatch.setattr(_compile, "_ranges_in_bulk", lambda *args: cut.append(real_bulk(*args)) or cut[-1])
    bulk = compiled()
    assert any(blocks is not None and (blocks.version == 6).any() for blocks in cut)   # the bulk path ran
    monkeypatch.setattr(_compile, "_ranges_in_bulk", lambda *args: None)
    assert bulk == compiled()
    assert bulk[2]       # some items were bad


@pytest.mark.parametrize("seed", range(3))
def test_a_text_list_with_ranges_loads_as_the_general_reader_loads_it(seed):
    """The core's one-pass reader takes networks and ranges of both versions; the compiled list is
    the general reader's (text_entries, then compile_entries), field for field; a list with a
    bad range still goes to the general reader and fails with its line and column."""
    from ipallow import loaders
    rng = random.Random(40 + seed)
    lines = []
    for _ in range(3000):
        prefixlen = rng.choice([rng.randint(0, 32), 32, 24])
        net4 = ipaddress.IPv4Network((rng.getrandbits(32) >> (32 - prefixlen) << (32 - prefixlen)
                                      if prefixlen else 0, prefixlen))
        prefixlen = rng.choice([rng.randint(0, 128), 128, 48])
        net6 = ipaddress.IPv6Network((rng.getrandbits(128) >> (128 - prefixlen) << (128 - prefixlen)
                                      if prefixlen else 0, prefixlen))
        net = rng.choice([net4, net6])
        first = net.network_address
        last = type(first)(min(int(first) + rng.randint(0, 5000), int(net.broadcast_address)))
        lines.append(rng.choice([str(net), f"{first} - {last}", f" {first}-{net.broadcast_address}\t",
                                 f"::ffff:{net4.network_address} - ::ffff:{net4.broadcast_address}",
                                 f"{first} - {last}  # a note", "", "# comment"]))
    text = "\n".join(lines) + "\n"
    assert _trie.scan_network_text(text.encode()) is not None           # the core reads it all
    fast = loaders.load_bytes(text.encode(), "list.txt", format="txt").compiled
    careful = loaders._compile_or_raise(*loaders._text_items(text), "list.txt", True)
    for field in ("version", "hi", "lo", "prefixlen", "reg_first", "prefix_reg", "reg_rows"):
        assert np.array_equal(getattr(fast, field), getattr(careful, field)), field
    for got, want in zip(fast.tables, careful.tables):
        assert np.array_equal(got, want)
    at = rng.randrange(len(lines))
    lines[at] = "192.0.2.9 -  192.0.2.1"
    with pytest.raises(ParseError) as caught:
        loaders.load_bytes(("\n".join(lines) + "\n").encode(), "list.txt", format="txt")
    assert caught.value.problems == [Problem("list.txt", at + 1, 1, "invalid range '192.0.2.9 -  "
                                                                    "192.0.2.1': range start is after its end")]
