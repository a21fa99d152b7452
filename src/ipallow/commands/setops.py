"""`ipallow merge | common | except`: set algebra on lists, as FireHOL's iprange --merge / --common / --except."""

from __future__ import annotations

import argparse
import sys

from ipallow.commands import EXIT_OK
from ipallow.commands._common import (AT_HELP, UsageError, check_output, add_list_format_argument, add_parser,
                                      display_name, load_source, output_file, parse_at_argument, plural,
                                      print_json, stops_quietly_on_closed_output)

#: command -> (the set operation, what it writes, an example)
COMMANDS = {
    "merge": ("union", "every address in at least one of the lists",
              "ipallow merge registry.jsonl extra.txt -o allowed.txt"),
    "common": ("intersection", "the addresses in every one of the lists",
               "ipallow common pta.csv isp-customers.txt -o both.txt"),
    "except": ("difference", "the addresses of the first list in none of the others",
               "ipallow except registry.jsonl revoked.txt blocked.csv -o allowed.txt"),
}

EXAMPLES = """\
examples:
  {example}
  ipallow {name} a.txt b.ipallow - < c.csv          # a snapshot, and a list on stdin
  ipallow {name} registry.jsonl other.txt --at 2026-01-01 -o out.txt   # a registry as of then

inputs: lists (one entry a line, or CSV with a cidr column), registries (CSV with an
id column, or JSON Lines: the registrations that count at --at, default now) and
snapshots, told apart by content as every command does; - is stdin (once).

what is written: the result as the minimal CIDR list covering exactly its addresses
(overlapping, nested and adjacent ranges merged), sorted, IPv4 first, one a line; IPv4
and IPv6 are never mixed. A summary goes to stderr (-q: none).

-o FILE: a regular file (or a new one, mode 0644) is replaced atomically keeping its
mode (temporary file beside it, fsync, rename); a symlink's target is replaced the same
way; a FIFO, a character device and /dev/stdout are written through; a directory, a
block device or a socket is refused. Nothing is written when an input is bad.

In Python: Allowlist a | b, a & b, a - b (and a.union(b, c) ...), which also keep the
registrations: see docs/set-algebra.md.

exit status: 0 written, 2 usage error, unreadable or invalid input (every bad line is
listed), or write error"""


@stops_quietly_on_closed_output
def cmd_setops(args: argparse.Namespace) -> int:
    from ipallow import export, setops
    if args.lists.count("-") > 1:
        raise UsageError("stdin (-) can be read only once")
    operation = COMMANDS[args.command][0]
    check_output(args.output)           # before loading: a bad -o fails at once, not after the work
    # Every input loads (and fails) before anything is written.
    sources = [load_source(path, list_format=args.list_format, at=args.at, label=f"loading {path}")
               for path in args.lists]
    result = setops.address_set(operation, [s.allowlist.compiled for s in sources])
    with output_file(args.output) as out:
        export.write_cidr(out, result)
        out.flush()
    summary = {"command": args.command, "lists": [display_name(p) for p in args.lists],
               "cidrs": {f"ipv{v}": len(result[v]) for v in (4, 6)},
               "addresses": {f"ipv{v}": str(export.address_count(result[v])) for v in (4, 6)},
               "output": args.output or "-"}
    if args.json:
        print_json(summary, sys.stderr)
    elif not args.quiet:
        where = f" to {args.output}" if args.output and args.output != "-" else ""
        print(f"ipallow {args.command}: {plural(len(sources), 'list')} -> "
              + " + ".join(plural(len(result[v]), f"IPv{v} CIDR") for v in (4, 6)) + where,
              file=sys.stderr)
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    for name, (operation, what, example) in COMMANDS.items():
        parser = add_parser(
            commands, name, help=f"write {what} as a CIDR list",
            description=f"Write {what} ({operation}) as the minimal CIDR list, like iprange "
                        f"--{name}.",
            examples=EXAMPLES.format(name=name, example=example))
        parser.add_argument("lists", metavar="LIST", nargs="+" if name == "merge" else None,
                            help="list, registry or snapshot; - for stdin")
        if name != "merge":
            parser.add_argument("more", metavar="LIST", nargs="+",
                                help="the other lists" + (" to subtract" if name == "except" else ""))
        parser.add_argument("-o", "--output", metavar="FILE",
                            help="write to FILE instead of stdout: a regular file is replaced "
                                 "atomically (see below)")
        add_list_format_argument(parser)
        parser.add_argument("--at", metavar="TIME", type=parse_at_argument, help=AT_HELP)
        parser.add_argument("--json", action="store_true", help="summary as one JSON object on stderr")
        parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
        parser.set_defaults(handler=_with_all_lists)


def _with_all_lists(args: argparse.Namespace) -> int:
    # merge takes one or more lists; common and except at least two (LIST LIST...).
    if isinstance(args.lists, str):
        args.lists = [args.lists, *args.more]
    return cmd_setops(args)
