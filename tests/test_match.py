"""Allowlist.lookup and its Match: answers against the ipaddress oracle, the tuple protocol
Match keeps from its NamedTuple days, and the lazily built ``network``."""

from __future__ import annotations

import copy
import gc
import ipaddress
import pickle
import random
import sys
import threading
import weakref
from collections.abc import Sequence

import pytest

import ipallow
import ipallow.allowlist
from ipallow import Allowlist, Match, _trie

from oracle import Oracle

ALL_ONES = {4: 2**32 - 1, 6: 2**128 - 1}


def _nested_table(rng: random.Random, version: int, count: int) -> list[ipaddress._BaseNetwork]:
    """Networks nested inside one another (children of earlier ones), plus /0 and full-length hosts."""
    bits = 32 if version == 4 else 128
    make = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    nets = [make((0, 0))]
    for _ in range(count):
        parent = rng.choice(nets)
        plen = rng.randint(parent.prefixlen, bits) if rng.random() < 0.8 else rng.randint(0, bits)
        base = int(parent.network_address) if plen >= parent.prefixlen else rng.getrandbits(bits)
        value = base | (rng.getrandbits(bits) & (ALL_ONES[version] >> parent.prefixlen))
        nets.append(make((value & (ALL_ONES[version] ^ (ALL_ONES[version] >> plen)), plen)))
    return nets[1:] if rng.random() < 0.5 else nets      # with and without the default route


def _probes(rng: random.Random, nets, version: int, count: int) -> list:
    """Each network's first and last address and their neighbours, plus random addresses."""
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    values = set()
    for net in nets:
        first, last = int(net.network_address), int(net.broadcast_address)
        values.update(v for v in (first - 1, first, last, last + 1) if 0 <= v <= ALL_ONES[version])
    values.update(rng.getrandbits(32 if version == 4 else 128) for _ in range(count))
    return [make(v) for v in sorted(values)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("version", [4, 6])
def test_lookup_agrees_with_the_oracle_on_nested_tables(seed, version):
    rng = random.Random(seed * 10 + version)
    nets = _nested_table(rng, version, 150)
    registrations = [[net] for net in nets]
    al = Allowlist([(str(net), f"reg-{i}") for i, net in enumerate(nets)])
    oracle = Oracle(registrations)
    probes = _probes(rng, nets, version, 300)
    for addr in probes:
        want = oracle.match(addr)
        # an int below 2**32 means IPv4, so small IPv6 values are asked as text, bytes, objects
        as_int = int(addr) if version == 4 or int(addr) >= 2**32 else None
        for form in (str(addr), as_int, addr.packed, addr):
            if form is None:
                continue
            got = al.lookup(form)
            if want is None:
                assert got is None, (addr, form)
                continue
            net, index = want
            assert (got.index, got.data) == (index, f"reg-{index}"), (addr, form)
            assert (got.prefixlen, got.network_text) == (net.prefixlen, str(net)), (addr, form)
            assert type(got.network) is type(net) and got.network == net, (addr, form)
            assert got == Match(net, index, f"reg-{index}")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("version", [4, 6])
def test_lookup_on_a_plain_list_reads_the_registration_index_from_the_row(seed, version):
    # Without data a Match reads its registration only when .index is asked for
    # (from the matched row): it must be the same registration the oracle finds,
    # duplicates included (the first registration of a prefix wins).
    rng = random.Random(seed * 10 + version + 100)
    nets = _nested_table(rng, version, 150)
    nets += rng.sample(nets, 20)                 # the same prefix registered again, later
    al = Allowlist([str(net) for net in nets])
    oracle = Oracle([[net] for net in nets])
    for addr in _probes(rng, nets, version, 300):
        want, got = oracle.match(addr), al.lookup(str(addr))
        if want is None:
            assert got is None, addr
            continue
        again = al.lookup(addr)
        assert got == again, addr                # compared before either index is read
        assert (got.index, got.data, got.network) == (want[1], None, want[0]), addr
        assert tuple(again) == (want[0], want[1], None), addr


def test_lookup_of_ipv4_mapped_ipv6_answers_the_ipv4_prefix():
    al = Allowlist(["10.0.0.0/8", "::/0"])
    m = al.lookup("::ffff:10.1.2.3")
    assert m.network == ipaddress.IPv4Network("10.0.0.0/8") and m.network_text == "10.0.0.0/8"
    assert al.lookup("::1").network_text == "::/0"


def test_host_prefixes_and_the_default_route():
    al = Allowlist(["0.0.0.0/0", "255.255.255.255/32", "::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
                    "2001:db8::/64", "2001:db8:0:0:8000::/65"])
    assert al.lookup("255.255.255.255").network_text == "255.255.255.255/32"
    assert al.lookup("255.255.255.254").network_text == "0.0.0.0/0"
    assert al.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").prefixlen == 128
    assert al.lookup("2001:db8::8000:0:0:1").network_text == "2001:db8:0:0:8000::/65"
    assert al.lookup("2001:db8::7fff:0:0:1").network_text == "2001:db8::/64"


def test_index_and_data_do_not_build_a_network():
    al = Allowlist([("10.0.0.0/8", {"id": "A"}), ("2001:db8::/32", "B")])
    matches = [al.lookup("10.1.2.3"), al.lookup("2001:db8::1")]
    assert [(m.index, m.data, m.prefixlen, m.network_text) for m in matches] == [
        (0, {"id": "A"}, 8, "10.0.0.0/8"), (1, "B", 32, "2001:db8::/32")]
    assert al._network_cache == {}          # nothing built yet
    assert matches[0].network == ipaddress.IPv4Network("10.0.0.0/8")
    assert len(al._network_cache) == 1


def test_network_is_the_same_object_for_every_match_of_a_prefix_and_for_al_getitem():
    al = Allowlist(["10.0.0.0/8", "10.1.0.0/16"])
    a, b = al.lookup("10.1.2.3"), al.lookup("10.1.200.1")
    assert a.network is b.network is al[1].networks[0]


def test_two_threads_reading_network_get_the_same_object():
    al = Allowlist([f"10.{i}.0.0/16" for i in range(256)])
    matches = [al.lookup(f"10.{i}.1.1") for i in range(256)]
    barrier = threading.Barrier(2)
    seen: list[list] = [[], []]

    def read(slot):
        barrier.wait()
        seen[slot] = [m.network for m in matches]

    threads = [threading.Thread(target=read, args=(slot,)) for slot in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(x is y for x, y in zip(seen[0], seen[1])) and len(seen[0]) == 256
    assert [str(n) for n in seen[0]] == [f"10.{i}.0.0/16" for i in range(256)]


# ------------------------------------------------------------------ the tuple protocol

@pytest.fixture
def al():
    return Allowlist(["10.0.0.0/8", ("10.1.0.0/16", {"id": "A"}), ("2001:db8::/32", "B")])


def test_match_unpacks_indexes_and_iterates_as_its_tuple(al):
    m = al.lookup("10.1.2.3")
    network, index, data = m
    assert (network, index, data) == (ipaddress.IPv4Network("10.1.0.0/16"), 1, {"id": "A"})
    assert (m[0], m[1], m[2], m[-1], m[-3]) == (network, 1, data, data, network)
    assert m[1:] == (1, data) and m[::-1] == (data, 1, network)
    assert len(m) == 3 and list(m) == [network, 1, data] and list(reversed(m)) == [data, 1, network]
    assert 1 in m and "nope" not in m and m.count(1) == 1
    with pytest.raises(IndexError):
        m[3]
    assert isinstance(m, Sequence)
    assert Match._fields == ("network", "index", "data")
    assert m._asdict() == {"network": network, "index": 1, "data": data}
    assert m._replace(index=7) == Match(network, 7, data)
    assert Match._make([network, 1, data]) == m
    match m:
        case Match(network=net, index=1):
            assert net == network
        case _:
            pytest.fail("Match does not match its own pattern")


def test_match_equality_hash_and_order_are_its_tuples(al):
    a, b, c = al.lookup("10.1.2.3"), al.lookup("10.1.9.9"), al.lookup("10.2.0.1")
    net = ipaddress.IPv4Network("10.1.0.0/16")
    assert a == b and not a != b
    with pytest.raises(TypeError):          # as the tuple: its data, a dict, is unhashable
        hash(a)
    assert a != c and a != al.lookup("2001:db8::1")
    assert a == Match(net, 1, {"id": "A"}) and a == (net, 1, {"id": "A"})
    assert a != Match(net, 1, {"id": "other"}) and a != Match(net, 2, {"id": "A"})
    assert hash(al.lookup("2001:db8::1")) == hash((ipaddress.IPv6Network("2001:db8::/32"), 2, "B"))
    assert c < a  # 10.0.0.0/8 before 10.1.0.0/16, as tuples order
    assert a != "10.1.0.0/16" and a != None  # noqa: E711


def test_match_repr_is_the_namedtuple_repr(al):
    assert repr(al.lookup("10.1.2.3")) == (
        "Match(network=IPv4Network('10.1.0.0/16'), index=1, data={'id': 'A'})")
    assert repr(Match("x", 0, None)) == "Match(network='x', index=0, data=None)"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_match_pickles_and_copies(al, protocol):
    m = al.lookup("2001:db8::1")
    back = pickle.loads(pickle.dumps(m, protocol))
    assert type(back) is Match and back == m and back.network_text == "2001:db8::/32"
    assert copy.copy(m) == m and copy.deepcopy(m) == m


def test_match_fields_are_read_only(al):
    m = al.lookup("10.1.2.3")
    for field in ("network", "index", "data"):
        with pytest.raises(AttributeError):
            setattr(m, field, None)


def test_match_is_importable_where_users_import_it():
    assert ipallow.Match is ipallow.allowlist.Match is _trie.Match
    assert Match.__module__ == "ipallow.allowlist" and Match.__qualname__ == "Match"


def test_allowlist_lookup_is_the_core_function_described_as_a_method_of_allowlist(al):
    # The same C function as Index.lookup, whose descriptor names Allowlist: CPython keeps the
    # specialized call only while self is exactly of the descriptor's class (see below).
    method = Allowlist.__dict__["lookup"]
    assert type(method) is type(_trie.Index.__dict__["lookup"]) and method.__objclass__ is Allowlist
    assert method.__doc__ == _trie.Index.lookup.__doc__
    assert al.lookup("10.1.2.3") == _trie.Index.lookup(al, "10.1.2.3")
    assert al.lookup("2001:db8::1").data == "B" and al.lookup("11.0.0.1") is None
    with pytest.raises(TypeError):      # a descriptor of Allowlist reads only Allowlists
        Allowlist.lookup(_trie.Index(), "10.0.0.1")
    with pytest.raises(TypeError):
        _trie.method_of_subclass(int, "lookup")
    with pytest.raises(AttributeError):
        _trie.method_of_subclass(Allowlist, "no_such_method")


@pytest.mark.skipif(sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11),
                    reason="CPython 3.11's specializing interpreter: 3.12 and 3.13 show the "
                           "specialized call in dis even while it misses, so the check would "
                           "pass either way there")
def test_al_lookup_written_out_stays_on_cpythons_specialized_call(al):
    # `al.lookup(q)` in a loop: CPython specializes the call for a method descriptor whose C
    # function takes one argument, and leaves that path when self is not exactly of the
    # descriptor's class.  With Index.lookup on an Allowlist it left it on every call and was
    # specialized again every ~50 calls: 30-60 ns a call on 3.11 (benchmarks/RESULTS.md,
    # session 15).
    import dis
    import io

    def call(queries):
        return [al.lookup(q) for q in queries]

    loop = next(c for c in call.__code__.co_consts if hasattr(c, "co_code"))
    states = []
    for _ in range(40):
        call(["10.1.2.3"] * 7)
        text = io.StringIO()
        dis.dis(loop, adaptive=True, file=text)
        states.append("METHOD_DESCRIPTOR_O" in text.getvalue())
    assert all(states[5:]), states


def test_lookup_on_snapshot_and_pickled_allowlists_returns_the_data(tmp_path, al):
    path = tmp_path / "a.ipallow"
    al.save(path)
    for loaded in (ipallow.load(path), pickle.loads(pickle.dumps(al))):
        assert loaded.lookup("10.1.2.3") == al.lookup("10.1.2.3")
        assert loaded.lookup("2001:db8::1").data == "B" and loaded.lookup("11.0.0.1") is None


def test_an_index_without_answers_refuses_lookup_instead_of_reading_nothing():
    with pytest.raises(RuntimeError):
        _trie.Index().lookup("10.0.0.1")
    index = _trie.Index()
    c = Allowlist(["10.0.0.0/8"]).compiled
    with pytest.raises(RuntimeError):       # the answers follow the tables
        index._set_answers(c.version, c.hi, c.lo, c.prefixlen, None, {})
    index._set_tables(*c.tables, c.prefix_reg)
    with pytest.raises(RuntimeError):       # a bare Index has no way to load them itself
        index.lookup("10.0.0.1")
    index._set_answers(c.version, c.hi, c.lo, c.prefixlen, ["A"], {})
    index._set_answers(c.version, c.hi, c.lo, c.prefixlen, ["B"], {})   # the first answers stay
    assert index.lookup("10.0.0.1").data == "A"


def test_a_snapshot_checks_its_prefix_table_at_the_first_lookup_not_at_load(tmp_path):
    al = Allowlist([("10.0.0.0/8", "A")])
    al.save(tmp_path / "a.ipallow")
    loaded = ipallow.load(tmp_path / "a.ipallow")
    assert loaded.lookup("11.0.0.1") is None
    assert "prefixlen" not in vars(loaded.compiled) and "data" not in vars(loaded.compiled)
    assert loaded.lookup("10.1.2.3").data == "A"
    assert "prefixlen" in vars(loaded.compiled) and "data" in vars(loaded.compiled)


def test_first_lookups_racing_in_two_threads_both_answer():
    al = Allowlist([(f"10.{i}.0.0/16", i) for i in range(256)])
    barrier = threading.Barrier(2)
    got: list = [None, None]

    def first(slot):
        barrier.wait()
        got[slot] = [al.lookup(f"10.{i}.1.1").data for i in range(256)]

    threads = [threading.Thread(target=first, args=(slot,)) for slot in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [list(range(256))] * 2


def test_set_answers_checks_its_arrays():
    c = Allowlist(["10.0.0.0/8", "10.1.0.0/16"]).compiled
    for bad, error in ((c.prefixlen.astype("int64"), TypeError), (c.prefixlen[:1].copy(), ValueError)):
        index = _trie.Index()
        index._set_tables(*c.tables, c.prefix_reg)
        with pytest.raises(error):
            index._set_answers(c.version, c.hi, c.lo, bad, None, {})


# -- the cyclic garbage collector ------------------------------------------------------

def test_a_match_from_a_lookup_stays_small():
    """A gateway keeping its answers makes one Match per flow, and fresh memory costs page
    faults: a lookup's Match keeps its prefix row, not the address or a copy of the prefix
    (64 bytes with CPython's headers on 64-bit builds, against 112 before)."""
    import sys
    al = Allowlist(["10.0.0.0/8", ("2001:db8::/32", {"who": "x"})])
    for match in (al.lookup("10.1.2.3"), al.lookup("2001:db8::1")):
        assert sys.getsizeof(match) <= 64
        assert match.network_text in ("10.0.0.0/8", "2001:db8::/32")


def test_a_match_made_from_python_keeps_what_it_was_given():
    network, index, data = object(), object(), object()
    match = Match(network, index, data)
    assert match.network is network and match.index is index and match.data is data
    assert tuple(match) == (network, index, data)
    assert match._replace(index=5) == Match(network, 5, data)


def test_a_plain_list_match_is_not_followed_by_the_collector_until_it_holds_a_network():
    """A lookup on a list without data answers with a Match CPython's collector need not follow
    (it refers to nothing that could refer back), so keeping many costs no collections; once it
    holds an object that could lead back to it (its network), it is followed again."""
    al = Allowlist(["10.0.0.0/8", "10.1.0.0/16"])
    match = al.lookup("10.1.2.3")
    assert not gc.is_tracked(match)
    assert match.network == ipaddress.ip_network("10.1.0.0/16")
    assert gc.is_tracked(match)
    assert gc.is_tracked(Allowlist([("10.0.0.0/8", {"id": 1})]).lookup("10.1.2.3"))   # has data
    assert gc.is_tracked(Match(None, 1, {}))                                           # made by hand


@pytest.mark.parametrize("through", ["network", "data"])
def test_a_cycle_through_a_match_is_collected(through):
    class Box:
        pass

    box = Box()
    if through == "network":
        match = Allowlist(["10.0.0.0/8"]).lookup("10.1.2.3")
        match.network.box = box              # match -> network -> box -> match
    else:
        match = Allowlist([("10.0.0.0/8", {})]).lookup("10.1.2.3")
        match.data["box"] = box              # match -> data -> box -> match
    box.match = match
    gone = weakref.ref(box)
    del box, match
    gc.collect()
    assert gone() is None
