"""One field of every line in a block of delimited text (CSV, TSV, space separated), found with numpy.

``ipallow filter --column`` classifies millions of flow-log lines a second by never
splitting a line in Python: the separators and newlines of a whole block are located
in bulk over the raw bytes, and field ``column`` of each line is sliced out.  Only
the lines holding a double quote go through the ``csv`` module (quoted fields that
span lines are not understood).

A block is whole lines, each ending in ``\\n``.  Offsets are into the block's bytes.
"""

from __future__ import annotations

import csv
from typing import NamedTuple

import numpy as np

__all__ = ["Fields", "locate", "split_fields", "selected_lines"]

NEWLINE, CR, QUOTE = 10, 13, 34


class Fields(NamedTuple):
    """Field ``column`` of each line of a block."""

    texts: list[bytes]         # the field: surrounding blanks and CR trimmed, CSV quotes undone
    starts: np.ndarray         # offset where each line starts
    ends: np.ndarray           # offset of each line's newline
    field_starts: np.ndarray   # offset where each field starts (after the trimmed blanks)
    present: np.ndarray        # bool: the line has that many fields


def split_fields(line: bytes, sep: int) -> list[bytes]:
    """Fields of one line (no newline), CSV quoting understood (the slow path)."""
    if QUOTE not in line:
        return line.split(bytes([sep]))
    text = line.decode("utf-8", "surrogateescape")
    row = next(csv.reader([text], delimiter=chr(sep), skipinitialspace=False), [])
    return [f.encode("utf-8", "surrogateescape") for f in row]


def locate(data: bytes, column: int, sep: int, lines: tuple[np.ndarray, np.ndarray] | None = None) -> Fields:
    """Field ``column`` (0-based) of every line of ``data`` split at the byte ``sep``.

    ``lines``: (starts, ends) of the lines to look at when they are known already
    (a leading part of the block, say); by default every line of ``data``.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    regular = _regular_bounds(data, buf, column, sep) if lines is None else None
    if regular is not None:
        starts, ends, fs, fe, present = regular
    else:
        starts, ends = _line_bounds(buf) if lines is None else lines
        fs, fe, present = _field_bounds(buf, starts, ends, column, sep)
    if b" " in data or b"\t" in data or b"\r" in data:
        _trim(buf, fs, fe)
    texts = [data[i:j] for i, j in zip(fs.tolist(), fe.tolist())]
    if QUOTE in data:
        _unquote(data, buf, starts, ends, column, sep, texts, present)
    return Fields(texts, starts, ends, fs, present)


def selected_lines(data: bytes, starts: np.ndarray, ends: np.ndarray, select: np.ndarray) -> bytes:
    """The selected lines (with their newlines), copied as runs of consecutive lines."""
    edges = np.diff(select.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    first = starts[np.flatnonzero(edges == 1)]
    stop = ends[np.flatnonzero(edges == -1) - 1] + 1
    return b"".join([data[i:j] for i, j in zip(first.tolist(), stop.tolist())])


def _line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ends = np.flatnonzero(buf == NEWLINE)
    starts = np.empty_like(ends)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    return starts, ends


def _regular_bounds(data: bytes, buf: np.ndarray, column: int, sep: int):
    """Line and field bounds when every line of the block has the same number of fields.

    One pass finds every delimiter (separator or newline).  With F fields a
    line, the block is regular exactly when there are F delimiters a line and
    every F-th one is a newline; then field k of line i lies between
    delimiters i*F + k - 1 and i*F + k.  Returns None when the block is not
    regular (the general path handles it).
    """
    first_end = data.find(b"\n")
    fields = data.count(bytes([sep]), 0, first_end) + 1
    if column >= fields:
        return None
    newlines = buf == NEWLINE
    marks = buf == sep
    marks |= newlines
    delims = np.flatnonzero(marks)
    if len(delims) != fields * int(np.count_nonzero(newlines)):
        return None
    ends = delims[fields - 1::fields]
    if not (buf[ends] == NEWLINE).all():
        return None
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    fs = delims[column - 1::fields] + 1 if column else starts.copy()
    fe = delims[column::fields].copy()
    return starts, ends, fs, fe, np.ones(len(ends), dtype=bool)


def _field_bounds(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, column: int,
                  sep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start/end of field ``column`` in each line, and whether the line has that field."""
    seps = np.flatnonzero(buf == sep)
    first = np.searchsorted(seps, starts)            # first separator at or after each line start
    seps = np.append(seps, len(buf))                 # sentinel: "no more separators"
    last = len(seps) - 1
    if column:
        before = seps[np.minimum(first + (column - 1), last)]
        present = before < ends
        fs = np.where(present, before + 1, ends)
    else:
        present = np.ones(len(starts), dtype=bool)
        fs = starts.copy()
    fe = np.minimum(seps[np.minimum(first + column, last)], ends)
    fe = np.maximum(fe, fs)
    return fs, fe, present


def _trim(buf: np.ndarray, fs: np.ndarray, fe: np.ndarray) -> None:
    """Move field bounds past surrounding blanks and CR, in place (a few vectorised rounds)."""
    while True:
        m = fs < fe
        m[m] = (buf[fs[m]] == 32) | (buf[fs[m]] == 9) | (buf[fs[m]] == CR)
        if not m.any():
            break
        fs[m] += 1
    while True:
        m = fe > fs
        last = buf[fe[m] - 1]
        m[m] = (last == 32) | (last == 9) | (last == CR)
        if not m.any():
            break
        fe[m] -= 1


def _unquote(data: bytes, buf: np.ndarray, starts, ends, column: int, sep: int, texts: list[bytes],
             present: np.ndarray) -> None:
    """Redo the lines that contain a double quote with the csv module, in place."""
    rows = np.unique(np.searchsorted(ends, np.flatnonzero(buf == QUOTE)))
    # A quote past the last line looked at (``lines`` covering part of the block) is not ours.
    for i in rows[rows < len(ends)].tolist():
        fields = split_fields(data[int(starts[i]):int(ends[i])].rstrip(b"\r"), sep)
        present[i] = column < len(fields)
        texts[i] = fields[column].strip() if present[i] else b""
