"""Flow-log columns: an Arrow string column on one core, and a Dask LocalCluster of 1 vs 2 workers.

How to run (from the repository root, ipallow installed with the ``dataframe`` extra)::

    pytest benchmarks/bench_dataframe.py --benchmark-only --benchmark-group-by=group
    IPALLOW_BENCH_PREFIXES=30000 IPALLOW_BENCH_ROWS=1000000 \\
        pytest benchmarks/bench_dataframe.py --benchmark-only --benchmark-group-by=group   # quick

Sizes: ``IPALLOW_BENCH_PREFIXES`` (IPv4 table rows, default 1,000,000; the shared
``allowlist`` fixture of conftest.py), ``IPALLOW_BENCH_ROWS`` (addresses in the column,
default 10,000,000), ``IPALLOW_BENCH_PARTITIONS`` (Dask partitions, default 20).

Groups:

``arrow-column``  one pass over an Arrow ``string`` column of IPALLOW_BENCH_ROWS dotted
                  quads (``ipallow.synth.ipv4_queries``, seed 3: half inside table
                  prefixes, half uniform), in this process, on one core:
                  ``core`` is the compiled loop alone (``Allowlist._match_text_arrow`` on
                  the column's buffers); ``contains_many`` is ``ipallow.dataframe.
                  contains_many`` (answer and valid mask); ``classify-pandas`` is
                  ``classify`` on a pandas DataFrame whose column is that Arrow array
                  (``string[pyarrow]``), adding allowed / registration / valid.  Figures:
                  rows/s (the session summary prints M rows/s, median and best round).
``dask``          the same rows as a Dask DataFrame of IPALLOW_BENCH_PARTITIONS
                  partitions held in the workers' memory (scattered once, untimed), on
                  two ``LocalCluster`` s side by side, of 1 and of 2 worker processes (one
                  thread each), their rounds interleaved (1, 2, 1, 2, ...) so that both
                  see the same background load:
                  the job is ``classify`` + the number of allowed rows + the sum of the
                  registration column (small tree reductions, so the figure is the
                  classification's; see ``_job``).
                  The allowlist is shipped to the workers in an untimed warm-up round (as
                  it is once per cluster in real use).  pytest-benchmark times the 2-worker
                  rounds; the summary prints both clusters' rows/s and the speed-up of 2
                  workers over 1 (ratio of medians; the pairs' ratios are in extra_info),
                  and each cluster's full result column is checked equal, row for row, to
                  the single-process answer.

The machine is a shared 2-core box: on a busy machine the 2-worker figure suffers most
(the second core is the one other work takes); ``uptime`` before a run tells.
"""
from __future__ import annotations

import itertools
import os
import time

import numpy as np
import pytest

from ipallow import synth

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")
idf = pytest.importorskip("ipallow.dataframe")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").replace("_", "").replace(",", "")
    return int(raw) if raw else default


N_ROWS = _env_int("IPALLOW_BENCH_ROWS", 10_000_000)
N_PARTITIONS = _env_int("IPALLOW_BENCH_PARTITIONS", 20)
ROW_SEED = 3


def dotted_quads(q: np.ndarray):
    """An Arrow ``string`` array of dotted quads for uint32 addresses (built in Arrow's C++)."""
    import pyarrow.compute as pc
    parts = [pc.cast(pa.array(((q >> shift) & 255).astype(np.uint8)), pa.string()) for shift in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


@pytest.fixture(scope="module")
def v4_rows(v4_table):
    """IPALLOW_BENCH_ROWS uint32 addresses, half inside table prefixes, half uniform."""
    return synth.ipv4_queries(*v4_table, N_ROWS, seed=ROW_SEED)


@pytest.fixture(scope="module")
def arrow_column(v4_rows):
    column = dotted_quads(v4_rows)
    assert column.type == pa.string() and len(column) == N_ROWS and column.null_count == 0
    return column


@pytest.fixture(scope="module")
def want(allowlist, v4_rows):
    """The single-process answer from the uint32 batch API: registration per row."""
    return allowlist.lookup_many(v4_rows)


def _record_rows(benchmark, summary, rows: int) -> None:
    meta = getattr(benchmark, "stats", None)
    stats = getattr(meta, "stats", None)
    if stats is None:   # --benchmark-disable
        return
    med, best = stats.median, stats.min
    benchmark.extra_info["M_rows_per_s_median"] = round(rows / med / 1e6, 2)
    benchmark.extra_info["M_rows_per_s_best"] = round(rows / best / 1e6, 2)
    summary.append((meta.group, meta.name, f"{rows / med / 1e6:,.2f} / {rows / best / 1e6:,.2f}",
                    f"M rows/s ({rows:,} rows)"))


# --------------------------------------------------------------------------- one core


@pytest.mark.benchmark(group="arrow-column")
def test_arrow_core(benchmark, summary, allowlist, arrow_column, want):
    validity, offsets, data = arrow_column.buffers()

    def run():
        return allowlist._match_text_arrow(offsets, data, None, arrow_column.offset, len(arrow_column))

    codes = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    _record_rows(benchmark, summary, N_ROWS)
    reg = np.where(codes >= 0, allowlist._compiled.prefix_reg.take(np.maximum(codes, 0)), -1)
    np.testing.assert_array_equal(reg, want)


@pytest.mark.benchmark(group="arrow-column")
def test_arrow_contains_many(benchmark, summary, allowlist, arrow_column, want):
    result = benchmark.pedantic(idf.contains_many, args=(arrow_column, allowlist), rounds=5, iterations=1,
                                warmup_rounds=1)
    _record_rows(benchmark, summary, N_ROWS)
    np.testing.assert_array_equal(result.values, want >= 0)
    assert result.valid.all()


@pytest.mark.benchmark(group="arrow-column")
def test_arrow_classify_pandas(benchmark, summary, allowlist, arrow_column, want):
    frame = pd.DataFrame({"src": pd.arrays.ArrowStringArray(arrow_column)})
    out = benchmark.pedantic(idf.classify, args=(frame, "src", allowlist), rounds=5, iterations=1,
                             warmup_rounds=1)
    _record_rows(benchmark, summary, N_ROWS)
    np.testing.assert_array_equal(out["registration"].to_numpy(), want)


# --------------------------------------------------------------------------- Dask


_ROUND = itertools.count()


def _job(ddf, allowlist, client):
    """classify + how many rows are allowed + the sum of the registration column.

    Small reductions on purpose: with a million registrations, rows per registration is a
    result of millions of groups whose merging (one task, plus copies between the
    workers) would outweigh the classification being measured.  Each call names its
    columns afresh: identical graphs would share keys, and the scheduler could hand back
    a previous round's results that it had not released yet.
    """
    import dask
    tag = next(_ROUND)
    allowed, registration = f"allowed_{tag}", f"registration_{tag}"
    out = idf.classify(ddf, "src", allowlist, allowed=allowed, registration=registration, valid=False,
                       client=client)
    return dask.compute(out[allowed].sum(), out[registration].astype("int64").sum(), scheduler=client)


@pytest.mark.benchmark(group="dask")
def test_dask_two_workers_vs_one(benchmark, summary, allowlist, arrow_column, want):
    """The 2-worker job is timed by pytest-benchmark; before each of its rounds (in the
    untimed setup) the 1-worker cluster runs the same job and is timed here, so that both
    see the same background load on a shared machine."""
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    bounds = np.linspace(0, N_ROWS, N_PARTITIONS + 1).astype(np.int64)
    frames = [pd.DataFrame({"src": pd.arrays.ArrowStringArray(pa.concat_arrays([arrow_column.slice(a, b - a)]))},
                           index=pd.RangeIndex(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
    expected_allowed = int(np.count_nonzero(want >= 0))
    expected_sum = int(want.astype(np.int64).sum())
    clusters = {}
    try:
        for workers in (1, 2):
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               host="127.0.0.1", dashboard_address=None)
            client = distributed.Client(cluster, set_as_default=False)
            futures = client.scatter(frames)          # returns once the rows live on the workers
            ddf = dd.from_delayed(futures, meta=frames[0].iloc[:0])
            start = time.perf_counter()
            assert _job(ddf, allowlist, client) == (expected_allowed, expected_sum)  # ships the allowlist
            clusters[workers] = (cluster, client, ddf, time.perf_counter() - start)

        one_worker: list[float] = []

        def run_one_worker():
            _, client, ddf, _ = clusters[1]
            start = time.perf_counter()
            result = _job(ddf, allowlist, client)
            one_worker.append(time.perf_counter() - start)
            assert result == (expected_allowed, expected_sum)

        _, client2, ddf2, _ = clusters[2]
        result = benchmark.pedantic(_job, args=(ddf2, allowlist, client2), setup=run_one_worker, rounds=5,
                                    iterations=1)
        assert result == (expected_allowed, expected_sum)
        # identical results, row for row, from both clusters; the allowlist arrived once per worker
        for workers, (_, client, ddf, _) in clusters.items():
            full = idf.classify(ddf, "src", allowlist, client=client)["registration"].compute(scheduler=client)
            np.testing.assert_array_equal(full.sort_index().to_numpy(), want)
            assert sum(s["shipments"] for s in client.run(idf.worker_stats).values()) == workers
    finally:
        for cluster, client, _, _ in clusters.values():
            client.close()
            cluster.close()

    meta = getattr(benchmark, "stats", None)
    stats = getattr(meta, "stats", None)
    if stats is None:
        return
    one, two = float(np.median(one_worker)), stats.median
    ratio = one / two
    load = os.getloadavg()[0]
    benchmark.extra_info.update({"one_worker_median_s": round(one, 3), "two_workers_median_s": round(two, 3),
                                 "speedup": round(ratio, 2), "pair_ratios": [round(a / b, 2) for a, b in
                                                                             zip(one_worker, stats.data)],
                                 "first_round_with_shipping_s": {w: round(c[3], 3) for w, c in clusters.items()},
                                 "load_average_1min_at_end": round(load, 2)})
    summary.append(("dask", "1 worker", f"{N_ROWS / one / 1e6:,.2f}", f"M rows/s (median of {len(one_worker)})"))
    summary.append(("dask", "2 workers", f"{N_ROWS / two / 1e6:,.2f}", f"M rows/s (median of {len(stats.data)})"))
    summary.append(("dask", "2 workers vs 1 (ratio of medians)", f"{ratio:.2f}",
                    f"x  (rounds interleaved; load average at the end: {load:.2f})"))
