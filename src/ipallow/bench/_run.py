"""One benchmark run: the steps, in order, filling in one JSON-ready result."""

from __future__ import annotations

import os
import platform
import sys
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np

import ipallow
from ipallow.bench._compare import compare
from ipallow.bench._defaults import DEFAULT_QUERIES, DEFAULT_SECONDS, LATENCY_BATCH
from ipallow.bench._peers import Peer, installed_peers
from ipallow.bench._queries import FamilyQueries, Queries, random_queries
from ipallow.bench._table import PrefixTable, merged_ranges, rows_to_s16, searchsorted_contains
from ipallow.bench._timing import timed_builds, latency, loop_floor, throughput


def machine_info() -> dict:
    """CPU model, CPU count, load average, Python / numpy / ipallow versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    return {"cpu": cpu, "cpus": os.cpu_count(), "load_average": load,
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "numpy": np.__version__, "ipallow": ipallow.__version__, "platform": sys.platform}


def _expected(allowlist, fq: FamilyQueries) -> np.ndarray:
    """ipallow's matched prefix length per query (-1 = none)."""
    idx = allowlist._match_many(fq.keys)
    plen = allowlist.compiled.prefixlen
    out = np.full(idx.size, -1, dtype=np.int64)
    hit = idx >= 0
    out[hit] = plen[idx[hit]]
    return out


_FAMILY_ARRAY = {4: "uint32 array", 6: "(n, 2) uint64 array"}
LOAD_ROW = "load the list file"
BUILD_ROW = "Allowlist(cidr strings)"


def run(allowlist: "ipallow.Allowlist", *, queries: "int | Queries" = DEFAULT_QUERIES,
        seconds: float = DEFAULT_SECONDS, peers: Sequence[Peer] | None = None, seed: int = 1,
        load_seconds: float | None = None, source: dict | None = None,
        progress: Callable[[int, int, str], None] | None = None,
        batch: int = LATENCY_BATCH) -> dict:
    """Benchmark ``allowlist`` against ``peers`` (default: every installed one).

    Arguments:
        allowlist: what to measure (its prefixes are what every builder compiles).
        queries: a number of random queries (see :func:`random_queries`) or a
            :class:`Queries` (e.g. from :func:`read_queries`).
        seconds: the timing budget, shared by the latency and throughput rows
            (builds of big lists and the agreement check come on top).
        peers: peers to compare with; ``None`` = every installed peer.
        load_seconds: how long loading the list file took (reported with the builds).
        source: optional description of the list, copied into the result.
        progress: called as ``progress(done, total, what)`` between steps.

    Returns a JSON-ready dict: ``list``, ``machine``, ``queries``, ``peers``, ``build``,
    ``latency``, ``throughput``, ``agreement`` (``ok`` false when anyone disagrees).
    """
    installed, missing = installed_peers()
    peers = installed if peers is None else list(peers)
    table = PrefixTable.from_allowlist(allowlist)
    qs = queries if isinstance(queries, Queries) else random_queries(table, queries, seed=seed)
    runner = _Run(allowlist, table, qs, peers, missing, seconds=seconds, batch=batch,
                  load_seconds=load_seconds, source=source)
    return runner.execute(progress)


class _Run:
    """One :func:`run`: the result it fills in and one method per kind of step.

    The steps are listed first (:meth:`steps`), then executed in order, so the
    progress callback knows the total and the timing rows know how many share
    ``seconds``.  Steps pass what they build (peer structures, ipallow's expected
    answers, the searchsorted tables) to later ones through ``handles`` / ``expected``.
    """

    def __init__(self, allowlist: "ipallow.Allowlist", table: PrefixTable, qs: Queries,
                 peers: list[Peer], missing: list[str], *, seconds: float, batch: int,
                 load_seconds: float | None, source: dict | None) -> None:
        self.allowlist, self.table, self.qs, self.peers = allowlist, table, qs, peers
        self.seconds, self.batch, self.load_seconds = seconds, batch, load_seconds
        self.fams = sorted(qs.families)
        self.handles: dict[tuple[str, int], Any] = {}
        self.expected: dict[int, np.ndarray] = {}
        self.floors: dict[tuple[str, str, int], float] = {}
        self.n_timed = 0   # latency + throughput rows, to share `seconds`
        self.build_budget = max(seconds * 0.1, 0.05)
        self.result: dict[str, Any] = {
            "list": {**(source or {}), "registrations": len(allowlist),
                     "prefixes": {"ipv4": table.count(4), "ipv6": table.count(6)}},
            "machine": machine_info(),
            "queries": {"origin": qs.origin, "count": qs.count, "seed": qs.seed,
                        "per_family": {f"ipv{f}": qs.families[f].size for f in self.fams},
                        "problems": [{"line": p.line, "text": p.text, "message": p.message}
                                     for p in qs.problems]},
            "settings": {"seconds": seconds, "latency_batch": batch},
            "peers": {"compared": [{"name": p.name, "version": p.version(), "families": list(p.families),
                                    "compared_on": "longest match" if p.longest_match else "membership"}
                                   for p in peers],
                      "not_installed": missing},
            "build": [], "memory": {}, "latency": [], "throughput": [],
            "agreement": {"ok": True, "checked": [], "disagreements": []},
        }

    # -- the plan ------------------------------------------------------------

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        """Every step in order, as (what it does, the call); sets ``n_timed``."""
        fams, peers = self.fams, self.peers
        steps: list[tuple[str, Callable[[], None]]] = [("building ipallow", self.build_ipallow)]
        steps += [(f"building {peer.name}", partial(self.build_peer, peer)) for peer in peers]
        for f in fams:
            steps.append((f"checking ipallow (IPv{f})", partial(self.check_ipallow, f)))
            steps += [(f"checking {peer.name} (IPv{f})", partial(self.check_peer, peer, f))
                      for peer in peers if f in peer.families]
        timed = [("timing single lookups", s) for s in self.latency_steps()]
        timed += [("timing batches", s) for s in self.throughput_steps()]
        self.n_timed = len(timed)
        return steps + timed

    def latency_steps(self) -> list[Callable[[], None]]:
        al, out = self.allowlist, []
        for f in self.fams:
            out.append(partial(self.latency_row, "ipallow", "q in allowlist", "str", f, lambda: ("in", al)))
            out.append(partial(self.latency_row, "ipallow", "allowlist.lookup(q)", "str", f,
                               lambda: ("call", al.lookup)))
            out.append(partial(self.latency_row, "ipallow", "q in allowlist", "int", f, lambda: ("in", al)))
            for peer in self.peers:
                if f in peer.families:
                    out.append(partial(self.latency_row, peer.name, peer.operation, peer.form, f,
                                       partial(self.peer_member, peer, f)))
        return out

    def throughput_steps(self) -> list[Callable[[], None]]:
        al, out = self.allowlist, []
        for f in self.fams:
            fq = self.qs.families[f]
            arr = _FAMILY_ARRAY[f]
            out.append(partial(self.throughput_row, "ipallow", "contains_many", arr, f,
                               lambda fq=fq: (al.contains_many, fq.keys)))
            out.append(partial(self.throughput_row, "ipallow", "lookup_many", arr, f,
                               lambda fq=fq: (al.lookup_many, fq.keys)))
            out.append(partial(self.throughput_row, "numpy searchsorted", "merged ranges",
                               arr if f == 4 else "S16 array", f, partial(self.searchsorted_batch, f)))
            out.append(partial(self.throughput_row, "ipallow", "contains_many", "list of str", f,
                               lambda fq=fq: (al.contains_many, fq.texts)))
            out.append(partial(self.throughput_row, "ipallow", "lookup_many", "list of str", f,
                               lambda fq=fq: (al.lookup_many, fq.texts)))
            for peer in self.peers:
                if f in peer.families:
                    out.append(partial(self.throughput_row, peer.name, f"[{peer.operation} for q in list]",
                                       "list of str" if peer.form == "str" else "list of int", f,
                                       partial(self.comprehension, peer, f)))
        return out

    def execute(self, progress: Callable[[int, int, str], None] | None) -> dict:
        """Run every step (reporting progress between them) and return the result."""
        if self.load_seconds is not None:
            self.result["build"].append({"impl": "ipallow", "what": LOAD_ROW, "best_s": self.load_seconds,
                                         "median_s": self.load_seconds, "runs": 1, "rss_growth_bytes": None})
        steps = self.steps()
        total = len(steps)
        for done, (what, step) in enumerate(steps):
            if progress is not None:
                progress(done, total, what)
            step()
        if progress is not None:
            progress(total, total, "done")
        _add_ratios(self.result)
        return self.result

    # -- build ---------------------------------------------------------------

    def build_ipallow(self) -> None:
        table, allowlist, result = self.table, self.allowlist, self.result
        strings = table.strings(4) + table.strings(6)
        _, info = timed_builds(lambda: ipallow.Allowlist(strings), seconds=self.build_budget)
        result["build"].append({"impl": "ipallow", "what": BUILD_ROW, **info})
        nb = int(allowlist.nbytes)
        n = max(table.count(4) + table.count(6), 1)
        result["memory"] = {"nbytes": nb, "bytes_per_prefix": round(nb / n, 2),
                            "tables": {f"ipv{k}": {kk: int(vv) for kk, vv in v.items()}
                                       for k, v in allowlist._table_stats().items()}}

    def build_peer(self, peer: Peer) -> None:
        total = {"impl": peer.name, "what": "insert every prefix", "best_s": 0.0, "median_s": 0.0,
                 "runs": None, "rss_growth_bytes": 0}
        for f in peer.families:
            if f not in self.fams and self.table.count(f) == 0:
                continue        # nothing to insert and nothing to ask
            handle, info = timed_builds(lambda: peer.build(self.table, f), seconds=self.build_budget)
            self.handles[(peer.name, f)] = handle
            total["best_s"] += info["best_s"]
            total["median_s"] += info["median_s"]
            total["runs"] = info["runs"] if total["runs"] is None else min(total["runs"], info["runs"])
            if info["rss_growth_bytes"] is None or total["rss_growth_bytes"] is None:
                total["rss_growth_bytes"] = None
            else:
                total["rss_growth_bytes"] += info["rss_growth_bytes"]
        self.result["build"].append(total)

    # -- agreement -----------------------------------------------------------

    def checked(self, impl: str, f: int, fq: FamilyQueries, report: dict | None) -> None:
        """Record one agreement check; a report (a disagreement) fails the run's agreement."""
        agreement = self.result["agreement"]
        agreement["checked"].append({"impl": impl, "family": f, "queries": fq.size, "agree": report is None})
        if report:
            agreement["ok"] = False
            agreement["disagreements"].append(report)

    def check_ipallow(self, f: int) -> None:
        allowlist = self.allowlist
        fq = self.qs.families[f]
        exp = self.expected[f] = _expected(allowlist, fq)
        # ipallow's own input forms must agree with each other
        forms = {
            "contains_many(" + _FAMILY_ARRAY[f] + ")": allowlist.contains_many(fq.keys),
            "contains_many(list of str)": allowlist.contains_many(fq.texts),
            "str in allowlist": np.fromiter((q in allowlist for q in fq.texts), dtype=bool, count=fq.size),
        }
        reg = allowlist.lookup_many(fq.keys)
        forms["lookup_many(" + _FAMILY_ARRAY[f] + ") >= 0"] = reg >= 0
        for name, got in forms.items():
            self.checked(f"ipallow {name}", f, fq,
                         compare(f"ipallow {name}", f, fq, exp, got, longest_match=False))
        starts, ends = merged_ranges(self.table, f)
        self.handles[("searchsorted", f)] = (starts, ends)
        q = fq.keys if f == 4 else rows_to_s16(fq.keys)
        self.handles[("searchsorted-q", f)] = q
        self.checked("numpy searchsorted", f, fq,
                     compare("numpy searchsorted", f, fq, exp, searchsorted_contains(starts, ends, q),
                             longest_match=False))

    def check_peer(self, peer: Peer, f: int) -> None:
        fq = self.qs.families[f]
        items = fq.texts if peer.form == "str" else fq.ints
        try:
            got = peer.answers(self.handles[(peer.name, f)], items)
        except Exception as exc:   # a peer that cannot answer is a finding, not a crash
            rep = {"peer": peer.name, "family": f, "queries": fq.size, "disagreements": fq.size,
                   "examples": [], "error": f"{type(exc).__name__}: {exc}"}
        else:
            rep = compare(peer.name, f, fq, self.expected[f], got, longest_match=peer.longest_match)
        self.checked(peer.name, f, fq, rep)

    # -- latency -------------------------------------------------------------

    def share(self) -> float:
        """Seconds for one timing row."""
        return max(self.seconds / max(self.n_timed, 1), 0.02)

    def latency_row(self, impl: str, op: str, form: str, f: int,
                    kind_target: Callable[[], tuple[str, Any]]) -> None:
        fq = self.qs.families[f]
        items = fq.texts if form == "str" else fq.ints
        kind, target = kind_target()
        key = (kind, form, f)
        if key not in self.floors:
            self.floors[key] = loop_floor(kind, items, seconds=min(self.share() / 2, 0.5), batch=self.batch)
        row = latency(kind, target, items, seconds=self.share(), floor_ns=self.floors[key], batch=self.batch)
        self.result["latency"].append({"impl": impl, "operation": op, "input": form, "family": f,
                                       "floor_ns": round(self.floors[key], 1), **row})

    def peer_member(self, peer: Peer, f: int) -> tuple[str, Any]:
        return peer.member(self.handles[(peer.name, f)])

    # -- throughput ----------------------------------------------------------

    def throughput_row(self, impl: str, op: str, inp: str, f: int,
                       make: Callable[[], tuple[Callable, Any]]) -> None:
        fn, items = make()
        row = throughput(fn, items, seconds=self.share())
        self.result["throughput"].append({"impl": impl, "operation": op, "input": inp, "family": f, **row})

    def searchsorted_batch(self, f: int) -> tuple[Callable, Any]:
        starts, ends = self.handles[("searchsorted", f)]
        return (lambda q: searchsorted_contains(starts, ends, q)), self.handles[("searchsorted-q", f)]

    def comprehension(self, peer: Peer, f: int) -> tuple[Callable, Any]:
        kind, target = self.peer_member(peer, f)
        fq = self.qs.families[f]
        items = fq.texts if peer.form == "str" else fq.ints
        if kind == "in":
            return (lambda xs: [q in target for q in xs]), items
        return (lambda xs: [target(q) is not None for q in xs]), items


def _add_ratios(result: dict) -> None:
    """Each row's cost relative to ipallow's matching row (``x`` > 1: ipallow is faster)."""
    ref_lat = {(r["family"], r["input"]): r["p50_ns"] for r in result["latency"]
               if r["impl"] == "ipallow" and r["operation"] == "q in allowlist"}
    for r in result["latency"]:
        base = ref_lat.get((r["family"], r["input"]))
        r["vs_ipallow"] = round(r["p50_ns"] / base, 2) if base else None
    ref_tp = {}
    for r in result["throughput"]:
        if r["impl"] == "ipallow" and r["operation"] == "contains_many":
            ref_tp[(r["family"], "array" if "array" in r["input"] else "list")] = r["best_M_per_s"]
    for r in result["throughput"]:
        base = ref_tp.get((r["family"], "array" if "array" in r["input"] else "list"))
        r["vs_ipallow"] = round(base / r["best_M_per_s"], 2) if base and r["best_M_per_s"] else None
    ref_build = next((r["best_s"] for r in result["build"] if r["what"] == BUILD_ROW), None)
    for r in result["build"]:
        r["vs_ipallow"] = (round(r["best_s"] / ref_build, 2) if ref_build and r["what"] != LOAD_ROW
                           else None)
