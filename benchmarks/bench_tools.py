"""The operator tools against the ones operators use today: `ipallow filter` against `grepcidr`,
`ipallow export --format cidr|nft|ipset` against FireHOL `iprange`, side by side, same inputs,
identical outputs.

The goals (issue #15): `filter` at least 2x `grepcidr` on 10M lines and no slower on 1M (10k
CIDRs); `export` at least as fast as `iprange` on 100k and 1M IPv4 CIDRs, from a text list and
from a snapshot.  Whole processes are timed (start-up counts), as `bench_startup.py` does.

The peers come from Debian (``apt-get install grepcidr iprange``); a case whose peer is missing
is skipped with that reason.  Inputs are generated with fixed seeds by :mod:`ipallow.synth`
(a BGP-shaped IPv4 table; queries that hit it about half the time) into a temporary folder.

What is compared:

* ``filter``: ``grepcidr -f CIDRS QUERIES`` and ``ipallow filter -q --list CIDRS QUERIES`` print
  the same lines (the allowed ones, in input order).
* ``export --format cidr``: ``iprange --print-suffix-ips /32 LIST`` (iprange writes a single
  address without ``/32`` otherwise) prints exactly what ipallow prints.
* ``--format ipset``: iprange with ``--print-prefix 'add allowed.tmp '`` prints exactly
  ipallow's ``add`` lines (ipallow's script adds the create / flush / swap / destroy lines).
* ``--format nft``: iprange has no nft output; it is timed doing the same aggregation
  (cidr output), and ipallow's set elements must be its lines.

Two ways to run it:

* with pytest-benchmark, as the other benchmarks (``pytest benchmarks/bench_tools.py``; sizes
  from ``IPALLOW_BENCH_TOOLS_SIZES``, default ``small``: 1M lines, 100k CIDRs);
* as a script, which runs ipallow and its peer alternately (one round = every case once, so a
  change in the machine's load hits both alike) and prints medians, the spread (min-max) and
  the ratio::

      python benchmarks/bench_tools.py --rounds 7 [--sizes full] [--only filter|export] [--against SRC]

``--against SRC`` also runs each ipallow command from another source tree (an older checkout's
``src``, built) in the same rounds, for a before/after column.  The same rounds also time the
floors every Python command pays before it reads a byte (``python -c pass``, ``ipallow
--version``, which imports no numpy, and ``python -c 'import numpy'``, which the compiled core
needs, with and without the exit's collections), so that a goal out of reach of any such
command shows as one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import ipallow
from ipallow import synth

INSTALL = "apt-get install grepcidr iprange"
TABLE_SEED, FILTER_TABLE_SEED, QUERY_SEED = 1, 2, 3
FILTER_CIDRS = 10_000
SIZES = {
    "small": {"filter": (1_000_000,), "export": (100_000,)},
    "full": {"filter": (1_000_000, 10_000_000), "export": (100_000, 1_000_000)},
}
CLI = [sys.executable, "-c", "import sys; from ipallow import cli; sys.exit(getattr(cli, 'console_main', cli.main)())"]


# -- inputs ---------------------------------------------------------------------------------

def write_cidrs(path: Path, n: int, seed: int) -> Path:
    keys, plens = synth.ipv4_table(n, seed=seed)
    path.write_text("\n".join(synth.ipv4_strings(keys, plens)) + "\n")
    return path


def write_queries(path: Path, table: tuple[np.ndarray, np.ndarray], n: int, seed: int) -> Path:
    """``n`` addresses, one a line, written a million at a time."""
    queries = synth.ipv4_queries(*table, n, seed=seed)
    with open(path, "w") as out:
        for start in range(0, n, 1_000_000):
            part = queries[start:start + 1_000_000]
            texts = synth.ipv4_strings(part, np.full(len(part), 32, np.uint8))
            out.write("".join(t[:-3] + "\n" for t in texts))
    return path


def make_inputs(folder: Path, sizes: dict) -> dict[str, Path]:
    files: dict[str, Path] = {}
    if sizes.get("filter"):
        table = synth.ipv4_table(FILTER_CIDRS, seed=FILTER_TABLE_SEED)
        files["filter-cidrs"] = write_cidrs(folder / "filter-cidrs.txt", FILTER_CIDRS, FILTER_TABLE_SEED)
        for n in sizes["filter"]:
            files[f"queries-{n}"] = write_queries(folder / f"queries-{n}.txt", table, n, QUERY_SEED)
    for n in sizes.get("export", ()):
        text = write_cidrs(folder / f"cidrs-{n}.txt", n, TABLE_SEED)
        files[f"cidrs-{n}"] = text
        snapshot = folder / f"cidrs-{n}.ipallow"
        ipallow.Allowlist.from_file(text).save(snapshot)
        files[f"snapshot-{n}"] = snapshot
    return files


# -- cases ----------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    ours: list[str]                 # the ipallow command (after the interpreter's -c)
    peer: list[str]                 # the peer's command
    peer_tool: str
    compare: str                    # "same", "ipset" or "nft": how the outputs must agree


def _count(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def cases(files: dict[str, Path], sizes: dict) -> list[Case]:
    out: list[Case] = []
    for n in sizes.get("filter", ()):
        queries, cidrs = str(files[f"queries-{n}"]), str(files["filter-cidrs"])
        out.append(Case(f"filter {_count(n)} lines / 10k CIDRs",
                        ["filter", "-q", "--list", cidrs, queries],
                        ["grepcidr", "-f", cidrs, queries], "grepcidr", "same"))
    suffix = ["--print-suffix-ips", "/32"]
    for n in sizes.get("export", ()):
        for source in ("cidrs", "snapshot"):
            path = str(files[f"{source}-{n}"])
            text = str(files[f"cidrs-{n}"])          # iprange reads the text list either way
            where = "text list" if source == "cidrs" else "snapshot"
            out.append(Case(f"export cidr {_count(n)} ({where})",
                            ["export", "--format", "cidr", "-q", path],
                            ["iprange", *suffix, text], "iprange", "same"))
        out.append(Case(f"export ipset {_count(n)} (text list)",
                        ["export", "--format", "ipset", "--family", "ip", "-q", str(files[f"cidrs-{n}"])],
                        ["iprange", *suffix, "--print-prefix", "add allowed.tmp ", str(files[f"cidrs-{n}"])],
                        "iprange", "ipset"))
        out.append(Case(f"export nft {_count(n)} (text list)",
                        ["export", "--format", "nft", "--family", "ip", "-q", str(files[f"cidrs-{n}"])],
                        ["iprange", *suffix, str(files[f"cidrs-{n}"])], "iprange", "nft"))
    return out


def missing_peer(case: Case) -> str | None:
    if shutil.which(case.peer[0]) is None:
        return f"{case.peer_tool} is not installed ({INSTALL})"
    return None


def child_env(source: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)        # the byte-code cache an installed package has
    source = source or str(Path(ipallow.__file__).parent.parent)
    env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run(argv: list[str], out_path: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process, its stdout to ``out_path``."""
    with open(out_path, "wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code > 1:
        raise RuntimeError(f"{argv} exited {code}")
    return elapsed, usage.ru_utime + usage.ru_stime


def agree(case: Case, ours: Path, peer: Path) -> str | None:
    """None when the outputs agree as the case says they must; else what differs."""
    a, b = ours.read_bytes(), peer.read_bytes()
    if case.compare == "ipset":
        a = b"".join(line + b"\n" for line in a.splitlines() if line.startswith(b"add "))
    elif case.compare == "nft":
        elements = [e.strip() for line in a.splitlines() if line.startswith(b"\t")
                    for e in line.split(b",") if e.strip()]
        a = b"".join(e + b"\n" for e in elements)
    if a == b:
        return None
    return f"{case.name}: outputs differ ({len(a):,} bytes from ipallow, {len(b):,} from {case.peer_tool})"


# -- pytest-benchmark ---------------------------------------------------------------------------

def _pytest_sizes() -> dict:
    return SIZES[os.environ.get("IPALLOW_BENCH_TOOLS_SIZES", "small")]


@pytest.fixture(scope="module")
def tool_files(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("tools"), _pytest_sizes())


def _case_names() -> list[str]:
    dummy = {k: Path(k) for k in ("filter-cidrs",)}
    sizes = _pytest_sizes()
    dummy.update({f"queries-{n}": Path("q") for n in sizes["filter"]})
    dummy.update({f"{s}-{n}": Path(s) for n in sizes["export"] for s in ("cidrs", "snapshot")})
    return [c.name for c in cases(dummy, sizes)]


@pytest.mark.parametrize("side", ["ipallow", "peer"])
@pytest.mark.parametrize("name", _case_names())
@pytest.mark.benchmark(group="operator tools: whole process", min_rounds=5)
def test_tool(benchmark, tool_files, tmp_path, name, side):
    case = next(c for c in cases(tool_files, _pytest_sizes()) if c.name == name)
    reason = missing_peer(case)
    if reason:
        pytest.skip(reason)
    env = child_env()
    ours, peer = tmp_path / "ours.out", tmp_path / "peer.out"
    run(CLI + case.ours, ours, env)
    run(case.peer, peer, env)
    assert agree(case, ours, peer) is None
    argv, path = (CLI + case.ours, ours) if side == "ipallow" else (case.peer, peer)
    benchmark.extra_info["case"] = case.name
    benchmark(run, argv, path, env)


# -- the interleaved side-by-side run ------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sizes", choices=sorted(SIZES), default="full")
    parser.add_argument("--only", choices=("filter", "export"), help="run only these cases")
    parser.add_argument("--against", metavar="SRC", help="also run ipallow from this source tree")
    args = parser.parse_args(argv)
    sizes = dict(SIZES[args.sizes])
    if args.only:
        sizes = {args.only: sizes[args.only]}
    env = child_env()
    against_env = child_env(args.against) if args.against else None
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        print(f"generating inputs in {folder} ...", file=sys.stderr)
        todo = []
        for case in cases(make_inputs(base, sizes), sizes):
            reason = missing_peer(case)
            if reason:
                print(f"skipped: {case.name}: {reason}")
            else:
                todo.append(case)
        times: dict[str, dict[str, list[tuple[float, float]]]] = {
            c.name: {"ipallow": [], "peer": [], "against": []} for c in todo}
        floors = {"python -c pass": [sys.executable, "-c", "pass"],
                  "ipallow --version (no numpy)": CLI + ["--version"],
                  "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
                  # What ipallow pays for numpy: its exit leaves the live objects out of the
                  # final collections (ipallow.cli.console_main), which here cost ~40 ms more.
                  "... then gc.freeze()": [sys.executable, "-c", "import gc, numpy; gc.freeze()"]}
        floor_times: dict[str, list[tuple[float, float]]] = {name: [] for name in floors}
        for round_no in range(args.rounds + 1):        # round 0 warms the caches and checks outputs
            for name, command in floors.items():
                result = run(command, base / "floor.out", env)
                if round_no:
                    floor_times[name].append(result)
            for i, case in enumerate(todo):
                ours, peer = base / f"{i}.ours", base / f"{i}.peer"
                old = base / f"{i}.against"
                sides = [("ipallow", CLI + case.ours, ours, env), ("peer", case.peer, peer, env)]
                if against_env is not None:
                    sides.append(("against", CLI + case.ours, old, against_env))
                if round_no % 2:
                    sides.reverse()                    # neither side always runs first
                for side, command, path, side_env in sides:
                    result = run(command, path, side_env)
                    if round_no:
                        times[case.name][side].append(result)
                if round_no in (0, args.rounds):
                    problem = agree(case, ours, peer)
                    if against_env is not None and ours.read_bytes() != old.read_bytes():
                        problem = f"{case.name}: ipallow's output differs from --against's"
                    if problem:
                        print(f"FAILED: {problem}")
                        return 1
                for path in (ours, peer, old):
                    path.unlink(missing_ok=True)
    try:
        load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    print(f"{args.rounds} alternating rounds, outputs identical; seconds: median (min-max); "
          f"load average {load}; ipallow from {Path(ipallow.__file__).parent}")
    width = max((len(c.name) for c in todo), default=10)
    print(f"{'case':<{width}}  {'ipallow wall':>20}  {'peer wall':>20}  {'peer/ipallow':>12}"
          f"  {'CPU ipallow':>11}  {'CPU peer':>9}  {'CPU ratio':>9}"
          + (f"  {'against wall':>20}  {'CPU against':>11}" if against_env is not None else ""))
    for case in todo:
        t = times[case.name]

        def cell(side: str, k: int) -> str:
            values = [x[k] for x in t[side]]
            return f"{statistics.median(values):.3f} ({min(values):.2f}-{max(values):.2f})"

        def med(side: str, k: int) -> float:
            return statistics.median(x[k] for x in t[side])

        print(f"{case.name:<{width}}  {cell('ipallow', 0):>20}  {cell('peer', 0):>20}  "
              f"{med('peer', 0) / med('ipallow', 0):>11.2f}x  {med('ipallow', 1):>11.3f}  "
              f"{med('peer', 1):>9.3f}  {med('peer', 1) / med('ipallow', 1):>8.2f}x"
              + (f"  {cell('against', 0):>20}  {med('against', 1):>11.3f}" if against_env is not None else ""))
    print(f"peers: {', '.join(sorted({c.peer_tool for c in todo}))} (ratio > 1: ipallow is faster)")
    print("floors (paid before any work):")
    for name, values in floor_times.items():
        print(f"  {name:<{width - 2}}  wall {statistics.median(v[0] for v in values):.3f}  "
              f"CPU {statistics.median(v[1] for v in values):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
