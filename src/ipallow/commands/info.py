"""`ipallow info`: what a snapshot file holds, after validating it."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import time

import ipallow
from ipallow.commands import EXIT_OK

EXAMPLES = """\
examples:
  ipallow info registered.ipallow
  ipallow info --json registered.ipallow | jq .prefixes

exit status: 0 a valid snapshot, 2 not a valid snapshot (the reason is printed) or I/O error"""


def _lifecycle(allowlist, facts: dict) -> dict | None:
    """When a registry's snapshot was evaluated, and its next lifecycle boundary."""
    if not facts.get("has_lifecycle"):
        return None
    from ipallow.commands._lifecycle import format_instant
    from ipallow.registry import lifecycle_head
    head = lifecycle_head(allowlist.compiled.lifecycle)
    until = head["until"]
    return {"evaluated_at": format_instant(head["evaluated_at"]),
            "next_boundary": None if math.isinf(until) else format_instant(until),
            "registry_registrations": head["registrations"], "counting": head["counting"]}


def cmd_info(args: argparse.Namespace) -> int:
    from ipallow import snapshot                 # here: numpy, which --help does without
    from ipallow.commands._common import positional_list
    args.file = positional_list(args, args.file, what="FILE (a snapshot written by 'ipallow compile')")
    facts = snapshot.info(args.file)
    allowlist = ipallow.load(args.file)       # full validation, as a server would do
    facts["prefixes"] = allowlist.prefix_count
    facts["index_bytes"] = allowlist.nbytes
    facts["lifecycle"] = _lifecycle(allowlist, facts)
    if args.json:
        print(json.dumps(facts))
        return EXIT_OK
    created = dt.datetime.fromtimestamp(facts["created"], dt.timezone.utc).isoformat()
    print(f"{facts['path']}: ipallow snapshot, format {facts['format_version']}, "
          f"{facts['byte_order']}-endian, {facts['size']:,} bytes")
    print(f"  created        {created}")
    print(f"  registrations  {facts['registrations']:,}"
          f"{' (with data)' if facts['has_data'] else ''}")
    life = facts["lifecycle"]
    if life is not None:
        print(f"  registry       {life['registry_registrations']:,} registrations, "
              f"{life['counting']:,} counting at the evaluation instant")
        print(f"  evaluated at   {life['evaluated_at']}")
        boundary = life["next_boundary"] or "none (no registration starts or stops counting later)"
        if life["next_boundary"] is not None and time.time() >= allowlist._window()[1]:
            boundary += "  (passed: commands evaluate the registry again for the instant asked)"
        print(f"  next boundary  {boundary}")
    print(f"  prefixes       {facts['prefixes'][4]:,} IPv4, {facts['prefixes'][6]:,} IPv6")
    print(f"  index          {facts['index_bytes']:,} bytes "
          f"(level 0: {facts['dir_bits'][4]} bits IPv4, {facts['dir_bits'][6]} bits IPv6)")
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "info", help="validate a snapshot file and describe it",
        description="Validate a snapshot (header, checksums, table structure) and print what it holds.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    from ipallow.commands import LIST_ENV
    parser.add_argument("file", metavar="FILE", nargs="?",
                        help=f"snapshot written by 'ipallow compile'. Default: ${LIST_ENV}; without "
                             f"either the command stops (exit 2)")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(handler=cmd_info)
