"""Batches: lists of strings, every array form, lookup_many vs contains_many, and two threads.

How to run (from the repository root, ipallow installed)::

    pytest benchmarks/bench_batch.py --benchmark-only --benchmark-group-by=group
    IPALLOW_BENCH_PREFIXES=30000 IPALLOW_BENCH_QUERIES=100000 \
        pytest benchmarks/bench_batch.py --benchmark-only --benchmark-group-by=group   # quick

Collected only when named on the command line (see bench_core.py).  Every batch is the
``IPALLOW_BENCH_QUERIES`` (default 1,000,000) seeded queries of conftest.py, half inside
a registered prefix; the session summary converts round times to millions of lookups
per second (median / best round).

Groups:

``batch-v4-strings`` / ``batch-v6-strings``
    one call on a Python list of address strings: ``contains_many(list)`` and
    ``lookup_many(list)``, ``contains_many`` on the same strings as a numpy ``U`` array,
    and the peers' list comprehension (pytricia ``q in t``, py-radix ``search_best``,
    SubnetTree ``q in t``), three rounds each for the peers.  Goal (issue 3): at least
    15 M lookups/s for ``contains_many`` on a list of 1M IPv4 strings.
``lookup_many-v4`` / ``lookup_many-v6``
    ``lookup_many`` (int32 registration indices: the longest match) against
    ``contains_many`` (bool), each also with a preallocated ``out=``.
``forms-v4`` / ``forms-v6``
    ``contains_many`` on every array form of the same addresses: IPv4 ``uint32``,
    a strided ``uint32`` view, ``int64`` (converted), ``(n, 4)`` ``uint8``, ``S4``,
    a list of ints; IPv6 ``(n, 2)`` ``uint64``, Fortran order, ``(n, 16)`` ``uint8``,
    ``S16``, ``V16``.
``goals-v4`` / ``goals-v6`` (issue 15)
    the batch goals side by side in one run, each next to numpy ``searchsorted`` over the
    table merged into disjoint ranges (the baseline every vectorised user can write):
    IPv4 ``contains_many`` on a ``uint32`` array (goal: 150 M lookups/s on 1M prefixes)
    with the tables in transparent huge pages (as the library lays them out on Linux)
    and the same tables advised against them (the A/B of the huge pages); IPv6 on
    ``(n, 2)`` ``uint64`` and on ``S16`` packed bytes (goal: ``S16`` within 80% of
    ``(n, 2) uint64``).  The session summary adds the ratios (per-round medians).
    For the issue's sizes::

        IPALLOW_BENCH_PREFIXES6=600000 pytest benchmarks/bench_batch.py -k goals \
            --benchmark-only --benchmark-group-by=group

    ``benchmarks/memory_floor.c`` (in the repository, not the sdist: the sdist ships no C)
    measures what bounds these figures: the rate of random reads in a buffer the size of
    the table, with and without huge pages.
``threads-v4`` / ``threads-v6`` / ``threads-v4-strings``
    the whole batch in one thread against two threads, each calling ``contains_many``
    on its own half (the calling thread takes one half, a thread started beforehand the
    other; both write into preallocated ``out=`` arrays).  The batch loops release the
    GIL, so on two idle cores the two-thread round should take about half as long;
    the speed-up (one-thread median / two-thread median) goes into the two-thread
    row's ``extra_info`` and the session summary.  With a list of strings the GIL is
    held only while the strings are copied out (512 at a time), so the speed-up there
    is smaller.

Every result is asserted against ipallow's ``contains_many`` on the ``uint32`` /
``(n, 2) uint64`` array after timing (and ``lookup_many`` against ``lookup`` semantics:
its ``>= 0`` must equal membership).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ipallow import _hugepages, _trie, bench

PEER_ROUNDS = 3     # the pure-Python comprehensions over a million strings take seconds a round


def assert_same(got, want, what: str) -> None:
    got = np.asarray(got, dtype=bool).reshape(-1)
    want = np.asarray(want, dtype=bool).reshape(-1)
    assert got.shape == want.shape, f"{what}: {got.shape} answers for {want.shape} queries"
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{what}: {bad.size} of {want.size} answers differ from ipallow's, first at {bad[:5]}"


# --------------------------------------------------------------------------- strings


@pytest.fixture(scope="module")
def v4_strs(v4_queries):
    return bench.ipv4_texts(v4_queries)


@pytest.fixture(scope="module")
def v6_strs(v6_queries):
    return bench.ipv6_texts(v6_queries)


STRING_CASES = [(f, impl) for f in (4, 6)
                for impl in ("ipallow contains_many", "ipallow lookup_many", "ipallow contains_many U array",
                             "pytricia", "py-radix", "SubnetTree")]


@pytest.mark.parametrize("case", STRING_CASES, ids=lambda c: f"v{c[0]}-{c[1].replace(' ', '-')}")
def test_strings(benchmark, record, request, peers, allowlist, allowlist6, v4_answer, v6_answer, case):
    family, impl = case
    benchmark.group = f"batch-v{family}-strings"
    strs = request.getfixturevalue("v4_strs" if family == 4 else "v6_strs")
    al = allowlist if family == 4 else allowlist6
    want = v4_answer if family == 4 else v6_answer
    info = dict(impl=impl.split(" ")[0], family=family, input="list of str")
    if impl == "ipallow contains_many":
        benchmark.extra_info.update(info, operation="contains_many")
        got = benchmark(al.contains_many, strs)
    elif impl == "ipallow lookup_many":
        benchmark.extra_info.update(info, operation="lookup_many")
        got = benchmark(al.lookup_many, strs) >= 0
    elif impl == "ipallow contains_many U array":
        benchmark.extra_info.update(info, operation="contains_many", input="numpy U array")
        arr = np.array(strs)
        got = benchmark.pedantic(al.contains_many, args=(arr,), rounds=PEER_ROUNDS, iterations=1)
    elif impl == "py-radix":
        benchmark.extra_info.update(info, operation="[t.search_best(q) is not None for q in list]")
        best = peers("py-radix", family).search_best
        got = benchmark.pedantic(lambda: [best(q) is not None for q in strs], rounds=PEER_ROUNDS, iterations=1)
    else:
        benchmark.extra_info.update(info, operation="[q in t for q in list]")
        t = peers(impl, family)
        got = benchmark.pedantic(lambda: [q in t for q in strs], rounds=PEER_ROUNDS, iterations=1)
    record(items=len(strs))
    assert_same(got, want, f"{impl} on a list of IPv{family} strings")


# --------------------------------------------------------------------------- lookup_many vs contains_many


@pytest.mark.parametrize("method", ["contains_many", "contains_many out=", "lookup_many", "lookup_many out="])
@pytest.mark.parametrize("family", [4, 6])
def test_lookup_many_vs_contains_many(benchmark, record, allowlist, allowlist6, v4_queries, v6_queries,
                                      v4_answer, v6_answer, family, method):
    benchmark.group = f"lookup_many-v{family}"
    al, q, want = (allowlist, v4_queries, v4_answer) if family == 4 else (allowlist6, v6_queries, v6_answer)
    name = method.split(" ")[0]
    benchmark.extra_info.update(impl="ipallow", family=family, operation=method,
                                input="uint32 array" if family == 4 else "(n, 2) uint64 array")
    fn = getattr(al, name)
    if method.endswith("out="):
        out = np.empty(want.size, dtype=bool if name == "contains_many" else np.int32)
        got = benchmark(fn, q, out=out)
        assert got is out
    else:
        got = benchmark(fn, q)
    record(items=want.size)
    if name == "lookup_many":
        assert got.dtype == np.int32
        # spot-check the registration indices against lookup() on a sample
        for i in np.flatnonzero(got >= 0)[:200].tolist():
            key = int(q[i]) if family == 4 else (int(q[i, 0]) << 64) | int(q[i, 1])
            assert al.lookup(key).index == got[i]
        got = got >= 0
    assert_same(got, want, f"{method} IPv{family}")


# --------------------------------------------------------------------------- array forms


def _v4_forms(q):
    be = q.astype(">u4")
    doubled = np.repeat(q, 2)
    return {
        "uint32": q,
        "uint32 strided view": doubled[::2],
        "int64 (converted)": q.astype(np.int64),
        "(n, 4) uint8": be.view(np.uint8).reshape(-1, 4),
        "S4": be.view("S4"),
        "list of int": q.tolist(),
    }


def _v6_forms(q):
    be = np.ascontiguousarray(q.astype(">u8"))
    return {
        "(n, 2) uint64": q,
        "(n, 2) uint64 Fortran order": np.asfortranarray(q),
        "(n, 16) uint8": be.view(np.uint8).reshape(-1, 16),
        "S16": be.view("S16").reshape(-1),
        "V16": be.view("V16").reshape(-1),
    }


FORM_CASES = [(4, f) for f in ("uint32", "uint32 strided view", "int64 (converted)", "(n, 4) uint8", "S4",
                               "list of int")]
FORM_CASES += [(6, f) for f in ("(n, 2) uint64", "(n, 2) uint64 Fortran order", "(n, 16) uint8", "S16", "V16")]


@pytest.fixture(scope="module")
def array_forms(v4_queries, v6_queries):
    return {4: _v4_forms(v4_queries), 6: _v6_forms(v6_queries)}


@pytest.mark.parametrize("case", FORM_CASES, ids=lambda c: f"v{c[0]}-{c[1].replace(' ', '-')}")
def test_array_forms(benchmark, record, allowlist, allowlist6, array_forms, v4_answer, v6_answer, case):
    family, form = case
    benchmark.group = f"forms-v{family}"
    benchmark.extra_info.update(impl="ipallow", family=family, operation="contains_many", input=form)
    al, want = (allowlist, v4_answer) if family == 4 else (allowlist6, v6_answer)
    got = benchmark(al.contains_many, array_forms[family][form])
    record(items=want.size)
    assert_same(got, want, f"contains_many({form})")


# --------------------------------------------------------------------------- two threads

ONE_THREAD: dict[str, float] = {}   # group -> median seconds of the one-thread round


@pytest.fixture(scope="module")
def second_thread():
    """One worker thread, started before any timing (the caller is the other thread)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-second") as pool:
        pool.submit(lambda: None).result()
        yield pool


THREAD_CASES = [("threads-v4", threads) for threads in (1, 2)]
THREAD_CASES += [("threads-v6", threads) for threads in (1, 2)]
THREAD_CASES += [("threads-v4-strings", threads) for threads in (1, 2)]


@pytest.mark.parametrize("case", THREAD_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_threads(benchmark, record, summary, request, second_thread, allowlist, allowlist6, v4_queries, v6_queries,
                 v4_answer, v6_answer, case):
    group, threads = case
    benchmark.group = group
    if group == "threads-v6":
        al, q, want = allowlist6, v6_queries, v6_answer
    elif group == "threads-v4":
        al, q, want = allowlist, v4_queries, v4_answer
    else:
        al, q, want = allowlist, request.getfixturevalue("v4_strs"), v4_answer
    benchmark.extra_info.update(impl="ipallow", threads=threads, operation="contains_many",
                                input={"threads-v4": "uint32 array", "threads-v6": "(n, 2) uint64 array",
                                       "threads-v4-strings": "list of str"}[group])
    n = want.size
    half = n // 2
    out = np.empty(n, dtype=bool)
    cm = al.contains_many
    if threads == 1:
        def run():
            cm(q, out=out)
    else:
        first, second = q[:half], q[half:]
        out1, out2 = out[:half], out[half:]     # views: each thread writes its own half of `out`

        def run():
            other = second_thread.submit(cm, second, out=out2)
            cm(first, out=out1)
            other.result()

    benchmark(run)
    record(items=n)
    stats = benchmark.stats.stats if getattr(benchmark, "stats", None) else None
    if stats is not None:
        if threads == 1:
            ONE_THREAD[group] = stats.median
        elif group in ONE_THREAD:
            speedup = ONE_THREAD[group] / stats.median
            benchmark.extra_info["speedup_vs_one_thread_median"] = round(speedup, 2)
            summary.append((group, "two threads vs one (median)", f"{speedup:.2f}", "x speed-up"))
    assert_same(out, want, f"{group} with {threads} thread(s)")


# --------------------------------------------------------------------------- issue 15 goals, side by side

GOAL_MEDIANS: dict[tuple[int, str], float] = {}    # (family, case) -> median seconds a round
GOAL_RATIOS = [   # (family, case A, case B, what it says): median round time of A / that of B
    (4, "numpy searchsorted", "ipallow uint32", "ipallow uint32 / searchsorted"),
    (4, "ipallow uint32 4K pages", "ipallow uint32", "huge pages / 4K pages"),
    (6, "numpy searchsorted S16", "ipallow S16", "ipallow S16 / searchsorted"),
    (6, "ipallow (n, 2) uint64", "ipallow S16", "S16 throughput / (n, 2) uint64 (goal >= 0.8)"),
]
GOAL_CASES = [(4, c) for c in ("ipallow uint32", "ipallow uint32 4K pages", "numpy searchsorted")]
GOAL_CASES += [(6, c) for c in ("ipallow (n, 2) uint64", "ipallow S16", "numpy searchsorted S16")]


def _index_in_pages(allowlist, huge: bool):
    """An index serving ``allowlist``'s tables from a copy advised for or against huge pages."""
    d4, h4, b4, d6, h6, b6 = allowlist.compiled.tables
    d4, h4 = _hugepages.copied((d4, h4), huge=huge)
    d6, h6 = _hugepages.copied((d6, h6), huge=huge)
    index = _trie.Index()
    index._set_tables(d4, h4, b4, d6, h6, b6, allowlist.compiled.prefix_reg)
    return index


@pytest.mark.parametrize("case", GOAL_CASES, ids=lambda c: f"v{c[0]}-{c[1].replace(' ', '-')}")
def test_goals(benchmark, record, summary, allowlist, allowlist6, v4_queries, v6_queries, v4_answer, v6_answer,
               v4_ranges, v6_ranges, case):
    family, impl = case
    benchmark.group = f"goals-v{family}"
    want = v4_answer if family == 4 else v6_answer
    out = np.empty(want.size, dtype=bool)
    s16 = bench.rows_to_s16(v6_queries) if family == 6 else None
    if impl == "ipallow uint32":
        fn, arg = (lambda q: allowlist.contains_many(q, out=out)), v4_queries
    elif impl == "ipallow uint32 4K pages":
        if not _hugepages.available():
            pytest.skip("no madvise(MADV_HUGEPAGE) here: nothing to compare")
        index = _index_in_pages(allowlist, huge=False)
        fn, arg = (lambda q: index.contains_many(q, out=out)), v4_queries
    elif impl == "ipallow (n, 2) uint64":
        fn, arg = (lambda q: allowlist6.contains_many(q, out=out)), v6_queries
    elif impl == "ipallow S16":
        fn, arg = (lambda q: allowlist6.contains_many(q, out=out)), s16
    else:
        starts, ends = v4_ranges if family == 4 else v6_ranges
        fn, arg = (lambda q: bench.searchsorted_contains(starts, ends, q)), (v4_queries if family == 4 else s16)
        benchmark.extra_info["merged_ranges"] = int(starts.size)
    benchmark.extra_info.update(impl=impl.split(" ")[0], family=family, operation="contains_many", input=impl)
    got = benchmark(fn, arg)
    record(items=want.size)
    assert_same(got, want, f"{impl} (IPv{family})")
    stats = benchmark.stats.stats if getattr(benchmark, "stats", None) else None
    if stats is None:
        return
    GOAL_MEDIANS[(family, impl)] = stats.median
    for fam, num, den, what in GOAL_RATIOS:
        if fam == family and impl in (num, den) and (fam, num) in GOAL_MEDIANS and (fam, den) in GOAL_MEDIANS:
            ratio = GOAL_MEDIANS[(fam, num)] / GOAL_MEDIANS[(fam, den)]
            benchmark.extra_info[what] = round(ratio, 2)
            summary.append((f"goals-v{fam}", what, f"{ratio:.2f}", "x (of the median rounds)"))
