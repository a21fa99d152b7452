"""Snapshot files: opening (memory-mapped, validated) against compiling, on the same table.

Run: ``pytest benchmarks/bench_snapshot.py --benchmark-only --benchmark-group-by=group``
(``IPALLOW_BENCH_PREFIXES`` sets the IPv4 table size, default 1,000,000; see conftest.py).

Groups:
``snapshot-open``  ``ipallow.load(path)`` (header, checksums of the served sections, table
                   structure) vs ``Allowlist(list_of_strings)`` on the same list; the issue's
                   goal is <= 10 ms to open and >= 50x faster than compiling.
``snapshot-pickle`` ``pickle.loads`` of a protocol-5 pickle with its buffer out of band.
Every result is checked against the compiled allowlist's answers after timing.  Page cache
is warm (the file was just written), as it is for the second and later worker processes.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import ipallow


@pytest.fixture(scope="module")
def snapshot_path(allowlist, tmp_path_factory):
    path = tmp_path_factory.mktemp("snapshot") / "table.ipallow"
    allowlist.save(path)
    return path


@pytest.mark.benchmark(group="snapshot-open")
def test_open_snapshot(benchmark, snapshot_path, allowlist, v4_queries, v4_answer):
    loaded = benchmark.pedantic(ipallow.load, args=(snapshot_path,), rounds=20, iterations=1)
    assert np.array_equal(loaded.contains_many(v4_queries), v4_answer)
    assert np.array_equal(loaded.lookup_many(v4_queries), allowlist.lookup_many(v4_queries))


@pytest.mark.benchmark(group="snapshot-open")
def test_compile_same_list(benchmark, v4_prefix_strings, v4_queries, v4_answer):
    compiled = benchmark.pedantic(ipallow.Allowlist, args=(v4_prefix_strings,), rounds=3, iterations=1)
    assert np.array_equal(compiled.contains_many(v4_queries), v4_answer)


@pytest.mark.benchmark(group="snapshot-pickle")
def test_unpickle_out_of_band(benchmark, allowlist, v4_queries, v4_answer):
    buffers: list = []
    payload = pickle.dumps(allowlist, protocol=5, buffer_callback=buffers.append)
    clone = benchmark.pedantic(pickle.loads, args=(payload,), kwargs={"buffers": buffers},
                               rounds=10, iterations=1)
    assert np.array_equal(clone.contains_many(v4_queries), v4_answer)
