"""How build, size and lookups scale with the table: 1,000 / 30,000 / 1,000,000 IPv4 prefixes.

How to run (from the repository root, ipallow installed)::

    pytest benchmarks/bench_sizes.py --benchmark-only --benchmark-group-by=group
    IPALLOW_BENCH_SIZES=1000,30000 pytest benchmarks/bench_sizes.py --benchmark-only \
        --benchmark-group-by=group                                     # without the million

Collected only when named on the command line (see bench_core.py).  Sizes come from
``IPALLOW_BENCH_SIZES`` (comma-separated IPv4 table rows, default ``1000,30000,1000000``:
a small list, a national registry, a BGP-sized table); the IPv6 figures at 200,000
prefixes are in bench_core.py, bench_lookup.py and bench_batch.py
(``IPALLOW_BENCH_PREFIXES6``).  Each size gets its own seeded ``ipallow.synth`` table
(seed 1) and 100,000 queries (seed 2, half inside a prefix).

Groups, one set per size ``N``:

``build@N``          ``Allowlist(cidr strings)`` against filling a pytricia (3 rounds each);
                     ``extra_info``: ``nbytes`` and ``bytes_per_prefix`` (the compiled index).
``str-in@N``         ``q in x`` over 10,000 dotted-quad strings a round: ipallow, pytricia,
                     and the ``q in ()`` loop floor.
``contains_many@N``  one ``contains_many`` on 100,000 ``uint32`` addresses against numpy
                     ``searchsorted`` over the merged ranges.

Answers are asserted against ipallow's ``contains_many`` after timing (the searchsorted
baseline is independent of ipallow).
"""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import ipallow
from ipallow import bench, synth

SIZES = [int(x.replace("_", "")) for x in os.environ.get("IPALLOW_BENCH_SIZES", "1000,30000,1000000").split(",")
         if x.strip()]
N_QUERIES = 100_000
N_LOOP = 10_000
_CACHE: dict[int, dict] = {}


def dataset(n: int) -> dict:
    """The table of ``n`` prefixes with its queries and ipallow's answers (built once per size)."""
    if n not in _CACHE:
        _CACHE.clear()      # one size at a time: a million-row table and its peers are big
        gc.collect()
        keys, plens = synth.ipv4_table(n, seed=1)
        strings = synth.ipv4_strings(keys, plens)
        al = ipallow.Allowlist(strings)
        q = synth.ipv4_queries(keys, plens, N_QUERIES, seed=2)
        answer = al.contains_many(q)
        table = bench.PrefixTable(keys, plens, np.empty(0, np.uint64), np.empty(0, np.uint64), np.empty(0, np.uint8))
        _CACHE[n] = {"strings": strings, "allowlist": al, "queries": q, "answer": answer, "table": table,
                     "loop_strs": bench.ipv4_texts(q[:N_LOOP]), "loop_answer": answer[:N_LOOP].tolist()}
    return _CACHE[n]


def _pytricia(d: dict):
    peer = bench.PytriciaPeer()
    if not peer.available():
        pytest.skip("peer pytricia not installed")
    if "pytricia" not in d:
        d["pytricia"] = peer.build(d["table"], 4)
    return d["pytricia"]


# Order: every test of one size before the next size, so one table is alive at a time.
CASES = [(n, op, impl) for n in SIZES
         for op, impls in (("build", ("ipallow", "pytricia")),
                           ("str-in", ("ipallow", "pytricia", "loop floor")),
                           ("contains_many", ("ipallow", "numpy searchsorted")))
         for impl in impls]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2].replace(' ', '-')}")
def test_size(benchmark, record, summary, case):
    n, op, impl = case
    d = dataset(n)
    benchmark.group = f"{op}@{n}"
    benchmark.extra_info.update(impl=impl, prefixes=n, operation=op, family=4)
    if op == "build":
        if impl == "ipallow":
            al = benchmark.pedantic(ipallow.Allowlist, args=(d["strings"],), rounds=3, iterations=1)
            record()
            benchmark.extra_info["nbytes"] = int(al.nbytes)
            benchmark.extra_info["bytes_per_prefix"] = round(al.nbytes / n, 2)
            summary.append((benchmark.group, "ipallow Allowlist.nbytes", f"{al.nbytes / n:,.2f}",
                            f"bytes/prefix ({al.nbytes:,} B)"))
            assert np.array_equal(al.contains_many(d["queries"]), d["answer"])
        else:
            _pytricia(d)    # skips when absent
            peer = bench.PytriciaPeer()
            pt = benchmark.pedantic(peer.build, args=(d["table"], 4), rounds=3, iterations=1)
            record()
            assert [q in pt for q in d["loop_strs"]] == d["loop_answer"]
    elif op == "str-in":
        qs = d["loop_strs"]
        if impl == "loop floor":
            empty = ()
            benchmark(lambda: [q in empty for q in qs])
            record(calls=len(qs), note=" (loop overhead)")
            return
        x = d["allowlist"] if impl == "ipallow" else _pytricia(d)
        got = benchmark(lambda: [q in x for q in qs])
        record(calls=len(qs))
        assert got == d["loop_answer"]
    else:
        q = d["queries"]
        if impl == "ipallow":
            got = benchmark(d["allowlist"].contains_many, q)
        else:
            starts, ends = bench.merged_ranges(d["table"], 4)
            got = benchmark(bench.searchsorted_contains, starts, ends, q)
            benchmark.extra_info["merged_ranges"] = int(starts.size)
        record(items=q.size)
        assert np.array_equal(got, d["answer"])
