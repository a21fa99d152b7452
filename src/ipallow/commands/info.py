"""`ipallow info`: what a snapshot file holds, after validating it."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from ipallow import snapshot
from ipallow.commands import EXIT_OK

EXAMPLES = """\
examples:
  ipallow info registered.ipallow
  ipallow info --json registered.ipallow | jq .prefixes

exit status: 0 a valid snapshot, 2 not a valid snapshot (the reason is printed) or I/O error"""


def cmd_info(args: argparse.Namespace) -> int:
    facts = snapshot.info(args.file)
    allowlist = snapshot.load(args.file)       # full validation, as a server would do
    facts["prefixes"] = allowlist.prefix_count
    facts["index_bytes"] = allowlist.nbytes
    if args.json:
        print(json.dumps(facts))
        return EXIT_OK
    created = dt.datetime.fromtimestamp(facts["created"], dt.timezone.utc).isoformat()
    print(f"{facts['path']}: ipallow snapshot, format {facts['format_version']}, "
          f"{facts['byte_order']}-endian, {facts['size']:,} bytes")
    print(f"  created        {created}")
    print(f"  registrations  {facts['registrations']:,}"
          f"{' (with data)' if facts['has_data'] else ''}")
    print(f"  prefixes       {facts['prefixes'][4]:,} IPv4, {facts['prefixes'][6]:,} IPv6")
    print(f"  index          {facts['index_bytes']:,} bytes "
          f"(level 0: {facts['dir_bits'][4]} bits IPv4, {facts['dir_bits'][6]} bits IPv6)")
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "info", help="validate a snapshot file and describe it",
        description="Validate a snapshot (header, checksums, table structure) and print what it holds.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", metavar="FILE", help="snapshot written by 'ipallow compile'")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(handler=cmd_info)
