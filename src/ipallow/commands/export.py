"""`ipallow export`: the registered ranges as a minimal CIDR list, an nftables set, an ipset script
or a MaxMind DB."""

from __future__ import annotations

import sys

import ipallow
from ipallow import ParseError, _cidrtext, _output
from ipallow.commands import EXIT_ERROR, EXIT_NEGATIVE, EXIT_OK
from ipallow.commands._progress import Progress
from ipallow.commands._common import (AT_HELP, POSITIONAL_LIST_HELP, Source, add_list_format_argument,
                                      add_parser, check_output, counting_text, display_name, load_source,
                                      output_file, parse_at_argument, plural, positional_list, print_json,
                                      stops_quietly_on_closed_output)

# ipallow.export (numpy) is imported by the functions that use it: `ipallow --help` imports this
# module, and an export of a text list or a snapshot runs without numpy (_cidrtext writes it).

FAMILY_CHOICES = tuple(_cidrtext.FAMILIES)
FORMAT_CHOICES = ("nft", "ipset", "cidr", "mmdb")
#: The defaults of the options that have one (argparse's and quick_arguments' alike).
DEFAULTS = {"family": "inet", "name": "allowed", "table": "ipallow", "max_loss": 0.5}

TYPE_CHECKING = False           # typing and argparse: 2 + 9 ms of a start-up; only type checkers read this
if TYPE_CHECKING:
    import argparse

EXAMPLES = """\
examples:
  ipallow export --format nft registered.csv > allow.nft && nft -f allow.nft
  ipallow export --format nft --family ip --table filter --name pta_vpn -o /etc/nft/pta.nft registered.csv
  ipallow export --format ipset --name pta registered.csv | ipset restore
  ipallow export --format cidr registered.txt          # aggregated plain list, IPv4 first
  ipallow export --format nft --previous /etc/nft/pta.nft registry.jsonl > pta.nft.new
  ipallow export --format nft --allow-empty -o /etc/nft/pta.nft retired.csv   # an empty set, on purpose
  ipallow export --format mmdb -o /etc/nginx/allow.mmdb registry.jsonl   # nginx geoip2, HAProxy, Envoy...

what is written:
  The registered ranges are merged (overlapping, nested, duplicate and adjacent
  ranges combined) into the minimal CIDR list covering exactly the same addresses.
  nft    add table / add set (type ipv4_addr|ipv6_addr, flags interval) / flush set /
         add element, in one file: 'nft -f' applies it as one transaction.
  ipset  creates NAME (if missing) and NAME.tmp (hash:net), fills NAME.tmp, swaps it
         with NAME, destroys NAME.tmp: the live set is never empty or half-filled.
         A /0 is written as two /1 (hash:net cannot hold a /0).
  cidr   one CIDR per line, IPv4 first.
  mmdb   a MaxMind DB (not aggregated: each address answers with the record of the
         registration that ipallow's lookup returns -- id, owner, category, status,
         expires_at for a registry, the columns of a CSV list); IPv4 under ::/96 and
         ::ffff:0:0/96 of an IPv6 database (--family ip: an IPv4 database). See docs/mmdb.md.
  With --family inet (the default) nft and ipset get two sets, NAME_v4 and NAME_v6;
  with ip or ip6 one set called NAME and the other family is left out (said on stderr).

guards (nothing is written when one refuses; exit 1 with the counts):
  empty     an export with no range left (an empty list, a registry whose records
            are all revoked, suspended, pending or expired at --at, --family ip6 of
            an IPv4-only list) would empty the live set: refused unless --allow-empty.
  loss      an export that drops more than --max-loss (default 50%) of the addresses
            of the previous export, in either family, is refused. The previous
            export is --previous FILE, else the -o FILE being replaced when it reads
            as an export (nft, ipset, cidr or mmdb); a truncated or half-written registry
            is the usual cause. --force skips both checks.

-o FILE:
  a regular file (or a new one, mode 0644) is replaced atomically keeping its mode:
  temporary file beside it, fsync, rename, fsync of the directory. A symlink is
  followed and its target replaced the same way (the link stays). A FIFO, a
  character device and /dev/stdout are written through. A directory is an error.

exit status: 0 written, 1 refused by a guard (empty, or lost more than --max-loss),
2 usage error, unreadable or invalid list or previous export, or write error"""

# Names checked with str methods, not re (its import is 4 ms of a start-up).
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def _nft_name_ok(name: str) -> bool:
    """[A-Za-z_][A-Za-z0-9_]*: nft's identifiers."""
    return bool(name) and not name[0].isdigit() and set(name) <= _WORD


def _ipset_name_ok(name: str) -> bool:
    """[A-Za-z0-9_][A-Za-z0-9_.-]*: ipset's set names."""
    return bool(name) and name[0] in _WORD and set(name) <= _WORD | {".", "-"}

IPSET_NAME_MAX = 31          # IPSET_MAXNAMELEN - 1


def _check_names(args: argparse.Namespace) -> str | None:
    names = _cidrtext.set_names(args.name, _cidrtext.FAMILIES[args.family])
    if args.format == "nft":
        for name in (args.table, args.name):
            if not _nft_name_ok(name):
                return f"invalid nftables name {name!r}: use letters, digits and '_', not starting with a digit"
    elif args.format == "ipset":
        if not _ipset_name_ok(args.name):
            return f"invalid ipset name {args.name!r}: use letters, digits, '_', '.', '-'"
        for name in names.values():
            if len(f"{name}.tmp") > IPSET_NAME_MAX:
                return (f"ipset name {name!r} too long: with the '.tmp' suffix of the temporary "
                        f"set it must fit in {IPSET_NAME_MAX} characters")
    return None


def max_loss_argument(text: str) -> float:
    """--max-loss: a percentage (50, 50%, 12.5%) -> a fraction."""
    import argparse
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"--max-loss must be between 0 and 100 (percent), got {text}")
    return value / 100


def _previous_export(args: argparse.Namespace) -> tuple[str | None, dict | None]:
    """The earlier export to compare with: --previous, else the -o FILE about to be replaced.

    An -o FILE that does not read as an export (another kind of file, or one
    written by hand) is not compared with; that is said on stderr.
    """
    if args.previous is not None:
        return args.previous, _read_previous(args.previous)     # unreadable: an error (exit 2)
    if args.force or args.output in (None, "-"):
        return None, None
    target, st, through = _output.resolve(args.output)
    if st is None or through or st.st_size == 0:
        return None, None
    try:
        return args.output, _read_previous(target)
    except (ParseError, ValueError, OSError) as exc:
        if not args.quiet:
            first = str(exc).splitlines()[-1] if isinstance(exc, ParseError) else str(exc)
            print(f"ipallow export: not compared with {args.output}: it does not read as an "
                  f"earlier export ({first})", file=sys.stderr)
        return None, None


def _read_previous(path: str) -> dict:
    """The aggregated prefixes of an earlier export: a MaxMind DB, or an nft, ipset or cidr file."""
    from ipallow import export, mmdb
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 128 * 1024))
        tail = handle.read()
    if mmdb.METADATA_MARKER not in tail:
        return export.read_export(path)
    c = mmdb.read(path)
    return export.aggregate(c.version, c.hi, c.lo, c.prefixlen)


def _refusal(args, loaded, agg, versions, previous_name, previous) -> str | None:
    """Why this export must not replace the live set (None: it may).

    Loading an export replaces the whole set: an empty one denies every
    registered user at once, and one much smaller than the last is more
    often a truncated or half-written registry than a real change.
    """
    if args.force:
        return None
    counts = counting_text(loaded)
    families = "/".join(f"IPv{v}" for v in versions)
    if not args.allow_empty and not any(len(agg[v]) for v in versions):
        return (f"the {families} export of {display_name(args.file)} is empty ({counts}): loading it "
                f"would empty the live set(s) and deny every address. --allow-empty (or --force) "
                f"writes it anyway")
    if previous is None:
        return None
    from ipallow import export
    for v in versions:
        before = export.address_count(previous[v])
        lost = export.lost_addresses(previous[v], agg[v])
        if before and lost / before > args.max_loss:
            return (f"IPv{v} would lose {lost:,} of the {before:,} addresses allowed by {previous_name} "
                    f"({lost / before:.1%}, more than --max-loss {args.max_loss:.0%}); "
                    f"{display_name(args.file)}: {counts}, {plural(len(agg[v]), f'IPv{v} CIDR')}. "
                    f"--max-loss PERCENT or --force writes it anyway")
    return None


def _previous_summary(name, previous, agg, versions) -> dict | None:
    if previous is None:
        return None
    from ipallow import export
    return {"file": name,
            "addresses": {f"ipv{v}": str(export.address_count(previous[v])) for v in versions},
            "lost": {f"ipv{v}": str(export.lost_addresses(previous[v], agg[v])) for v in versions}}


class _Registrations:
    """What an export read without the loader needs of its allowlist: how many registrations."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count


def _read_without_numpy(args: argparse.Namespace) -> tuple[Source, tuple] | None:
    """(Source, the core's minimal CIDR cover) of a plain text list or a plain list's snapshot,
    or None.

    Neither needs an index: a text list's prefixes go straight from the core's one-pass
    reader to the aggregation, a snapshot's verified prefix table likewise, and neither
    imports numpy.  Anything else -- a registry or its snapshot (what counts depends on
    --at), a CSV list, stdin or a FIFO (which cannot be read twice), a non-ASCII byte, an
    error to report with its line and column -- goes through the one loader, so the messages
    and the result are the loader's.
    """
    import os
    import stat
    from ipallow import _formats, _trie
    if args.file == "-" or args.format == "mmdb" or args.list_format not in (None, "txt", "snapshot"):
        return None
    try:
        with open(args.file, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            raw = handle.read(_formats.HEAD)       # a snapshot or registry is not read twice
            kind = args.list_format or _formats.detect_format(args.file, raw)
            if kind == "txt":
                handle.seek(0)                      # one buffer of the file's size: no copy
                raw = handle.read()
    except OSError:
        return None                 # the loader says what is wrong, as for every command
    if kind == "snapshot":
        from ipallow.snapshot._cover import read_cover
        with Progress("loading snapshot"):
            found = read_cover(args.file)
        if found is None:
            return None
        registrations, cover = found
    elif kind == "txt":
        with Progress("loading list"):
            scanned = _trie.text_list_cover(raw)
        if scanned is None:
            return None
        registrations, cover = scanned[0], scanned[1:]
    else:
        return None
    return Source(_Registrations(registrations), None, display_name(args.file), args.at), cover


@stops_quietly_on_closed_output
def cmd_export(args: argparse.Namespace) -> int:
    args.file = positional_list(args, args.file)
    check_output(args.output)           # before loading: a bad -o fails at once, not after the work
    problem = _check_names(args)
    if problem:
        print(f"ipallow export: {problem}", file=sys.stderr)
        return EXIT_ERROR
    fast = _read_without_numpy(args)
    if fast is not None:
        loaded, cover = fast
        agg = _cidrtext.covers(cover)
    else:
        from ipallow import export
        loaded = load_source(args.file, list_format=args.list_format, at=args.at)
        with Progress("aggregating"):
            agg = export.aggregate_allowlist(loaded.allowlist)
    allowlist = loaded.allowlist
    versions = _cidrtext.FAMILIES[args.family]
    source = display_name(args.file)
    previous_name, previous = _previous_export(args)
    if previous is not None and fast is not None:
        from ipallow import export
        agg = export.as_prefixes(cover)         # the loss check compares numpy prefix tables
    refusal = _refusal(args, loaded, agg, versions, previous_name, previous)
    if refusal is not None:
        if args.json:
            print_json({"file": source, "format": args.format, "family": args.family, "written": False,
                        "refused": refusal, "registrations": len(allowlist),
                        "cidrs": {f"ipv{v}": len(agg[v]) for v in versions},
                        "previous": _previous_summary(previous_name, previous, agg, versions)},
                       sys.stderr)
        print(f"ipallow export: refused, nothing written: {refusal}", file=sys.stderr)
        return EXIT_NEGATIVE
    comment = [f"generated by ipallow {ipallow.__version__} export --format {args.format} "
               f"--family {args.family} from {source}",
               f"{plural(len(allowlist), 'registration')} -> "
               + ", ".join(f"{plural(len(agg[v]), f'IPv{v} CIDR')}" for v in versions)
               + " (aggregated)"]
    if args.format == "mmdb":
        return _write_mmdb(args, allowlist, agg, versions, source, previous_name, previous)
    with output_file(args.output) as out:
        if args.format == "nft":
            _cidrtext.write_nft(out, agg, table=args.table, name=args.name, family=args.family,
                                comment=comment)
        elif args.format == "ipset":
            _cidrtext.write_ipset(out, agg, name=args.name, family=args.family, comment=comment)
        else:
            _cidrtext.write_cidr(out, agg, versions)
        out.flush()
    left_out = {v: len(agg[v]) for v in (4, 6) if v not in versions and len(agg[v])}
    sets = list(_cidrtext.set_names(args.name, versions).values()) if args.format != "cidr" else []
    if args.json:
        # Made only when asked for: the exact address counts are 1 ms of a 100k-CIDR export.
        summary = {
            "file": source, "format": args.format, "family": args.family,
            "registrations": len(allowlist),
            "cidrs": {f"ipv{v}": len(agg[v]) for v in versions},
            "addresses": {f"ipv{v}": str(_cidrtext.address_count(agg[v])) for v in versions},
            "left_out": {f"ipv{v}": n for v, n in left_out.items()},
            "output": args.output or "-",
            "written": True,
            "previous": _previous_summary(previous_name, previous, agg, versions),
        }
        if sets:
            summary["sets"] = sets
        if args.format == "nft":
            summary["table"] = f"{args.family} {args.table}"
        print_json(summary, sys.stderr)
    elif not args.quiet:
        for v, n in left_out.items():
            print(f"ipallow export: left out {plural(n, f'IPv{v} CIDR')} (--family {args.family})",
                  file=sys.stderr)
        where = f" to {args.output}" if args.output and args.output != "-" else ""
        named = f" (sets {', '.join(sets)})" if sets else ""
        print(f"ipallow export: {plural(len(allowlist), 'registration')} -> "
              + " + ".join(plural(len(agg[v]), f"IPv{v} CIDR") for v in versions)
              + f", {args.format}{named}{where}", file=sys.stderr)
    return EXIT_OK


def _write_mmdb(args, allowlist, agg, versions, source, previous_name, previous) -> int:
    from ipallow import export, mmdb
    if args.output in (None, "-") and sys.stdout.isatty():
        print("ipallow export: refusing to write a binary MaxMind DB to a terminal: use -o FILE "
              "(or redirect stdout)", file=sys.stderr)
        return EXIT_ERROR
    description = (f"ipallow {ipallow.__version__} export of {source}: "
                   f"{plural(len(allowlist), 'registration')}")
    try:
        with Progress("writing the MaxMind DB"):
            data, info = mmdb.to_bytes(allowlist.compiled, family=args.family, description=description)
    except (TypeError, ValueError) as exc:
        print(f"ipallow export: {display_name(args.file)}: cannot be written as a MaxMind DB: {exc}",
              file=sys.stderr)
        return EXIT_ERROR
    with output_file(args.output, binary=True) as out:
        out.write(data)
        out.flush()
    summary = {
        "file": source, "format": "mmdb", "family": args.family,
        "registrations": len(allowlist),
        "cidrs": {f"ipv{v}": len(agg[v]) for v in versions},
        "addresses": {f"ipv{v}": str(export.address_count(agg[v])) for v in versions},
        "output": args.output or "-", "written": True,
        "previous": _previous_summary(previous_name, previous, agg, versions),
        "mmdb": info,
    }
    if args.json:
        print_json(summary, sys.stderr)
    elif not args.quiet:
        where = f" to {args.output}" if args.output and args.output != "-" else ""
        left_out = (f"; left out {plural(info['left_out'], 'IPv6 prefix', 'IPv6 prefixes')} inside "
                    f"::/96 or ::ffff:0:0/96 (the IPv4 space of a MaxMind DB)" if info["left_out"] else "")
        print(f"ipallow export: {plural(len(allowlist), 'registration')} -> MaxMind DB "
              f"(IPv{info['ip_version']}, {info['node_count']:,} nodes, {info['bytes']:,} bytes){where}"
              f"{left_out}", file=sys.stderr)
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_parser(
        commands, "export",
        help="write the registered ranges as an nftables set, an ipset script, a CIDR list or a MaxMind DB",
        description="Aggregate the registered ranges into the minimal CIDR list covering exactly "
                    "the same addresses, and write it for nftables, ipset or as plain text; or write "
                    "the registrations as a MaxMind DB (nginx geoip2 and every MaxMind reader).",
        examples=EXAMPLES)
    parser.add_argument("file", metavar="FILE", nargs="?", help=POSITIONAL_LIST_HELP)
    parser.add_argument("--format", required=True, choices=FORMAT_CHOICES,
                        help="nft: 'nft -f' file; ipset: 'ipset restore' script; cidr: plain list; "
                             "mmdb: MaxMind DB")
    parser.add_argument("--family", choices=FAMILY_CHOICES, default=DEFAULTS["family"],
                        help="inet: IPv4 and IPv6 (default); ip: IPv4 only; ip6: IPv6 only. "
                             "For nft also the table family")
    parser.add_argument("--name", default=DEFAULTS["name"],
                        help="set name (default: allowed; with --family inet the sets are NAME_v4 "
                             "and NAME_v6)")
    parser.add_argument("--table", default=DEFAULTS["table"],
                        help="nft table to hold the set(s) (default: ipallow; created if missing)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write to FILE instead of stdout: a regular file is replaced atomically "
                             "(see below)")
    guard = parser.add_argument_group("guards against a rollout that empties the set")
    guard.add_argument("--previous", metavar="FILE",
                       help="an earlier export (nft, ipset or cidr) to compare with; default: the "
                            "-o FILE about to be replaced, when it reads as an export")
    guard.add_argument("--max-loss", metavar="PERCENT", type=max_loss_argument, default=DEFAULTS["max_loss"],
                       help="refuse an export that drops more than PERCENT of the previous export's "
                            "addresses, per family (default 50)")
    guard.add_argument("--allow-empty", action="store_true",
                       help="write an export even when no range is left (it empties the live set)")
    guard.add_argument("--force", action="store_true",
                       help="write whatever the result: no empty or loss check")
    add_list_format_argument(parser)
    parser.add_argument("--at", metavar="TIME", type=parse_at_argument, help=AT_HELP)
    parser.add_argument("--json", action="store_true",
                        help="summary as one JSON object on stderr (stdout carries the export)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    parser.set_defaults(handler=cmd_export)


# -- the common command lines, read without argparse (see ipallow.cli.parse_arguments) ----------

_QUICK_VALUES = {"--format": "format", "--family": "family", "--name": "name", "--table": "table",
                 "-o": "output", "--output": "output", "--list-format": "list_format"}
_QUICK_FLAGS = {"--allow-empty": "allow_empty", "--force": "force", "--json": "json",
                "-q": "quiet", "--quiet": "quiet"}


def quick_arguments(argv: list[str]):
    """The arguments of ``ipallow export`` (``argv`` after the command's name) as argparse
    would parse them, for the forms an export job uses: FILE, ``--format``, ``--family``,
    ``--name``, ``--table``, ``-o``, ``--list-format`` (``--opt VALUE`` or ``--opt=VALUE``)
    and the flags; None for anything else -- ``--previous``, ``--max-loss``, ``--at``, an
    abbreviation, a value starting with '-', a second FILE, ``--``, help, an invalid choice,
    a missing ``--format`` -- which argparse then parses or refuses as always.
    """
    from ipallow._formats import FORMATS
    SimpleNamespace = type(sys.implementation)     # types.SimpleNamespace; types' import is 0.2 ms
    choices = {"format": FORMAT_CHOICES, "family": FAMILY_CHOICES, "list_format": FORMATS}
    values = {"file": None, "format": None, "output": None, "previous": None, "list_format": None,
              "at": None, **DEFAULTS, **dict.fromkeys(_QUICK_FLAGS.values(), False)}
    positional = 0
    tokens = iter(argv)
    for token in tokens:
        option, equals, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if option in _QUICK_VALUES:
            if not equals:
                value = next(tokens, None)
                if value is None:
                    return None
            if value.startswith("-"):
                return None
            dest = _QUICK_VALUES[option]
            if dest in choices and value not in choices[dest]:
                return None
            values[dest] = value
        elif token in _QUICK_FLAGS:
            values[_QUICK_FLAGS[token]] = True
        elif not token.startswith("-") and not positional:
            values["file"] = token
            positional = 1
        else:
            return None
    if values["format"] is None:
        return None
    return SimpleNamespace(command="export", handler=cmd_export, **values)

