"""`ipallow compile`: a list or registry file -> a snapshot file that opens in milliseconds."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from ipallow import _output
from ipallow.commands import EXIT_ERROR, EXIT_OK, LIST_ENV

EXAMPLES = """\
examples:
  ipallow compile registered.csv -o registered.ipallow
  ipallow compile registry.jsonl -o registry.ipallow --at 2026-01-01   # what counts then
  ipallow compile registry.jsonl -o /srv/ipallow/current.ipallow   # a symlink: its target is replaced
  curl -s https://registry.example/export | ipallow compile - -o registered.ipallow
  ipallow compile registered.csv -o - | ssh gw 'cat > /srv/registered.ipallow'   # report on stderr
  ipallow check --list registered.ipallow 203.0.113.9     # every command takes snapshots
  python -c 'import ipallow; al = ipallow.load("registered.ipallow")'
  ipallow compile --from-mmdb GeoLite2-ASN.mmdb --where 'autonomous_system_number in {17557, 38193}' -o asn.ipallow
  ipallow compile --from-mmdb GeoLite2-City.mmdb --where 'country.iso_code == "PK"' -o pk.ipallow

--from-mmdb FILE --where EXPR: every network of a MaxMind DB whose record matches EXPR,
one registration per network with the record as its data (IPv4 networks of an IPv6
database are IPv4). EXPR is a small safe language (no Python is run): fields with
. and [..] (country.iso_code, subdivisions[0].iso_code, names["zh-CN"]); string,
number, True/False/None literals and {sets}; == != < <= > >= in, not in; and, or, not;
a field the record lacks is None. Without --where every network is kept. See docs/mmdb.md.

a registry compiles to the registrations that count at --at (default: now); a snapshot
has no lifecycle, so compile it again when registrations start or end.

-o FILE: a regular file (or a new one, mode 0644) is replaced atomically keeping its
mode (temporary file beside it, fsync, rename, fsync of the directory); a symlink's
target is replaced the same way; a FIFO or character device is written through; a
directory is an error; - is stdout.

exit status: 0 written, 2 bad list (every bad line is listed), usage or I/O error"""


def _save(allowlist, output: str) -> int:
    """Write the snapshot to ``output`` (``-``: stdout) as Allowlist.save does; return its size.

    A file (or a symlink to one) is written by Allowlist.save itself; stdout, a
    FIFO or a device gets the bytes of a snapshot Allowlist.save first wrote to
    a temporary directory, so there is one way a snapshot is made.
    """
    from ipallow.commands._common import output_file
    if output != "-" and not _output.resolve(output)[2]:
        allowlist.save(output)
        return os.path.getsize(output)
    with tempfile.TemporaryDirectory(prefix="ipallow-") as directory:
        staged = os.path.join(directory, "snapshot.ipallow")
        allowlist.save(staged)
        with open(staged, "rb") as handle:
            data = handle.read()
    with output_file(output, binary=True) as out:
        out.write(data)
    return len(data)


def cmd_compile(args: argparse.Namespace) -> int:
    from ipallow.commands._common import check_output, load_source, positional_list
    from ipallow.commands._progress import Progress
    if args.list is not None and args.from_mmdb is not None:
        print("ipallow compile: give either LIST or --from-mmdb FILE", file=sys.stderr)
        return EXIT_ERROR
    if args.from_mmdb is None:
        args.list = positional_list(
            args, args.list, what="LIST (a list, registry or snapshot; - for stdin) or --from-mmdb FILE,")
    if args.where is not None and args.from_mmdb is None:
        print("ipallow compile: --where goes with --from-mmdb FILE", file=sys.stderr)
        return EXIT_ERROR
    check_output(args.output)           # before loading: a bad -o fails at once, not after the work
    if args.from_mmdb is not None:
        return _compile_mmdb(args)
    started = time.perf_counter()
    with Progress(f"compiling {args.list}") as bar:
        # A registry compiles what counts at --at (default now) and keeps its
        # lifecycle in the snapshot, so it can be judged again at other instants.
        source = load_source(args.list, list_format=args.list_format, at=args.at,
                             strict=not args.no_strict, label=f"loading {args.list}")
        allowlist = source.allowlist
        if args.at is not None and source.registry is None:
            bar.message(f"ipallow compile: note: --at does not change {args.list}: a plain list "
                        f"has no validity windows")
        compiled = time.perf_counter()
        bar.label = f"writing {args.output}"
        size = _save(allowlist, args.output)
    saved = time.perf_counter()
    _report(args, args.list, allowlist, size, started, compiled, saved)
    return EXIT_OK


def _compile_mmdb(args: argparse.Namespace) -> int:
    from ipallow import Allowlist, mmdb
    from ipallow.commands._progress import Progress
    try:
        predicate = mmdb.where(args.where) if args.where is not None else None
    except mmdb.WhereError as exc:
        print(f"ipallow compile: {exc}", file=sys.stderr)
        return EXIT_ERROR
    started = time.perf_counter()
    with Progress(f"reading {args.from_mmdb}") as bar:
        try:
            allowlist = Allowlist.from_mmdb(args.from_mmdb, where=predicate)
        except (mmdb.FormatError, OSError) as exc:
            print(f"ipallow compile: {exc}", file=sys.stderr)
            return EXIT_ERROR
        compiled = time.perf_counter()
        bar.label = f"writing {args.output}"
        size = _save(allowlist, args.output)
    _report(args, args.from_mmdb, allowlist, size, started, compiled, time.perf_counter())
    return EXIT_OK


def _report(args, source, allowlist, size, started, compiled, saved) -> None:
    from ipallow.commands._lifecycle import format_instant
    evaluated = getattr(allowlist, "_registry_at", None)
    # With -o - the snapshot is stdout: the report goes to stderr.
    report_stream = sys.stderr if args.output == "-" else sys.stdout
    report = {"list": source, "output": args.output, "registrations": len(allowlist),
              "prefixes": allowlist.prefix_count, "bytes": size,
              "evaluated_at": format_instant(evaluated) if evaluated is not None else None,
              "compile_seconds": round(compiled - started, 4),
              "save_seconds": round(saved - compiled, 4)}
    if args.json:
        print(json.dumps(report), file=report_stream)
    else:
        counts = allowlist.prefix_count
        when = f", counting at {report['evaluated_at']}" if evaluated is not None else ""
        print(f"{args.output}: {len(allowlist):,} registrations{when}, {counts[4]:,} IPv4 and "
              f"{counts[6]:,} IPv6 prefixes, {report['bytes']:,} bytes "
              f"(compiled in {report['compile_seconds']:.3f} s)", file=report_stream)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compile", help="compile a list into a snapshot file (memory-mapped by every process)",
        description="Compile a list, registry or snapshot into a snapshot that ipallow.load() and "
                    "every command open in milliseconds. Written atomically: readers never see "
                    "half a file.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    from ipallow.commands._common import AT_HELP, add_list_format_argument, parse_at_argument
    parser.add_argument("list", metavar="LIST", nargs="?",
                        help="list, registry or snapshot file; - for stdin (or --from-mmdb). "
                             f"Default: ${LIST_ENV} (not with --from-mmdb); without either the "
                             "command stops (exit 2)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="snapshot to write (- for stdout); see below for what FILE may be")
    add_list_format_argument(parser)
    parser.add_argument("--at", metavar="TIME", type=parse_at_argument,
                        help=AT_HELP + ". The snapshot of a registry keeps the whole registry: "
                                       "commands judge it again at any other instant")
    parser.add_argument("--no-strict", action="store_true",
                        help="clear host bits in CIDRs instead of rejecting them")
    parser.add_argument("--from-mmdb", metavar="FILE",
                        help="compile the networks of a MaxMind DB (.mmdb) instead of a LIST")
    parser.add_argument("--where", metavar="EXPR",
                        help="with --from-mmdb: keep the networks whose record matches EXPR "
                             "(e.g. 'country.iso_code == \"PK\"'; see below)")
    parser.add_argument("--json", action="store_true", help="report as one JSON object")
    parser.set_defaults(handler=cmd_compile)
