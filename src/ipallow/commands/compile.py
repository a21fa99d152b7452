"""`ipallow compile`: a list or registry file -> a snapshot file that opens in milliseconds."""

from __future__ import annotations

import argparse
import json
import os
import time

from ipallow import Allowlist
from ipallow.commands import EXIT_OK
from ipallow.commands._common import parse_at_argument

EXAMPLES = """\
examples:
  ipallow compile registered.csv -o registered.ipallow
  ipallow compile registry.jsonl -o registry.ipallow --at 2026-01-01   # what counts then
  ipallow check --list registered.ipallow 203.0.113.9     # every command takes snapshots
  python -c 'import ipallow; al = ipallow.load("registered.ipallow")'

exit status: 0 written, 2 bad list (every bad line is listed) or I/O error"""


def cmd_compile(args: argparse.Namespace) -> int:
    from ipallow.commands._lifecycle import format_instant
    from ipallow.commands._progress import Progress
    from ipallow.registry import is_registry_file, load_registry
    started = time.perf_counter()
    with Progress(f"compiling {args.list}") as bar:
        # A registry compiles what counts at --at (default now) and keeps its
        # lifecycle in the snapshot, so it can be judged again at other instants.
        if is_registry_file(args.list):
            registry = load_registry(args.list, strict=not args.no_strict)
            allowlist = Allowlist.from_registry(registry, at=args.at)
        else:
            if args.at is not None:
                bar.message(f"ipallow compile: note: --at does not change {args.list}: a plain list "
                            f"has no validity windows")
            allowlist = Allowlist.from_file(args.list, strict=not args.no_strict)
        compiled = time.perf_counter()
        bar.label = f"writing {args.output}"
        allowlist.save(args.output)
    saved = time.perf_counter()
    evaluated = getattr(allowlist, "_registry_at", None)
    report = {"list": args.list, "output": args.output, "registrations": len(allowlist),
              "prefixes": allowlist.prefix_count, "bytes": os.path.getsize(args.output),
              "evaluated_at": format_instant(evaluated) if evaluated is not None else None,
              "compile_seconds": round(compiled - started, 4),
              "save_seconds": round(saved - compiled, 4)}
    if args.json:
        print(json.dumps(report))
    else:
        counts = allowlist.prefix_count
        when = f", counting at {report['evaluated_at']}" if evaluated is not None else ""
        print(f"{args.output}: {len(allowlist):,} registrations{when}, {counts[4]:,} IPv4 and "
              f"{counts[6]:,} IPv6 prefixes, {report['bytes']:,} bytes "
              f"(compiled in {report['compile_seconds']:.3f} s)")
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compile", help="compile a list into a snapshot file (memory-mapped by every process)",
        description="Compile a list (.csv or text) into a snapshot that ipallow.load() and every "
                    "command open in milliseconds. Written atomically: readers never see half a file.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("list", metavar="LIST", help="list (.csv or text) or registry (CSV with an id "
                                                     "column, or JSON Lines)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="snapshot to write")
    parser.add_argument("--no-strict", action="store_true",
                        help="clear host bits in CIDRs instead of rejecting them")
    parser.add_argument("--at", metavar="TIME", type=parse_at_argument,
                        help="for a registry: compile the registrations that count at TIME (ISO 8601, "
                             "no offset = UTC; default now). The snapshot keeps the whole registry: "
                             "commands judge it again at any other instant")
    parser.add_argument("--json", action="store_true", help="report as one JSON object")
    parser.set_defaults(handler=cmd_compile)
