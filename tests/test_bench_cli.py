"""`ipallow bench` (the installed executable, in a subprocess) and the agreement check of ipallow.bench.

No timing assertions: the machine is shared, so only the structure of the output and
the verdicts are checked; every run uses a tiny time budget.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import numpy as np
import pytest

import ipallow
from ipallow import bench

IPALLOW = shutil.which("ipallow")
needs_cli = pytest.mark.skipif(IPALLOW is None, reason="the ipallow executable is not installed")

LIST = """\
# a small list: nested, duplicate and both families
192.0.2.0/24
192.0.2.64/26
198.51.100.0/24
198.51.100.0/24
10.0.0.0/8
10.20.0.0/16
203.0.113.7
2001:db8::/32
2001:db8:10::/48
2001:db8:10:20::/64
"""


def run_cli(*args, env=None, timeout=240):
    return subprocess.run([IPALLOW, "bench", *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def small_list(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text(LIST)
    return path


# --------------------------------------------------------------------------- the executable


@needs_cli
def test_json_structure_and_every_installed_peer_checked(small_list):
    result = run_cli("--list", str(small_list), "--queries", "400", "--seconds", "0.3", "--json")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert set(r) >= {"list", "machine", "queries", "peers", "build", "memory", "latency", "throughput",
                      "agreement", "settings"}
    assert r["list"]["prefixes"] == {"ipv4": 7, "ipv6": 3}
    assert r["list"]["registrations"] == 10
    assert r["queries"]["origin"] == "random" and r["queries"]["count"] == 400
    assert sum(r["queries"]["per_family"].values()) == 400
    assert r["machine"]["python"] and r["machine"]["numpy"] and "cpu" in r["machine"]
    assert r["memory"]["nbytes"] == ipallow.Allowlist(LIST.split("\n")[1:-1]).nbytes

    installed, missing = bench.installed_peers()
    assert [p["name"] for p in r["peers"]["compared"]] == [p.name for p in installed]
    assert r["peers"]["not_installed"] == missing
    built = {b["impl"] for b in r["build"]}
    assert {"ipallow"} | {p.name for p in installed} <= built
    assert all(b["best_s"] > 0 for b in r["build"])

    # the agreement check covered every peer, every family it supports, every query
    checked = {(c["impl"], c["family"]): c["queries"] for c in r["agreement"]["checked"]}
    for peer in installed:
        for family in peer.families:
            assert checked[(peer.name, family)] == r["queries"]["per_family"][f"ipv{family}"]
    assert checked[("numpy searchsorted", 4)] and checked[("numpy searchsorted", 6)]
    assert r["agreement"] == {"ok": True, "checked": r["agreement"]["checked"], "disagreements": []}

    lat = {(x["impl"], x["operation"], x["input"], x["family"]) for x in r["latency"]}
    for family in (4, 6):
        assert ("ipallow", "q in allowlist", "str", family) in lat
        assert ("ipallow", "allowlist.lookup(q)", "str", family) in lat
        assert ("ipallow", "q in allowlist", "int", family) in lat
    for x in r["latency"]:
        assert x["p99_ns"] >= x["p50_ns"] >= 0 and x["calls"] > 0
    inputs = {(x["impl"], x["operation"], x["input"]) for x in r["throughput"]}
    assert ("ipallow", "contains_many", "uint32 array") in inputs
    assert ("ipallow", "contains_many", "(n, 2) uint64 array") in inputs
    assert ("ipallow", "contains_many", "list of str") in inputs
    assert ("ipallow", "lookup_many", "uint32 array") in inputs
    for x in r["throughput"]:
        assert x["best_M_per_s"] >= x["median_M_per_s"] > 0 and x["runs"] >= 1


@needs_cli
def test_text_output_on_the_bundled_sample():
    pytest.importorskip("pytricia")
    pytest.importorskip("pyroaring")
    result = run_cli("--sample", "--queries", "300", "--seconds", "0.2", "--peers", "pytricia,pyroaring.BitMap")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "sample.csv (registry)" in out
    assert "agreement: OK" in out
    for heading in ("build", "single lookups", "batch throughput"):
        assert f"\n{heading}" in out
    assert "py-radix" not in out            # only the peers asked for


@needs_cli
def test_query_file_bad_lines_reported_with_line_numbers(small_list, tmp_path):
    queries = tmp_path / "q.txt"
    queries.write_text("192.0.2.9\n# a comment\n\n1.2.3.256\n2001:db8:10::1\nnot-an-ip\n::ffff:198.51.100.3\n")
    result = run_cli("--list", str(small_list), "--queries", str(queries), "--seconds", "0.2", "--json",
                     "--peers", "none")
    assert result.returncode == 0, result.stderr
    assert f"{queries}:4: not an address" in result.stderr and "1.2.3.256" in result.stderr
    assert f"{queries}:6: not an address" in result.stderr
    r = json.loads(result.stdout)
    assert [p["line"] for p in r["queries"]["problems"]] == [4, 6]
    assert r["queries"]["count"] == 3
    assert r["queries"]["per_family"] == {"ipv4": 2, "ipv6": 1}    # the mapped address counts as IPv4
    assert r["agreement"]["ok"]


@needs_cli
def test_query_file_without_any_address_is_an_error(small_list, tmp_path):
    queries = tmp_path / "q.txt"
    queries.write_text("nope\n")
    result = run_cli("--list", str(small_list), "--queries", str(queries))
    assert result.returncode == 2
    assert "no addresses" in result.stderr


@needs_cli
@pytest.mark.parametrize("value", ["0", "many", "-5"])
def test_bad_queries_argument_is_a_usage_error(value):
    result = run_cli("--queries", value)
    assert result.returncode == 2
    assert "--queries" in result.stderr


@needs_cli
def test_plot_without_matplotlib_exits_two(tmp_path, small_list, monkeypatch):
    # a matplotlib package that cannot be imported shadows the real one
    fake = tmp_path / "site" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('matplotlib hidden by the test')\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path / "site")}
    out = tmp_path / "chart.png"
    result = run_cli("--list", str(small_list), "--plot", str(out), env=env)
    assert result.returncode == 2
    assert "--plot needs matplotlib" in result.stderr and "ipallow[plot]" in result.stderr
    assert not out.exists()


@needs_cli
def test_plot_writes_a_png(tmp_path, small_list):
    pytest.importorskip("matplotlib")
    out = tmp_path / "chart.png"
    result = run_cli("--list", str(small_list), "--queries", "200", "--seconds", "0.2", "--peers", "none",
                     "--plot", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _bad_plot_destinations(tmp_path):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    out = {"a directory": (tmp_path / "adir", "is a directory"),
           "in a missing directory": (tmp_path / "missing" / "chart.png", "No such file or directory"),
           "a file name ending in a slash": (f"{tmp_path / 'afile'}/", "Not a directory")}
    import os
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out["in a directory it cannot write"] = (locked / "chart.png", "Permission denied")
    return out


@needs_cli
@pytest.mark.parametrize("case", ["a directory", "in a missing directory", "a file name ending in a slash",
                                  "in a directory it cannot write"])
def test_a_bad_plot_destination_stops_before_any_work(tmp_path, case):
    pytest.importorskip("matplotlib")
    destinations = _bad_plot_destinations(tmp_path)
    if case not in destinations:
        pytest.skip("root may write any directory")
    plot, reason = destinations[case]
    # The list does not exist: if the command got as far as reading it (or benchmarking), it
    # would name the list; it must name the chart it could never write instead.
    missing_list = tmp_path / "never-read.txt"
    result = run_cli("--list", str(missing_list), "--queries", "200", "--seconds", "0.2", "--peers", "none",
                     "--plot", str(plot), timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert reason in result.stderr and "--plot" in result.stderr, result.stderr
    assert str(missing_list) not in result.stderr


@needs_cli
def test_a_good_plot_destination_is_not_created_by_the_check(tmp_path, small_list):
    pytest.importorskip("matplotlib")
    out = tmp_path / "chart.png"
    missing_queries = tmp_path / "no-queries.txt"
    result = run_cli("--list", str(small_list), "--queries", str(missing_queries), "--peers", "none",
                     "--plot", str(out))
    assert result.returncode == 2 and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.txt"]


FAKE_PYTRICIA = '''
"""A deliberately wrong stand-in for pytricia: right everywhere except one address."""
import ipaddress

WRONG = ipaddress.ip_address("192.0.2.77")


class PyTricia:
    def __init__(self, bits=32):
        self.nets = []

    def insert(self, prefix, value):
        self.nets.append((ipaddress.ip_network(prefix), value))

    def get(self, address, default=None):
        a = ipaddress.ip_address(address)
        if a == WRONG:
            return default
        found = [n for n in self.nets if a in n[0]]
        return max(found, key=lambda n: n[0].prefixlen)[1] if found else default

    def __contains__(self, address):
        return self.get(address) is not None
'''


@needs_cli
def test_a_disagreeing_peer_is_named_with_the_query(tmp_path, small_list):
    pytest.importorskip("radix")
    site = tmp_path / "site"
    site.mkdir()
    (site / "pytricia.py").write_text(FAKE_PYTRICIA)
    queries = tmp_path / "q.txt"
    queries.write_text("192.0.2.1\n192.0.2.77\n8.8.8.8\n2001:db8::1\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(site)}
    result = run_cli("--list", str(small_list), "--queries", str(queries), "--seconds", "0.2",
                     "--peers", "pytricia,py-radix", env=env)
    assert result.returncode == 1, result.stderr
    assert "agreement: DISAGREEMENT" in result.stdout
    assert "pytricia disagrees with ipallow on 1 of 3 IPv4 queries" in result.stdout
    assert "line 2: 192.0.2.77: ipallow match 192.0.2.64/26, pytricia no match" in result.stdout
    assert "py-radix disagrees" not in result.stdout

    result = run_cli("--list", str(small_list), "--queries", str(queries), "--seconds", "0.2",
                     "--peers", "pytricia", "--json", env=env)
    assert result.returncode == 1
    a = json.loads(result.stdout)["agreement"]
    assert not a["ok"]
    assert a["disagreements"] == [{"peer": "pytricia", "family": 4, "queries": 3, "disagreements": 1,
                                   "examples": [{"query": "line 2: 192.0.2.77",
                                                 "ipallow": "match 192.0.2.64/26", "peer": "no match"}]}]


# --------------------------------------------------------------------------- ipallow.bench in process


def family_queries(texts):
    q = bench.read_queries(texts, "test")
    assert not q.problems
    return q


def test_compare_agreeing_longest_match_and_membership():
    q = family_queries(["10.1.2.3", "10.20.1.1", "8.8.8.8"]).families[4]
    expected = np.array([8, 16, -1])
    assert bench.compare("p", 4, q, expected, [8, 16, -1], longest_match=True) is None
    assert bench.compare("p", 4, q, expected, [True, True, False], longest_match=False) is None


def test_compare_catches_a_wrong_longest_match_and_wrong_membership():
    q = family_queries(["10.1.2.3", "10.20.1.1", "8.8.8.8"]).families[4]
    expected = np.array([8, 16, -1])
    rep = bench.compare("p", 4, q, expected, [8, 8, -1], longest_match=True)
    assert rep["disagreements"] == 1
    assert rep["examples"] == [{"query": "line 2: 10.20.1.1", "ipallow": "match 10.20.0.0/16",
                                "peer": "match 10.0.0.0/8"}]
    rep = bench.compare("p", 4, q, expected, [True, True, True], longest_match=False)
    assert rep["examples"] == [{"query": "line 3: 8.8.8.8", "ipallow": "not in the list",
                                "peer": "in the list"}]
    rep = bench.compare("p", 4, q, expected, [True], longest_match=False)
    assert rep["disagreements"] == 3 and "1 answers for 3 queries" in rep["error"]


def test_compare_ipv6_describes_networks():
    q = family_queries(["2001:db8:10::5"]).families[6]
    rep = bench.compare("p", 6, q, np.array([48]), [32], longest_match=True)
    assert rep["examples"][0]["ipallow"] == "match 2001:db8:10::/48"
    assert rep["examples"][0]["peer"] == "match 2001:db8::/32"


class WrongPeer(bench.Peer):
    """Answers like a correct membership peer, except that it never admits 10.20.x.x."""

    name = "wrong"
    module = "ipallow"
    families = (4,)

    def build(self, table, family):
        return ipallow.Allowlist(table.strings(family))

    def answers(self, handle, items):
        return np.array([(q in handle) and not q.startswith("10.20.") for q in items])


class RaisingPeer(WrongPeer):
    name = "raising"

    def answers(self, handle, items):
        raise RuntimeError("no answer")


def test_run_reports_a_wrong_peer_and_a_peer_that_cannot_answer():
    al = ipallow.Allowlist(LIST.split("\n")[1:-1])
    queries = bench.read_queries(["10.20.3.4", "10.1.1.1", "192.0.2.200", "2001:db8::9", "10.20.9.9"], "q")
    r = bench.run(al, queries=queries, seconds=0.05, peers=[WrongPeer(), RaisingPeer()])
    assert r["agreement"]["ok"] is False
    by_peer = {d["peer"]: d for d in r["agreement"]["disagreements"]}
    assert set(by_peer) == {"wrong", "raising"}
    assert by_peer["wrong"]["disagreements"] == 2
    assert [e["query"] for e in by_peer["wrong"]["examples"]] == ["line 1: 10.20.3.4", "line 5: 10.20.9.9"]
    assert "RuntimeError: no answer" in by_peer["raising"]["error"]
    # ipallow's own forms and the searchsorted baseline agree
    assert all(c["agree"] for c in r["agreement"]["checked"] if c["impl"] not in {"wrong", "raising"})


def test_random_queries_follow_the_list():
    al = ipallow.Allowlist(LIST.split("\n")[1:-1])
    table = bench.PrefixTable.from_allowlist(al)
    q = bench.random_queries(table, 1000, seed=3)
    assert q.count == 1000 and set(q.families) == {4, 6}
    assert q.families[4].size == 700       # 7 of the 10 prefixes are IPv4
    inside = al.contains_many(q.families[4].keys)
    assert inside.mean() >= 0.5            # half drawn inside, plus uniform hits
    assert q.families[4].texts[:3] == [str(__import__("ipaddress").IPv4Address(int(x)))
                                       for x in q.families[4].keys[:3]]
    v4only = bench.PrefixTable.from_allowlist(ipallow.Allowlist(["10.0.0.0/8"]))
    assert set(bench.random_queries(v4only, 10).families) == {4}
    empty = bench.PrefixTable.from_allowlist(ipallow.Allowlist([]))
    assert bench.random_queries(empty, 5).families[4].size == 5


def test_read_queries_normalises_and_reports():
    q = bench.read_queries(textwrap.dedent("""\
        ::ffff:192.0.2.1
          2001:DB8::0:1  
        10.0.0.01
        fe80::1%eth0
        """).splitlines(), "f")
    assert q.families[4].texts == ["192.0.2.1"]
    assert q.families[6].texts == ["2001:db8::1"]
    assert [(p.line, p.text) for p in q.problems] == [(3, "10.0.0.01"), (4, "fe80::1%eth0")]


def test_merged_ranges_and_searchsorted_baseline():
    al = ipallow.Allowlist(["10.0.0.0/9", "10.128.0.0/9", "10.1.0.0/16", "12.0.0.0/8",
                            "2001:db8::/33", "2001:db8:8000::/33", "2001:db9::/32"])
    table = bench.PrefixTable.from_allowlist(al)
    s4, e4 = bench.merged_ranges(table, 4)
    assert s4.tolist() == [0x0A000000, 0x0C000000] and e4.tolist() == [0x0AFFFFFF, 0x0CFFFFFF]
    s6, e6 = bench.merged_ranges(table, 6)
    assert len(s6) == 1                    # the two /33 halves and the touching /32 merge
    rows = np.array([[0x20010DB8 << 32, 5], [0x20010DBA << 32, 0]], dtype=np.uint64)
    got = bench.searchsorted_contains(s6, e6, bench.rows_to_s16(rows))
    assert got.tolist() == [True, False]
