"""CSV records with the place of every field: shared by the list and registry loaders.

``csv`` gives fields but not where they were; error messages need
``path:line:col`` of the value, even inside quotes or across lines.
"""

from __future__ import annotations

import csv
import io
from typing import Iterator, NamedTuple

__all__ = ["Record", "CsvError", "records", "data_records", "starts_at"]


class Record(NamedTuple):
    line: int                        # first physical line of the record
    fields: list[str]
    starts: list[tuple[int, int]] | None   # (line, column) where each field's value starts
                                           # (None: not computed, see starts_at)


class CsvError(ValueError):
    """The csv module could not read a record (e.g. a NUL byte, an unterminated quote)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


def records(text: str, positions: bool = True) -> Iterator[Record]:
    """Every CSV record of ``text`` (excel dialect), the header included.

    ``positions=False`` leaves ``starts`` None for a record on one line (a reader that
    only needs them for messages computes them for the rare record with a problem:
    :func:`starts_at`); computing them for every record was most of a registry's load.
    """
    physical = io.StringIO(text, newline="").readlines()   # the lines csv.reader sees
    reader = csv.reader(iter(physical))
    previous_end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvError(previous_end + 1, str(exc)) from None
        first_line = previous_end + 1
        starts = None
        if positions or reader.line_num - previous_end > 1:    # (a record over several lines is rare)
            starts = field_starts("".join(physical[previous_end:reader.line_num]), first_line)
        previous_end = reader.line_num
        yield Record(first_line, row, starts)


def physical_lines(text: str) -> list[str]:
    """The lines of ``text`` as :func:`records` reads them (for :func:`starts_at`)."""
    return io.StringIO(text, newline="").readlines()


def starts_at(physical: list[str], first_line: int) -> list[tuple[int, int]]:
    """The field starts of the record that begins at ``first_line`` (as :func:`records`
    with positions would have given them), ``physical`` from :func:`physical_lines`."""
    reader = csv.reader(iter(physical[first_line - 1:]))
    next(reader)
    return field_starts("".join(physical[first_line - 1:first_line - 1 + reader.line_num]), first_line)


def data_records(reader: Iterator[Record], width: int, name: str,
                 problems: list) -> Iterator[Record]:
    """The records after the header: blank ones skipped; a record with the wrong
    number of fields, or one csv cannot read, becomes a problem instead."""
    from ipallow.errors import Problem
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except CsvError as exc:
            problems.append(Problem(name, exc.line, 1, f"unreadable CSV record: {exc}"))
            return
        if not "".join(record.fields).strip():      # no fields, or only blank ones
            continue
        if len(record.fields) != width:
            problems.append(Problem(name, record.line, 1,
                                    f"expected {width} fields, found {len(record.fields)}"))
            continue
        yield record


def field_starts(record: str, first_line: int) -> list[tuple[int, int]]:
    """(line, column) where each field's *value* starts, following the csv module's
    default (excel) dialect; the value of a quoted field starts after its quote."""
    starts: list[tuple[int, int]] = []
    line, column = first_line, 1
    at_start, quoted = True, False
    i, n = 0, len(record)
    while i < n:
        ch = record[i]
        if ch in "\r\n" and not quoted:
            break                        # the record ends (a blank record has no fields)
        if at_start:
            quoted = ch == '"'
            starts.append((line, column + quoted))
            # A comma right at a field's start ends an empty field and starts the next one.
            at_start = ch == ","
        elif quoted:
            if ch == '"':
                if i + 1 < n and record[i + 1] == '"':
                    i += 1
                    column += 1
                else:
                    quoted = False
        elif ch == ",":
            at_start = True
        if ch == "\n" or (ch == "\r" and record[i + 1:i + 2] != "\n"):
            line, column = line + 1, 1
        else:
            column += 1
        i += 1
    if at_start and starts:
        starts.append((line, column))   # an empty last field
    return starts
