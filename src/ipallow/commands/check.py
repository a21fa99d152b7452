"""`ipallow check`: allowed or denied, and the matching registration, per address."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import ipallow
from ipallow import AddressError, Allowlist
from ipallow.commands import EXIT_ERROR, EXIT_NEGATIVE, EXIT_OK

EXAMPLES = """\
examples:
  ipallow check 203.0.113.9 8.8.8.8              # against the bundled sample list
  ipallow check --list registered.csv 192.0.2.7  # against your own list (.csv or text)
  ipallow check --json 2001:db8::1 | jq .verdict

exit status: 0 all allowed, 1 any denied, 2 error (bad address, bad list)"""


def describe(data: Any) -> str:
    """A short human label for a registration's data."""
    if data is None:
        return ""
    if isinstance(data, dict):
        shown = [str(data[k]) for k in ("id", "owner") if data.get(k)]
        if shown:
            return " ".join(shown)
        return " ".join(f"{k}={v}" for k, v in data.items())
    return str(data)


def _jsonable(data: Any) -> Any:
    try:
        json.dumps(data)
        return data
    except (TypeError, ValueError):
        return str(data)


def cmd_check(args: argparse.Namespace) -> int:
    allowlist = Allowlist.from_file(args.list or ipallow.SAMPLE_LIST)
    denied = errors = 0
    width = max(len(a) for a in args.addresses)
    for address in args.addresses:
        try:
            match = allowlist.lookup(address)
        except AddressError as exc:
            errors += 1
            print(f"ipallow check: {exc}", file=sys.stderr)
            if args.json:
                print(json.dumps({"address": address, "verdict": "error", "error": str(exc)}))
            continue
        denied += match is None
        if args.json:
            record = {"address": address, "verdict": "allowed" if match else "denied"}
            if match:
                record.update(network=str(match.network), registration=match.index,
                              data=_jsonable(match.data))
            print(json.dumps(record))
        elif match:
            label = describe(match.data) or f"registration #{match.index}"
            print(f"{address:<{width}}  allowed  {match.network}  {label}")
        else:
            print(f"{address:<{width}}  denied")
    if errors:
        return EXIT_ERROR
    return EXIT_NEGATIVE if denied else EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check", help="allowed or denied, and the matching registration, for each address",
        description="Print, for each address, allowed/denied and the registration that covers it.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("addresses", nargs="+", metavar="ADDRESS", help="IPv4 or IPv6 address")
    check.add_argument("--list", metavar="FILE",
                       help="registered list (.csv with a cidr column, or one entry per line); "
                            "default: the bundled sample")
    check.add_argument("--json", action="store_true", help="one JSON object per address")
    check.set_defaults(handler=cmd_check)
