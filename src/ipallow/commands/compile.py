"""`ipallow compile`: a list or registry file -> a snapshot file that opens in milliseconds."""

from __future__ import annotations

import argparse
import json
import os
import time

from ipallow import Allowlist
from ipallow.commands import EXIT_OK

EXAMPLES = """\
examples:
  ipallow compile registered.csv -o registered.ipallow
  ipallow check --list registered.ipallow 203.0.113.9     # every command takes snapshots
  python -c 'import ipallow; al = ipallow.load("registered.ipallow")'

exit status: 0 written, 2 bad list (every bad line is listed) or I/O error"""


def cmd_compile(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    allowlist = Allowlist.from_file(args.list, strict=not args.no_strict)
    compiled = time.perf_counter()
    allowlist.save(args.output)
    saved = time.perf_counter()
    report = {"list": args.list, "output": args.output, "registrations": len(allowlist),
              "prefixes": allowlist.prefix_count, "bytes": os.path.getsize(args.output),
              "compile_seconds": round(compiled - started, 4),
              "save_seconds": round(saved - compiled, 4)}
    if args.json:
        print(json.dumps(report))
    else:
        counts = allowlist.prefix_count
        print(f"{args.output}: {len(allowlist):,} registrations, {counts[4]:,} IPv4 and "
              f"{counts[6]:,} IPv6 prefixes, {report['bytes']:,} bytes "
              f"(compiled in {report['compile_seconds']:.3f} s)")
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compile", help="compile a list into a snapshot file (memory-mapped by every process)",
        description="Compile a list (.csv or text) into a snapshot that ipallow.load() and every "
                    "command open in milliseconds. Written atomically: readers never see half a file.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("list", metavar="LIST", help="list or registry file (.csv or text)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="snapshot to write")
    parser.add_argument("--no-strict", action="store_true",
                        help="clear host bits in CIDRs instead of rejecting them")
    parser.add_argument("--json", action="store_true", help="report as one JSON object")
    parser.set_defaults(handler=cmd_compile)
