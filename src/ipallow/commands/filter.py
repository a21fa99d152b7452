"""`ipallow filter`: stream addresses (plain lines or a column of CSV/TSV flow logs) through the list.

The input is read in large binary blocks of whole lines (:mod:`ipallow._lineblocks`,
decompressed by magic bytes) and each block is classified at once by
:class:`ipallow.commands._filterblock.Filter`; this module takes the arguments and
prints the summary.  numpy is imported when the command runs, not for its --help.
"""

from __future__ import annotations

import argparse
import itertools
import os
import stat
import sys
import time
from typing import TYPE_CHECKING

from ipallow._lineblocks import BadInput, input_chunks, line_blocks
from ipallow.commands import EXIT_ERROR, EXIT_NEGATIVE, EXIT_OK
from ipallow.commands._common import (AT_HELP, STDIN_NAME, add_list_arguments, add_parser, chosen_list,
                                      load_allowlist, parse_at_argument, print_json,
                                      stops_quietly_on_closed_output)
from ipallow.commands._format import printable
from ipallow.commands._progress import Progress

if TYPE_CHECKING:
    from ipallow.commands._filterblock import Counts, Filter

EXAMPLES = """\
examples:
  ipallow filter --list registered.csv addresses.txt > allowed.txt
  ipallow filter --list registered.csv --denied addresses.txt     # the lines NOT allowed
  tail -F flows.csv | ipallow filter --list registered.csv --column srcaddr --denied -
  ipallow filter --list registered.csv --column 4 --field-sep ' ' --annotate vpc-flows.log
  ipallow filter --list registered.csv --strict --json addresses.txt 2> summary.json
  ipallow filter --list registry.csv --column src --count-by registration --bytes bytes flows.csv.gz
  export IPALLOW_LIST=/etc/ipallow/registry.jsonl; ipallow filter addresses.txt
  echo 203.0.113.9 | ipallow filter --sample      # the bundled demo registry, to try it out

input:
  Plain: one address per line (surrounding blanks and CR ignored; blank lines skipped).
  --column NAME: the first line is a header naming the columns; it is passed through
  (with 'verdict' and 'registration' appended by --annotate).  --column N (1-based)
  reads field N; add --header when the first line is a header.  Fields are split at
  --field-sep (default: tab if the first line has one, else comma, else space);
  double-quoted CSV fields are understood (not ones spanning lines).  gzip, bzip2 and xz
  input (zstd with the zstandard module) is decompressed, told by its magic bytes.

output (stdout):
  --allowed (default) the lines whose address is covered by a registration
  --denied            the lines whose address is valid but not covered
  --annotate          every line + SEP verdict (allowed|denied|invalid) + SEP registration
                      id (the 'id' column of the list, else #index); SEP is the field
                      separator with --column, else a tab
  --count-by registration  no lines: a table (--json: an object) of lines, and with --bytes
                      COL bytes, per registration (natural id order), then denied and invalid
  Unparseable addresses are never output by --allowed/--denied, never dropped silently:
  they are counted, and the first few reported as INPUT:LINE:COL: message on stderr
  (a long line is cut to 200 characters, its length given).
  A summary of counts goes to stderr at the end (--json: one JSON object instead).

exit status: 0 some line was output (--count-by: some line was counted), 1 no line was
selected (like grep), 2 error: usage, no list given (--list, $IPALLOW_LIST or --sample),
unreadable, corrupt or truncated input, a --column that no line has, an unreadable list,
or (--strict) an unparseable address -- processing stops at that line; the lines before
it have been written."""


def _separator(value: str | None, first_line: bytes) -> int:
    if value is None:
        for candidate in (b"\t", b",", b" "):
            if candidate in first_line:
                return candidate[0]
        return ord(",")
    named = {"\\t": "\t", "tab": "\t", "TAB": "\t", "space": " ", "comma": ",", "\\s": " "}
    value = named.get(value, value)
    raw = value.encode("utf-8")
    if len(raw) != 1 or raw in (b"\n", b"\r", b'"'):
        raise ValueError(f"--field-sep must be one ASCII character (or \\t), not {value!r}")
    return raw[0]


def _resolve_column(spec: str, header: bytes | None, sep: int) -> tuple[int, str]:
    """0-based field index of --column, and how to name it in messages."""
    if spec.isdigit():
        index = int(spec)
        if index < 1:
            raise ValueError("--column numbers start at 1")
        return index - 1, f"field {index}"
    assert header is not None
    from ipallow._delimited import split_fields      # here: numpy, which --help does without
    names = [f.strip().decode("utf-8", "replace") for f in split_fields(header.rstrip(b"\r\n"), sep)]
    for candidates in (names, [n.lower() for n in names]):
        want = spec if candidates is names else spec.lower()
        if want in candidates:
            return candidates.index(want), f"column {spec!r}"
    shown = ", ".join(printable(n, 40) for n in names[:20]) + (", ..." if len(names) > 20 else "")
    raise ValueError(f"no column {spec!r} in the header line (separator {chr(sep)!r}): {shown}")


def _print_tally(flt: "Filter", name: str) -> None:
    """The --count-by table (or JSON) on stdout: registrations in natural id order, then the rest."""
    from ipallow.allowlist import registration_label
    from ipallow.registry import id_key
    tally = flt.tally
    rows = []
    for reg in tally.lines.nonzero()[0].tolist():
        data = flt.data[reg] if flt.data is not None else None
        rows.append((registration_label(data, reg), reg, int(tally.lines[reg]),
                     int(tally.bytes[reg]) if tally.bytes is not None else None))
    rows.sort(key=lambda row: id_key(row[0]))
    with_bytes = tally.bytes is not None
    if flt.args.json:
        def entry(lines, size):
            return {"lines": lines, **({"bytes": size} if with_bytes else {})}
        print_json({"input": name, "count_by": "registration",
                    "registrations": [{"id": label, "registration": reg, **entry(lines, size)}
                                      for label, reg, lines, size in rows],
                    "denied": entry(*tally.other["denied"]), "invalid": entry(*tally.other["invalid"])})
        return
    table = [(label, lines, size) for label, _, lines, size in rows]
    table += [(f"({key})", *tally.other[key]) for key in ("denied", "invalid")]
    heads = ("registration", "lines") + (("bytes",) if with_bytes else ())
    cells = [heads] + [(label, f"{lines:,}") + ((f"{size:,}",) if with_bytes else ())
                       for label, lines, size in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(heads))]
    for row in cells:
        print("  ".join([row[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(row[1:], widths[1:])]))


def _summary_line(name: str, c: Counts, seconds: float) -> str:
    rate = c.lines / seconds if seconds > 0 else 0.0
    shown = ""
    if c.unparseable > len(c.reported):
        shown = f" (first {len(c.reported)} shown)"
    return (f"ipallow filter: {name}: {c.lines:,} lines: {c.allowed:,} allowed, {c.denied:,} denied, "
            f"{c.unparseable:,} unparseable{shown}, {c.blank:,} blank; {c.output:,} written; "
            f"{seconds:.2f} s, {rate / 1e6:.2f} M lines/s")


@stops_quietly_on_closed_output
def cmd_filter(args: argparse.Namespace) -> int:
    name = STDIN_NAME if args.input == "-" else args.input
    list_name = chosen_list(args)
    if list_name == "-" and args.input == "-":
        print("ipallow filter: the list and the input cannot both be stdin", file=sys.stderr)
        return EXIT_ERROR
    if args.report_limit < 0:
        print("ipallow filter: --report-limit must be >= 0", file=sys.stderr)
        return EXIT_ERROR
    if args.count_by and (args.denied or args.annotate):
        print("ipallow filter: --count-by counts every line; it takes no --denied or --annotate",
              file=sys.stderr)
        return EXIT_ERROR
    if args.bytes is not None and (not args.count_by or args.column is None):
        print("ipallow filter: --bytes needs --count-by and --column", file=sys.stderr)
        return EXIT_ERROR
    allowlist = load_allowlist(list_name, list_format=args.list_format, at=args.at)
    if args.input == "-":
        fd, total = sys.stdin.buffer.fileno(), None
        handle = None
    else:
        handle = open(args.input, "rb", buffering=0)
        fd = handle.fileno()
        info = os.fstat(fd)
        total = info.st_size if stat.S_ISREG(info.st_mode) else None
    out = sys.stdout.buffer
    from ipallow.commands._filterblock import Filter, Stop
    flt = Filter(args, allowlist, out, sys.stderr, name)
    started = time.perf_counter()
    status = None
    bar = Progress(f"filtering {name}", total, unit="B",
                   enabled=False if args.json else None)
    flt.bar = bar if bar.enabled else None
    try:
        with bar:
            blocks = line_blocks(input_chunks(fd, bar.update))
            line_no = 1
            if args.column is not None:
                first = next(blocks, b"")
                head, _, rest = first.partition(b"\n")
                try:
                    flt.sep = _separator(args.field_sep, head)
                    has_header = not args.column.isdigit() or args.header
                    flt.column, flt.column_label = _resolve_column(args.column, head if has_header else None,
                                                                   flt.sep)
                    if args.bytes is not None:
                        if not args.bytes.isdigit() and not has_header:
                            raise ValueError("--bytes NAME needs a header line (--column NAME or --header)")
                        flt.bytes_column = _resolve_column(args.bytes, head if has_header else None,
                                                           flt.sep)[0]
                except ValueError as exc:
                    print(f"ipallow filter: {exc}", file=sys.stderr)
                    return EXIT_ERROR
                if first and has_header:
                    if flt.mode != "count":         # counts replace the lines, header included
                        flt.header(head + b"\n")
                    line_no = 2
                    first = rest
                if first:
                    blocks = itertools.chain([first], blocks)
            elif args.field_sep is not None or args.header:
                print("ipallow filter: --field-sep and --header need --column", file=sys.stderr)
                return EXIT_ERROR
            try:
                for data in blocks:
                    line_no += flt.block(data, line_no)
                    out.flush()
            except Stop:
                out.flush()
                status = EXIT_ERROR
    except BadInput as exc:
        out.flush()
        print(f"ipallow filter: {name}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if handle is not None:
            handle.close()
    seconds = time.perf_counter() - started
    c = flt.counts
    if flt.column is not None and c.missing and c.missing == c.lines - c.blank:
        # Not one line has the column: the wrong --column or --field-sep, not bad data.
        sep = {9: "tab", 32: "space"}.get(flt.sep, repr(chr(flt.sep)))
        print(f"ipallow filter: {name}: no line has {flt.column_label} (separator {sep}); "
              f"check --column and --field-sep", file=sys.stderr)
        return EXIT_ERROR
    if flt.tally is not None and status is None:
        _print_tally(flt, name)
    if args.json:
        print_json({"input": name, "lines": c.lines, "allowed": c.allowed, "denied": c.denied,
                    "unparseable": c.unparseable, "blank": c.blank, "written": c.output,
                    "mode": flt.mode, "strict": args.strict, "stopped": status is not None,
                    "unparseable_lines": c.reported, "seconds": round(seconds, 3),
                    "lines_per_second": round(c.lines / seconds) if seconds > 0 else None},
                   sys.stderr)
    elif not args.quiet or c.unparseable:
        if status is not None:
            print(f"ipallow filter: stopped at line {c.reported[-1]['line']}: unparseable address "
                  f"(--strict)", file=sys.stderr)
        print(_summary_line(name, c, seconds), file=sys.stderr)
    if status is not None:
        return status
    if flt.tally is not None:
        return EXIT_OK if c.lines > c.blank else EXIT_NEGATIVE
    return EXIT_OK if c.output else EXIT_NEGATIVE


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_parser(
        commands, "filter",
        help="stream addresses or flow-log lines; keep the allowed, the denied, or annotate each",
        description="Read addresses (one per line, or a column of CSV/TSV flow logs) and print "
                    "the allowed lines, the denied lines, or every line with its verdict.",
        examples=EXAMPLES)
    parser.add_argument("input", nargs="?", default="-", metavar="INPUT",
                        help="file to read; - or nothing for stdin")
    add_list_arguments(parser, stdin="- for stdin when INPUT is a file")
    parser.add_argument("--column", metavar="NAME|N",
                        help="the address is in this column: a header name, or a 1-based number")
    parser.add_argument("--field-sep", metavar="SEP",
                        help="field separator for --column: one character, \\t or tab, space, comma "
                             "(default: guessed from the first line)")
    parser.add_argument("--header", action="store_true",
                        help="with --column N: the first line is a header (passed through)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--allowed", action="store_true", help="print the allowed lines (the default)")
    mode.add_argument("--denied", action="store_true", help="print the denied lines")
    mode.add_argument("--annotate", action="store_true",
                      help="print every line with its verdict and registration id appended")
    parser.add_argument("--count-by", choices=("registration",),
                        help="write no lines: print how many lines (and, with --bytes, bytes) each "
                             "registration allowed, plus the denied and invalid ones, as a table "
                             "(--json: one JSON object) on stdout")
    parser.add_argument("--bytes", metavar="NAME|N",
                        help="with --count-by: the column holding each line's byte count (a header "
                             "name or a 1-based number)")
    parser.add_argument("--strict", action="store_true",
                        help="an unparseable address is fatal: stop there, exit 2")
    parser.add_argument("--report-limit", type=int, default=10, metavar="N",
                        help="report the first N unparseable lines in full (default 10); all are counted")
    parser.add_argument("--at", metavar="TIME", type=parse_at_argument, help=AT_HELP)
    parser.add_argument("--json", action="store_true",
                        help="the summary (with the reported lines) as one JSON object on stderr")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no summary on stderr unless some address was unparseable")
    parser.set_defaults(handler=cmd_filter)
