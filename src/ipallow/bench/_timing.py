"""Timing: single-call latency, batch throughput, builds and the memory they take."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from typing import Any, Callable, Sequence

import numpy as np

from ipallow.bench._defaults import LATENCY_BATCH

_SAMPLE_FIRST = 1000        # items timed once to size a slow peer's batch


def _in_loop(container, groups, clock) -> list[int]:
    times = []
    append = times.append
    for g in groups:
        t0 = clock()
        for q in g:
            q in container      # noqa: B015 - the membership test is what is timed
        append(clock() - t0)
    return times


def _call_loop(fn, groups, clock) -> list[int]:
    times = []
    append = times.append
    for g in groups:
        t0 = clock()
        for q in g:
            fn(q)
        append(clock() - t0)
    return times


@contextlib.contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while timing, as ``timeit`` does.

    This process holds every peer's structure (millions of objects for a big list);
    a full collection triggered inside a timed loop would be charged to whichever
    library happened to allocate at that moment.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _batch_ns(kind: str, target, items: Sequence, seconds: float, batch: int) -> np.ndarray:
    """Per-call nanoseconds of every ``batch``-call group timed within ``seconds`` (at least 2,000 groups
    or one pass over ``items``, whichever is fewer)."""
    batch = max(1, min(batch, len(items)))
    groups = [items[i:i + batch] for i in range(0, len(items) - batch + 1, batch)]
    loop = _in_loop if kind == "in" else _call_loop
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    out: list[int] = []
    start = 0
    with _gc_paused():
        while True:
            out.extend(loop(target, groups[start:start + 2000], clock))
            start = start + 2000 if start + 2000 < len(groups) else 0
            if clock() >= deadline:
                break
    return np.asarray(out, dtype=np.float64) / batch


def latency(kind: str, target, items: Sequence, *, seconds: float, floor_ns: float,
            batch: int = LATENCY_BATCH) -> dict:
    """Single-call latency of ``q in target`` (``kind="in"``) or ``target(q)`` (``"call"``).

    How: the calls are made in groups of ``batch`` consecutive queries; each group is
    timed with two ``time.perf_counter_ns()`` reads, divided by ``batch``, and the
    loop floor (the same loop around the cheapest operation, see :func:`loop_floor`)
    is subtracted.  p50 / p99 are percentiles over groups, repeated over the queries
    for ``seconds``.  A single call (tens of nanoseconds) is shorter than the clock's
    own overhead, hence the groups; a p99 is therefore the 99th percentile of
    ``batch``-call means, which smooths single outliers (a page fault, a preemption)
    over the group.
    """
    per_call = _batch_ns(kind, target, items, seconds, batch) - floor_ns
    per_call = np.maximum(per_call, 0.0)
    return {"p50_ns": round(float(np.percentile(per_call, 50)), 1),
            "p99_ns": round(float(np.percentile(per_call, 99)), 1),
            "min_ns": round(float(per_call.min()), 1),
            "calls": int(per_call.size * max(1, min(batch, len(items))))}


def loop_floor(kind: str, items: Sequence, *, seconds: float, batch: int = LATENCY_BATCH) -> float:
    """Median per-call cost of the timing loop itself: ``q in ()`` or ``id(q)``.

    An empty tuple makes ``in`` do nothing with the query (no hash, no comparison),
    so the floor is the same whatever the query's type.
    """
    target = () if kind == "in" else id
    return float(np.median(_batch_ns(kind, target, items, seconds, batch)))


def throughput(fn: Callable[[Any], Any], items: Any, *, seconds: float, min_runs: int = 3,
               max_runs: int = 50) -> dict:
    """Lookups per second of ``fn(items)``: best and median over repeated runs.

    A run over all of ``items`` that would not fit ``min_runs`` times into ``seconds``
    (a pure-Python peer over many queries) is timed on a leading slice instead, sized
    from one timed run over the first 1,000 items.  Items per second do not depend on
    the slice length for a per-item loop.
    """
    n = len(items)
    clock = time.perf_counter
    use = items
    if n > _SAMPLE_FIRST:
        t0 = clock()
        fn(items[:_SAMPLE_FIRST])
        per_item = (clock() - t0) / _SAMPLE_FIRST
        fit = int(seconds / min_runs / max(per_item, 1e-12))
        if fit < n:
            use = items[:max(fit, _SAMPLE_FIRST)]
    m = len(use)
    times: list[float] = []
    spent = 0.0
    with _gc_paused():
        while len(times) < max_runs and (len(times) < min_runs or spent < seconds):
            t0 = clock()
            fn(use)
            t = clock() - t0
            times.append(t)
            spent += t
            if spent > 2 * seconds:
                break
    best, median = min(times), float(np.median(times))
    return {"items": m, "runs": len(times),
            "best_M_per_s": round(m / best / 1e6, 3) if best > 0 else None,
            "median_M_per_s": round(m / median / 1e6, 3) if median > 0 else None,
            "best_ns_per_item": round(best / m * 1e9, 2), "median_ns_per_item": round(median / m * 1e9, 2)}


def rss_bytes() -> int | None:
    """Resident set size of this process (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def timed_builds(build: Callable[[], Any], *, seconds: float, max_runs: int = 3) -> tuple[Any, dict]:
    """Build once measuring resident-memory growth, then repeat (discarding) within ``seconds``."""
    gc.collect()
    before = rss_bytes()
    t0 = time.perf_counter()
    kept = build()
    times = [time.perf_counter() - t0]
    after = rss_bytes()
    while len(times) < max_runs and sum(times) < seconds:
        t0 = time.perf_counter()
        build()
        times.append(time.perf_counter() - t0)
    growth = None if before is None or after is None else max(after - before, 0)
    return kept, {"best_s": min(times), "median_s": float(np.median(times)), "runs": len(times),
                  "rss_growth_bytes": growth}
