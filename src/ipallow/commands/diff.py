"""`ipallow diff OLD NEW`: registrations added / removed / changed, and coverage gained / lost."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from ipallow.commands import EXIT_ERROR, EXIT_NEGATIVE, EXIT_OK
from ipallow.commands._common import (AT_HELP, add_list_format_argument, add_parser, load_source,
                                      parse_at_argument, plural, print_json,
                                      stops_quietly_on_closed_output)
from ipallow.commands._format import address_count
from ipallow.commands._progress import Progress

EXAMPLES = """\
examples:
  ipallow diff yesterday.csv today.csv
  ipallow diff --json old.jsonl new.jsonl | jq '.coverage.ipv4.lost'
  curl -s https://registry.example/export.csv | ipallow diff --summary current.csv -

what is compared:
  registrations  by id (registries only: CSV with an id column, or JSON Lines):
                 + added, - removed, ~ changed field by field (networks and tags as sets)
  coverage       the addresses the new side allows and the old did not (gained) and the
                 reverse (lost), per family, as minimal CIDR lists.  For a registry that is
                 what counts at --at (status active, inside its validity window); for a
                 plain list, everything in it.

exit status: 0 no difference, 1 differences, 2 usage error or unreadable / invalid file"""


def _value(value: Any) -> Any:
    """A field value as JSON-ready data (networks and times as text)."""
    if isinstance(value, datetime):
        from ipallow.registry import format_time
        return format_time(value)
    if isinstance(value, (tuple, list)):
        return [_value(v) for v in value]
    if hasattr(value, "items"):
        return {k: _value(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _record(registration) -> dict[str, Any]:
    return _value(registration.to_dict())


def _text_value(value: Any) -> str:
    value = _value(value)
    if value is None or value == "":
        return "(none)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


def _change_text(change) -> str:
    if change.field in ("networks", "tags"):
        old, new = [str(v) for v in change.old], [str(v) for v in change.new]
        added = [v for v in new if v not in old]
        removed = [v for v in old if v not in new]
        parts = [f"+{v}" for v in added] + [f"-{v}" for v in removed]
        return f"{change.field} {' '.join(parts)}"
    return f"{change.field}: {_text_value(change.old)} -> {_text_value(change.new)}"


def _count(n: int, version: int) -> Any:
    return n if version == 4 else str(n)    # IPv6 counts exceed what JSON readers keep exact


def to_json(result, old_name: str, new_name: str) -> dict[str, Any]:
    from ipallow.registry import format_time
    from datetime import timezone
    coverage = {}
    for v in (4, 6):
        c = result.coverage[v]
        coverage[f"ipv{v}"] = {
            "gained": [str(n) for n in c.gained], "lost": [str(n) for n in c.lost],
            "gained_addresses": _count(c.gained_addresses, v), "lost_addresses": _count(c.lost_addresses, v),
            "old_addresses": _count(c.old_addresses, v), "new_addresses": _count(c.new_addresses, v),
        }
    at = (format_time(datetime.fromtimestamp(result.at, timezone.utc)) if result.at is not None else None)
    return {
        "old": old_name, "new": new_name, "at": at, "different": bool(result),
        "added": [_record(r) for r in result.added],
        "removed": [_record(r) for r in result.removed],
        "changed": [{"id": c.id, "fields": [{"field": f.field, "old": _value(f.old), "new": _value(f.new)}
                                            for f in c.fields]} for c in result.changed],
        "unchanged": result.unchanged,
        "handovers": [{"network": str(h.network), "old": h.old, "new": h.new} for h in result.handovers],
        "coverage": coverage,
    }


def render(result, old_name: str, new_name: str, *, summary: bool, limit: int,
           registries: bool) -> str:
    out = [f"--- {old_name}", f"+++ {new_name}"]
    if registries:
        out.append(f"registrations: {len(result.added):,} added, {len(result.removed):,} removed, "
                   f"{len(result.changed):,} changed, {result.unchanged:,} unchanged")
        if not summary:
            for r in result.added:
                out.append(f"+ {r.id}  {_text_value(r.networks)}  {r.owner or '-'}  "
                           f"[{r.status}, {r.category}]")
            for r in result.removed:
                out.append(f"- {r.id}  {_text_value(r.networks)}  {r.owner or '-'}  "
                           f"[{r.status}, {r.category}]")
            for c in result.changed:
                out.append(f"~ {c.id}  " + "; ".join(_change_text(f) for f in c.fields))
        if result.handovers:
            # Same prefix, another answer: a registration in natural id order ahead of the
            # one that answered now answers (or the one that answered stopped counting).
            out.append(f"answers: {plural(len(result.handovers), 'prefix', 'prefixes')} change hands "
                       f"(where registrations share a prefix, the first id in natural order answers)")
            if not summary:
                shown = result.handovers if limit <= 0 else result.handovers[:limit]
                out.extend(f"> {h.network}  {h.old} -> {h.new}" for h in shown)
                if len(result.handovers) > len(shown):
                    out.append(f"> ... {len(result.handovers) - len(shown):,} more (--limit 0 lists all)")
    else:
        out.append("registrations: not compared (a side is a plain list, without ids)")
    for v in (4, 6):
        c = result.coverage[v]
        if not (c.gained_addresses or c.lost_addresses):
            out.append(f"coverage IPv{v}: no change ({address_count(c.new_addresses)} addresses)")
            continue
        out.append(f"coverage IPv{v}: +{address_count(c.gained_addresses)} addresses "
                   f"({plural(len(c.gained), 'CIDR')}), -{address_count(c.lost_addresses)} addresses "
                   f"({plural(len(c.lost), 'CIDR')}); {address_count(c.old_addresses)} -> "
                   f"{address_count(c.new_addresses)}")
        if summary:
            continue
        for sign, nets in (("+", c.gained), ("-", c.lost)):
            shown = nets if limit <= 0 else nets[:limit]
            out.extend(f"  {sign} {n}" for n in shown)
            if len(nets) > len(shown):
                out.append(f"  {sign} ... {len(nets) - len(shown):,} more (--limit 0 lists all)")
    return "\n".join(out) + "\n"


@stops_quietly_on_closed_output
def cmd_diff(args: argparse.Namespace) -> int:
    from ipallow.diff import diff
    if args.old == "-" and args.new == "-":
        print("ipallow diff: OLD and NEW cannot both be stdin", file=sys.stderr)
        return EXIT_ERROR
    old = load_source(args.old, list_format=args.list_format, at=args.at, label="loading OLD")
    new = load_source(args.new, list_format=args.list_format, at=args.at, label="loading NEW")
    with Progress("comparing"):
        result = diff(old.registry if old.registry is not None else old.allowlist,
                      new.registry if new.registry is not None else new.allowlist, at=args.at)
    registries = old.registry is not None and new.registry is not None
    if args.json:
        print_json(to_json(result, old.name, new.name))
    else:
        sys.stdout.write(render(result, old.name, new.name, summary=args.summary, limit=args.limit,
                                registries=registries))
    return EXIT_NEGATIVE if result else EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_parser(
        commands, "diff",
        help="registrations added / removed / changed and coverage gained / lost between two lists",
        description="Compare two registries or lists: registrations by id, and the address "
                    "space gained and lost.",
        examples=EXAMPLES)
    parser.add_argument("old", metavar="OLD", help="the earlier list or registry; - for stdin")
    parser.add_argument("new", metavar="NEW", help="the later list or registry; - for stdin")
    add_list_format_argument(parser)
    parser.add_argument("--at", metavar="TIME", type=parse_at_argument, help=AT_HELP)
    parser.add_argument("--summary", action="store_true", help="counts only, no per-item lines")
    parser.add_argument("--limit", type=int, default=50, metavar="N",
                        help="list at most N gained / lost CIDRs per family (default 50; 0 = all)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout (everything)")
    parser.set_defaults(handler=cmd_diff)
