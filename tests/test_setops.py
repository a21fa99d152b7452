"""Set algebra (issue #13): Allowlist |, &, - and union / intersection / difference, covers /
overlaps, and ``ipallow merge | common | except``.

Checked against two independent references: ``ipaddress`` (tests/oracle.py's longest-match
Oracle per operand, and ``collapse_addresses`` for address sets) and ``netaddr.IPSet``'s own set
operations.  Tables are Hypothesis-drawn (derandomized: fixed seeds) with nesting, duplicates,
v4/v6 mixes, /0, /32, /128 and IPv4-mapped networks; probes are the first and last address of
every prefix and their neighbours.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import netaddr
import pytest
from hypothesis import given, strategies as st

import ipallow
from ipallow import AddressError, Allowlist, export, setops
from oracle import Oracle, normalize_address, normalize_network
from strategies import FIXED_PROBES, boundary_probes, children, tables

OPERATORS = {"union": "__or__", "intersection": "__and__", "difference": "__sub__"}


# ---------------------------------------------------------------------------------------------
# helpers: operands with one recognisable datum per registration, and the references


def entry_of(item):
    return item[0] if isinstance(item, tuple) else item


def operand(table, k):
    """The table as an Allowlist whose registration i carries the datum 'k:i'."""
    return Allowlist([(entry_of(item), f"{k}:{i}") for i, item in enumerate(table.items)])


def netaddr_set(table) -> netaddr.IPSet:
    return netaddr.IPSet(str(normalize_network(n)) for reg in table.networks for n in reg)


def netaddr_result(operation, sets):
    result = sets[0].copy()
    for other in sets[1:]:
        result = {"union": result | other, "intersection": result & other,
                  "difference": result - other}[operation]
    return result


def expected_answer(operation, oracles, address):
    """(operand, registration index) that answers ``address`` in the result, or None."""
    covered = [o.contains(address) for o in oracles]
    if operation == "union":
        k = next((k for k, c in enumerate(covered) if c), None)
    elif operation == "intersection":
        k = 0 if all(covered) else None
    else:
        k = 0 if covered[0] and not any(covered[1:]) else None
    return None if k is None else (k, oracles[k].lookup(address))


def ipaddress_texts(ipset: netaddr.IPSet) -> set[str]:
    """netaddr writes some IPv6 networks as ::a.b.c.d: compare ipaddress's texts."""
    return {str(ipaddress.ip_network(str(c))) for c in ipset.iter_cidrs()}


def cidr_texts(allowlist) -> set[str]:
    agg = export.aggregate_allowlist(allowlist)
    return set(export.cidr_texts(agg[4]) + export.cidr_texts(agg[6]))


# ---------------------------------------------------------------------------------------------
# the algebra against the references


@given(st.lists(tables(max_size=10), min_size=2, max_size=3), st.sampled_from(sorted(OPERATORS)),
       st.booleans())
def test_result_covers_the_set_and_answers_as_the_leftmost_covering_operand(operand_tables, operation,
                                                                              as_operator):
    operands = [operand(t, k) for k, t in enumerate(operand_tables)]
    if as_operator and len(operands) == 2:
        result = getattr(operands[0], OPERATORS[operation])(operands[1])
    else:
        result = getattr(operands[0], operation)(*operands[1:])
    assert type(result) is Allowlist

    # The address set, against netaddr's own set operations.
    expected_set = netaddr_result(operation, [netaddr_set(t) for t in operand_tables])
    assert cidr_texts(result) == ipaddress_texts(expected_set)

    # Every boundary of every operand's and the result's prefixes, and their neighbours.
    oracles = [Oracle(t.networks) for t in operand_tables]
    nets = [n for t in operand_tables for reg in t.networks for n in reg]
    nets += [n for entry in result for n in entry.networks]
    for address in sorted(boundary_probes(nets) | set(FIXED_PROBES), key=lambda a: (a.version, int(a))):
        answer = expected_answer(operation, oracles, address)
        match = result.lookup(address)
        assert (address in result) == (answer is not None) == (match is not None), address
        if answer is None:
            continue
        k, index = answer
        assert match.data == f"{k}:{index}", (address, match)
        # The network answering is the operand's own, or the part of it that is in the result.
        own, _ = oracles[k].match(address)
        assert normalize_address(address) in match.network and match.network.subnet_of(own)

    # Registrations: in operand order, then each operand's own order; networks inside their own.
    order = [tuple(map(int, e.data.split(":"))) for e in result]
    assert order == sorted(order) and len(set(order)) == len(order)
    for entry in result:
        k, index = map(int, entry.data.split(":"))
        registered = [normalize_network(n) for n in operand_tables[k].networks[index]]
        assert all(any(n.version == r.version and n.subnet_of(r) for r in registered)
                   for n in entry.networks), entry


@given(st.lists(tables(max_size=12), min_size=1, max_size=4), st.sampled_from(sorted(OPERATORS)))
def test_address_set_is_the_minimal_cidr_list_of_the_result(operand_tables, operation):
    # The path `ipallow merge | common | except` writes: no registrations, only the set.
    compiled = [Allowlist(t.items).compiled for t in operand_tables]
    got = setops.address_set(operation, compiled)
    expected = netaddr_result(operation, [netaddr_set(t) for t in operand_tables])
    for version in (4, 6):
        texts = got[version].strings()
        # Sorted and minimal: exactly ipaddress's own collapse of the same addresses.
        reference = ipaddress.collapse_addresses(
            ipaddress.ip_network(str(c)) for c in expected.iter_cidrs() if c.version == version)
        assert texts == [str(n) for n in reference]


def test_union_answers_from_the_left_operand_and_fills_in_from_the_right():
    a = Allowlist([("10.0.0.0/8", "A"), ("10.1.0.0/16", "A-inner")])
    b = Allowlist([("10.1.2.0/24", "B-inside-A"), ("11.0.0.0/8", "B"), ("0.0.0.0/0", "B-all")])
    result = a | b
    assert result.lookup("10.1.2.3").data == "A-inner"          # a covers it: a's answer, though b's is longer
    assert result.lookup("10.200.0.1").data == "A"
    assert result.lookup("11.0.0.1").data == "B"
    m = result.lookup("12.0.0.1")
    assert m.data == "B-all" and m.network == ipaddress.ip_network("12.0.0.0/6")   # /0 outside a and 11/8
    assert [e.data for e in result] == ["A", "A-inner", "B", "B-all"]          # B-inside-A answers nowhere
    assert [str(n) for n in result[0].networks] == ["10.0.0.0/8"]              # kept whole
    assert (b | a).lookup("10.1.2.3").data == "B-inside-A"


def test_a_cut_prefix_leaves_a_block_to_the_longer_prefix_that_answers_there():
    # a & b keeps 10.0.0.0/16 of both A (/8, cut) and B (/16, whole): B answers there, as in a.
    a = Allowlist([("10.0.0.0/8", "A"), ("10.0.0.0/16", "B")])
    result = a & Allowlist(["10.0.0.0/16"])
    assert [(e.data, [str(n) for n in e.networks]) for e in result] == [("B", ["10.0.0.0/16"])]
    # The same with A registered twice: the first answers, as in a.
    twice = Allowlist([("10.0.0.0/8", "A1"), ("10.0.0.0/8", "A2")]) & Allowlist(["10.0.0.0/16"])
    assert twice.lookup("10.0.0.1").data == "A1"


def test_difference_cuts_the_first_operands_prefixes_and_keeps_their_data():
    a = Allowlist([("0.0.0.0/0", "all4"), ("::/0", "all6")])
    result = a - Allowlist(["0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"])
    for address, inside in (("0.0.0.0", False), ("0.0.0.1", True), ("255.255.255.254", True),
                            ("255.255.255.255", False), ("::", False), ("::1", True),
                            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", True),
                            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", False)):
        assert (address in result) is inside, address
    assert len(result[0].networks) == 62 and len(result[1].networks) == 254    # 2 * (bits - 1)
    assert result.lookup("1.2.3.4").data == "all4"


def test_ipv6_blocks_across_the_64_bit_word_boundary_keep_address_order():
    # Found by the property test: blocks of one range were ordered by their low word only, so
    # a block below a 64-bit boundary sorted after the block above it and was lost.
    b = Allowlist(["2001:db8::/32", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"])
    assert (Allowlist() | b).covers("2001:db8::/32")
    assert [str(p) for p in setops.address_set("union", [b.compiled])[6].strings()] == [
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff/128", "2001:db8::/32"]
    a = Allowlist([("::/48", "inner"), ("::/33", "outer")])
    assert (a - Allowlist(["::/65"])).lookup("::8000:0:0:0").data == "inner"


def test_ipv4_and_ipv6_never_mix_but_mapped_networks_are_ipv4():
    assert len(Allowlist(["::/0"]) & Allowlist(["0.0.0.0/0"])) == 0
    assert len(Allowlist(["::/0"]) - Allowlist(["0.0.0.0/0"])) == 1
    mapped = Allowlist(["::ffff:10.0.0.0/104"])            # registered as 10.0.0.0/8
    assert (mapped & Allowlist(["10.1.0.0/16"])).covers("10.1.0.0/16")


def test_no_others_and_empty_operands():
    a = Allowlist([("10.0.0.0/8", "A"), ("2001:db8::/32", "B")])
    for result in (a.union(), a.intersection(), a.difference(), a | Allowlist(), a - Allowlist()):
        assert [(e.data, e.networks) for e in result] == [(e.data, e.networks) for e in a]
    assert len(a & Allowlist()) == 0 and len(Allowlist() | Allowlist()) == 0
    assert len(Allowlist() - a) == 0


def test_methods_take_iterables_of_entries_and_operators_take_allowlists_only():
    a = Allowlist(["10.0.0.0/8"])
    assert a.union(["11.0.0.0/8"], ("12.0.0.0/8",)).covers("10.0.0.0/7")
    assert a.difference(["10.0.0.0/9"]).covers("10.128.0.0/9") and not a.difference(["10.0.0.0/9"]).overlaps("10.0.0.0/9")
    for bad in (["11.0.0.0/8"], "11.0.0.0/8", {"11.0.0.0/8"}, None, 1):
        for op in ("|", "&", "-"):
            with pytest.raises(TypeError):
                eval(f"a {op} bad")
    with pytest.raises(TypeError, match="wrap it in a list"):
        a.union("11.0.0.0/8")
    with pytest.raises(TypeError):
        a.intersection(None)
    with pytest.raises(AddressError):
        a.difference(["11.0.0.0/33"])


def test_registry_operands_keep_their_registrations_and_the_result_saves(tmp_path):
    registry = Allowlist.from_registry(ipallow.SAMPLE_LIST)
    extra = Allowlist([("203.0.113.0/25", {"id": "EXTRA"}), ("192.0.2.0/24", {"id": "DOC"})])
    merged = extra | registry
    assert merged.lookup("203.0.113.9").data == {"id": "EXTRA"}
    assert merged.lookup("203.0.113.200").data.id == "PTA-0003"       # a Registration, outside extra
    assert (registry - extra).lookup("203.0.113.200").data.id == "PTA-0003"
    assert "203.0.113.9" not in registry - extra
    path = tmp_path / "merged.ipallow"
    merged.save(path)
    loaded = ipallow.load(path)
    for address in ("203.0.113.9", "203.0.113.200", "192.0.2.1", "198.51.100.7", "8.8.8.8"):
        before, after = merged.lookup(address), loaded.lookup(address)
        assert (before is None) == (after is None)
        if before is not None:
            assert (after.network, after.index) == (before.network, before.index)
            assert registry_label(after.data) == registry_label(before.data)


def registry_label(data):
    return ipallow.allowlist.registration_label(data, -1)


# ---------------------------------------------------------------------------------------------
# covers / overlaps


@st.composite
def tables_and_queries(draw):
    table = draw(tables(max_size=12))
    nets = [normalize_network(n) for reg in table.networks for n in reg]
    queries = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["child", "parent", "same", "fresh"] if nets else ["fresh"]))
        if kind == "fresh":
            version = draw(st.sampled_from([4, 6]))
            bits = 32 if version == 4 else 128
            plen = draw(st.integers(0, bits))
            value = draw(st.integers(0, (1 << bits) - 1)) >> (bits - plen) << (bits - plen)
            queries.append(ipaddress.ip_network((value, plen)))
        else:
            net = draw(st.sampled_from(nets))
            if kind == "child":
                net = draw(children(net))
            elif kind == "parent":
                net = net.supernet(new_prefix=draw(st.integers(0, net.prefixlen)))
            queries.append(net)
    return table, queries


@given(tables_and_queries())
def test_covers_and_overlaps_against_ipaddress_and_netaddr(table_and_queries):
    table, queries = table_and_queries
    al = Allowlist(table.items)
    collapsed = list(ipaddress.collapse_addresses(n for n in (normalize_network(m) for reg in table.networks
                                                              for m in reg) if n.version == 4))
    collapsed += list(ipaddress.collapse_addresses(n for n in (normalize_network(m) for reg in table.networks
                                                               for m in reg) if n.version == 6))
    ipset = netaddr_set(table)
    for query in queries:
        # ipaddress: the collapsed list is of maximal blocks, so a covered network lies in one.
        covered = any(c.version == query.version and query.subnet_of(c) for c in collapsed)
        overlapping = any(c.version == query.version and query.overlaps(c) for c in collapsed)
        other = netaddr.IPSet([str(query)])
        assert covered == other.issubset(ipset) and overlapping == (not other.isdisjoint(ipset))
        for form in (str(query), query, netaddr.IPNetwork(str(query))):
            assert al.covers(form) is covered, (query, form)
            assert al.overlaps(form) is overlapping, (query, form)


def test_covers_and_overlaps_across_several_prefixes_and_at_the_edges():
    al = Allowlist(["10.0.0.0/9", "10.128.0.0/9", "12.0.0.0/8", "::/1", "8000::/1"])
    assert al.covers("10.0.0.0/8") and not al.covers("10.0.0.0/7") and al.overlaps("10.0.0.0/7")
    assert al.covers("10.0.0.0 - 10.255.255.255") and not al.covers("10.0.0.0 - 11.0.0.0")
    assert not al.overlaps("11.0.0.0/8") and al.overlaps("11.255.255.255 - 12.0.0.0")
    assert al.covers("::/0") and al.covers("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")
    assert not al.covers("0.0.0.0/0") and al.overlaps("0.0.0.0/0")
    assert al.covers(ipaddress.ip_address("12.1.2.3")) and not al.overlaps("9.255.255.255")
    assert al.covers("::ffff:12.0.0.0/104")                   # the IPv4 network 12.0.0.0/8
    assert not Allowlist().overlaps("0.0.0.0/0") and not Allowlist().covers("::/128")


@pytest.mark.parametrize("bad", [None, 1.5, True, ("10.0.0.0/8", "data"), ["10.0.0.0/8"], object()])
def test_covers_and_overlaps_refuse_other_types(bad):
    al = Allowlist(["10.0.0.0/8"])
    with pytest.raises(TypeError):
        al.covers(bad)
    with pytest.raises(TypeError):
        al.overlaps(bad)


@pytest.mark.parametrize("bad", ["10.0.0.1/8", "10.0.0.0/33", "nonsense", "", "10.0.0.9 - 10.0.0.1",
                                 "2001:db8::/129"])
def test_covers_and_overlaps_refuse_bad_text_with_a_value_error(bad):
    al = Allowlist(["10.0.0.0/8"])
    for method in (al.covers, al.overlaps):
        with pytest.raises(AddressError) as info:
            method(bad)
        assert isinstance(info.value, ValueError)


def test_a_network_given_to_in_is_still_a_type_error():
    al = Allowlist(["10.0.0.0/8"])
    for network in (ipaddress.ip_network("10.0.0.0/8"), netaddr.IPNetwork("10.0.0.0/8")):
        with pytest.raises(TypeError):
            network in al  # noqa: B015


# ---------------------------------------------------------------------------------------------
# ipallow merge | common | except, end to end


def run(*args, stdin=None):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "ipallow.cli", *map(str, args)], capture_output=True,
                          text=True, input=stdin, env=env, timeout=120)


@pytest.fixture
def inputs(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("# a text list\n10.0.0.0/8\n192.0.2.0 - 192.0.2.255\n2001:db8::/32\n")
    listed = tmp_path / "listed.csv"
    listed.write_text("cidr,owner\n10.1.0.0/16,a\n11.0.0.0/8,b\n2001:db8:1::/48,c\n")
    registry = tmp_path / "registry.jsonl"
    registry.write_text(
        json.dumps({"id": "R-1", "networks": ["10.0.0.0/9"], "status": "active"}) + "\n"
        + json.dumps({"id": "R-2", "networks": ["2001:db8::/33"], "status": "revoked"}) + "\n")
    snapshot = tmp_path / "snapshot.ipallow"
    Allowlist(["10.2.0.0/16", "::/0"]).save(snapshot)
    return {"plain": plain, "listed": listed, "registry": registry, "snapshot": snapshot}


@pytest.mark.parametrize("command,operation", [("merge", "union"), ("common", "intersection"),
                                               ("except", "difference")])
def test_commands_write_the_result_as_a_sorted_minimal_cidr_list(tmp_path, inputs, command, operation):
    files = [inputs[k] for k in ("plain", "listed", "registry", "snapshot")]
    out = tmp_path / "out.txt"
    result = run(command, *files, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and f"ipallow {command}: 4 lists ->" in result.stderr
    # Reference: netaddr on what each file allows (the revoked registration counts for nothing).
    sets = [netaddr.IPSet(["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]),
            netaddr.IPSet(["10.1.0.0/16", "11.0.0.0/8", "2001:db8:1::/48"]),
            netaddr.IPSet(["10.0.0.0/9"]),
            netaddr.IPSet(["10.2.0.0/16", "::/0"])]
    expected = [str(ipaddress.ip_network(str(c))) for c in netaddr_result(operation, sets).iter_cidrs()]
    assert out.read_text().splitlines() == expected
    # stdout by default, the same bytes.
    again = run(command, *files, "-q")
    assert again.returncode == 0 and again.stdout == out.read_text() and again.stderr == ""


def test_commands_read_stdin_once_and_report_as_json(inputs):
    result = run("except", inputs["plain"], "-", "--json", stdin="10.0.0.0/9\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["10.128.0.0/9", "192.0.2.0/24", "2001:db8::/32"]
    summary = json.loads(result.stderr)
    assert summary["cidrs"] == {"ipv4": 2, "ipv6": 1} and summary["lists"][1] == "<stdin>"
    twice = run("merge", "-", "-", stdin="10.0.0.0/9\n")
    assert twice.returncode == 2 and "only once" in twice.stderr


def test_a_bad_input_writes_nothing_and_names_file_line_and_column(tmp_path, inputs):
    out = tmp_path / "out.txt"
    out.write_text("previous\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("10.0.0.0/8\n\n  10.0.0.1/33\n")
    result = run("merge", inputs["plain"], bad, "-o", out)
    assert result.returncode == 2
    assert f"{bad}:3:12:" in result.stderr and "prefix length" in result.stderr   # at the /33
    assert out.read_text() == "previous\n"
    missing = run("common", inputs["plain"], tmp_path / "missing.txt", "-o", out)
    assert missing.returncode == 2 and "missing.txt" in missing.stderr
    assert out.read_text() == "previous\n"


def test_output_rules_are_those_of_every_writer(tmp_path, inputs):
    refused = run("merge", inputs["plain"], "-o", tmp_path)
    assert refused.returncode == 2 and "is a directory" in refused.stderr
    target = tmp_path / "target.txt"
    target.write_text("old\n")
    os.chmod(target, 0o600)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert run("merge", inputs["listed"], "-o", link).returncode == 0
    assert link.is_symlink() and target.read_text().splitlines()[0] == "10.1.0.0/16"
    assert os.stat(target).st_mode & 0o777 == 0o600            # replaced, its mode kept
    assert run("merge", inputs["plain"], "-o", os.devnull).returncode == 0


def test_commands_need_their_lists_and_show_examples():
    for command in ("common", "except"):
        result = run(command, "only-one.txt")
        assert result.returncode == 2 and "required: LIST" in result.stderr
    assert run("merge").returncode == 2
    for command in ("merge", "common", "except"):
        shown = run(command, "--help")
        assert shown.returncode == 0 and "examples:" in shown.stdout and f"ipallow {command} " in shown.stdout
    listing = run("--help").stdout
    assert all(command in listing for command in ("merge", "common", "except"))
