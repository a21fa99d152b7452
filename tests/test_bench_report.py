"""benchmarks/report.py: a saved pytest-benchmark run -> the README performance tables."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parent.parent / "benchmarks" / "report.py"
pytestmark = pytest.mark.skipif(not REPORT.exists(), reason="benchmarks/report.py is not in this checkout")


def bench(group, name, median, *, extra=None, minimum=None):
    return {"group": group, "name": name, "fullname": name, "params": None, "extra_info": extra or {},
            "stats": {"median": median, "min": minimum if minimum is not None else median, "mean": median}}


def loop(group, name, ns, impl=None):
    extra = {"ns_per_call_median": ns, "ns_per_call_min": ns}
    if impl:
        extra["impl"] = impl
    return bench(group, name, ns * 1e-9 * 10_000, extra=extra)


def batch(group, name, mps, **extra):
    return bench(group, name, 1e6 / (mps * 1e6),
                 extra={"M_lookups_per_s_median": mps, "M_lookups_per_s_best": mps * 1.1, **extra})


RUN = {
    "machine_info": {"python_version": "3.11.7", "python_implementation": "CPython",
                     "cpu": {"brand_raw": "Test CPU", "count": 2},
                     "ipallow": {"cpu_model": "Test CPU model", "cpus": 2, "load_average_start": [0.5, 0.4, 0.3],
                                 "numpy": "2.0.0", "ipallow": "0.1.0",
                                 "peers": {"pytricia": "1.3.0", "netaddr.IPSet": None}}},
    "commit_info": {"id": "0123456789abcdef", "dirty": False, "branch": "main"},
    "datetime": "2026-01-02T03:04:05+00:00",
    "ipallow": {"load_average_end": [0.9, 0.5, 0.3], "prefixes_v4": 1000000, "prefixes_v6": 200000,
                "queries": 1000000, "loop_calls": 10000, "table_seed": 1, "query_seed": 2},
    "benchmarks": [
        bench("build", "test_build_ipallow", 0.30, extra={"prefixes": 1000000, "bytes_per_prefix": 7.5,
                                                          "rss_growth_bytes": 9_000_000}),
        bench("build", "test_build_pytricia", 0.45, extra={"prefixes": 1000000, "rss_growth_bytes": 150_000_000}),
        loop("in-v4-str", "test_in[v4-str-ipallow]", 70, "ipallow"),
        loop("in-v4-str", "test_in[v4-str-pytricia]", 520, "pytricia"),
        loop("in-v4-str", "test_in[v4-str-loop floor]", 20, "loop floor"),
        loop("in-v4-int", "test_in[v4-int-ipallow]", 50, "ipallow"),
        loop("in-v4-int", "test_in[v4-int-pyroaring.BitMap]", 90, "pyroaring.BitMap"),
        loop("in-v4-int", "test_in[v4-int-loop floor]", 20, "loop floor"),
        batch("contains_many-v4", "test_contains_many_v4_ipallow", 120.0),
        batch("contains_many-v4", "test_contains_many_v4_searchsorted", 10.0),
        batch("batch-v4-strings", "test_strings[v4-ipallow-contains_many]", 16.0,
              impl="ipallow", operation="contains_many", input="list of str"),
        batch("batch-v4-strings", "test_strings[v4-pytricia]", 2.0,
              impl="pytricia", operation="[q in t for q in list]", input="list of str"),
        batch("threads-v4", "test_threads[threads-v4-1]", 100.0, impl="ipallow", threads=1, input="uint32 array"),
        batch("threads-v4", "test_threads[threads-v4-2]", 190.0, impl="ipallow", threads=2, input="uint32 array"),
    ],
}


def load_report_module():
    spec = importlib.util.spec_from_file_location("ipallow_bench_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_tables_and_goals(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(RUN))
    out = tmp_path / "perf.md"
    report = load_report_module()
    assert report.main([str(path), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("## Performance")
    assert "Test CPU model" in text and "commit `0123456789`" in text and "pytricia 1.3.0" in text
    assert "not installed: netaddr.IPSet" in text
    assert "0.5/0.4/0.3 at the start, 0.9/0.5/0.3 at the end" in text
    assert "1,000,000 IPv4 and 200,000 IPv6 prefixes" in text
    # floor subtracted: ipallow 70 - 20 = 50 ns, pytricia 520 - 20 = 500 ns -> 10x
    assert "| IPv4 str | 50.0 ns | 500 ns (10.0×) |" in text
    assert "| `str in allowlist`, IPv4, against pytricia | ≥ 8× | 10.0× (50.0 ns vs 500 ns; 7.4× with the loop) | met |" in text
    assert "| `contains_many`, IPv4 `uint32` | ≥ 100 M/s | 120 M/s (best 132) | met |" in text
    assert "| … against numpy `searchsorted` | ≥ 6× | 12.0× | met |" in text
    assert "| `contains_many` on a list of IPv4 strings | ≥ 15 M/s | 16.0 M/s (best 17.6) | met |" in text
    assert "| compiled index | ≤ 8 B/prefix | 7.50 B/prefix | met |" in text
    assert "| `int in allowlist` against `int in pyroaring.BitMap` | faster | 30.0 ns vs 70.0 ns (2.3×) | met |" in text
    assert "| two threads, `threads-v4` | close to 2× | 1.90× (best rounds 1.90×) | met |" in text
    assert "| `threads-v4` (uint32 array) | 100 (110) | 190 (209) | 1.90× | 1.90× |" in text
    assert "| `contains_many-v4` | numpy searchsorted (uint32 array, merged ranges) | 10.0 (11.0) | 12.0× |" in text
    assert "| ipallow | 300.0 ms (300.0 ms) |  | 7.50 | 9.0 |" in text


def test_report_command_line_errors(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"benchmarks": []}))
    result = subprocess.run([sys.executable, str(REPORT), str(empty)], capture_output=True, text=True)
    assert result.returncode == 2 and "no benchmarks" in result.stderr
    result = subprocess.run([sys.executable, str(REPORT), str(tmp_path / "missing.json")],
                            capture_output=True, text=True)
    assert result.returncode == 2
