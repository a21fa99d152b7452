"""Single lookups in every input form, IPv4 and IPv6, with the peers in the same groups.

How to run (from the repository root, ipallow installed)::

    pytest benchmarks/bench_lookup.py --benchmark-only --benchmark-group-by=group
    IPALLOW_BENCH_PREFIXES=30000 IPALLOW_BENCH_PREFIXES6=20000 \
        pytest benchmarks/bench_lookup.py --benchmark-only --benchmark-group-by=group   # quick

Like bench_core.py this file is collected only when named on the command line.  Tables
and queries come from conftest.py (seeded ``ipallow.synth`` tables: 1,000,000 IPv4 and
200,000 IPv6 prefixes by default); every round makes 10,000 calls over the first 10,000
queries, half of them inside a registered prefix.

Groups (one operation on one input form; every row of a group times the same calls):

``in-v4-str`` ``in-v4-int`` ``in-v4-bytes`` ``in-v4-ipaddress``
``in-v6-str`` ``in-v6-int`` ``in-v6-bytes`` ``in-v6-ipaddress``
    ``q in x`` for every peer that takes that form: pytricia (str, int for IPv4, bytes,
    ipaddress), py-radix (``search_best(q)``, or ``search_best(packed=q)`` for bytes:
    it has no ``in``), SubnetTree (str; bytes in its binary lookup mode), netaddr
    ``IPSet`` (str), pyroaring ``BitMap`` (IPv4 int).  ``loop floor`` is the same list
    comprehension around ``q in ()`` (an empty tuple: no hash, no comparison, so it
    costs the same whatever the form; a frozenset would hash the query, which for an
    ``ipaddress`` object is a Python-level ``__hash__``): subtract it for the lookup alone.

``longest-match-v4`` ``longest-match-v6``
    ``allowlist.lookup(q)`` (a ``Match`` with an ``ipaddress`` network) against ``q in
    allowlist`` (membership only) and ``allowlist._registration_index(q)`` (the same
    longest match, an int, no objects built: what ``lookup`` costs beyond the walk),
    and the peers' longest-match calls: pytricia ``get``, py-radix ``search_best``,
    SubnetTree ``t[q]``.  netaddr and pyroaring have no longest match.

Every row's answers are asserted after timing: membership against ipallow's batch
answer, longest matches on the matched prefix length (the peers store each prefix's
length as its value), so a fast wrong peer -- or a wrong ipallow -- fails the run.

The peer structures are built by ``ipallow.bench``'s Peer classes, one per family, as
``ipallow bench`` builds them.  netaddr's ``IPSet`` takes about half a minute to build
from a million prefixes and about 30 µs a lookup; ``IPALLOW_BENCH_NETADDR=0`` leaves it out.
"""
from __future__ import annotations

import os

import pytest

FORMS = ("str", "int", "bytes", "ipaddress")
WITH_NETADDR = os.environ.get("IPALLOW_BENCH_NETADDR", "1") not in ("0", "", "no", "false")

# (impl, family, form): who takes which input in the ``in-*`` groups
CASES = [("ipallow", f, form) for f in (4, 6) for form in FORMS]
CASES += [("pytricia", 4, form) for form in FORMS]
CASES += [("pytricia", 6, form) for form in ("str", "bytes", "ipaddress")]  # no int for 128-bit keys
CASES += [("py-radix", f, form) for f in (4, 6) for form in ("str", "bytes")]
CASES += [("SubnetTree", f, form) for f in (4, 6) for form in ("str", "bytes")]
CASES += [("netaddr.IPSet", f, "str") for f in (4, 6)] if WITH_NETADDR else []
CASES += [("pyroaring.BitMap", 4, "int")]
CASES += [("loop floor", f, form) for f in (4, 6) for form in FORMS]


def _case_id(case) -> str:
    impl, family, form = case
    return f"v{family}-{form}-{impl}"


@pytest.fixture(scope="module")
def forms(loop_strs, loop_ints, loop_bytes, loop_addrs, loop_answer,
          loop6_strs, loop6_ints, loop6_bytes, loop6_addrs, loop6_answer):
    """(family, form) -> the 10,000 loop queries in that form; family -> ipallow's answers."""
    qs = {(4, "str"): loop_strs, (4, "int"): loop_ints, (4, "bytes"): loop_bytes, (4, "ipaddress"): loop_addrs,
          (6, "str"): loop6_strs, (6, "int"): loop6_ints, (6, "bytes"): loop6_bytes, (6, "ipaddress"): loop6_addrs}
    return qs, {4: loop_answer, 6: loop6_answer}


def _membership(impl, family, form, peers, al):
    """A function running the round's comprehension for ``impl``, plus a cleanup (or None)."""
    if impl == "ipallow":
        return (lambda qs: [q in al for q in qs]), None
    if impl == "py-radix":
        best = peers("py-radix", family).search_best
        if form == "bytes":
            return (lambda qs: [best(packed=q) is not None for q in qs]), None
        return (lambda qs: [best(q) is not None for q in qs]), None
    t = peers(impl, family)
    if impl == "SubnetTree" and form == "bytes":
        t.set_binary_lookup_mode(True)
        return (lambda qs: [q in t for q in qs]), (lambda: t.set_binary_lookup_mode(False))
    return (lambda qs: [q in t for q in qs]), None


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_in(benchmark, record, forms, peers, allowlist, allowlist6, case):
    impl, family, form = case
    benchmark.group = f"in-v{family}-{form}"
    benchmark.extra_info.update(impl=impl, family=family, input=form, operation="in")
    qs = forms[0][(family, form)]
    if impl == "loop floor":
        empty = ()
        benchmark(lambda: [q in empty for q in qs])
        record(calls=len(qs), note=" (loop overhead)")
        return
    run, cleanup = _membership(impl, family, form, peers, allowlist if family == 4 else allowlist6)
    try:
        got = benchmark(run, qs)
    finally:
        if cleanup:
            cleanup()
    record(calls=len(qs))
    want = forms[1][family]
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if bool(g) != w]
    assert len(got) == len(want) and not bad, (
        f"{impl} {form} in: {len(bad)} answers differ from ipallow's contains_many, first: "
        f"{qs[bad[0]]!r} -> {got[bad[0]]} (ipallow: {want[bad[0]]})")


# --------------------------------------------------------------------------- longest match

LONGEST = [(impl, f) for f in (4, 6)
           for impl in ("ipallow lookup", "ipallow in", "ipallow _registration_index",
                        "pytricia", "py-radix", "SubnetTree")]


def _longest(impl, family, peers, al):
    """(timed comprehension, converter of its results to matched prefix lengths)."""
    if impl == "ipallow lookup":
        lookup = al.lookup
        return (lambda qs: [lookup(q) for q in qs]), (lambda r: [m.network.prefixlen if m else -1 for m in r])
    if impl == "ipallow in":
        return (lambda qs: [q in al for q in qs]), None
    if impl == "ipallow _registration_index":
        reg = al._registration_index
        return (lambda qs: [reg(q) for q in qs]), None
    if impl == "pytricia":
        get = peers("pytricia", family).get
        return (lambda qs: [get(q, -1) for q in qs]), list
    if impl == "py-radix":
        best = peers("py-radix", family).search_best
        return (lambda qs: [best(q) for q in qs]), (lambda r: [n.prefixlen if n is not None else -1 for n in r])
    t = peers("SubnetTree", family)

    def subnettree(qs):
        out = []
        for q in qs:
            try:
                out.append(t[q])        # the prefix length stored as the value
            except KeyError:
                out.append(-1)
        return out
    return subnettree, list


@pytest.mark.parametrize("case", LONGEST, ids=lambda c: f"v{c[1]}-{c[0].replace(' ', '-')}")
def test_longest_match(benchmark, record, forms, peers, allowlist, allowlist6, loop_plens, loop6_plens, case):
    impl, family = case
    benchmark.group = f"longest-match-v{family}"
    benchmark.extra_info.update(impl=impl, family=family, input="str", operation="longest match")
    al = allowlist if family == 4 else allowlist6
    qs = forms[0][(family, "str")]
    run, convert = _longest(impl, family, peers, al)
    got = benchmark(run, qs)
    record(calls=len(qs))
    if impl == "ipallow in":
        assert got == forms[1][family]
        return
    if impl == "ipallow _registration_index":
        want_reg = al.lookup_many(qs)
        assert got == want_reg.tolist()
        return
    want = loop_plens if family == 4 else loop6_plens
    got = convert(got)
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert len(got) == len(want) and not bad, (
        f"{impl}: {len(bad)} longest matches differ from ipallow's, first: {qs[bad[0]]} -> /{got[bad[0]]} "
        f"(ipallow: /{want[bad[0]]})")
