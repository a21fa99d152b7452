"""`ipallow stats`: what a list or registry covers, and what it costs compiled."""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from ipallow.commands import EXIT_OK
from ipallow.commands._common import (AT_HELP, POSITIONAL_LIST_HELP, add_list_format_argument, add_parser,
                                      load_source, parse_at_argument, plural, positional_list, print_json,
                                      stops_quietly_on_closed_output)
from ipallow.commands._format import BYTES, address_count, human
from ipallow.commands._progress import Progress

if TYPE_CHECKING:
    from ipallow import export

# numpy and ipallow.export are imported by the functions that use them: `ipallow --help` imports
# every command module.

EXAMPLES = """\
examples:
  ipallow stats registered.csv
  ipallow stats --json registry.jsonl | jq '.addresses.ipv4'
  ipallow stats --at 2026-01-01 registry.jsonl      # what will count on New Year's Day
  curl -s https://registry.example/export | ipallow stats -      # recognised by content

what is counted:
  registrations  all records; for a registry also how many count at --at (default now),
                 and every record by status and by category (CSV status/category
                 columns of a plain list are counted the same way)
  prefixes       the compiled prefixes of what counts, per family and prefix length;
                 duplicates and prefixes nested inside another
  addresses      covered addresses, overlaps counted once: IPv4 exactly (and the share of
                 the IPv4 space), IPv6 as a sum of powers of two from the aggregated CIDRs
  aggregated     the minimal CIDR list ('ipallow export' writes it)
  compiled       bytes of the lookup tables (level-0 arrays and node heaps; a leaf run
                 is one byte inside its node)

exit status: 0 ok, 2 usage error or unreadable / invalid file"""


def power_sum(prefixes: export.Prefixes) -> list[tuple[int, int]]:
    """The exact address count as ``[(1, exponent), ...]``, largest first: its binary digits.

    The count is summed exactly (each aggregated CIDR of length L is 2**(bits - L)),
    then written as distinct powers of two, which is how IPv6 sizes read best.
    """
    from ipallow import export
    total = export.address_count(prefixes)
    return [(1, e) for e in range(total.bit_length() - 1, -1, -1) if total >> e & 1]


def _by(values) -> dict[str, int]:
    return dict(sorted(Counter(values).items(), key=lambda kv: (-kv[1], str(kv[0]))))


def _human_bytes(n: int) -> str:
    return human(n, BYTES[:4], grouping=True)      # sizes stop at GiB


def collect(source) -> dict[str, Any]:
    import numpy as np

    from ipallow import export
    from ipallow._prefixes import DUPLICATE, find_overlaps
    al = source.allowlist
    c = al.compiled
    stats: dict[str, Any] = {"file": source.name}
    if source.registry is not None:
        records = list(source.registry)
        stats["kind"] = "registry"
        stats["registrations"] = len(records)
        stats["counting"] = len(al)
        stats["at"] = source.at
        stats["by_status"] = _by(r.status for r in records)
        stats["by_category"] = _by(r.category for r in records)
    else:
        stats["kind"] = "list"
        stats["registrations"] = len(al)
        data = c.data or []
        for column in ("status", "category"):
            values = [d.get(column) for d in data if isinstance(d, dict) and column in d]
            if values:
                stats[f"by_{column}"] = _by(v if v else "(empty)" for v in values)
    stats["prefixes"] = {}
    stats["by_prefixlen"] = {}
    for v in (4, 6):
        rows = c.version == v
        lengths = np.bincount(c.prefixlen[rows], minlength=33 if v == 4 else 129)
        stats["prefixes"][f"ipv{v}"] = int(rows.sum())
        stats["by_prefixlen"][f"ipv{v}"] = {f"/{n}": int(k) for n, k in enumerate(lengths.tolist()) if k}
    found = find_overlaps(c.version, c.hi, c.lo, c.prefixlen)
    stats["duplicates"] = int(np.count_nonzero(found.kind == DUPLICATE))
    stats["nested"] = int(np.count_nonzero(found.kind != DUPLICATE))
    agg = export.aggregate_allowlist(al)
    v4 = export.address_count(agg[4])
    terms = power_sum(agg[6])
    stats["aggregated"] = {"ipv4": len(agg[4]), "ipv6": len(agg[6])}
    stats["addresses"] = {
        "ipv4": v4,
        "ipv4_share_of_space": v4 / 2**32,
        "ipv6": str(export.address_count(agg[6])),
        "ipv6_powers_of_two": [e for _, e in terms],
        "ipv6_log2": math.log2(export.address_count(agg[6])) if terms else None,
    }
    tables = al._table_stats()
    stats["compiled"] = {"nbytes": int(al.nbytes),
                         "ipv4": {k: int(val) for k, val in tables[4].items()},
                         "ipv6": {k: int(val) for k, val in tables[6].items()}}
    return stats


def render(s: dict[str, Any]) -> str:
    out = []

    def row(key: str, value: str) -> None:
        out.append(f"{key:<22}{value}")

    row("file", s["file"] + ("  (registry)" if s["kind"] == "registry" else ""))
    if s["kind"] == "registry":
        from datetime import datetime, timezone
        when = "now" if s["at"] is None else datetime.fromtimestamp(s["at"], timezone.utc).isoformat()
        row("registrations", f"{s['registrations']:,}, {s['counting']:,} counting ({when})")
    else:
        row("registrations", f"{s['registrations']:,}")
    for key in ("by_status", "by_category"):
        if key in s:
            row(key.replace("_", " "), ", ".join(f"{k} {n:,}" for k, n in s[key].items()))
    p = s["prefixes"]
    row("prefixes", f"IPv4 {p['ipv4']:,}, IPv6 {p['ipv6']:,}  "
                    f"({plural(s['duplicates'], 'duplicate')}, {s['nested']:,} nested in another)")
    for v in ("ipv4", "ipv6"):
        lengths = s["by_prefixlen"][v]
        if lengths:
            row(f"  {v} by length", ", ".join(f"{k} {n:,}" for k, n in lengths.items()))
    a = s["addresses"]
    row("addresses IPv4", f"{a['ipv4']:,} ({a['ipv4_share_of_space'] * 100:.4g}% of the IPv4 space)")
    # The same words as `ipallow diff` (JSON keeps the exact count and its powers of two).
    row("addresses IPv6", address_count(int(a["ipv6"])))
    g = s["aggregated"]
    row("aggregated CIDRs", f"IPv4 {g['ipv4']:,}, IPv6 {g['ipv6']:,}")
    comp = s["compiled"]
    row("compiled size", f"{_human_bytes(comp['nbytes'])}  (IPv4 {_human_bytes(comp['ipv4']['nbytes'])}: "
                         f"{comp['ipv4']['nodes']:,} nodes, {comp['ipv4']['leaves']:,} leaf runs; IPv6 "
                         f"{_human_bytes(comp['ipv6']['nbytes'])}: {comp['ipv6']['nodes']:,} nodes, "
                         f"{comp['ipv6']['leaves']:,} leaf runs)")
    return "\n".join(out) + "\n"


@stops_quietly_on_closed_output
def cmd_stats(args: argparse.Namespace) -> int:
    args.file = positional_list(args, args.file)
    source = load_source(args.file, list_format=args.list_format, at=args.at)
    with Progress("counting"):
        stats = collect(source)
    if args.json:
        print_json(stats)
    else:
        sys.stdout.write(render(stats))
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_parser(
        commands, "stats",
        help="counts per family and prefix length, addresses covered, registrations by status "
             "and category, compiled size",
        description="Describe a list or registry: registrations, prefixes, covered addresses "
                    "and the size of the compiled tables.",
        examples=EXAMPLES)
    parser.add_argument("file", metavar="FILE", nargs="?", help=POSITIONAL_LIST_HELP)
    add_list_format_argument(parser)
    parser.add_argument("--at", metavar="TIME", type=parse_at_argument, help=AT_HELP)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=cmd_stats)
