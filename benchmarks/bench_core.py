"""Core ipallow benchmarks, side by side with the peers, on a BGP-like synthetic table.

How to run (from the repository root, with ipallow installed, e.g. ``pip install -e .``)::

    pytest benchmarks/bench_core.py --benchmark-only --benchmark-group-by=group
    IPALLOW_BENCH_PREFIXES=30000 pytest benchmarks/bench_core.py --benchmark-only \
        --benchmark-group-by=group                                 # quick run (seconds)
    pytest benchmarks/bench_core.py --benchmark-only --benchmark-group-by=group \
        --benchmark-autosave                                       # keep for --benchmark-compare

Name the file on the command line: pytest only collects files matching ``python_files``
(``test_*.py``) when it walks a directory, but a file passed explicitly is always collected.
``pytest benchmarks/`` therefore collects nothing, and the normal test run (``testpaths =
tests``) never sees these benchmarks.  Peers (pytricia, py-radix, pysubnettree, pyroaring)
are optional: a benchmark whose peer is not installed is skipped, never passed.

Sizes: ``IPALLOW_BENCH_PREFIXES`` (IPv4 table rows, default 1,000,000),
``IPALLOW_BENCH_PREFIXES6`` (default 200,000), ``IPALLOW_BENCH_QUERIES`` (default 1,000,000);
see conftest.py.  Table seed 1, query seed 2.

Groups (one operation each, so every row of a group times the same table and queries):

``build``            ``Allowlist(list_of_cidr_strings)`` vs filling a pytricia.PyTricia.
                     Three rounds each.  ``extra_info`` holds the compiled size
                     (``Allowlist.nbytes`` when the class has it), what tracemalloc sees
                     the Allowlist keep, and, for every builder, the growth of the process's
                     resident memory across one build (rough: it includes whatever the
                     allocator keeps from the build's temporaries).
``str-in``           ``s in x`` for 10,000 dotted-quad strings per round (the first 10,000
                     queries).  pytest-benchmark reports the time of a round; divide by
                     10,000 for one call (the session summary printed at the end does it,
                     from the median and the best round).  The times include the Python
                     loop itself (a list comprehension): ``loop_floor`` is the same loop
                     over a one-element frozenset, the cheapest ``in`` Python has, so
                     ``(x - floor) / 10,000`` is the cost of the lookup alone.  py-radix
                     has no ``in``; its row times ``search_best(s) is not None``.
``int-in``           the same with Python ints; the peer is ``int in pyroaring.BitMap``
                     holding every covered address (built from the merged ranges with
                     ``BitMap.add_range``, then ``run_optimize``).
``contains_many-v4`` one call on a numpy uint32 array of IPALLOW_BENCH_QUERIES addresses,
                     vs a numpy ``searchsorted`` over the table merged into disjoint ranges.
``contains_many-v6`` the same for IPv6: an (n, 2) uint64 array against the IPv6 table;
                     the baseline searches big-endian ``S16`` keys (converted outside the
                     timing, which favours the baseline).

Every benchmark checks its answer against ipallow's ``contains_many`` answer after the
timing; the searchsorted baselines are independent of ipallow, so a disagreement there
is a wrong answer in one of the two.
"""
from __future__ import annotations

import gc
import ipaddress
import tracemalloc

import numpy as np
import pytest

import ipallow

# pytest runs with --import-mode=importlib (pyproject), so this module cannot import
# conftest: everything shared comes in through fixtures.


def assert_same(got, want, queries, what: str) -> None:
    """Fail with the first few differing addresses if ``got`` and ``want`` disagree."""
    got = np.asarray(got, dtype=bool).reshape(-1)
    want = np.asarray(want, dtype=bool).reshape(-1)
    assert got.shape == want.shape, f"{what}: {got.shape} answers for {want.shape} queries"
    bad = np.flatnonzero(got != want)
    if bad.size:
        q = np.asarray(queries)
        shown = []
        for i in bad[:5].tolist():
            if q.ndim == 2:  # IPv6 (hi, lo) rows
                addr = ipaddress.IPv6Address((int(q[i, 0]) << 64) | int(q[i, 1]))
            elif q.dtype.kind in "US" or q.dtype == object:
                addr = q[i]
            else:
                addr = ipaddress.IPv4Address(int(q[i]))
            shown.append(f"{addr} -> {bool(got[i])} (ipallow says {bool(want[i])})")
        pytest.fail(
            f"{what}: {bad.size} of {want.size} answers differ from ipallow's contains_many; "
            + "; ".join(shown)
        )


def _peer(name: str):
    return pytest.importorskip(name, reason=f"peer {name} not installed")


def _measure_build(rss_bytes, build):
    """Build once outside the timing: (object, resident-memory growth, traced bytes kept).

    ``traced`` is what tracemalloc sees still allocated once the build returns: exact for
    memory taken through Python's and numpy's allocators, blind to plain C ``malloc``
    (pytricia's nodes), for which the resident-memory growth is the only figure.
    """
    gc.collect()
    before = rss_bytes()
    tracemalloc.start()
    try:
        obj = build()
        traced = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    after = rss_bytes()
    grew = None if before is None or after is None else after - before
    return obj, grew, traced


# --------------------------------------------------------------------------- build


@pytest.mark.benchmark(group="build")
def test_build_ipallow(benchmark, record, summary, rss_bytes, v4_prefix_strings, v4_queries, v4_answer):
    first, grew, traced = _measure_build(rss_bytes, lambda: ipallow.Allowlist(v4_prefix_strings))
    nbytes = getattr(first, "nbytes", None)  # Allowlist.nbytes: compiled index size
    del first
    gc.collect()

    al = benchmark.pedantic(ipallow.Allowlist, args=(v4_prefix_strings,), rounds=3, iterations=1)

    n = len(v4_prefix_strings)
    benchmark.extra_info["prefixes"] = n
    benchmark.extra_info["rss_growth_bytes"] = grew
    benchmark.extra_info["nbytes"] = nbytes
    benchmark.extra_info["traced_bytes_kept"] = traced
    record()
    if nbytes is not None:
        benchmark.extra_info["bytes_per_prefix"] = round(nbytes / n, 2)
        summary.append(("build", "ipallow Allowlist.nbytes", f"{nbytes / n:,.2f}", f"bytes/prefix ({nbytes:,} B)"))
    else:
        summary.append(("build", "ipallow Allowlist.nbytes", "n/a", "(Allowlist has no nbytes)"))
    summary.append(("build", "ipallow kept after build (tracemalloc)", f"{traced / n:,.2f}", "bytes/prefix"))
    if grew is not None:
        summary.append(("build", "ipallow RSS growth", f"{grew / n:,.1f}", "bytes/prefix"))
    assert len(al) == n
    assert_same(al.contains_many(v4_queries), v4_answer, v4_queries, "rebuilt Allowlist")


def _build_pytricia(pytricia, strings):
    pt = pytricia.PyTricia(32)
    insert = pt.insert
    for i, s in enumerate(strings):
        insert(s, i)
    return pt


@pytest.mark.benchmark(group="build")
def test_build_pytricia(benchmark, record, summary, rss_bytes, v4_prefix_strings, loop_strs, loop_answer):
    pytricia = _peer("pytricia")
    first, grew, _ = _measure_build(rss_bytes, lambda: _build_pytricia(pytricia, v4_prefix_strings))
    del first
    gc.collect()

    pt = benchmark.pedantic(_build_pytricia, args=(pytricia, v4_prefix_strings), rounds=3, iterations=1)

    n = len(v4_prefix_strings)
    benchmark.extra_info["prefixes"] = n
    benchmark.extra_info["rss_growth_bytes"] = grew
    record()
    if grew is not None:
        summary.append(("build", "pytricia RSS growth", f"{grew / n:,.1f}", "bytes/prefix"))
    assert [s in pt for s in loop_strs] == loop_answer


# --------------------------------------------------------------------------- str in


@pytest.fixture(scope="module")
def pytricia_v4(v4_prefix_strings):
    pytricia = _peer("pytricia")
    return _build_pytricia(pytricia, v4_prefix_strings)


@pytest.fixture(scope="module")
def radix_v4(v4_prefix_strings):
    radix = _peer("radix")
    rt = radix.Radix()
    add = rt.add
    for s in v4_prefix_strings:
        add(s)
    return rt


@pytest.fixture(scope="module")
def subnettree_v4(v4_prefix_strings):
    SubnetTree = _peer("SubnetTree")
    t = SubnetTree.SubnetTree()
    insert = t.insert
    for s in v4_prefix_strings:
        insert(s)
    return t


@pytest.mark.benchmark(group="str-in")
def test_str_in_ipallow(benchmark, record, allowlist, loop_strs, loop_answer):
    al = allowlist

    def run():
        return [s in al for s in loop_strs]

    got = benchmark(run)
    record(calls=len(loop_strs))
    assert got == loop_answer


@pytest.mark.benchmark(group="str-in")
def test_str_in_pytricia(benchmark, record, pytricia_v4, loop_strs, loop_answer):
    pt = pytricia_v4

    def run():
        return [s in pt for s in loop_strs]

    got = benchmark(run)
    record(calls=len(loop_strs))
    assert got == loop_answer


@pytest.mark.benchmark(group="str-in")
def test_str_in_subnettree(benchmark, record, subnettree_v4, loop_strs, loop_answer):
    t = subnettree_v4

    def run():
        return [s in t for s in loop_strs]

    got = benchmark(run)
    record(calls=len(loop_strs))
    assert got == loop_answer


@pytest.mark.benchmark(group="str-in")
def test_str_in_radix_search_best(benchmark, record, radix_v4, loop_strs, loop_answer):
    # py-radix has no ``in``: search_best (longest match) is its membership test
    search_best = radix_v4.search_best

    def run():
        return [search_best(s) is not None for s in loop_strs]

    got = benchmark(run)
    record(calls=len(loop_strs))
    assert got == loop_answer


@pytest.mark.benchmark(group="str-in")
def test_str_in_loop_floor(benchmark, record, loop_strs):
    # the same comprehension over a one-element frozenset: the loop's own cost
    fs = frozenset(loop_strs[:1])

    def run():
        return [s in fs for s in loop_strs]

    got = benchmark(run)
    record(calls=len(loop_strs), note=" (loop overhead)")
    assert len(got) == len(loop_strs)


# --------------------------------------------------------------------------- int in


@pytest.fixture(scope="module")
def roaring_v4(v4_ranges):
    pyroaring = _peer("pyroaring")
    bm = pyroaring.BitMap()
    add_range = bm.add_range
    starts, ends = v4_ranges
    for start, end in zip(starts.tolist(), ends.tolist()):
        add_range(start, end + 1)  # add_range's end is exclusive
    bm.run_optimize()
    return bm


@pytest.mark.benchmark(group="int-in")
def test_int_in_ipallow(benchmark, record, allowlist, loop_ints, loop_answer):
    al = allowlist

    def run():
        return [x in al for x in loop_ints]

    got = benchmark(run)
    record(calls=len(loop_ints))
    assert got == loop_answer


@pytest.mark.benchmark(group="int-in")
def test_int_in_pyroaring(benchmark, record, roaring_v4, v4_ranges, loop_ints, loop_answer):
    bm = roaring_v4

    def run():
        return [x in bm for x in loop_ints]

    got = benchmark(run)
    record(calls=len(loop_ints))
    benchmark.extra_info["bitmap_cardinality"] = len(bm)
    benchmark.extra_info["bitmap_serialized_bytes"] = len(bm.serialize())
    benchmark.extra_info["merged_ranges"] = int(v4_ranges[0].size)
    assert got == loop_answer


@pytest.mark.benchmark(group="int-in")
def test_int_in_loop_floor(benchmark, record, loop_ints):
    fs = frozenset(loop_ints[:1])

    def run():
        return [x in fs for x in loop_ints]

    got = benchmark(run)
    record(calls=len(loop_ints), note=" (loop overhead)")
    assert len(got) == len(loop_ints)


# --------------------------------------------------------------------------- batches


def _searchsorted_lookup(starts, ends):
    """Membership in sorted disjoint closed ranges: the last start <= q, then q <= its end."""

    def lookup(q):
        idx = np.searchsorted(starts, q, side="right") - 1
        return (idx >= 0) & (q <= ends[idx])  # ends[-1] for idx == -1 is masked by idx >= 0

    return lookup


@pytest.mark.benchmark(group="contains_many-v4")
def test_contains_many_v4_ipallow(benchmark, record, allowlist, v4_queries, v4_answer):
    got = benchmark(allowlist.contains_many, v4_queries)
    record(items=v4_queries.size)
    benchmark.extra_info["hit_fraction"] = round(float(np.mean(v4_answer)), 4)
    assert_same(got, v4_answer, v4_queries, "ipallow contains_many (repeat call)")


@pytest.mark.benchmark(group="contains_many-v4")
def test_contains_many_v4_searchsorted(benchmark, record, v4_ranges, v4_queries, v4_answer):
    starts, ends = v4_ranges
    got = benchmark(_searchsorted_lookup(starts, ends), v4_queries)
    record(items=v4_queries.size)
    benchmark.extra_info["merged_ranges"] = int(starts.size)
    assert_same(got, v4_answer, v4_queries, "numpy searchsorted over merged ranges")


@pytest.mark.benchmark(group="contains_many-v6")
def test_contains_many_v6_ipallow(benchmark, record, allowlist6, v6_queries, v6_answer):
    got = benchmark(allowlist6.contains_many, v6_queries)
    record(items=v6_queries.shape[0])
    benchmark.extra_info["hit_fraction"] = round(float(np.mean(v6_answer)), 4)
    assert_same(got, v6_answer, v6_queries, "ipallow contains_many (repeat call)")


@pytest.mark.benchmark(group="contains_many-v6")
def test_contains_many_v6_searchsorted(benchmark, record, v6_ranges, v6_queries, v6_answer):
    starts, ends = v6_ranges
    keys = np.ascontiguousarray(v6_queries.astype(">u8")).view("S16").reshape(-1)
    got = benchmark(_searchsorted_lookup(starts, ends), keys)
    record(items=v6_queries.shape[0])
    benchmark.extra_info["merged_ranges"] = int(starts.size)
    assert_same(got, v6_answer, v6_queries, "numpy searchsorted over merged IPv6 ranges")
