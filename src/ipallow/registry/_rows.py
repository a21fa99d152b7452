"""Reading a registry export's text into rows of cells (value, line, column): CSV and JSON Lines."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator, NamedTuple

from ipallow import _csvrecords
from ipallow.errors import Problem
from ipallow.registry._fields import _CORE_FIELDS, REGISTRY_NETWORK_COLUMNS


class _Cell(NamedTuple):
    value: Any
    line: int
    column: int


# -- CSV ----------------------------------------------------------------------------

def _canonical_columns(keys: list[str]) -> dict[str, int]:
    """Header position of each core field; the first network column found wins."""
    lowered = [k.strip().lower() for k in keys]
    positions: dict[str, int] = {}
    for name in ("id", "owner", "category", "status", "valid_from", "expires_at", "tags"):
        if name in lowered:
            positions[name] = lowered.index(name)
    for name in REGISTRY_NETWORK_COLUMNS:
        if name in lowered:
            positions["networks"] = lowered.index(name)
            break
    return positions


def _csv_layout(reader, text: str, name: str, problems: list[Problem]):
    """Read and check the header of a CSV registry: ``(core, extra_keys, width)`` -- the
    position of each core field and of each extra column, and the number of columns -- or
    None after reporting its problems."""
    try:
        header = next(reader)
    except StopIteration:
        problems.append(Problem(name, 1, 1, "empty CSV file: expected a header row"))
        return None
    except _csvrecords.CsvError as exc:
        problems.append(Problem(name, 1, 1, f"unreadable CSV header: {exc}"))
        return None
    keys = [h.strip() for h in header.fields]
    header_starts = header.starts
    if header_starts is None:
        header_starts = _csvrecords.starts_at(_csvrecords.physical_lines(text), 1)
    seen: dict[str, int] = {}
    for position, key in enumerate(keys):
        line, column = header_starts[position] if position < len(header_starts) else (1, 1)
        if not key:
            problems.append(Problem(name, line, column, "empty column name in header"))
        elif key.lower() in seen:
            problems.append(Problem(name, line, column, f"duplicate column {key!r} in header"))
        seen.setdefault(key.lower(), position)
    columns = _canonical_columns(keys)
    network_columns = [k for k in keys if k.lower() in REGISTRY_NETWORK_COLUMNS]
    if len(network_columns) > 1:
        problems.append(Problem(name, 1, 1, f"several network columns ({', '.join(network_columns)}): "
                                            f"keep one"))
    for required, label in (("id", "no id column in header"),
                            ("networks", "no network column in header (expected one of "
                                         + ", ".join(REGISTRY_NETWORK_COLUMNS) + ")")):
        if required not in columns:
            problems.append(Problem(name, 1, 1, label))
    if problems:
        return None
    canonical_at = [None] * len(keys)
    for canonical, position in columns.items():
        canonical_at[position] = canonical
    extra_keys = [(position, key) for position, key in enumerate(keys) if canonical_at[position] is None]
    core = [(position, canonical) for position, canonical in enumerate(canonical_at) if canonical]
    return core, extra_keys, len(keys)


def _csv_rows(text: str, name: str, problems: list[Problem], *,
              positions: bool = True) -> list[dict[str, _Cell]]:
    """The data rows of a CSV registry as cells.

    ``positions=False``: a cell of a record on one line gets the record's line and,
    for column, ``-1 - field position`` (negative: not known yet); :func:`with_columns`
    gives it its place when a message needs it.
    """
    return [cells_of(row) for row in csv_values(text, name, problems, positions=positions)]


class CsvValues(NamedTuple):
    """A data row of a CSV registry as plain values (what a load reads first)."""
    line: int                 # the record's first line
    values: dict[str, Any]    # canonical field -> text; "extra" -> {column: text}
    starts: list | None       # each field's (line, column); None: not read (see csv_values)
    core: list                # (position, canonical field) of the header


def csv_values(text: str, name: str, problems: list[Problem], *,
               positions: bool = False) -> Iterator[CsvValues]:
    """The data rows of a CSV registry as plain values, one at a time: no cells, and field
    positions only with ``positions`` (a registry's load keeps only the records it makes;
    :func:`cells_of` gives a row its cells when it has something to report)."""
    reader = _csvrecords.records(text, positions=positions)
    layout = _csv_layout(reader, text, name, problems)
    if layout is None:
        return
    core, extra_keys, width = layout
    for first_line, row, starts in _csvrecords.data_records(reader, width, name, problems):
        values = {canonical: row[position] for position, canonical in core}
        values["extra"] = {key: row[position] for position, key in extra_keys}
        yield CsvValues(first_line, values, starts, core)


def cells_of(row: CsvValues) -> dict[str, _Cell]:
    """The row as cells: each at its place when the row has its field positions (read with
    them, or a record over several lines), else with the record's line and, for column,
    ``-1 - field position`` (not known yet: :func:`with_columns` works it out)."""
    if row.starts is None:
        cells = {canonical: _Cell(row.values[canonical], row.line, -1 - position)
                 for position, canonical in row.core}
    else:
        cells = {}
        for position, canonical in row.core:
            line, column = row.starts[position] if position < len(row.starts) else (row.line, 1)
            cells[canonical] = _Cell(row.values[canonical], line, column)
    cells["extra"] = _Cell(row.values["extra"], row.line, 1)
    return cells


def with_columns(row: dict[str, _Cell], physical: list[str]) -> dict[str, _Cell]:
    """A CSV row read without positions (see :func:`_csv_rows`), with them;
    ``physical`` from :func:`ipallow._csvrecords.physical_lines`."""
    if all(cell.column >= 0 for cell in row.values()):
        return row
    first_line = row["extra"].line
    starts = _csvrecords.starts_at(physical, first_line)
    out: dict[str, _Cell] = {}
    for key, cell in row.items():
        position = -1 - cell.column
        if cell.column >= 0:
            out[key] = cell
        else:
            line, column = starts[position] if position < len(starts) else (first_line, 1)
            out[key] = _Cell(cell.value, line, column)
    return out


# -- JSON Lines -------------------------------------------------------------------

_DECODER = json.JSONDecoder()
_JSON_SPACE = re.compile(r"[ \t\r\n]*")


class _JsonProblem(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


def _json_fields(line: str) -> dict[str, tuple[Any, int]]:
    """Top-level fields of a one-line JSON object -> {key: (value, 0-based index of the value)}."""
    def space(i: int) -> int:
        return _JSON_SPACE.match(line, i).end()

    def decode(i: int) -> tuple[Any, int]:
        try:
            return _DECODER.raw_decode(line, i)
        except json.JSONDecodeError as exc:
            raise _JsonProblem(exc.pos, f"invalid JSON: {exc.msg}") from None
        except RecursionError:          # json's decoder recurses once per level of nesting
            raise _JsonProblem(i, "invalid JSON: nested too deeply") from None

    i = space(0)
    if line[i:i + 1] != "{":
        raise _JsonProblem(i, "expected a JSON object ({...}) on each line")
    i = space(i + 1)
    out: dict[str, tuple[Any, int]] = {}
    if line[i:i + 1] == "}":
        i += 1
    else:
        while True:
            if line[i:i + 1] != '"':
                raise _JsonProblem(i, "invalid JSON: expected a field name in double quotes")
            key_at = i
            key, i = decode(i)
            i = space(i)
            if line[i:i + 1] != ":":
                raise _JsonProblem(i, "invalid JSON: expected ':'")
            i = space(i + 1)
            value_at = i
            value, i = decode(i)
            if key in out:
                raise _JsonProblem(key_at, f"duplicate field {key!r}")
            out[key] = (value, value_at)
            i = space(i)
            if line[i:i + 1] == ",":
                i = space(i + 1)
                continue
            if line[i:i + 1] == "}":
                i += 1
                break
            raise _JsonProblem(i, "invalid JSON: expected ',' or '}'")
    i = space(i)
    if i != len(line):
        raise _JsonProblem(i, "extra data after the JSON object")
    return out


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Duplicate()
    return out


# One decoder for every line, refusing a key given twice (json.loads with a hook builds a
# new decoder per call); the bulk reader of JSON Lines uses it too.
decode_object = json.JSONDecoder(object_pairs_hook=_no_duplicates).decode


def _json_fields_fast(line: str) -> dict[str, tuple[Any, int]] | None:
    """Fields of a valid one-object line via the C decoder, columns unknown (-1); None if not that."""
    try:
        value = decode_object(line)
    except (ValueError, _Duplicate, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    return {key: (item, -1) for key, item in value.items()}


def _jsonl_rows(text: str, name: str, problems: list[Problem]) -> list[dict[str, _Cell]]:
    rows: list[dict[str, _Cell]] = []
    # Only "\n" ends a JSON Lines record ("\r\n" too); str.splitlines would also
    # split at U+2028 and friends, which are legal raw inside JSON strings.
    for number, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():
            continue
        fields_ = _json_fields_fast(line)
        if fields_ is None or sum(k in fields_ for k in REGISTRY_NETWORK_COLUMNS) > 1:
            # not plain valid JSON (or a problem already): walk it for the exact column
            try:
                fields_ = _json_fields(line)
            except _JsonProblem as exc:
                problems.append(Problem(name, number, exc.index + 1, exc.message))
                continue
        cells = _jsonl_cells(fields_, number, name, problems)
        if cells is not None:
            rows.append(cells)
    return rows


def _jsonl_cells(fields_: dict[str, tuple[Any, int]], number: int, name: str,
                 problems: list[Problem]) -> dict[str, _Cell] | None:
    """The cells of one JSON record (column -1: not known), or None after reporting a problem."""
    network_keys = [k for k in REGISTRY_NETWORK_COLUMNS if k in fields_]
    if len(network_keys) > 1:
        index = fields_[network_keys[1]][1]
        problems.append(Problem(name, number, index + 1 if index >= 0 else 1,
                                f"several network fields ({', '.join(network_keys)}): keep one"))
        return None
    network_key = network_keys[0] if network_keys else None
    cells: dict[str, _Cell] = {}
    extra: dict[str, Any] = {}
    for key, (value, index) in fields_.items():
        column = index + 1 if index >= 0 else -1
        if key == network_key:
            cells["networks"] = _Cell(value, number, column)
        elif key in _CORE_FIELDS and key != "networks":
            cells[key] = _Cell(value, number, column)
        else:
            extra[key] = value
    missing = False
    for required, label in (("id", "no id field"),
                            ("networks", "no network field (expected one of "
                                         + ", ".join(REGISTRY_NETWORK_COLUMNS) + ")")):
        if required not in cells:
            problems.append(Problem(name, number, 1, label))
            missing = True
    if missing:
        return None
    cells["extra"] = _Cell(extra, number, 1)
    return cells

