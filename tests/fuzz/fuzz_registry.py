"""Registry exports (``parse_registry``, CSV and JSON Lines) on arbitrary bytes.

Only the documented failure is allowed: one ``ParseError`` whose problems name the source, a line
of it and a column. What loads must hold together: every registration survives its own
``to_dict`` / ``from_dict`` round trip; the registry compiles; each counting registration answers
for its first address (as itself or a longer registration); and the compiled list survives a
snapshot round trip with the same registration data. The loader reads a plain export column by
column (``registry._bulk``) and anything else row by row: both ways give the same registry, or the
same error.  A CSV file's text is also split by the core's ``csv_columns`` (the bulk reader's
splitter), with the columns byte 0 picks coded, against a split in Python.

Input layout: byte 0 even = CSV, odd = JSON Lines; the rest is the file.
"""

from __future__ import annotations

from fuzz_support import ipallow, line_count, main, outcome

with __import__("fuzz_support").instrumented():
    from ipallow import registry as registry_module
    from ipallow.registry import _io
    from ipallow import snapshot
    from ipallow.allowlist import loads
    from ipallow._trie import csv_columns

NAME = "registry-under-test"
AT = 1_750_000_000        # a fixed instant (2025-06-15), so validity windows are judged repeatably


def test_one_input(data: bytes) -> None:
    if not data:
        return
    form = "jsonl" if data[0] & 1 else "csv"
    raw = data[1:]
    if form == "csv":
        check_columns(raw, data[0])
    kind, result = outcome(registry_module.parse_registry, raw, NAME, format=form)
    row_kind, row_result = outcome(row_by_row, raw, form)
    assert (kind, type(result), str(result)) == (row_kind, type(row_result), str(row_result)), (result, row_result)
    if kind == "ok":
        assert repr(list(result)) == repr(list(row_result)) and result._index == row_result._index
        for name in ("_status_active", "_valid_from", "_expires_at", "_reg_first", "_version", "_hi", "_lo",
                     "_plen", "_ids", "_bounds"):
            assert getattr(result, name).tolist() == getattr(row_result, name).tolist(), name
    if kind == "raised":
        assert type(result) is ipallow.ParseError, repr(result)
        lines = line_count(raw)
        for problem in result.problems:
            assert problem.path == NAME, problem
            assert 1 <= problem.line <= lines and problem.column >= 1, (problem, lines)
        return
    registry = result
    for record in registry:
        assert ipallow.Registration.from_dict(record.to_dict()) == record, record
    allowlist = ipallow.Allowlist.from_registry(registry, at=AT)
    for record in registry:
        first = record.networks[0].network_address
        match = allowlist.lookup(first)
        if record.counts_at(AT).counts:
            assert match is not None and match.network.prefixlen >= record.networks[0].prefixlen, record
    copy = loads(bytes(snapshot.to_bytes(allowlist._compiled, created=0)))
    assert [entry.data for entry in copy] == [entry.data for entry in allowlist]


def check_columns(raw: bytes, mask: int) -> None:
    """``csv_columns`` of the text against its lines split at commas (columns with a set bit
    of ``mask`` coded, decoded back here)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    width = text.split("\n", 1)[0].count(",") + 1
    coded = [bool(mask >> (position % 8) & 1) for position in range(width)]
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        del lines[-1]
    rows = [line.split(",") for line in lines[1:]]
    expected = None
    if 2 <= width <= 4096 and rows and all(len(row) == width for row in rows):
        expected = [[row[position] for row in rows] for position in range(width)]
    got = csv_columns(text, width, coded)
    if got is not None:
        got = [[column[1][code] for code in column[0].tolist()] if is_coded else column
               for column, is_coded in zip(got, coded)]
    assert got == expected, (got, expected)


def row_by_row(raw: bytes, form: str):
    """The registry as the row-by-row loader alone reads it (the column-by-column readers off)."""
    readers = _io.read_csv_registry, _io.read_jsonl_registry
    _io.read_csv_registry = _io.read_jsonl_registry = lambda text, name: None
    try:
        return registry_module.parse_registry(raw, NAME, format=form)
    finally:
        _io.read_csv_registry, _io.read_jsonl_registry = readers


if __name__ == "__main__":
    main(test_one_input)
