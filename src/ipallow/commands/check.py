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
  ipallow check --explain --list registry.csv 10.1.2.3   # every covering registration, and why
                                                         # it counts or not (revoked, expired ...)

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


def _explain_label(registration: Any, index: int | None) -> str:
    rid = getattr(registration, "id", None)
    if rid is not None:
        owner = getattr(registration, "owner", "")
        return f"{rid} {owner}".strip()
    return describe(registration) or (f"registration #{index}" if index is not None else "")


def cmd_explain(args: argparse.Namespace) -> int:
    """--explain: the verdict, then every covering registration with whether it counts and why."""
    from ipallow.commands._common import load_source
    allowlist = load_source(args.list, at=args.at).allowlist
    denied = errors = 0
    width = max(len(a) for a in args.addresses)
    for address in args.addresses:
        try:
            match = allowlist.lookup(address)
            explained = allowlist.explain(address)
            # A plain list's explanations are its covering() matches, in the same order: they
            # carry the registration index that labels an entry without data.
            indices = ([m.index for m in allowlist.covering(address)]
                       if getattr(allowlist, "_registry", None) is None else [None] * len(explained))
        except AddressError as exc:
            errors += 1
            print(f"ipallow check: {exc}", file=sys.stderr)
            if args.json:
                print(json.dumps({"address": address, "verdict": "error", "error": str(exc)}))
            continue
        denied += match is None
        decided = next((i for i, e in enumerate(explained) if e.counts), None)
        if args.json:
            record = {"address": address, "verdict": "allowed" if match else "denied"}
            if match:
                record.update(network=str(match.network), registration=match.index,
                              id=getattr(match.data, "id", None))
            record["explain"] = [
                {"id": getattr(e.registration, "id", None), "network": str(e.network), "counts": e.counts,
                 "code": e.code, "reason": e.reason, "decides": i == decided,
                 **({"registration": idx, "data": _jsonable(e.registration)}
                    if getattr(e.registration, "id", None) is None else {})}
                for i, (e, idx) in enumerate(zip(explained, indices))]
            print(json.dumps(record))
            continue
        if match:
            print(f"{address:<{width}}  allowed  {match.network}  {_explain_label(match.data, match.index)}")
        else:
            print(f"{address:<{width}}  denied")
        if not explained:
            print("    no registration covers this address")
        nets = max((len(str(e.network)) for e in explained), default=0)
        labels = [_explain_label(e.registration, i) for e, i in zip(explained, indices)]
        lab = max((len(label) for label in labels), default=0)
        for i, (e, label) in enumerate(zip(explained, labels)):
            mark = "*" if i == decided else " "
            verdict = f"counts: {e.reason}" if e.counts else f"does not count: {e.reason}"
            if e.counts and i != decided:
                same = e.network == explained[decided].network
                verdict += (" (the same prefix, registered earlier, decides)" if same
                            else " (a longer prefix decides)")
            print(f"  {mark} {str(e.network):<{nets}}  {label:<{lab}}  {verdict}")
    if errors:
        return EXIT_ERROR
    return EXIT_NEGATIVE if denied else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    if args.explain:
        return cmd_explain(args)
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


def _parse_at(text: str) -> float:
    from ipallow.commands._common import parse_at_argument
    return parse_at_argument(text)


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
    check.add_argument("--explain", action="store_true",
                       help="list every registration covering each address, longest first, and why it "
                            "counts or not (a registry's revoked, suspended, pending, expired, not yet "
                            "valid records included); * marks the one that decides")
    check.add_argument("--at", metavar="TIME", type=_parse_at,
                       help="with --explain: judge a registry at TIME (ISO 8601, no offset = UTC; "
                            "default now)")
    check.set_defaults(handler=cmd_check)
