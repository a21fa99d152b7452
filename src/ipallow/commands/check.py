"""`ipallow check`: allowed or denied, and the matching registration, per address."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ipallow.errors import AddressError
from ipallow.commands import EXIT_ERROR, EXIT_NEGATIVE, EXIT_OK

if TYPE_CHECKING:
    from ipallow.allowlist import Allowlist

EXAMPLES = """\
examples:
  ipallow check --list registered.csv 192.0.2.7  # against your list, registry or snapshot
  IPALLOW_LIST=registry.jsonl ipallow check 192.0.2.7 8.8.8.8   # the list from the environment
  ipallow check --sample 203.0.113.9 8.8.8.8     # against the bundled demo registry, to try it out
  ipallow check --list registered.csv --json 2001:db8::1 | jq .verdict
  ipallow check --list exported.dat --list-format csv 192.0.2.7  # a name that says nothing
  ipallow check --explain --list registry.csv 10.1.2.3   # every covering registration, and why
                                                         # it counts or not (revoked, expired ...)

exit status: 0 all allowed, 1 any denied, 2 error (bad address, bad list, no list given:
--list, $IPALLOW_LIST or --sample)"""


def label(data: Any, index: int | None) -> str:
    """A short human label for a registration: its id and owner, its data, or its index."""
    rid = getattr(data, "id", None)
    if rid is not None:                          # a registry's Registration
        return f"{rid} {getattr(data, 'owner', '')}".strip()
    if isinstance(data, dict):
        shown = [str(data[k]) for k in ("id", "owner") if data.get(k)]
        if shown:
            return " ".join(shown)
        if data:
            return " ".join(f"{k}={v}" for k, v in data.items())
    elif data is not None:
        return str(data)
    return f"registration #{index}" if index is not None else ""


def _jsonable(data: Any) -> Any:
    if hasattr(data, "to_dict"):                 # a Registration
        return _jsonable(data.to_dict())
    try:
        json.dumps(data)
        return data
    except (TypeError, ValueError):
        return str(data)


def _explanations(allowlist: Allowlist, address: str) -> list[tuple[Any, int | None]]:
    """(explanation, registration index) pairs; the index labels plain entries without data."""
    explained = allowlist.explain(address)
    # A plain list's explanations are its covering() matches, in the same order.
    indices = ([m.index for m in allowlist.covering(address)]
               if getattr(allowlist, "_registry", None) is None else [None] * len(explained))
    return list(zip(explained, indices))


def cmd_check(args: argparse.Namespace) -> int:
    # Lists and registries load the same way for every command (a registry's
    # suspended or expired records do not count), so check and --explain agree.
    from ipallow.commands._common import chosen_list, load_source
    source = load_source(chosen_list(args), list_format=args.list_format, at=args.at)
    allowlist = source.allowlist                   # a registry's snapshot: judged at --at too
    if args.at is not None and source.registry is None:
        print(f"ipallow check: note: --at does not change {source.name}: a plain list has no "
              f"validity windows", file=sys.stderr)
    denied = errors = 0
    width = max(len(a) for a in args.addresses)
    for address in args.addresses:
        try:
            match = allowlist.lookup(address)
            explained = _explanations(allowlist, address) if args.explain else []
        except AddressError as exc:
            errors += 1
            print(f"ipallow check: {exc}", file=sys.stderr)
            if args.json:
                print(json.dumps({"address": address, "verdict": "error", "error": str(exc)}))
            continue
        denied += match is None
        decided = next((i for i, (e, _) in enumerate(explained) if e.counts), None)
        if args.json:
            record: dict[str, Any] = {"address": address, "verdict": "allowed" if match else "denied"}
            if match:
                record.update(network=str(match.network), registration=match.index,
                              data=_jsonable(match.data))
                if getattr(match.data, "id", None) is not None:
                    record["id"] = match.data.id
            if args.explain:
                record["explain"] = [
                    {"id": getattr(e.registration, "id", None), "network": str(e.network),
                     "counts": e.counts, "code": e.code, "reason": e.reason, "decides": i == decided,
                     **({"registration": idx, "data": _jsonable(e.registration)}
                        if getattr(e.registration, "id", None) is None else {})}
                    for i, (e, idx) in enumerate(explained)]
            print(json.dumps(record))
            continue
        if match:
            print(f"{address:<{width}}  allowed  {match.network}  {label(match.data, match.index)}")
        else:
            print(f"{address:<{width}}  denied")
        if args.explain:
            _print_explanations(explained, decided)
    if errors:
        return EXIT_ERROR
    return EXIT_NEGATIVE if denied else EXIT_OK


def _print_explanations(explained: list, decided: int | None) -> None:
    if not explained:
        print("    no registration covers this address")
    nets = max((len(str(e.network)) for e, _ in explained), default=0)
    labels = [label(e.registration, idx) for e, idx in explained]
    width = max((len(text) for text in labels), default=0)
    for i, ((e, _), text) in enumerate(zip(explained, labels)):
        mark = "*" if i == decided else " "
        verdict = f"counts: {e.reason}" if e.counts else f"does not count: {e.reason}"
        if e.counts and i != decided:
            same = e.network == explained[decided][0].network
            # The one rule for a shared prefix: a registry's lowest id (natural
            # order, PTA-9 before PTA-10), a plain list's first line.
            if not same:
                verdict += " (a longer prefix decides)"
            elif getattr(e.registration, "id", None) is not None:
                verdict += " (the same prefix; the lowest id decides)"
            else:
                verdict += " (the same prefix, registered earlier, decides)"
        print(f"  {mark} {str(e.network):<{nets}}  {text:<{width}}  {verdict}")


def _parse_at(text: str) -> float:
    from ipallow.commands._common import parse_at_argument
    return parse_at_argument(text)


def register(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check", help="allowed or denied, and the matching registration, for each address",
        description="Print, for each address, allowed/denied and the registration that covers it.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("addresses", nargs="+", metavar="ADDRESS", help="IPv4 or IPv6 address")
    from ipallow.commands._common import add_list_arguments
    add_list_arguments(check)
    check.add_argument("--json", action="store_true", help="one JSON object per address")
    check.add_argument("--explain", action="store_true",
                       help="list every registration covering each address, longest first, and why it "
                            "counts or not (a registry's revoked, suspended, pending, expired, not yet "
                            "valid records included); * marks the one that decides")
    check.add_argument("--at", metavar="TIME", type=_parse_at,
                       help="judge a registry at TIME (ISO 8601, no offset = UTC; default now)")
    check.set_defaults(handler=cmd_check)
