"""`ipallow validate`: every problem of a list or registry as path:line:col, plus overlap warnings."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ipallow.errors import ParseError, Problem
from ipallow.commands import EXIT_NEGATIVE, EXIT_OK
from ipallow.commands._common import (AT_HELP, POSITIONAL_LIST_HELP, STDIN_NAME, add_list_format_argument,
                                      add_parser, empty_warning, load_source, parse_at_argument, plural,
                                      positional_list, print_json, problem_json,
                                      stops_quietly_on_closed_output)
from ipallow.commands._progress import Progress

EXAMPLES = """\
examples:
  ipallow validate registered.csv
  ipallow validate --json registry.jsonl | jq '.errors[].message'
  ipallow validate --strict registered.txt && ipallow export --format nft registered.txt > allow.nft

output:
  stdout: one line per problem, in file order, like a compiler:
      registered.txt:4:1: error: invalid network '192.0.2.1/24': host bits set
      registered.txt:9:1: warning: 10.1.0.0/16 lies inside 10.0.0.0/8 (line 3)
  errors: anything that stops the file from loading (every one is listed);
  warnings (only once the file loads): nothing counts (an empty list, or a registry
  whose registrations are all revoked, suspended, pending or expired at --at: an
  export would empty the live set); a prefix registered twice (duplicate) or
  inside another registered prefix (overlap; lookups return the longest).  For a
  registry, overlaps are checked among the registrations that count at --at.
  stderr: a one-line verdict.  --json: one JSON object on stdout instead.

exit status: 0 valid (warnings allowed), 1 errors (or warnings with --strict),
2 usage error or unreadable file"""


@stops_quietly_on_closed_output
def cmd_validate(args: argparse.Namespace) -> int:
    from ipallow.commands._overlaps import Found, warnings_of      # here: numpy, which --help does without
    errors: list[Problem] = []
    warnings = Found([], [], [], [], [], [], [], None, None)
    source = None
    args.file = positional_list(args, args.file)
    name = STDIN_NAME if args.file == "-" else args.file
    try:
        source = load_source(args.file, list_format=args.list_format, at=args.at, label="loading")
    except ParseError as exc:
        errors = exc.problems
    empty = None
    if source is not None:
        empty = empty_warning(source)
        if not args.no_warnings:
            text = ""
            if source.format != "snapshot":
                raw = source.raw
                if raw is None:
                    with open(args.file, "rb") as handle:
                        raw = handle.read()
                text = raw.decode("utf-8-sig")
            with Progress("checking overlaps"):
                warnings = warnings_of(source, name, text)
    failed = bool(errors) or (args.strict and (bool(warnings) or empty is not None))
    summary: dict[str, Any] = {"file": name, "valid": not failed, "errors": [problem_json(p) for p in errors]}
    if source is not None:
        counts = source.allowlist.prefix_count
        summary["registrations"] = len(source.registry) if source.registry is not None else len(source.allowlist)
        summary["kind"] = "registry" if source.registry is not None else "list"
        if source.registry is not None:
            summary["counting"] = len(source.allowlist)
        summary["prefixes"] = {"ipv4": counts[4], "ipv6": counts[6]}
    if args.json:
        summary["warnings"] = warnings.records(name)
        if empty is not None:
            summary["warnings"].insert(0, {"path": name, "line": None, "column": None, "kind": "empty",
                                           "message": empty})
        print_json(summary)
        return EXIT_NEGATIVE if failed else EXIT_OK
    if errors:      # warnings only exist once the file loads: never both
        sys.stdout.write("".join(f"{p.path}:{p.line}:{p.column}: error: {p.message}\n" for p in errors))
    elif empty is not None:
        sys.stdout.write(f"{name}: warning: {empty}\n")
    if not errors and len(warnings):
        sys.stdout.write("".join((f"{name}:{ln}:{col}: warning: {m}\n" if ln else f"{name}: warning: {m}\n")
                                 for ln, col, m in zip(warnings.line, warnings.column, warnings.message)))
    if errors:
        verdict = f"{plural(len(errors), 'error')}; the file does not load"
        if not args.no_warnings:
            verdict += " (overlap checks run once it loads)"
    else:
        n_dup = warnings.kind.count("duplicate")
        n_warnings = len(warnings) + (empty is not None)
        what = (f"{plural(summary['registrations'], 'registration')}"
                + (f" ({summary['counting']:,} counting now)" if "counting" in summary else "")
                + f", {summary['prefixes']['ipv4']:,} IPv4 and {summary['prefixes']['ipv6']:,} IPv6 prefixes")
        verdict = (("invalid (--strict): " if failed else "OK: ") + what + ", "
                   + (f"{plural(n_warnings, 'warning')} ({'empty, ' if empty else ''}{n_dup:,} duplicate, "
                      f"{len(warnings) - n_dup:,} overlap)" if n_warnings else "no warnings"))
    print(f"ipallow validate: {name}: {verdict}", file=sys.stderr)
    return EXIT_NEGATIVE if failed else EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_parser(
        commands, "validate",
        help="check a list or registry: every error as path:line:col, overlaps as warnings",
        description="Parse a registered list or registry export and report every problem as "
                    "path:line:col: message, plus duplicate and overlapping prefixes as warnings. "
                    "Nothing else is written.",
        examples=EXAMPLES)
    parser.add_argument("file", metavar="FILE", nargs="?", help=POSITIONAL_LIST_HELP)
    add_list_format_argument(parser)
    parser.add_argument("--strict", action="store_true", help="warnings make the file invalid (exit 1)")
    parser.add_argument("--no-warnings", action="store_true", help="skip the overlap and duplicate checks")
    parser.add_argument("--at", metavar="TIME", type=parse_at_argument, help=AT_HELP)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=cmd_validate)
