"""The one loader of lists and registries, all or nothing, with path:line:col errors.

Every command and :meth:`Allowlist.from_file` read files through :func:`load`.
Five formats, told apart by content first, then by name (``format=`` overrides):

* ``snapshot``: starts with the snapshot magic; read into private memory, see ipallow.snapshot;
* ``jsonl``: a registry as JSON Lines (the first non-blank byte is ``{``, or
  the name ends ``.jsonl`` / ``.ndjson`` / ``.json``);
* ``registry-csv``: a registry as CSV: the header row has an ``id`` column
  (or only the registry's ``networks`` column);
* ``csv``: a plain list as CSV: a header row with a ``cidr`` / ``network`` /
  ``ip`` column; the other columns become each registration's data (a dict);
  a ``.csv`` file without such a header is read as one (and its header refused);
* ``txt``: anything else: one entry per line (CIDR, address or range
  ``a - b``), ``#`` comments, blank lines ignored.

A registry keeps every record (with its status and validity window); what
counts at an instant is chosen by ``Allowlist.from_registry``.
"""

from __future__ import annotations

import os
import stat
from typing import Any, NamedTuple

from ipallow import snapshot
from ipallow import _trie
from ipallow._compile import Compiled, assemble, compile_entries
from ipallow._formats import FORMATS, HEAD, NETWORK_COLUMNS, decode as _decode, detect_format, problem as _problem
from ipallow._parse import iter_text_lines, text_entries
from ipallow.errors import ParseError, Problem

__all__ = ["load", "load_bytes", "detect_format", "Loaded", "FORMATS", "NETWORK_COLUMNS"]


class Loaded(NamedTuple):
    """What a file held: its format, and either compiled entries or a registry.

    :meth:`ipallow.Allowlist._from_loaded` makes an allowlist of it.
    """

    format: str
    compiled: Compiled | None       # a plain list or a snapshot
    registry: Any                   # an ipallow.Registry (registry formats), else None



def load(path: str | os.PathLike, *, format: str | None = None, strict: bool = True) -> Loaded:
    """Read one list, registry or snapshot file; raise one ParseError naming every bad line.

    Raises:
        ParseError / SnapshotError: the content is invalid (nothing loaded).
        OSError: the file cannot be read.
        TypeError / ValueError: a bad ``path`` or ``format``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    _check_format(format)
    with open(name, "rb") as handle:
        head = handle.read(HEAD)
        kind = format or detect_format(name, head)
        if kind == "snapshot" and stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return Loaded(kind, snapshot.map_file(name), None)      # map it, parse nothing
        raw = head + handle.read()          # not seek(0): a FIFO or /dev/stdin cannot
    if kind == "snapshot":
        return Loaded(kind, snapshot.from_buffer(raw, name), None)
    return _parse_content(raw, name, kind, strict)


def load_bytes(raw: bytes, name: str, *, format: str | None = None, strict: bool = True) -> Loaded:
    """:func:`load` for content already read (stdin); ``name`` is used in messages."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"content must be bytes, not {type(raw).__name__}")
    _check_format(format)
    raw = bytes(raw)
    kind = format or detect_format(name, raw[:HEAD])
    if kind == "snapshot":
        return Loaded(kind, snapshot.from_buffer(raw, name), None)
    return _parse_content(raw, name, kind, strict)


def _check_format(format: str | None) -> None:
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")


def _parse_content(raw: bytes, name: str, kind: str, strict: bool) -> Loaded:
    if kind in ("jsonl", "registry-csv"):
        from ipallow.registry import parse_registry
        registry = parse_registry(raw, name, format="jsonl" if kind == "jsonl" else "csv", strict=strict)
        return Loaded(kind, None, registry)
    if kind == "txt":
        # The common case in one pass of the core: networks and ranges, ASCII.  It gives up
        # (None) on anything else -- an error or a warning to report with its line, UTF-8
        # to check -- which the Python reader below handles, as it always has.
        table = _trie.scan_network_text(raw, strict)
        if table is not None:
            return Loaded(kind, assemble(*table, None), None)
    text = _decode(raw, name)
    if kind == "csv":
        items, places, problems = _csv_items(text, name)
    else:
        items, places, problems = _text_items(text)
    return Loaded(kind, _compile_or_raise(items, places, problems, name, strict), None)


class _TextPlaces:
    """(line, column) of each entry of a text list, worked out when first asked for: only
    messages need them, and a tuple per entry was a third of a large list's peak memory."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._places: list[tuple[int, int]] | None = None

    def __getitem__(self, position: int) -> tuple[int, int]:
        if self._places is None:
            self._places = [(line, column) for line, column, _ in iter_text_lines(self._text)]
        return self._places[position]


def _text_items(text: str):
    return text_entries(text), _TextPlaces(text), []


def _csv_items(text: str, name: str):
    from ipallow import _csvrecords     # here: csv is start-up a plain list does without
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
                                            f"{', '.join(NETWORK_COLUMNS)} (a list), or an id "
                                            f"column (a registry)")]
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
