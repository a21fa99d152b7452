#!/usr/bin/env python3
"""Turn saved pytest-benchmark runs into the README's performance tables (Markdown).

Usage::

    pytest benchmarks/bench_core.py benchmarks/bench_lookup.py benchmarks/bench_batch.py \
        benchmarks/bench_sizes.py --benchmark-only --benchmark-json=run.json
    python benchmarks/report.py run.json > performance.md
    python benchmarks/report.py core.json lookup.json -o performance.md   # several runs merged

What it writes:

* where and how it was measured: CPU model and count, load average at the start and the
  end of the run, Python / numpy / ipallow / peer versions, git commit (and whether the
  tree had uncommitted changes), table sizes;
* a goals table (issue 3 / DESIGN.md figures) with the measured value and met / not met;
* single lookups: ns per call with the loop floor of the group subtracted, and each
  peer's time as a multiple of ipallow's (``6.1×`` = the peer takes 6.1 times as long);
* longest match (``lookup``) against ``in`` and the peers' longest-match calls;
* batches: millions of lookups per second, median round (best round in parentheses),
  ratio to ipallow's ``contains_many`` in the same group;
* two threads against one (speed-up of the median round);
* build time and memory (``Allowlist.nbytes`` per prefix, resident-memory growth);
* how build, size and lookups scale with the table (bench_sizes.py).

Every figure is the median round unless said otherwise: on a shared machine the mean is
dragged by the rounds that lost the CPU.  Sections whose benchmarks are not in the input
are left out.  Only the standard library is needed.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from typing import Any, Iterable

# ------------------------------------------------------------------ reading runs

IMPL_ORDER = ["ipallow", "ipallow lookup", "ipallow in", "ipallow _registration_index",
              "ipallow contains_many", "ipallow lookup_many", "ipallow contains_many U array",
              "pytricia", "py-radix", "SubnetTree", "netaddr.IPSet", "pyroaring.BitMap",
              "numpy searchsorted", "loop floor"]
PEERS = ["pytricia", "py-radix", "SubnetTree", "netaddr.IPSet", "pyroaring.BitMap"]

_NAME_IMPL = [("loop_floor", "loop floor"), ("searchsorted", "numpy searchsorted"), ("pytricia", "pytricia"),
              ("radix", "py-radix"), ("subnettree", "SubnetTree"), ("pyroaring", "pyroaring.BitMap"),
              ("netaddr", "netaddr.IPSet"), ("ipallow", "ipallow")]


class Row:
    """One benchmark of a run, with the figures the tables need."""

    def __init__(self, bench: dict[str, Any]) -> None:
        self.group: str = bench.get("group") or "-"
        self.name: str = bench.get("name", "?")
        self.extra: dict[str, Any] = bench.get("extra_info") or {}
        self.stats: dict[str, Any] = bench.get("stats") or {}
        self.impl: str = self.extra.get("impl") or self._impl_from_name()
        self.operation: str = str(self.extra.get("operation", ""))
        self.input: str = str(self.extra.get("input", ""))

    def _impl_from_name(self) -> str:
        low = self.name.lower()
        for needle, impl in _NAME_IMPL:
            if needle in low:
                return impl
        return self.name

    @property
    def median_s(self) -> float:
        return float(self.stats.get("median", float("nan")))

    @property
    def min_s(self) -> float:
        return float(self.stats.get("min", float("nan")))

    @property
    def ns(self) -> float | None:
        """Median ns per call (loop rows)."""
        return self.extra.get("ns_per_call_median")

    @property
    def ns_best(self) -> float | None:
        return self.extra.get("ns_per_call_min")

    @property
    def mps(self) -> float | None:
        """Median million lookups per second (batch rows)."""
        return self.extra.get("M_lookups_per_s_median")

    @property
    def mps_best(self) -> float | None:
        return self.extra.get("M_lookups_per_s_best")


def load_runs(paths: Iterable[str]) -> tuple[list[dict], list[Row]]:
    runs, rows = [], []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
        runs.append(run)
        rows.extend(Row(b) for b in run.get("benchmarks", []))
    return runs, rows


def by_group(rows: list[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        groups[r.group].append(r)
    return groups


# ------------------------------------------------------------------ formatting


def fmt_ns(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 10_000:
        return f"{x / 1000:,.0f} µs"
    if x >= 1000:
        return f"{x / 1000:,.2f} µs"
    return f"{x:,.0f} ns" if x >= 100 else f"{x:,.1f} ns"


def fmt_mps(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 1 else f"{x:.3g}"


def fmt_ratio(x: float | None) -> str:
    if x is None or x != x:
        return "–"
    return f"{x:,.0f}×" if x >= 100 else f"{x:,.1f}×"


def fmt_s(x: float) -> str:
    return f"{x:,.2f} s" if x >= 1 else f"{x * 1e3:,.1f} ms"


def table(header: list[str], body: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def impl_key(impl: str) -> tuple[int, str]:
    return (IMPL_ORDER.index(impl) if impl in IMPL_ORDER else len(IMPL_ORDER), impl)


# ------------------------------------------------------------------ sections


def header(runs: list[dict], rows: list[Row]) -> str:
    run = runs[0]
    mi = run.get("machine_info", {})
    ours = mi.get("ipallow", {})
    extra = run.get("ipallow", {})
    ci = run.get("commit_info", {})
    cpu = ours.get("cpu_model") or mi.get("cpu", {}).get("brand_raw") or mi.get("processor") or "?"
    hz = mi.get("cpu", {}).get("hz_advertised_friendly")
    count = ours.get("cpus") or mi.get("cpu", {}).get("count")
    commit = (ci.get("id") or "?")[:10] + (" (with uncommitted changes)" if ci.get("dirty") else "")
    peers = ours.get("peers", {})
    peer_text = ", ".join(f"{k} {v}" for k, v in peers.items() if v) or "?"
    missing = [k for k, v in peers.items() if not v]
    loads = []
    for r in runs:
        s = r.get("machine_info", {}).get("ipallow", {}).get("load_average_start")
        e = r.get("ipallow", {}).get("load_average_end")
        if s or e:
            loads.append(f"{'/'.join(map(str, s)) if s else '?'} at the start, "
                         f"{'/'.join(map(str, e)) if e else '?'} at the end")
    out = [
        f"Measured on {cpu}" + (f" ({hz})" if hz else "") + (f", {count} CPUs" if count else "")
        + f"; Python {mi.get('python_version', '?')} ({mi.get('python_implementation', '?')}), "
          f"numpy {ours.get('numpy', '?')}, ipallow {ours.get('ipallow', '?')}; "
          f"commit `{commit}` on {ci.get('branch', '?')}; {run.get('datetime', '?')[:16].replace('T', ' ')} UTC.",
        f"Peers: {peer_text}" + (f"; not installed: {', '.join(missing)}" if missing else "") + ".",
    ]
    if loads:
        out.append("Load average (1/5/15 min): " + "; ".join(loads) + ". The machine is shared: other work "
                   "moves every figure, and ratios measured side by side in one run are the robust part.")
    if extra:
        out.append(f"Tables: seeded BGP-like `ipallow.synth` tables of {extra.get('prefixes_v4', 0):,} IPv4 and "
                   f"{extra.get('prefixes_v6', 0):,} IPv6 prefixes (seed {extra.get('table_seed', '?')}); "
                   f"batches of {extra.get('queries', 0):,} queries, loops of {extra.get('loop_calls', 0):,} calls "
                   f"(seed {extra.get('query_seed', '?')}), half inside a registered prefix, half uniform.")
    out.append("Figures are the median round (best round in parentheses where shown); "
               "`N×` is how many times longer the other implementation takes than ipallow.")
    return "\n".join(out)


def _floor(rows: list[Row]) -> float | None:
    f = [r.ns for r in rows if r.impl == "loop floor" and r.ns is not None]
    return f[0] if f else None


def _net(r: Row, floor: float | None) -> float | None:
    if r.ns is None:
        return None
    return max(r.ns - floor, 0.1) if floor is not None else r.ns


GROUP_LABELS = {"str-in": "IPv4 str (bench_core)", "int-in": "IPv4 int (bench_core)"}


def _group_label(g: str) -> str:
    if g in GROUP_LABELS:
        return GROUP_LABELS[g]
    m = re.fullmatch(r"in-v([46])-(\w+)", g)
    if m:
        return f"IPv{m.group(1)} {m.group(2)}"
    return g


def single_lookups(groups: dict[str, list[Row]]) -> str | None:
    names = [g for g in groups if g in GROUP_LABELS or re.fullmatch(r"in-v[46]-\w+", g)]
    if not names:
        return None
    order = {"str": 0, "int": 1, "bytes": 2, "ipaddress": 3}
    names.sort(key=lambda g: (g in GROUP_LABELS, g[4] if g.startswith("in-v") else "4",
                              order.get(g.split("-")[-1], 9)))
    impls = sorted({r.impl for g in names for r in groups[g] if r.impl not in ("loop floor",)}, key=impl_key)
    body = []
    for g in names:
        rows = groups[g]
        floor = _floor(rows)
        mine = next((r for r in rows if r.impl == "ipallow"), None)
        base = _net(mine, floor) if mine else None
        cells = [_group_label(g)]
        for impl in impls:
            r = next((x for x in rows if x.impl == impl), None)
            if r is None or r.ns is None:
                cells.append("")
                continue
            net = _net(r, floor)
            cells.append(fmt_ns(net) if impl == "ipallow" or base is None else f"{fmt_ns(net)} ({fmt_ratio(net / base)})")
        cells.append(fmt_ns(floor))
        body.append(cells)
    text = table(["`q in x`, per call"] + impls + ["loop floor"], body)
    return ("### Single lookups\n\nOne call at a time (`q in x`; py-radix: `search_best(q)`), 10,000 calls a "
            "round; ns per call with the group's loop floor (the same comprehension around `q in ()`) "
            "subtracted.\n\n" + text)


def longest_match(groups: dict[str, list[Row]]) -> str | None:
    names = sorted(g for g in groups if g.startswith("longest-match-"))
    if not names:
        return None
    impls = sorted({r.impl for g in names for r in groups[g]}, key=impl_key)
    body = []
    for g in names:
        rows = groups[g]
        floor = None
        fam = g.rsplit("-", 1)[-1]
        for cand in (f"in-{fam}-str",):
            floor = _floor(groups.get(cand, []))
        ref = next((r for r in rows if r.impl == "ipallow lookup"), None)
        base = _net(ref, floor) if ref else None
        cells = [f"IPv{fam[1:]} str"]
        for impl in impls:
            r = next((x for x in rows if x.impl == impl), None)
            if r is None or r.ns is None:
                cells.append("")
                continue
            net = _net(r, floor)
            cells.append(fmt_ns(net) if impl.startswith("ipallow") or base is None
                         else f"{fmt_ns(net)} ({fmt_ratio(net / base)})")
        body.append(cells)
    return ("### Longest match\n\n`allowlist.lookup(q)` (a `Match` with an `ipaddress` network) against "
            "`q in allowlist`, the internal `_registration_index(q)` (the same walk, no objects built) and the "
            "peers' longest-match calls (pytricia `get`, py-radix `search_best`, SubnetTree `t[q]`); loop floor "
            "of the `in` group subtracted; a peer's ratio is to ipallow's `lookup`.\n\n"
            + table(["per call"] + impls, body))


BATCH_GROUPS = ["contains_many-v4", "contains_many-v6", "batch-v4-strings", "batch-v6-strings",
                "lookup_many-v4", "lookup_many-v6", "forms-v4", "forms-v6"]


# bench_core.py's batch rows carry no input description: the group says it
_GROUP_INPUT = {("contains_many-v4", "ipallow"): "uint32 array",
                ("contains_many-v4", "numpy searchsorted"): "uint32 array, merged ranges",
                ("contains_many-v6", "ipallow"): "(n, 2) uint64 array",
                ("contains_many-v6", "numpy searchsorted"): "S16 keys, merged ranges"}


def _row_label(r: Row) -> str:
    if not r.input and (r.group, r.impl) in _GROUP_INPUT:
        return f"{r.impl} ({_GROUP_INPUT[(r.group, r.impl)]})"
    parts = [r.impl]
    op = r.operation
    if op and op not in r.impl and op != "in":
        parts.append(op.replace("ipallow ", ""))
    if r.input:
        parts.append(f"({r.input})")
    if len(parts) == 1:
        parts.append(f"`{r.name}`")
    return " ".join(parts)


def batches(groups: dict[str, list[Row]]) -> str | None:
    names = [g for g in BATCH_GROUPS if g in groups]
    if not names:
        return None
    body = []
    for g in names:
        rows = [r for r in groups[g] if r.mps is not None]
        ref = next((r for r in rows if r.impl == "ipallow" and r.operation in ("", "contains_many")), None) \
            or next((r for r in rows if r.impl.startswith("ipallow")), None)
        for r in sorted(rows, key=lambda r: (-(r.mps or 0))):
            ratio = "" if ref is None or r is ref or not r.mps else fmt_ratio(ref.mps / r.mps)
            body.append([f"`{g}`", _row_label(r), f"{fmt_mps(r.mps)} ({fmt_mps(r.mps_best)})", ratio])
    return ("### Batches\n\nOne call on the whole batch (peers without a batch call: the list comprehension); "
            "millions of lookups per second, median (best) round; the last column is the time relative to "
            "ipallow's `contains_many` in the same group.\n\n"
            + table(["group", "implementation", "M lookups/s", "× ipallow"], body, ["l", "l", "r", "r"]))


def threads(groups: dict[str, list[Row]]) -> str | None:
    names = sorted(g for g in groups if g.startswith("threads-"))
    if not names:
        return None
    body = []
    for g in names:
        one = next((r for r in groups[g] if r.extra.get("threads") == 1), None)
        two = next((r for r in groups[g] if r.extra.get("threads") == 2), None)
        if not one or not two:
            continue
        body.append([f"`{g}` ({one.input or '?'})", f"{fmt_mps(one.mps)} ({fmt_mps(one.mps_best)})",
                     f"{fmt_mps(two.mps)} ({fmt_mps(two.mps_best)})",
                     f"{one.median_s / two.median_s:.2f}×", f"{one.min_s / two.min_s:.2f}×"])
    if not body:
        return None
    return ("### Two threads\n\nThe batch in one `contains_many` call against two threads each calling it on "
            "its own half (the batch loops release the GIL; a list holds it only while its items are copied "
            "out). M lookups/s, median (best) round.\n\n"
            + table(["input", "one thread", "two threads", "speed-up (median)", "speed-up (best)"], body))


def build_memory(groups: dict[str, list[Row]]) -> str | None:
    rows = groups.get("build")
    if not rows:
        return None
    ref = next((r for r in rows if r.impl == "ipallow"), None)
    body = []
    for r in sorted(rows, key=lambda r: impl_key(r.impl)):
        n = r.extra.get("prefixes") or 0
        rss = r.extra.get("rss_growth_bytes")
        body.append([
            r.impl, fmt_s(r.median_s) + f" ({fmt_s(r.min_s)})",
            "" if ref is None or r is ref else fmt_ratio(r.median_s / ref.median_s),
            f"{r.extra['bytes_per_prefix']:,.2f}" if r.extra.get("bytes_per_prefix") is not None else "",
            f"{rss / n:,.1f}" if rss is not None and n else "",
        ])
    n = ref.extra.get("prefixes") if ref else None
    return (f"### Build and memory\n\nBuilding from {n:,} CIDR strings (median (best) of 3 rounds). "
            "Compiled bytes per prefix: `Allowlist.nbytes` (the lookup tables); resident growth: the process's "
            "RSS across one build, rough (it includes what the allocator keeps from temporaries).\n\n"
            + table(["builder", "build", "× ipallow", "compiled B/prefix", "RSS growth B/prefix"], body))


def sizes(groups: dict[str, list[Row]]) -> str | None:
    ns = sorted({int(g.split("@")[1]) for g in groups if re.fullmatch(r"(build|str-in|contains_many)@\d+", g)})
    if not ns:
        return None
    body = []
    for n in ns:
        b = {r.impl: r for r in groups.get(f"build@{n}", [])}
        s = groups.get(f"str-in@{n}", [])
        c = {r.impl: r for r in groups.get(f"contains_many@{n}", [])}
        floor = _floor(s)
        si = {r.impl: _net(r, floor) for r in s}
        cells = [f"{n:,}"]
        cells.append(fmt_s(b["ipallow"].median_s) if "ipallow" in b else "")
        cells.append(fmt_s(b["pytricia"].median_s) if "pytricia" in b else "")
        bp = b["ipallow"].extra.get("bytes_per_prefix") if "ipallow" in b else None
        cells.append(f"{bp:,.2f}" if bp is not None else "")
        cells.append(fmt_ns(si.get("ipallow")))
        pt = si.get("pytricia")
        cells.append(f"{fmt_ns(pt)} ({fmt_ratio(pt / si['ipallow'])})" if pt and si.get("ipallow") else fmt_ns(pt))
        ci, cs = c.get("ipallow"), c.get("numpy searchsorted")
        cells.append(fmt_mps(ci.mps) if ci else "")
        cells.append(f"{fmt_mps(cs.mps)} ({fmt_ratio(ci.mps / cs.mps)})" if ci and cs and cs.mps else "")
        body.append(cells)
    return ("### Table size\n\nIPv4 tables of each size (bench_sizes.py): build from CIDR strings, compiled "
            "size, `str in` per call (loop floor subtracted; pytricia's time as a multiple of ipallow's), "
            "`contains_many` on 100,000 `uint32` addresses against numpy `searchsorted` (M lookups/s).\n\n"
            + table(["prefixes", "build ipallow", "build pytricia", "B/prefix", "`str in` ipallow",
                     "`str in` pytricia", "`contains_many` M/s", "searchsorted M/s"], body))


# ------------------------------------------------------------------ goals


def _find(groups, group, impl, op=None):
    for r in groups.get(group, []):
        if r.impl == impl and (op is None or r.operation == op):
            return r
    return None


def goals(groups: dict[str, list[Row]]) -> str | None:
    out: list[list[str]] = []

    def add(what: str, goal: str, value: str, met: bool | None) -> None:
        out.append([what, goal, value, "–" if met is None else ("met" if met else "**not met**")])

    def in_ratio(group: str, peer: str):
        rows = groups.get(group, [])
        floor = _floor(rows)
        a = next((r for r in rows if r.impl == "ipallow"), None)
        b = next((r for r in rows if r.impl == peer), None)
        if a is None or b is None or a.ns is None or b.ns is None:
            return None
        na, nb = _net(a, floor), _net(b, floor)
        return na, nb, nb / na, b.ns / a.ns

    cm4 = _find(groups, "contains_many-v4", "ipallow")
    ss4 = _find(groups, "contains_many-v4", "numpy searchsorted")
    if cm4 and cm4.mps:
        add("`contains_many`, IPv4 `uint32`", "≥ 100 M/s", f"{fmt_mps(cm4.mps)} M/s (best {fmt_mps(cm4.mps_best)})",
            cm4.mps >= 100)
        if ss4 and ss4.mps:
            add("… against numpy `searchsorted`", "≥ 6×", fmt_ratio(cm4.mps / ss4.mps), cm4.mps / ss4.mps >= 6)
    cm6 = _find(groups, "contains_many-v6", "ipallow")
    ss6 = _find(groups, "contains_many-v6", "numpy searchsorted")
    if cm6 and cm6.mps:
        add("`contains_many`, IPv6 `(n, 2) uint64`", "≥ 30 M/s",
            f"{fmt_mps(cm6.mps)} M/s (best {fmt_mps(cm6.mps_best)})", cm6.mps >= 30)
        if ss6 and ss6.mps:
            add("… against numpy `searchsorted`", "≥ 4×", fmt_ratio(cm6.mps / ss6.mps), cm6.mps / ss6.mps >= 4)
    st = next((r for r in groups.get("batch-v4-strings", []) if r.impl == "ipallow"
               and r.operation == "contains_many" and r.input == "list of str"), None)
    if st and st.mps:
        add("`contains_many` on a list of IPv4 strings", "≥ 15 M/s",
            f"{fmt_mps(st.mps)} M/s (best {fmt_mps(st.mps_best)})", st.mps >= 15)
    for group, fam, need in (("in-v4-str", "IPv4", 8), ("str-in", "IPv4", 8), ("in-v6-str", "IPv6", 6)):
        r = in_ratio(group, "pytricia")
        if r and not (group == "str-in" and "in-v4-str" in groups):
            na, nb, net, raw = r
            add(f"`str in allowlist`, {fam}, against pytricia", f"≥ {need}×",
                f"{fmt_ratio(net)} ({fmt_ns(na)} vs {fmt_ns(nb)}; {fmt_ratio(raw)} with the loop)", net >= need)
        if group == "in-v4-str" and r:
            add("`str in allowlist`, IPv4", "≤ 100 ns", fmt_ns(r[0]) + " (loop floor subtracted)", r[0] <= 100)
    for group in ("in-v4-int", "int-in"):
        r = in_ratio(group, "pyroaring.BitMap")
        if r and not (group == "int-in" and "in-v4-int" in groups):
            na, nb, net, raw = r
            add("`int in allowlist` against `int in pyroaring.BitMap`", "faster",
                f"{fmt_ns(na)} vs {fmt_ns(nb)} ({fmt_ratio(net)})", na < nb)
            add("`int in allowlist`", "≤ 60 ns", fmt_ns(na) + " (loop floor subtracted)", na <= 60)
    bi, bp = _find(groups, "build", "ipallow"), _find(groups, "build", "pytricia")
    if bi and bp:
        add(f"build from {bi.extra.get('prefixes') or 0:,} IPv4 strings against pytricia", "no slower",
            f"{fmt_s(bi.median_s)} vs {fmt_s(bp.median_s)}", bi.median_s <= bp.median_s)
    if bi and bi.extra.get("bytes_per_prefix") is not None:
        add("compiled index", "≤ 8 B/prefix", f"{bi.extra['bytes_per_prefix']:,.2f} B/prefix",
            bi.extra["bytes_per_prefix"] <= 8)
    for g in ("threads-v4", "threads-v6"):
        rows = groups.get(g, [])
        one = next((r for r in rows if r.extra.get("threads") == 1), None)
        two = next((r for r in rows if r.extra.get("threads") == 2), None)
        if one and two:
            s = one.median_s / two.median_s
            add(f"two threads, `{g}`", "close to 2×", f"{s:.2f}× (best rounds {one.min_s / two.min_s:.2f}×)",
                s >= 1.8)
    if not out:
        return None
    return ("### Goals (issue 3)\n\nRatios of single calls use the lookup's own cost (loop floor subtracted); "
            "the ratio of the raw loop times is given next to it.\n\n"
            + table(["what", "goal", "measured", ""], out, ["l", "l", "l", "l"]))


def render(runs: list[dict], rows: list[Row]) -> str:
    groups = by_group(rows)
    parts = ["## Performance", header(runs, rows)]
    for section in (goals, single_lookups, longest_match, batches, threads, build_memory, sizes):
        text = section(groups)
        if text:
            parts.append(text)
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pytest-benchmark JSON -> the README performance tables")
    parser.add_argument("runs", nargs="+", metavar="RUN.json", help="files written by --benchmark-json")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the Markdown here (default: stdout)")
    args = parser.parse_args(argv)
    try:
        runs, rows = load_runs(args.runs)
    except (OSError, ValueError) as exc:
        print(f"report.py: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print("report.py: no benchmarks in the input (was the run made with --benchmark-only and "
              "--benchmark-json?)", file=sys.stderr)
        return 2
    text = render(runs, rows)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
