"""Lookup tables in transparent huge pages (ipallow._hugepages): same contents, read-only,
left alone when small or where the platform has no ``MADV_HUGEPAGE``."""
from __future__ import annotations

import mmap
import sys
from pathlib import Path

import numpy as np
import pytest

import ipallow
from ipallow import _hugepages, bench, synth

THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def huge_kib_of(address: int) -> int | None:
    """AnonHugePages (KiB) of the mapping holding ``address``, from /proc/self/smaps."""
    lines = Path("/proc/self/smaps").read_text().splitlines()
    for i, line in enumerate(lines):
        head = line.split()[0]
        if "-" in head and all(c in "0123456789abcdef-" for c in head):
            lo, hi = (int(x, 16) for x in head.split("-"))
            if lo <= address < hi:
                for field in lines[i + 1:]:
                    if field.startswith("AnonHugePages:"):
                        return int(field.split()[1])
    return None


def test_copies_are_equal_read_only_and_cache_line_aligned():
    rnd = np.random.default_rng(5)
    a = rnd.integers(0, 2**32, size=300_001, dtype=np.uint32)
    b = rnd.integers(0, 2**32, size=(700_003,), dtype=np.uint32)
    ca, cb = _hugepages.copied((a, b))
    assert ca.dtype == a.dtype and cb.dtype == b.dtype
    assert np.array_equal(ca, a) and np.array_equal(cb, b)
    if _hugepages.available():
        assert ca is not a and not ca.flags.writeable and not cb.flags.writeable
        assert ca.ctypes.data % _hugepages.HUGE_PAGE == 0
        assert cb.ctypes.data % 64 == 0
        assert not np.shares_memory(ca, a)


def test_small_tables_stay_where_they_are():
    a = np.arange(1000, dtype=np.uint32)
    b = np.arange(10, dtype=np.uint32)
    assert _hugepages.copied((a, b))[0] is a
    assert _hugepages.empty(4096).nbytes == 4096


def test_without_madvise_nothing_is_copied(monkeypatch):
    monkeypatch.delattr(mmap, "MADV_HUGEPAGE", raising=False)
    big = np.zeros(_hugepages.HUGE_PAGE, dtype=np.uint8)
    assert _hugepages.copied((big,))[0] is big
    assert _hugepages.empty(3 * _hugepages.HUGE_PAGE).nbytes == 3 * _hugepages.HUGE_PAGE


@pytest.mark.skipif(not sys.platform.startswith("linux") or not THP_MODE.exists()
                    or "[never]" in THP_MODE.read_text(), reason="no transparent huge pages here")
def test_a_big_table_is_served_from_huge_pages():
    keys, plens = synth.ipv4_table(300_000, seed=4)
    al = ipallow.Allowlist(synth.ipv4_strings(keys, plens))
    dir4, heap4 = al.compiled.tables[:2]
    assert dir4.nbytes + heap4.nbytes >= _hugepages.HUGE_PAGE
    assert dir4.ctypes.data % _hugepages.HUGE_PAGE == 0
    huge = huge_kib_of(dir4.ctypes.data)
    if not huge:
        pytest.skip("the kernel had no huge page to give (fragmented memory)")
    assert huge >= 2048
    queries = synth.ipv4_queries(keys, plens, 20_000, seed=5)
    # answers against numpy searchsorted over the merged prefixes (not the trie's tables)
    starts, ends = bench.merged_ranges(bench.PrefixTable.from_allowlist(al), 4)
    want = bench.searchsorted_contains(starts, ends, queries)
    assert 0.3 < want.mean() < 0.95
    assert np.array_equal(al.contains_many(queries), want)
