"""Memory for the lookup tables in transparent huge pages, where the kernel offers them.

A batch of lookups reads level-0 entries and nodes all over a table of a few megabytes;
with 4 KiB pages nearly every one of those reads also misses the TLB, and under a
hypervisor (nested paging) a TLB miss costs several memory reads of its own.  A table in
2 MiB pages needs a handful of TLB entries.  Linux gives anonymous memory huge pages
when it is asked to (``madvise(MADV_HUGEPAGE)``, the ``madvise`` mode of
``/sys/kernel/mm/transparent_hugepage/enabled``) or always (the ``always`` mode); numpy
asks only for its own allocations of 4 MiB and more, and small-ish arrays from the
``malloc`` heap never get them.  So the tables are copied into a private anonymous
mapping aligned to 2 MiB and advised before it is first touched.

Elsewhere (no ``mmap.MADV_HUGEPAGE``: macOS, Windows, old Pythons) and for tables
smaller than one huge page, the arrays are left as they are.
"""
from __future__ import annotations

import mmap

import numpy as np

HUGE_PAGE = 2 << 20
ALIGN = 64      # every array starts on a cache line


def _round_up(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def available() -> bool:
    """Whether this platform can ask for huge pages (Linux with ``MADV_HUGEPAGE``)."""
    return all(hasattr(mmap, name) for name in ("MADV_HUGEPAGE", "MADV_NOHUGEPAGE", "MAP_PRIVATE"))


def _advised(nbytes: int, huge: bool = True) -> np.ndarray:
    """A writable ``uint8`` array of ``nbytes`` starting on a huge page, advised to use them
    (or, with ``huge=False``, advised not to: the same layout in 4 KiB pages, for A/B runs)."""
    length = _round_up(nbytes, HUGE_PAGE)
    area = mmap.mmap(-1, length + HUGE_PAGE, flags=mmap.MAP_PRIVATE,
                     prot=mmap.PROT_READ | mmap.PROT_WRITE)
    raw = np.frombuffer(area, dtype=np.uint8)
    start = -raw.ctypes.data % HUGE_PAGE
    try:
        area.madvise(mmap.MADV_HUGEPAGE if huge else mmap.MADV_NOHUGEPAGE, start, length)
    except OSError:         # a kernel built without THP: plain pages, as before
        pass
    return raw[start:start + nbytes]


def empty(nbytes: int) -> np.ndarray:
    """A writable ``uint8`` array of ``nbytes``: in huge pages when it fills at least one
    and the platform has them, else an ordinary ``np.empty``."""
    if not available() or nbytes < HUGE_PAGE:
        return np.empty(nbytes, dtype=np.uint8)
    return _advised(nbytes)


def copied(arrays: tuple, huge: bool = True) -> tuple:
    """``arrays`` copied end to end into one huge-page-advised mapping, read-only.

    Returns the arrays unchanged when huge pages are not available or they fill less
    than one huge page together.  The copies keep the mapping alive; it is unmapped
    when the last of them is freed.  ``huge=False`` advises the same mapping against
    huge pages (benchmarks/bench_batch.py measures the two side by side).
    """
    sizes = [_round_up(a.nbytes, ALIGN) for a in arrays]
    total = sum(sizes)
    if not available() or total < HUGE_PAGE:
        return arrays
    raw = _advised(total, huge)
    out = []
    offset = 0
    for a, size in zip(arrays, sizes):
        view = raw[offset:offset + a.nbytes].view(a.dtype)
        view[...] = a.reshape(-1)
        view.flags.writeable = False
        out.append(view.reshape(a.shape))
        offset += size
    return tuple(out)
