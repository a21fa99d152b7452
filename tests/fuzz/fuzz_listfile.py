"""List files (``Allowlist.from_file``) on arbitrary bytes, as text and as CSV.

Only the documented failure is allowed: one ``ParseError`` whose problems name this file, a line
of it and a column (a snapshot-magic prefix may also give ``SnapshotError`` / ``TableError``).
For text files the ``ipaddress`` oracle decides line by line: the load succeeds exactly when every
entry line is valid, registers each line's networks, and otherwise lists exactly the bad lines.

The core's one-pass reader of a text list straight to its CIDR cover (``text_list_cover``,
``ipallow export``'s path without numpy) must agree: where it takes a file, the loader loads it
with as many registrations and the same cover; where the loader refuses one, it leaves it.

Input layout: byte 0 even = text file, odd = CSV; the rest is the file.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from fuzz_support import Zone, ipallow, line_count, main, outcome, reference_entry

with __import__("fuzz_support").instrumented():
    from ipallow import _trie, export

_DIRECTORY = tempfile.mkdtemp(prefix="ipallow-fuzz-")
atexit.register(shutil.rmtree, _DIRECTORY, True)
PATHS = {False: os.path.join(_DIRECTORY, "list.txt"), True: os.path.join(_DIRECTORY, "list.csv")}


def text_lines(raw: bytes):
    """(line number, entry or None where ipaddress refuses it) per entry line, or None if not UTF-8."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    lines = []
    for number, line in enumerate(text.split("\n"), 1):       # the README: '#' comments, blank lines
        entry = line.rstrip("\r").split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            lines.append((number, reference_entry(entry, strict=True)))
        except (ValueError, Zone):
            lines.append((number, None))
    return lines


def test_one_input(data: bytes) -> None:
    if not data:
        return
    csv = bool(data[0] & 1)
    raw = data[1:]
    path = PATHS[csv]
    with open(path, "wb") as handle:
        handle.write(raw)
    # The format is named: this harness checks line parsing against ipaddress; which format a
    # file is recognised as (by content, then name) is the loader's own tested rule.
    kind, result = outcome(lambda name: ipallow.Allowlist.from_file(name, format="csv" if csv else "txt"), path)
    if kind == "raised":
        if raw.startswith(b"IPALLOW\0") and isinstance(result, (ipallow.SnapshotError, ipallow.TableError)):
            return
        assert type(result) is ipallow.ParseError, repr(result)
        limit = line_count(raw)
        for problem in result.problems:
            assert problem.path == path, problem
            assert 1 <= problem.line <= limit and problem.column >= 1, (problem, limit)
    if csv or raw.startswith(b"IPALLOW\0"):
        return
    covered, cover = outcome(_trie.text_list_cover, raw)
    assert covered == "ok", repr(cover)
    if cover is not None:
        assert kind == "ok", f"the core's reader took a file the loader refuses: {result!r}"
        assert cover[0] == len(result)
        want = export.aggregate_allowlist(result)
        got = export.as_prefixes(tuple(cover[1:]))
        for v in (4, 6):
            assert export.cidr_texts(got[v]) == export.cidr_texts(want[v]), v
    lines = text_lines(raw)
    if lines is None:
        assert kind == "raised" and len(result.problems) == 1, "invalid UTF-8 was loaded"
        return
    bad = [number for number, networks in lines if networks is None]
    if bad:
        assert kind == "raised", f"loaded a file whose lines {bad} ipaddress refuses"
        assert sorted({p.line for p in result.problems}) == bad, (result.problems, bad)
        return
    assert kind == "ok", f"refused a file every line of which ipaddress accepts: {result!r}"
    assert [list(entry.networks) for entry in result] == [n for _, n in lines]


if __name__ == "__main__":
    main(test_one_input)
