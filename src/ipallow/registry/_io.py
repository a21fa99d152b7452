"""Loading a registry export (CSV or JSON Lines): all or nothing, every problem as ``path:line:col``."""

from __future__ import annotations

import gc
import os
import warnings

from ipallow import _csvrecords
from ipallow.errors import HostBitsWarning, ParseError, Problem
from ipallow._formats import decode as _decode, detect_format
from ipallow.registry._bulk import read_csv_registry, read_jsonl_registry
from ipallow.registry._fields import check_fields, quick_fields
from ipallow.registry._record import Registration
from ipallow.registry._registry import Registry, _merge_duplicate
from ipallow.registry._rows import _Cell, _json_fields, _jsonl_cells, _jsonl_rows, cells_of, csv_values
from ipallow.registry._rows import with_columns as _csv_with_columns


def is_registry_file(name: str, head: bytes | None = None) -> bool:
    """Whether a file is a registry export (ids, statuses, validity windows), by the one rule
    of :func:`ipallow.loaders.detect_format` (content first, then the name).

    ``head`` is the start of the file; read from ``name`` when not given.
    """
    if head is None:
        with open(name, "rb") as handle:
            head = handle.read(65536)
    return detect_format(name, head) in ("jsonl", "registry-csv")


def load_registry(path: str | os.PathLike, *, format: str | None = None,
                  strict: bool = True) -> Registry:
    """Load a registry export: CSV with a header row, or JSON Lines.

    The format follows the suffix (``.csv``; ``.jsonl`` / ``.ndjson`` /
    ``.json``), else the content (a first ``{`` means JSON Lines), unless
    ``format`` (``"csv"`` or ``"jsonl"``) says.  Fields: ``id`` (required),
    the networks (``cidr`` / ``network`` / ``networks`` / ``ip``; several
    separated by ``,`` or ``;`` or, in JSON, a list; ranges ``a - b`` allowed),
    ``owner``, ``category`` (default ``other``), ``status`` (default
    ``active``), ``valid_from``, ``expires_at`` (empty = open), ``tags``
    (``,``/``;``-separated or a JSON list); any other column is kept in
    ``extra``.  A missing optional column takes its default; a present but
    empty ``status`` or ``category`` is an error.  Rows sharing an id and all
    other fields are one registration with several networks.  CSV column
    names match case-insensitively (extra columns keep their spelling); JSON
    keys match exactly.  An ``id`` may be a JSON integer (it becomes text).

    Raises:
        ParseError: every problem as ``path:line:col: message``; nothing loaded.
        OSError: the file cannot be read.
        TypeError: ``path`` is not a path.

    >>> load_registry(ipallow.SAMPLE_LIST).get("PTA-0003").owner
    'Indus Call Center'
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    with open(name, "rb") as handle:
        raw = handle.read()
    return parse_registry(raw, name, format=format, strict=strict)


def parse_registry(raw: bytes | str, name: str = "<registry>", *, format: str | None = None,
                   strict: bool = True) -> Registry:
    """Parse registry export content (see :func:`load_registry`); ``name`` is used in messages."""
    if isinstance(raw, bytes):
        text = _decode(raw, name)
    elif isinstance(raw, str):
        text = raw[1:] if raw.startswith("\ufeff") else raw
    else:
        raise TypeError(f"registry content must be bytes or str, not {type(raw).__name__}")
    kind = _detect_format(name, text, format)
    # A load makes a few objects per row and no reference cycles: the cyclic collector
    # would only rescan the growing heap again and again (a third of a large load).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse_text(text, name, kind, strict)
    finally:
        if collecting:
            gc.enable()


def _parse_text(text: str, name: str, kind: str, strict: bool) -> Registry:
    # A plain export (nearly all), column by column; anything else row by row, below.
    registry = read_csv_registry(text, name) if kind == "csv" else read_jsonl_registry(text, name)
    if registry is not None:
        return registry
    problems: list[Problem] = []
    masked = [0]
    records: dict[str, tuple[Registration, int]] = {}
    lines: list[str] = []

    def with_columns(row: dict[str, _Cell]) -> dict[str, _Cell]:
        """A row read without column positions, with them (for messages)."""
        if kind == "csv":
            if not lines:
                lines.extend(_csvrecords.physical_lines(text))
            return _csv_with_columns(row, lines)
        if row["id"].column >= 0:
            return row
        if not lines:
            lines.extend(text.split("\n"))
        number = row["id"].line
        return _jsonl_cells(_json_fields(lines[number - 1].rstrip("\r")), number, name, []) or row

    def from_cells(row: dict[str, _Cell]) -> Registration | None:
        """The record of a row of cells, its problems reported at their places."""
        if row["id"].column >= 0:
            return _build_record(row, name, strict, problems, masked)
        found: list[Problem] = []           # read without column positions
        record = _build_record(row, name, strict, found, masked)
        if found:                           # rare: redo it with columns for the messages
            _build_record(with_columns(row), name, strict, problems, [0])
            return None
        return record

    def keep(record: Registration, line: int, cells) -> None:
        """Add a record, or merge it into the earlier one of its id (``cells()``: its row)."""
        earlier = records.get(record.id)
        if earlier is None:
            records[record.id] = (record, line)
            return
        try:
            records[record.id] = (_merge_duplicate(earlier[0], record), earlier[1])
        except ValueError:
            differing = earlier[0]._same_except_networks(record)
            cell = with_columns(cells())["id"]
            problems.append(Problem(name, cell.line, cell.column,
                                    f"duplicate id {record.id!r} with different "
                                    f"{', '.join(differing)} than line {earlier[1]}"))

    if kind == "csv":
        # A well-formed row (nearly all) goes from its values to its record: no cells, no
        # positions, no second dict; any other row takes the careful path with cells.
        for row in csv_values(text, name, problems):
            quick = quick_fields(row.values, strict)
            if quick is not None:
                masked[0] += quick[1]
                record = Registration._from_checked(quick[0])
            else:
                record = from_cells(cells_of(row))
                if record is None:
                    continue
            keep(record, row.line, lambda row=row: cells_of(row))
    else:
        for cells in _jsonl_rows(text, name, problems):
            record = from_cells(cells)
            if record is not None:
                keep(record, cells["id"].line, lambda cells=cells: cells)
    if problems:
        raise ParseError(sorted(problems, key=lambda p: (p.line, p.column)))
    if masked[0] and not strict:
        warnings.warn(HostBitsWarning(f"strict=False: host bits cleared in {masked[0]} "
                                      f"network{'s' if masked[0] != 1 else ''}"), stacklevel=4)
    return Registry((r for r, _ in records.values()), source=name)


def _detect_format(name: str, text: str, format: str | None) -> str:
    if format is not None:
        if format not in ("csv", "jsonl"):
            raise ValueError(f"format must be 'csv' or 'jsonl', not {format!r}")
        return format
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


# -- one record -----------------------------------------------------------------------

def _build_record(row: dict[str, _Cell], name: str, strict: bool, problems: list[Problem],
                  masked: list[int]) -> Registration | None:
    """The record of one row, or None after reporting its problems at their cells."""
    values = {key: cell.value for key, cell in row.items()}
    quick = quick_fields(values, strict)
    if quick is not None:
        masked[0] += quick[1]
        return Registration._from_checked(quick[0])
    checked = check_fields(values, from_file=True, strict=strict)
    for found in checked.problems:
        cell = row[found.field]
        problems.append(Problem(name, cell.line, cell.column + found.offset, found.message))
    if checked.problems:
        return None
    masked[0] += checked.masked
    return Registration._from_checked(checked.values)
