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

``cold-v4`` ``cold-v6``
    The longest match with no warm cache (issue #15): ``COLD_PREFIXES`` (default 600,000;
    ``IPALLOW_BENCH_COLD_PREFIXES``) prefixes per family, one round is a pass over
    ``COLD_QUERIES`` (300,000; ``IPALLOW_BENCH_COLD_QUERIES``) *distinct* address strings,
    half inside a prefix, in a new order each round: ``q in al``, ``lookup(q)`` (bound
    once, as the peers' calls are), the same reading ``.data`` (what a gateway logs),
    ``al.lookup(q)`` as users write it, pytricia ``get``, py-radix
    ``search_best``; ``, dropped`` rows drop each answer at once (a gateway's pattern)
    instead of keeping all of them in a list, and script mode's ``, collector on`` rows
    keep them with CPython's cyclic collector on.  Goal: ``lookup`` at least 5x faster than pytricia ``get`` and at
    most about 2x the cost of ``in``.  Script mode adds ``in, object kept``: ``q in al and
    object()``, the membership test plus the least a fresh answer can be (a 16-byte
    ``object()`` for every hit, kept in the list): on a big table keeping *any* new object
    per hit costs several hundred nanoseconds more than ``in`` alone (the new objects and
    the table compete for the caches), so ``lookup`` less this row is what its ``Match``
    costs beyond having an answer object at all.  pytricia's ``get`` returns the value it
    stores and makes no object.

The peer structures are built by ``ipallow.bench``'s Peer classes, one per family, as
``ipallow bench`` builds them.  netaddr's ``IPSet`` takes about half a minute to build
from a million prefixes and about 30 µs a lookup; ``IPALLOW_BENCH_NETADDR=0`` leaves it out.

Script mode prints the cold groups side by side, with the ``lookup`` of another ipallow
build (say main at the branch point) timed in a worker process, rounds alternating::

    python benchmarks/bench_lookup.py [--baseline /tmp/ipallow_base/src] [--rounds 5]

(it times CPU time with the collector off, as ``timeit`` does; for the same under pytest,
add ``--benchmark-timer time.process_time --benchmark-disable-gc``).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time

import numpy as np
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


# --------------------------------------------------------------------------- cold longest match

COLD_PREFIXES = int(os.environ.get("IPALLOW_BENCH_COLD_PREFIXES", "600000"))
COLD_QUERIES = int(os.environ.get("IPALLOW_BENCH_COLD_QUERIES", "300000"))
COLD_SEED = 15


def cold_data(family: int, n_prefixes: int = COLD_PREFIXES, n_queries: int = COLD_QUERIES):
    """(CIDR strings, prefix lengths, distinct query strings) for one family, seeded."""
    from ipallow import synth
    from ipallow.bench._queries import ipv4_texts, ipv6_texts

    if family == 4:
        keys, plens = synth.ipv4_table(n_prefixes, seed=COLD_SEED)
        cidrs = synth.ipv4_strings(keys, plens)
        queries = np.unique(synth.ipv4_queries(keys, plens, n_queries * 11 // 10, seed=COLD_SEED))
        texts = ipv4_texts(queries)
    else:
        hi, lo, plens = synth.ipv6_table(n_prefixes, seed=COLD_SEED)
        cidrs = synth.ipv6_strings(hi, lo, plens)
        queries = np.unique(synth.ipv6_queries(hi, lo, plens, n_queries * 11 // 10, seed=COLD_SEED), axis=0)
        texts = ipv6_texts(queries)
    # np.unique sorted them: draw the distinct queries back in a seeded random order
    texts = random.Random(COLD_SEED).sample(texts, min(n_queries, len(texts)))
    return cidrs, plens.tolist(), texts


def ipallow_passes(al) -> dict:
    """name -> function running one pass over the queries and returning its answers."""
    lookup = al.lookup
    return {
        "ipallow in": lambda qs: [q in al for q in qs],
        "ipallow lookup": lambda qs: [lookup(q) for q in qs],
        "ipallow lookup .data": lambda qs: [m.data if (m := lookup(q)) is not None else None for q in qs],
        # as users write it: the attribute is looked up on every call
        "ipallow al.lookup": lambda qs: [al.lookup(q) for q in qs],
        # a gateway's pattern: use the answer, drop it (no list of 300,000 answers kept)
        "ipallow lookup, dropped": lambda qs: each_dropped(lookup, qs),
        # the answers kept with CPython's cyclic collector on, as a program runs (_timed)
        "ipallow lookup, collector on": lambda qs: [lookup(q) for q in qs],
    }


def each_dropped(call, qs) -> None:
    """One pass calling ``call(q)`` for every query and dropping each answer at once."""
    for q in qs:
        call(q)


def peer_passes(family: int, cidrs: list, plens: list) -> dict:
    """name -> one pass of each installed peer (each stores the prefix length as its answer)."""
    passes = {}
    try:
        import pytricia
    except ImportError:
        pass
    else:
        t = pytricia.PyTricia(32 if family == 4 else 128)
        for cidr, plen in zip(cidrs, plens):
            t.insert(cidr, plen)
        get = t.get
        passes["pytricia get"] = lambda qs: [get(q, -1) for q in qs]
        passes["pytricia get, dropped"] = lambda qs: each_dropped(get, qs)
        passes["pytricia get, collector on"] = lambda qs: [get(q, -1) for q in qs]
    try:
        import radix
    except ImportError:
        pass
    else:
        r = radix.Radix()
        for cidr in cidrs:
            r.add(cidr)
        best = r.search_best
        passes["py-radix search_best"] = lambda qs: [best(q) for q in qs]
    return passes


def prefix_lengths(name: str, answers: list) -> list:
    """Every pass's answers as matched prefix lengths (-1: none), to check they agree."""
    if name in ("pytricia get", "pytricia get, collector on"):
        return answers
    if name == "py-radix search_best":
        return [n.prefixlen if n is not None else -1 for n in answers]
    if name in ("ipallow lookup", "ipallow al.lookup", "ipallow lookup, collector on"):
        return [m.prefixlen if m is not None else -1 for m in answers]
    return None


@pytest.fixture(scope="module", params=[4, 6], ids=["v4", "v6"])
def cold(request):
    family = request.param
    cidrs, plens, texts = cold_data(family)
    import ipallow
    al = ipallow.Allowlist(cidrs)
    passes = {**ipallow_passes(al), **peer_passes(family, cidrs, plens)}
    want = [m.prefixlen if m is not None else -1 for m in map(al.lookup, texts)]
    return family, texts, passes, want


COLD_CASES = ["ipallow in", "ipallow lookup", "ipallow lookup .data", "ipallow al.lookup", "pytricia get",
              "py-radix search_best", "ipallow lookup, dropped", "pytricia get, dropped"]


@pytest.mark.parametrize("name", COLD_CASES, ids=lambda n: n.replace(" ", "-"))
def test_cold(benchmark, record, cold, name):
    family, texts, passes, want = cold
    if name not in passes:
        pytest.skip(f"{name.split()[0]} is not installed")
    benchmark.group = f"cold-v{family}"
    benchmark.extra_info.update(impl=name, family=family, input="str", operation="longest match, cold")
    rng = random.Random(0)

    def shuffled():
        qs = texts[:]
        rng.shuffle(qs)
        return (qs,), {}

    got = benchmark.pedantic(passes[name], setup=shuffled, rounds=5, iterations=1)
    record(calls=len(texts))
    lengths = prefix_lengths(name, got)
    if lengths is not None:       # the last round's order is not kept: compare as multisets
        assert sorted(lengths) == sorted(want), f"{name}: longest matches differ from ipallow's"


# --------------------------------------------------------------------------- script mode

def _timed(run, qs, collector: bool = False) -> tuple[float, list]:
    """CPU seconds of one pass and its answers.  CPU time, not wall time: on a shared machine
    the pass loses the CPU to others at random; and the collector off, as ``timeit`` has it,
    so the 300,000 answers kept do not bill each pass for sweeping the peers' million objects
    -- unless ``collector`` (the ``, collector on`` rows: what a program keeping its answers
    pays for the objects they are)."""
    gc.collect()
    if not collector:
        gc.disable()
    try:
        t0 = time.process_time()
        answers = run(qs)
        return time.process_time() - t0, answers
    finally:
        gc.enable()


def _worker(family: int, n_prefixes: int, n_queries: int) -> None:
    """Baseline side: build the same allowlist with this process's ipallow, then time a
    pass for every ``<name> <seed>`` line read, answering JSON."""
    import ipallow
    cidrs, _, texts = cold_data(family, n_prefixes, n_queries)
    passes = ipallow_passes(ipallow.Allowlist(cidrs))
    print(json.dumps({"ready": ipallow.__file__}), flush=True)
    for line in sys.stdin:
        name, seed = line.rsplit(" ", 1)
        qs = texts[:]
        random.Random(int(seed)).shuffle(qs)
        seconds, answers = _timed(passes[name], qs)
        check = None
        if name in ("ipallow lookup", "ipallow al.lookup"):   # the matched prefix lengths, in query text order
            check = hash(tuple(m.network.prefixlen if m is not None else -1
                               for _, m in sorted(zip(qs, answers), key=lambda pair: pair[0])))
        print(json.dumps({"seconds": seconds, "check": check}), flush=True)


def _run_family(family: int, args) -> list[str]:
    import ipallow
    cidrs, plens, texts = cold_data(family, args.prefixes, args.queries)
    al = ipallow.Allowlist(cidrs)
    empty = ()    # the loop itself: iterate, test against an empty tuple, append (see ``loop floor``)
    new_object = object    # the least a fresh answer can be (see ``in, object kept``)
    passes = {"loop floor": lambda qs: [q in empty for q in qs],
              "in, object kept": lambda qs: [q in al and new_object() for q in qs],
              **ipallow_passes(al), **peer_passes(family, cidrs, plens)}
    baseline = None
    if args.baseline:
        env = {**os.environ, "PYTHONPATH": args.baseline}
        baseline = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(family), "--prefixes", str(args.prefixes),
             "--queries", str(args.queries)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd="/")
        where = json.loads(baseline.stdout.readline())["ready"]
        for name in ("ipallow in", "ipallow lookup", "ipallow al.lookup"):
            passes[f"baseline {name.split()[1]}"] = name
    times: dict[str, list[float]] = {name: [] for name in passes}
    want = {q: (m.prefixlen if m is not None else -1) for q, m in zip(texts, map(al.lookup, texts))}
    want_check = hash(tuple(want[q] for q in sorted(texts)))
    for rnd in range(args.rounds):
        seed = 1000 * family + rnd
        qs = texts[:]
        random.Random(seed).shuffle(qs)
        names = list(passes)
        random.Random(seed).shuffle(names)        # a new order of contenders every round
        for name in names:
            run = passes[name]
            if isinstance(run, str):             # the baseline worker's pass
                baseline.stdin.write(f"{run} {seed}\n")
                baseline.stdin.flush()
                reply = json.loads(baseline.stdout.readline())
                times[name].append(reply["seconds"])
                assert reply["check"] in (None, want_check), "the baseline's longest matches differ"
                continue
            seconds, answers = _timed(run, qs, collector=name.endswith("collector on"))
            times[name].append(seconds)
            lengths = prefix_lengths(name, answers)
            assert lengths is None or lengths == [want[q] for q in qs], f"{name}: longest matches differ"
    if baseline:
        baseline.stdin.close()
        baseline.wait()
    n = len(texts)
    per_call = {name: [t / n * 1e9 for t in ts] for name, ts in times.items()}
    med = {name: statistics.median(v) for name, v in per_call.items()}
    lines = [f"IPv{family}: {len(cidrs):,} prefixes, {n:,} distinct str queries, "
             f"median of {args.rounds} shuffled rounds (CPU ns per call, min-max)"
             + (f"; baseline {where}" if baseline else "")]
    ref = {"in": med["ipallow in"], "pytricia": med.get("pytricia get")}
    floor = med["loop floor"]
    lines.append(f"  {'':24} {'median':>8} {'spread':>15} {'x in':>7} {'pytricia/x':>11} {'same, less loop':>16}")
    for name, values in per_call.items():
        ratio = f"{ref['pytricia'] / med[name]:11.2f}" if ref["pytricia"] else f"{'-':>11}"
        net = (f"{(ref['pytricia'] - floor) / (med[name] - floor):16.2f}"
               if ref["pytricia"] and med[name] > floor else f"{'-':>16}")
        lines.append(f"  {name:24} {med[name]:8.0f} {min(values):7.0f}-{max(values):<7.0f} "
                     f"{med[name] / ref['in']:7.2f} {ratio} {net}")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prefixes", type=int, default=COLD_PREFIXES)
    parser.add_argument("--queries", type=int, default=COLD_QUERIES)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--families", default="4,6")
    parser.add_argument("--baseline", help="PYTHONPATH of another ipallow build whose lookup to time too")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.prefixes, args.queries)
        return
    for family in map(int, args.families.split(",")):
        print("\n".join(_run_family(family, args)), flush=True)


if __name__ == "__main__":
    main()
