"""Telling a list, registry or snapshot file's format apart, and its problems' messages.

Shared by the loader (:mod:`ipallow.loaders`) and the registry readers
(:mod:`ipallow.registry`), which sits below the loader: the loader hands
registry formats to it.
"""

from __future__ import annotations

from ipallow.errors import AddressError, ParseError, Problem

__all__ = ["HEAD", "NETWORK_COLUMNS", "JSONL_SUFFIXES", "detect_format", "decode", "problem"]

#: The column of a plain CSV list (and of a registry CSV) holding the network.
NETWORK_COLUMNS = ("cidr", "network", "ip")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_SHOWN_TEXT = 80         # longer offending text is cut in file messages

#: Bytes read from the start of a file to recognise its format.
HEAD = 65536

#: The first bytes of a snapshot: ``ipallow.snapshot.MAGIC``, spelled out again so that telling
#: a text list from a snapshot does not import the snapshot package (and struct), 0.3 ms of an
#: export's start-up.  The snapshot layout sits below this module, so it cannot import it from
#: here; tests/test_snapshot.py holds the two equal.
SNAPSHOT_MAGIC = b"IPALLOW\x00"

#: The formats a list file can be read as (``--list-format``, ``format=``).
FORMATS = ("txt", "csv", "jsonl", "registry-csv", "snapshot")


def detect_format(name: str, head: bytes) -> str:
    """The format of a file from its first bytes ``head`` and its ``name`` (the rules are listed in :mod:`ipallow.loaders`)."""
    if head.startswith(SNAPSHOT_MAGIC):
        return "snapshot"
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    if text.lstrip().startswith(b"{"):
        return "jsonl"
    columns = _header_columns(text)
    if "id" in columns or ("networks" in columns and not columns & set(NETWORK_COLUMNS)):
        return "registry-csv"
    if columns & set(NETWORK_COLUMNS):
        return "csv"
    lowered = name.lower()
    if lowered.endswith(JSONL_SUFFIXES):
        return "jsonl"
    return "csv" if lowered.endswith(".csv") else "txt"


def _header_columns(text: bytes) -> set[str]:
    """The lower-cased column names of a CSV header on the first line, or an empty set.

    No line of a text list can be a header: ``id``, ``cidr`` and the like are not
    addresses, and a comment line starts with ``#``.
    """
    first = text.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    if not first.strip() or first.lstrip().startswith("#"):
        return set()
    if not any(c in first for c in '"\r\0'):
        fields = first.split(",")   # what csv.reader makes of it; csv is ~1 ms of start-up
    else:
        import csv
        try:
            fields = next(csv.reader([first]), [])
        except csv.Error:
            return set()
    return {f.strip().strip('"').lower() for f in fields}


def decode(raw: bytes, name: str) -> str:
    """``raw`` as UTF-8 text (a BOM dropped), or a ParseError at the first bad byte's line and column."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ParseError([Problem(name, line, column, "not valid UTF-8")]) from None


def problem(name: str, line: int, column: int, exc: Exception) -> Problem:
    """The file problem for an entry at ``line:column`` that raised ``exc`` (long text cut)."""
    if isinstance(exc, AddressError):
        text = exc.text if len(exc.text) <= _SHOWN_TEXT else exc.text[:_SHOWN_TEXT] + "..."
        return Problem(name, line, column + (exc.column or 1) - 1,
                       f"invalid {exc.kind} {text!r}: {exc.reason}")
    return Problem(name, line, column, str(exc))
