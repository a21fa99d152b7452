"""List files -> compiled entries, all or nothing, with path:line:col errors.

Three formats, told apart by name and content:
* a snapshot (starts with the snapshot magic): memory-mapped, see snapshot.py;
* text: one entry per line (CIDR, address or range ``a - b``), ``#`` comments,
  blank lines ignored;
* CSV (``.csv``): a header row with a ``cidr`` / ``network`` / ``ip`` column;
  the other columns become each registration's data (a dict).
"""

from __future__ import annotations

import os
from typing import Any

from ipallow import _csvrecords, snapshot
from ipallow._compile import Compiled, compile_entries
from ipallow._parse import iter_text_lines
from ipallow.errors import AddressError, ParseError, Problem

__all__ = ["load_list", "NETWORK_COLUMNS"]

NETWORK_COLUMNS = ("cidr", "network", "ip")
_SHOWN_TEXT = 80  # longer offending text is cut in file messages


def load_list(path: str | os.PathLike, *, strict: bool = True) -> Compiled:
    """Read and compile a list file; raise one ParseError naming every bad line."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    name = os.fspath(path)
    with open(name, "rb") as handle:
        if handle.read(len(snapshot.MAGIC)) == snapshot.MAGIC:
            return snapshot.map_file(name)       # a compiled snapshot: map it, parse nothing
        handle.seek(0)
        raw = handle.read()
    text = _decode(raw, name)
    if name.lower().endswith(".csv"):
        items, places, problems = _csv_items(text, name)
    else:
        items, places, problems = _text_items(text)
    return _compile_or_raise(items, places, problems, name, strict)


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ParseError([Problem(name, line, column, "not valid UTF-8")]) from None


def _text_items(text: str):
    items, places = [], []
    for line, column, entry in iter_text_lines(text):
        items.append(entry)
        places.append((line, column))
    return items, places, []


def _csv_items(text: str, name: str):
    reader = _csvrecords.records(text)
    try:
        header = next(reader)
    except StopIteration:
        return [], [], [Problem(name, 1, 1, "empty CSV file: expected a header row")]
    except _csvrecords.CsvError as exc:
        return [], [], [Problem(name, 1, 1, f"unreadable CSV header: {exc}")]
    keys = [h.strip() for h in header.fields]
    lowered = [k.lower() for k in keys]
    column = next((lowered.index(c) for c in NETWORK_COLUMNS if c in lowered), None)
    if column is None:
        return [], [], [Problem(name, 1, 1, f"no network column in header: expected one of "
                                            f"{', '.join(NETWORK_COLUMNS)}")]
    items: list[Any] = []
    places: list[tuple[int, int]] = []
    problems: list[Problem] = []
    for line, row, starts in _csvrecords.data_records(reader, len(keys), name, problems):
        field = row[column]
        entry = field.strip()
        value_line, value_column = starts[column]
        # Errors point into the stripped entry; count the stripped leading blanks in.
        place = (value_line, value_column + len(field) - len(field.lstrip()))
        data = {k: v for k, v in zip(keys, row) if k != keys[column]}
        items.append((entry, data))
        places.append(place)
    return items, places, problems


def _compile_or_raise(items, places, problems, name, strict) -> Compiled:
    def collect(position: int, exc: Exception) -> None:
        line, column = places[position]
        problems.append(_problem(name, line, column, exc))

    if problems:
        # Structural problems first; still parse the entries so every bad line is listed.
        compile_entries(items, strict, on_error=collect)
        raise ParseError(sorted(problems, key=lambda p: (p.line, p.column)))
    compiled = compile_entries(items, strict, on_error=collect)
    if problems:
        raise ParseError(sorted(problems, key=lambda p: (p.line, p.column)))
    return compiled


def _problem(name: str, line: int, column: int, exc: Exception) -> Problem:
    if isinstance(exc, AddressError):
        text = exc.text if len(exc.text) <= _SHOWN_TEXT else exc.text[:_SHOWN_TEXT] + "..."
        return Problem(name, line, column + (exc.column or 1) - 1,
                       f"invalid {exc.kind} {text!r}: {exc.reason}")
    return Problem(name, line, column, str(exc))
