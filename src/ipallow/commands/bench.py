"""`ipallow bench`: the pre-rollout run on the operator's own list (logic in ipallow.bench)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from ipallow import bench
from ipallow.commands import EXIT_ERROR, EXIT_NEGATIVE, EXIT_OK
from ipallow.commands._common import (AT_HELP, add_list_arguments, add_parser, check_output, chosen_list,
                                      load_source, output_file, parse_at_argument, plural, print_json,
                                      stops_quietly_on_closed_output)
from ipallow.commands._progress import Progress

EXAMPLES = f"""\
examples:
  ipallow bench --sample                            # the bundled demo registry, {bench.DEFAULT_QUERIES:,} random queries
  ipallow bench --list registered.csv --queries 1000000
  ipallow bench --list registry.jsonl --queries seen-at-the-gateway.txt --plot bench.png
  ipallow bench --list registered.ipallow --json | jq '.agreement.ok'      # a snapshot works too
  ipallow bench --list registered.csv --peers pytricia,pyroaring.BitMap --seconds 30

what is measured:
  build       compiling the list's prefixes, given to every builder as the same CIDR text
              (best of up to 3), and loading the list file itself once
  memory      ipallow: the compiled tables (Allowlist.nbytes, exact); peers: growth of the
              process's resident memory during their first build (approximate, shown
              from 1 MiB up: below that it is lost in the allocator's reuse of free memory)
  latency     one call at a time ('q in allowlist', 'allowlist.lookup(q)', each peer's own
              test). A call is shorter than the clock's overhead, so calls are timed in
              groups of {bench.LATENCY_BATCH} with time.perf_counter_ns(); each group's time / {bench.LATENCY_BATCH}
              minus the loop floor (the median of the same loop around the cheapest
              operation: 'q in ()', an empty tuple, or 'id(q)' for method calls) is one
              sample. p50 / p99 are over those samples, so p99 is the 99th percentile of
              {bench.LATENCY_BATCH}-call means. Garbage collection is paused while timing, as timeit does.
  throughput  contains_many / lookup_many on a uint32 array (IPv4), an (n, 2) uint64 array
              (IPv6) and a list of str; numpy searchsorted over the merged ranges; peers
              without a batch call run the list comprehension a user would write.
              Best and median of repeated runs (slow peers: on a leading slice).
  agreement   every installed peer (pytricia, py-radix, SubnetTree, netaddr.IPSet, and
              pyroaring.BitMap for IPv4) and the searchsorted baseline answer EVERY query;
              peers that report their longest match are compared on it, the others on
              membership. Any difference is printed with the query and both answers.

queries: N random addresses (default {bench.DEFAULT_QUERIES:,}): per family in proportion to the
list's prefixes, half inside a randomly chosen registered prefix, half uniform over the
family's space (like ipallow.synth). Or a FILE with one address a line ('-' for stdin;
blank lines and '#' comments skipped); lines that are not an address are reported with
their line numbers and left out. IPv4-mapped IPv6 addresses are asked as IPv4, which is
what ipallow means by them. A value that names an existing file is a file.

--seconds is the timing budget shared by the latency and throughput rows (default
{bench.DEFAULT_SECONDS:g}); building big lists and checking every peer's answers come on top. A
progress line is drawn on stderr when stderr is a terminal. Other work on the machine
moves every figure: the load average is printed with them.

exit status: 0 every peer agrees with ipallow, 1 a peer (or one of ipallow's own input
forms) disagrees on some query, 2 usage error, no list given (--list, $IPALLOW_LIST or
--sample), unreadable list or query file, or --plot without matplotlib"""

SHOW_EXAMPLES = 10


def queries_argument(text: str) -> tuple[str, Any]:
    """``--queries``: an existing file (or '-') -> ("file", path); a positive count -> ("count", n)."""
    if text == "-" or os.path.exists(text):
        return "file", text
    try:
        n = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a file nor a number of queries") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"the number of queries must be at least 1, got {n}")
    return "count", n


def seconds_argument(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--seconds must be positive, got {text}")
    return value


def peers_argument(text: str) -> list[bench.Peer]:
    """``--peers``: comma-separated peer names (as shown in the output), or 'none'."""
    if text.strip().lower() == "none":
        return []
    known = {p.name.lower(): p for p in bench.PEERS}
    chosen = []
    for name in filter(None, (n.strip().lower() for n in text.split(","))):
        if name not in known:
            raise argparse.ArgumentTypeError(
                f"unknown peer {name!r}; known: {', '.join(p.name for p in bench.PEERS)}")
        chosen.append(known[name])
    return chosen


def _load_queries(spec: tuple[str, Any]) -> bench.Queries | int:
    kind, value = spec
    if kind == "count":
        return value
    if value == "-":
        return bench.read_queries(sys.stdin, "<stdin>")
    with open(value, encoding="utf-8", errors="replace") as handle:
        return bench.read_queries(handle, value)


# --------------------------------------------------------------------------- text output


def _ms(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:,.2f} s"
    if seconds >= 0.001:
        return f"{seconds * 1e3:,.1f} ms"
    return f"{seconds * 1e6:,.0f} µs"


def _bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} B" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _times(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:,.2f}×"


def _family_name(f: int) -> str:
    return f"IPv{f}"


def render(r: dict) -> str:
    out: list[str] = []
    w = out.append
    lst, m, q = r["list"], r["machine"], r["queries"]
    kind = f" ({lst['kind']})" if lst.get("kind") else ""
    w(f"ipallow bench: {lst.get('name', '?')}{kind}: {plural(lst['registrations'], 'registration')}, "
      f"{lst['prefixes']['ipv4']:,} IPv4 + {lst['prefixes']['ipv6']:,} IPv6 prefixes")
    load = "/".join(f"{x:g}" for x in m["load_average"]) if m["load_average"] else "?"
    w(f"machine: {m['cpu']}, {m['cpus']} CPUs, load average {load} (1/5/15 min); "
      f"Python {m['python']}, numpy {m['numpy']}, ipallow {m['ipallow']}")
    if m["load_average"] and m["cpus"] and m["load_average"][0] >= max(1.5, 0.75 * m["cpus"]):
        w(f"note: the machine was busy when the run started (load {m['load_average'][0]:g} on {m['cpus']} CPUs); "
          f"other work moves every figure below, the ratios measured side by side less so")
    peers = ", ".join(f"{p['name']} {p['version']}" for p in r["peers"]["compared"]) or "none"
    w(f"peers: {peers}" + (f"; not installed: {', '.join(r['peers']['not_installed'])}"
                           if r["peers"]["not_installed"] else ""))
    per = " + ".join(f"{n:,} {k.replace('ipv', 'IPv')}" for k, n in q["per_family"].items())
    if q["origin"] == "random":
        w(f"queries: {q['count']:,} random (seed {q['seed']}): {per}; half inside registered prefixes, "
          f"half uniform")
    else:
        bad = f"; {plural(len(q['problems']), 'line')} not an address, left out" if q["problems"] else ""
        w(f"queries: {q['count']:,} from {q['origin']}: {per}{bad}")

    w("")
    w("build                                                   best  runs  × ipallow   memory")
    for b in r["build"]:
        if b["impl"] == "ipallow" and b["what"] == bench.BUILD_ROW:
            mem = r["memory"]
            memory = f"{_bytes(mem['nbytes'])} compiled ({mem['bytes_per_prefix']:,.1f} B/prefix)"
        elif b["what"] == bench.LOAD_ROW:
            memory = "parse + compile (a snapshot: map + validate)"
        elif (b["rss_growth_bytes"] or 0) >= 1 << 20:    # smaller growth is lost in allocator noise
            memory = f"~{_bytes(b['rss_growth_bytes'])} resident growth"
        else:
            memory = ""
        w(f"  {b['impl']:<17} {b['what']:<29} {_ms(b['best_s']):>10}  {b['runs'] or '':>4}  "
          f"{_times(b['vs_ipallow']):>9}   {memory}")

    batch = r["settings"]["latency_batch"]
    w("")
    w(f"single lookups: ns per call, loop floor subtracted; p50 / p99 of {batch}-call groups; "
      f"× ipallow's 'in' (same input)")
    for x in r["latency"]:
        op = f"{x['operation']} ({x['input']})"
        w(f"  {_family_name(x['family'])}  {x['impl']:<17} {op:<38} {x['p50_ns']:>9,.1f} / {x['p99_ns']:>9,.1f}  "
          f"{_times(x['vs_ipallow']):>9}")

    w("")
    w("batch throughput: M lookups/s, best / median; × ipallow's contains_many time (same kind of input)")
    for x in r["throughput"]:
        op = f"{x['operation']} ({x['input']})"
        part = "" if x["items"] >= q["per_family"][f"ipv{x['family']}"] else f"  (on {x['items']:,} queries)"
        w(f"  {_family_name(x['family'])}  {x['impl']:<19} {op:<60} {x['best_M_per_s']:>9,.2f} / "
          f"{x['median_M_per_s']:>9,.2f}  {_times(x['vs_ipallow']):>9}{part}")

    w("")
    a = r["agreement"]
    checked = sorted({c["impl"] for c in a["checked"] if not c["impl"].startswith("ipallow ")})
    if a["ok"]:
        w(f"agreement: OK: {', '.join(checked) or 'nothing'} and ipallow's own input forms agree with "
          f"ipallow on all {q['count']:,} queries")
    else:
        w("agreement: DISAGREEMENT")
        for d in a["disagreements"]:
            fam = _family_name(d["family"])
            if d.get("error"):
                w(f"  {d['peer']} could not answer the {d['queries']:,} {fam} queries: {d['error']}")
                continue
            w(f"  {d['peer']} disagrees with ipallow on {d['disagreements']:,} of {d['queries']:,} {fam} queries:")
            for e in d["examples"][:SHOW_EXAMPLES]:
                w(f"    {e['query']}: ipallow {e['ipallow']}, {d['peer']} {e['peer']}")
            if d["disagreements"] > SHOW_EXAMPLES:
                w(f"    ... {d['disagreements'] - SHOW_EXAMPLES:,} more (--json lists up to "
                  f"{bench.MAX_EXAMPLES:,})")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the command


@stops_quietly_on_closed_output
def cmd_bench(args: argparse.Namespace) -> int:
    if args.plot:
        try:
            bench.require_matplotlib()
        except bench.PlotUnavailable as exc:
            print(f"ipallow bench: {exc}", file=sys.stderr)
            return EXIT_ERROR
        try:
            check_output(args.plot)     # before the benchmark, not after minutes of it
        except OSError as exc:
            print(f"ipallow bench: --plot {args.plot}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_ERROR
    if args.peers is not None:
        absent = [p.name for p in args.peers if not p.available()]
        if absent:
            print(f"ipallow bench: not installed: {', '.join(absent)} (pip install 'ipallow[bench]')",
                  file=sys.stderr)
            return EXIT_ERROR
    list_name = chosen_list(args)
    if list_name == "-" and args.queries == ("file", "-"):
        print("ipallow bench: --list and --queries cannot both read stdin", file=sys.stderr)
        return EXIT_ERROR
    queries = _load_queries(args.queries)
    if isinstance(queries, bench.Queries):
        for p in queries.problems[:20]:
            print(f"ipallow bench: {queries.origin}:{p.line}: not an address, left out: {p.message}",
                  file=sys.stderr)
        if len(queries.problems) > 20:
            print(f"ipallow bench: {queries.origin}: {len(queries.problems) - 20:,} more lines that are "
                  f"not an address (--json lists them all)", file=sys.stderr)
        if queries.count == 0:
            print(f"ipallow bench: {queries.origin}: no addresses to ask", file=sys.stderr)
            return EXIT_ERROR

    started = time.perf_counter()
    source = load_source(list_name, list_format=args.list_format, at=args.at)
    load_seconds = time.perf_counter() - started
    info = {"name": source.name, "kind": "registry" if source.registry is not None else "list"}

    with Progress("ipallow bench", total=1) as bar:
        def progress(done: int, total: int, what: str) -> None:
            bar.total = total
            bar.label = f"bench: {what}"
            bar.update(done)

        result = bench.run(source.allowlist, queries=queries, seconds=args.seconds, peers=args.peers,
                           seed=args.seed, load_seconds=load_seconds, source=info, progress=progress)

    if args.plot:
        with output_file(args.plot, binary=True) as handle:
            bench.plot(result, handle)
        result["plot"] = args.plot
    if args.json:
        print_json(result)
    else:
        sys.stdout.write(render(result))
        if args.plot:
            print(f"chart written to {args.plot}")
    return EXIT_OK if result["agreement"]["ok"] else EXIT_NEGATIVE


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_parser(
        commands, "bench",
        help="pre-rollout benchmark on your list: build, memory, latency, throughput, "
             "and every installed peer's answers checked against ipallow",
        description="Measure ipallow on a list (--list, $IPALLOW_LIST, or --sample for the bundled "
                    "demo registry) against every installed "
                    "peer library, and check that each peer gives the same answer on every query.",
        examples=EXAMPLES)
    add_list_arguments(parser)
    parser.add_argument("--at", metavar="TIME", type=parse_at_argument, help=AT_HELP)
    parser.add_argument("--queries", metavar="FILE|N", type=queries_argument,
                        default=("count", bench.DEFAULT_QUERIES),
                        help=f"a file of addresses (one a line; - for stdin) or a number of random "
                             f"queries (default {bench.DEFAULT_QUERIES:,})")
    parser.add_argument("--seconds", metavar="S", type=seconds_argument, default=bench.DEFAULT_SECONDS,
                        help=f"timing budget shared by the latency and throughput rows "
                             f"(default {bench.DEFAULT_SECONDS:g})")
    parser.add_argument("--peers", metavar="NAMES", type=peers_argument, default=None,
                        help="comma-separated peers to compare with, or 'none' (default: every installed "
                             f"one of {', '.join(p.name for p in bench.PEERS)})")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random queries (default 1)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout (for CI)")
    parser.add_argument("--plot", metavar="PNG", help="also write a bar chart (needs matplotlib: "
                                                      "pip install 'ipallow[plot]')")
    parser.set_defaults(handler=cmd_bench)
