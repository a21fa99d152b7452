"""Snapshot files: opening (memory-mapped, validated) against compiling, on the same table.

Run: ``pytest benchmarks/bench_snapshot.py --benchmark-only --benchmark-group-by=group``
(``IPALLOW_BENCH_PREFIXES`` sets the IPv4 table size, default 1,000,000; see conftest.py).

Groups:
``snapshot-open``  ``ipallow.load(path)`` (one read into private memory, then the header,
                   checksums of the served sections, table structure), ``ipallow.load(path,
                   share=True)`` (the file's pages mapped under a read lease, no read) and
                   ``Allowlist(list_of_strings)`` on the same list; the issue's goal is <= 10 ms
                   to open and >= 50x faster than compiling.  Each open records in its
                   ``extra_info`` the anonymous (private, not page-cache) memory one more
                   loaded copy costs once every page lookups and iteration read is touched
                   (``anon_mib``) and the file size (``file_mib``): the private copy's price.
``snapshot-pickle`` ``pickle.loads`` of a protocol-5 pickle with its buffer out of band.
Every result is checked against the compiled allowlist's answers after timing.  Page cache
is warm (the file was just written), as it is for the second and later worker processes.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import ipallow


@pytest.fixture(scope="module")
def snapshot_path(allowlist, tmp_path_factory):
    path = tmp_path_factory.mktemp("snapshot") / "table.ipallow"
    allowlist.save(path)
    return path


# Run in a fresh process: in this one, memory freed by the timed rounds is reused by malloc
# and would hide what one more loaded copy costs.
MEMORY_PROBE = r"""
import sys
import numpy as np
import ipallow

def anonymous_kib():
    with open("/proc/self/smaps_rollup") as handle:
        for line in handle:
            if line.startswith("Anonymous:"):
                return int(line.split()[1])

before = anonymous_kib()
al = ipallow.load(sys.argv[1], share=sys.argv[2] == "share")
c = al._compiled
for array in [t for t in c.tables if isinstance(t, np.ndarray)] + [c.prefix_reg, c.version, c.hi,
                                                                    c.lo, c.prefixlen, c.reg_rows]:
    int(array.view(np.uint8).sum())          # every page a lookup, its details, iteration read
al[len(al) - 1]
print(al.shared, (anonymous_kib() - before) / 1024)
"""


def record_memory(benchmark, snapshot_path, share: bool) -> None:
    """Anonymous (private, not page-cache) memory one loaded copy costs, in extra_info."""
    benchmark.extra_info["file_mib"] = round(os.path.getsize(snapshot_path) / 2**20, 1)
    if not os.path.exists("/proc/self/smaps_rollup"):
        return
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(snapshot_path),
                             "share" if share else "private"],
                            capture_output=True, text=True, timeout=300, check=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    shared, anon_mib = result.stdout.split()
    benchmark.extra_info["shared"] = shared == "True"
    benchmark.extra_info["anon_mib"] = round(float(anon_mib), 1)


@pytest.mark.benchmark(group="snapshot-open")
def test_open_snapshot(benchmark, snapshot_path, allowlist, v4_queries, v4_answer):
    loaded = benchmark.pedantic(ipallow.load, args=(snapshot_path,), rounds=20, iterations=1)
    assert np.array_equal(loaded.contains_many(v4_queries), v4_answer)
    assert np.array_equal(loaded.lookup_many(v4_queries), allowlist.lookup_many(v4_queries))
    record_memory(benchmark, snapshot_path, share=False)


@pytest.mark.benchmark(group="snapshot-open")
def test_open_snapshot_shared(benchmark, snapshot_path, allowlist, v4_queries, v4_answer):
    loaded = benchmark.pedantic(ipallow.load, args=(snapshot_path,), kwargs={"share": True},
                                rounds=20, iterations=1)
    assert np.array_equal(loaded.contains_many(v4_queries), v4_answer)
    assert np.array_equal(loaded.lookup_many(v4_queries), allowlist.lookup_many(v4_queries))
    record_memory(benchmark, snapshot_path, share=True)


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
