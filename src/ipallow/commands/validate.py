"""`ipallow validate`: every problem of a list or registry as path:line:col, plus overlap warnings."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NamedTuple

import numpy as np

from ipallow import ParseError, Problem, _parse
from ipallow._prefixes import KINDS, find_overlaps, ipv4_strings, ipv6_strings
from ipallow.commands import EXIT_NEGATIVE, EXIT_OK
from ipallow.allowlist import registration_label
from ipallow.commands._common import (AT_HELP, STDIN_NAME, add_list_format_argument, add_parser, empty_warning,
                                      load_source, parse_at_argument, plural, print_json, problem_json,
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


# -- where each registration is in the file ------------------------------------------------

def _plain_places(name: str, text: str, count: int, format: str) -> np.ndarray:
    """(line, column) of each of the ``count`` registrations of a plain list, in load order."""
    if format == "snapshot":        # no lines: 0 means "not in a text file"
        return np.zeros((count, 2), dtype=np.int64)
    if format == "csv":
        from ipallow.loaders import _csv_items       # the loader's own row positions
        places = _csv_items(text, name)[1]
    else:
        # Generated lists have an entry on every line, flush left: then line = index + 1.
        if len(text.splitlines()) == count and not re.search(r"(?m)^[ \t]", text):
            return np.stack([np.arange(1, count + 1), np.ones(count, dtype=np.int64)], axis=1)
        places = [(line, column) for line, column, _ in _parse.iter_text_lines(text)]
    return np.array(places, dtype=np.int64).reshape(-1, 2)


def _registry_places(name: str, text: str, format: str) -> dict[str, tuple[int, int]]:
    """id -> (line, column) of its first record's networks value, for a registry file."""
    from ipallow import registry as reg
    rows = (reg._csv_rows if format == "registry-csv" else reg._jsonl_rows)(text, name, [])
    places: dict[str, tuple[int, int]] = {}
    for row in rows:
        rid = row["id"].value
        if isinstance(rid, (str, int)) and not isinstance(rid, bool):
            places.setdefault(str(rid).strip(), (row["networks"].line, row["networks"].column))
    return places


def _prefix_texts(c, rows: np.ndarray) -> list[str]:
    """CIDR text of some prefix rows, formatted in bulk (no ipaddress objects)."""
    unique, inverse = np.unique(rows, return_inverse=True)
    texts = np.empty(len(unique), dtype=object)
    for v in (4, 6):
        where = np.flatnonzero(c.version[unique] == v)
        if len(where):
            r = unique[where]
            texts[where] = (ipv4_strings(c.lo[r], c.prefixlen[r]) if v == 4
                            else ipv6_strings(c.hi[r], c.lo[r], c.prefixlen[r]))
    return texts[inverse].tolist()


class Found(NamedTuple):
    """The warnings of a file, in file order (one per pair of registrations and kind)."""

    line: list
    column: list
    kind: list           # "duplicate" / "overlap"
    message: list
    network: list
    other_network: list
    other_line: list
    id: list | None      # registry ids (None for plain lists)
    other_id: list | None

    def __len__(self) -> int:
        return len(self.line)

    def records(self, path: str) -> list[dict[str, Any]]:
        out = []
        for k in range(len(self)):
            record = {"path": path, "line": self.line[k], "column": self.column[k], "kind": self.kind[k],
                      "message": self.message[k], "network": self.network[k],
                      "other_network": self.other_network[k], "other_line": self.other_line[k]}
            if self.id is not None:
                record["id"], record["other_id"] = self.id[k], self.other_id[k]
            out.append(record)
        return out


def _warnings(source, file_name: str, text: str) -> Found:
    """Duplicate / overlap warnings: one per pair of registrations and kind, in file order."""
    allowlist = source.allowlist
    c = allowlist.compiled
    found = find_overlaps(c.version, c.hi, c.lo, c.prefixlen)
    count = len(allowlist)
    inner_reg = c.prefix_reg[found.inner].astype(np.int64)
    outer_reg = c.prefix_reg[found.outer].astype(np.int64)
    # One warning per (registration, registration, kind): a range gives several prefixes.
    key = (inner_reg * max(count, 1) + outer_reg) * 2 + found.kind
    _, first = np.unique(key, return_index=True)
    first.sort()
    kind, inner, outer = found.kind[first], found.inner[first], found.outer[first]
    inner_reg, outer_reg = inner_reg[first], outer_reg[first]
    if source.registry is not None:
        by_id = _registry_places(file_name, text, source.format)
        all_ids = [registration_label(d, i) for i, d in enumerate(c.data or [None] * count)]
        places = np.array([by_id.get(rid, (0, 0)) for rid in all_ids], dtype=np.int64).reshape(-1, 2)
    else:
        all_ids = None
        places = _plain_places(file_name, text, count, source.format)
    line, column = places[inner_reg, 0], places[inner_reg, 1]
    other_line = places[outer_reg, 0]
    order = np.lexsort((column, line))
    kind, inner_reg, outer_reg = kind[order], inner_reg[order], outer_reg[order]
    line, column, other_line = line[order].tolist(), column[order].tolist(), other_line[order].tolist()
    nets = _prefix_texts(c, inner[order])
    others = _prefix_texts(c, outer[order])
    same = (inner_reg == outer_reg).tolist()
    if all_ids is None:
        ids = other_ids = None
        where = ["the same registration" if s else f"line {ol}" if ol else f"registration #{j}"
                 for s, ol, j in zip(same, other_line, outer_reg.tolist())]
    else:
        ids = [all_ids[i] for i in inner_reg.tolist()]
        other_ids = [all_ids[j] for j in outer_reg.tolist()]
        where = [f"the same registration {i}" if s else f"{j}, line {ol}"
                 for s, i, j, ol in zip(same, ids, other_ids, other_line)]
    kinds = [KINDS[k] for k in kind.tolist()]
    # Of several registrations of one prefix, the one that answers is the
    # outer row: a registry's lowest id in natural order, a plain list's first line.
    if all_ids is None:
        winner = [f"the first (line {ol}) answers lookups" for ol in other_line]
    else:
        winner = [f"{j} answers lookups (the lowest id)" for j in other_ids]
    message = [f"{n} is registered again ({w}); {a}" if k == "duplicate"
               else f"{n} lies inside {o} ({w}); lookups return the longer prefix"
               for k, n, o, w, a in zip(kinds, nets, others, where, winner)]
    return Found(line, column, kinds, message, nets, others, other_line, ids, other_ids)


@stops_quietly_on_closed_output
def cmd_validate(args: argparse.Namespace) -> int:
    errors: list[Problem] = []
    warnings = Found([], [], [], [], [], [], [], None, None)
    source = None
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
                warnings = _warnings(source, name, text)
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
    parser.add_argument("file", metavar="FILE", help="list (one entry a line, or CSV with a cidr column), "
                                                     "registry (CSV with an id column, or JSON Lines) "
                                                     "or snapshot; - for stdin")
    add_list_format_argument(parser)
    parser.add_argument("--strict", action="store_true", help="warnings make the file invalid (exit 1)")
    parser.add_argument("--no-warnings", action="store_true", help="skip the overlap and duplicate checks")
    parser.add_argument("--at", metavar="TIME", type=parse_at_argument, help=AT_HELP)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=cmd_validate)
