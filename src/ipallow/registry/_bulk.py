"""A well-formed registry export (CSV or JSON Lines) read column by column: the row-by-row
loader's result, faster.

A registry export is nearly always clean: one network per row, each id once, a handful of
distinct statuses, categories and dates.  This reader takes such a file a column at a time:
one pass of the compiled core over the text, which gives every column but the ids and the
networks as a code per row and its distinct cells (csv's reader when fields are quoted; a
decoder per line for JSON Lines), the core parses the whole network column, each distinct
status, category, time and tags text is checked once, the registry's arrays come from the
columns, and its records are made when first read (``registry._columnar``).  It gives the
registry the row-by-row loader (``registry._io``) gives, or None as soon as anything is not
plain -- a problem to report, several networks or a range in a cell, host bits set, an id
used twice, a row of empty fields -- and then the row-by-row loader reads the file: it owns
every message, every ``path:line:col`` and every rule for unusual rows, so nothing here
reports anything.
"""

from __future__ import annotations

import csv
import io
import math
from operator import itemgetter

import numpy as np

from ipallow import _csvrecords, _trie
from ipallow.registry._fields import (_CATEGORY_SET, _CORE_FIELDS, _EXTRA_CLASHES, _STATUS_SET,
                                      DEFAULTS, REGISTRY_NETWORK_COLUMNS, _quick_choice, _quick_tags,
                                      _quick_time, _Unusual)
from ipallow.registry._columnar import Coded, RecordColumns
from ipallow.registry._ids import numbered_order
from ipallow.registry._registry import Registry
from ipallow.registry._rows import _csv_layout, _Duplicate, decode_object


def read_csv_registry(text: str, name: str) -> Registry | None:
    """The registry of a CSV export's ``text`` (header row first), or None when the file is
    not plain enough for this reader (see the module docstring)."""
    if "\0" in text:
        return None                         # csv refuses NUL: the row-by-row loader says where
    columns = layout = None
    if '"' not in text:                     # no quotes: no field holds a comma or a line end
        lines = text.replace("\r\n", "\n") if "\r" in text else text    # csv: CRLF ends a line as LF does
        if "\r" not in lines:
            header = lines[:lines.find("\n")].split(",") if "\n" in lines else lines.split(",")
            layout = _layout(header, text, name)
            if layout is None:
                return None
            # ids and networks are (nearly) all distinct: every other column is coded
            distinct = {position for position, canonical in layout[0] if canonical in ("id", "networks")}
            columns = _trie.csv_columns(lines, len(header), [p not in distinct for p in range(len(header))])
            del lines
    if columns is None:                     # quoted fields, blank lines, or a lone CR: csv's reader
        try:
            rows = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error:
            return None
        if not rows:
            return None
        header = rows[0]
        data = [row for row in rows[1:] if row]     # blank lines: skipped by the row-by-row loader too
        if not data or any(len(row) != len(header) for row in data):
            return None                     # a wrong width (reported there), or a row of blank fields
        columns = [list(map(itemgetter(position), data)) for position in range(len(header))]
        layout = _layout(header, text, name)
        if layout is None:
            return None
    core, extra_keys = layout
    field = {canonical: columns[position] for position, canonical in core}
    extra_columns = [(key, columns[position]) for position, key in extra_keys]
    del columns                             # each column is let go once read (a large export's peak)
    try:
        return _registry_of(field, extra_columns, name)
    except _Unusual:
        return None


def _layout(header: list[str], text: str, name: str) -> tuple[list, list] | None:
    """(position of each core field, position of each extra column) of a header row, or None
    when it has a problem (reported by the row-by-row loader)."""
    problems: list = []
    layout = _csv_layout(iter([_csvrecords.Record(1, header, [(1, 1)] * len(header))]), text, name, problems)
    if layout is None or problems:
        return None
    return layout[0], layout[1]


def read_jsonl_registry(text: str, name: str) -> Registry | None:
    """The registry of a JSON Lines export's ``text``, or None when it is not plain enough
    for this reader: every record an object with the same keys in the same order, text
    values (``null`` where a field may be empty; the id may be an integer), one network per
    record."""
    lines = [line for line in text.split("\n") if line.strip()]    # "\r" is JSON whitespace
    if not lines:
        return None
    try:
        records = list(map(decode_object, lines))     # one object per line, no key twice
    except (ValueError, _Duplicate, RecursionError):
        return None
    if set(map(type, records)) != {dict} or len(set(map(tuple, records))) != 1:
        return None                         # not objects, or not all with the same keys in one order
    keys = tuple(records[0])
    network_keys = [key for key in REGISTRY_NETWORK_COLUMNS if key in keys]
    if len(network_keys) != 1 or "id" not in keys:
        return None                         # no network or id, or several networks: reported there
    field, extra_columns = {}, []
    for key in keys:                        # as _jsonl_cells sorts a record's keys
        column = list(map(itemgetter(key), records))
        if key == network_keys[0]:
            field["networks"] = column
        elif key in _CORE_FIELDS:
            field[key] = column
        else:
            extra_columns.append((key, column))
    del records
    if int in set(map(type, field["id"])):  # a JSON integer id is text (not a bool: declined below)
        field["id"] = [str(value) if type(value) is int else value for value in field["id"]]
    for key, column in field.items():
        if not set(map(type, column)) <= (_TEXT_OR_NULL if key in _MAY_BE_NULL else _TEXT):
            return None                     # an integer id, a list of networks or tags, a wrong type
    try:
        return _registry_of(field, extra_columns, name)
    except _Unusual:
        return None


_MAY_BE_NULL = frozenset(("owner", "valid_from", "expires_at", "tags"))    # what quick_fields reads as absent
_TEXT, _TEXT_OR_NULL = frozenset((str,)), frozenset((str, type(None)))


def _registry_of(field: dict, extra_columns: list, name: str) -> Registry | None:
    """The registry of the columns, checked as ``quick_fields`` checks one row; its records
    are made when first read (``registry._columnar``)."""
    ids = list(map(str.strip, field.pop("id")))          # (never coded: see read_csv_registry)
    count = len(ids)
    order = _distinct_ids_order(ids)
    if order is None:
        return None                         # an id used twice (merged or refused) or missing
    texts = list(map(str.strip, field.pop("networks")))
    version, hi, lo, plen, status, _, _ = _trie.parse_entries(texts, True)
    del texts
    if status.any():
        return None                         # a list, a range, host bits, an error: one by one
    owners = _each(field, "owner", lambda text: "" if text is None else text.strip(), count)
    categories = _each(field, "category", lambda text: _quick_choice(text, _CATEGORY_SET), count)
    statuses = _each(field, "status", lambda text: _quick_choice(text, _STATUS_SET), count)
    valid_from = _each(field, "valid_from", _quick_time, count)
    expires_at = _each(field, "expires_at", _quick_time, count)
    start_stamps = _mapped(valid_from, lambda at: -math.inf if at is None else at.timestamp(), np.float64)
    end_stamps = _mapped(expires_at, lambda at: math.inf if at is None else at.timestamp(), np.float64)
    if np.any(end_stamps <= start_stamps):
        return None                         # a window that ends before it starts
    tags = _each(field, "tags", _quick_tags, count)
    keys = [key for key, _ in extra_columns]
    if not _EXTRA_CLASHES.isdisjoint(keys):
        return None
    columns = RecordColumns(ids, version, hi, lo, plen, owners, categories, statuses, valid_from, expires_at,
                            tags, keys, [Coded(*column) if isinstance(column, tuple) else column
                                         for _, column in extra_columns])
    return Registry._from_columns(columns, id_order=None if order is True else order,
                                  active=_mapped(statuses, lambda status: status == "active", bool),
                                  valid_from=start_stamps, expires_at=end_stamps, version=version, hi=hi,
                                  lo=lo, plen=plen, source=name)


def _distinct_ids_order(ids: list[str]) -> np.ndarray | bool | None:
    """None when an id is empty or given twice; else their natural order when it comes
    cheaply (``PTA-<number>`` ids: distinct exactly when their numbers are), or True."""
    found = numbered_order(ids)
    if found is not None:
        order, distinct_ids = found
        return order if distinct_ids else None
    distinct = set(ids)
    return True if len(distinct) == len(ids) and "" not in distinct else None


def _each(field: dict, column: str, check, count: int) -> Coded:
    """An optional column, coded: each distinct text checked once (``check`` raises
    ``_Unusual`` for anything not plain) to the value it stores; when the file does not
    have it, its default is the one value.  The column is its cells, or ``(codes, distinct
    cells)`` as ``csv_columns`` codes it."""
    if column not in field:
        return Coded(np.zeros(count, dtype=np.int32), [DEFAULTS[column]])
    cells = field.pop(column)
    if isinstance(cells, tuple):
        codes, distinct = cells
        return Coded(codes, [check(text) for text in distinct])
    codes = dict.fromkeys(cells)            # each distinct text, in the order they come
    values = [check(text) for text in codes]
    for code, text in enumerate(codes):
        codes[text] = code
    return Coded(np.fromiter(map(codes.__getitem__, cells), np.int32, count), values)


def _mapped(column: Coded, convert, dtype) -> np.ndarray:
    """``convert`` of every value of a column, in an array: once per distinct value."""
    return np.array([convert(value) for value in column.values], dtype)[column.codes]
