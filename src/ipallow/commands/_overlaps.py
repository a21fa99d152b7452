"""`ipallow validate`'s warnings: duplicate and nested prefixes of a loaded list, placed at the
file's line and column of each registration, in file order.

Not a command: ``register`` is a no-op because ``ipallow.cli`` registers every
module of this package.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np

from ipallow import _parse
from ipallow._prefixes import KINDS, find_overlaps, ipv4_strings, ipv6_strings
from ipallow.allowlist import registration_label

__all__ = ["Found", "warnings_of"]


def register(subparsers) -> None:  # noqa: ARG001 - see the module docstring
    """Nothing: this module is a helper, not a command."""


def _plain_places(name: str, text: str, count: int, format: str) -> np.ndarray:
    """(line, column) of each of the ``count`` registrations of a plain list, in load order."""
    if format == "snapshot":        # no lines: 0 means "not in a text file"
        return np.zeros((count, 2), dtype=np.int64)
    if format == "csv":
        from ipallow.loaders import _csv_items       # the loader's own row positions
        places = _csv_items(text, name)[1]
    else:
        # Generated lists have an entry on every line, flush left: then line = index + 1.
        if _line_count(text) == count and not re.search(r"(?m)^[ \t]", text):
            return np.stack([np.arange(1, count + 1), np.ones(count, dtype=np.int64)], axis=1)
        places = [(line, column) for line, column, _ in _parse.iter_text_lines(text)]
    return np.array(places, dtype=np.int64).reshape(-1, 2)


# Line breaks str.splitlines knows besides "\n" and "\r\n".
_OTHER_LINE_BREAKS = re.compile("\r(?!\n)|[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _line_count(text: str) -> int:
    """``len(text.splitlines())`` without making the lines (for a world-sized list, a
    million strings: the peak of a validate)."""
    if _OTHER_LINE_BREAKS.search(text):
        return len(text.splitlines())
    return text.count("\n") + (not text.endswith("\n") and bool(text))


def _registry_places(name: str, text: str, format: str) -> dict[str, tuple[int, int]]:
    """id -> (line, column) of its first record's networks value, for a registry file."""
    from ipallow import registry as reg
    rows = (reg._csv_rows if format == "registry-csv" else reg._jsonl_rows)(text, name, [])
    places: dict[str, tuple[int, int]] = {}
    for row in rows:
        rid = row["id"].value
        if isinstance(rid, (str, int)) and not isinstance(rid, bool):
            places.setdefault(str(rid).strip(), (row["networks"].line, row["networks"].column))
    return places


def _prefix_texts(c, rows: np.ndarray) -> list[str]:
    """CIDR text of some prefix rows, formatted in bulk (no ipaddress objects)."""
    unique, inverse = np.unique(rows, return_inverse=True)
    texts = np.empty(len(unique), dtype=object)
    for v in (4, 6):
        where = np.flatnonzero(c.version[unique] == v)
        if len(where):
            r = unique[where]
            texts[where] = (ipv4_strings(c.lo[r], c.prefixlen[r]) if v == 4
                            else ipv6_strings(c.hi[r], c.lo[r], c.prefixlen[r]))
    return texts[inverse].tolist()


class Found(NamedTuple):
    """The warnings of a file, in file order (one per pair of registrations and kind)."""

    line: list
    column: list
    kind: list           # "duplicate" / "overlap"
    message: list
    network: list
    other_network: list
    other_line: list
    id: list | None      # registry ids (None for plain lists)
    other_id: list | None

    def __len__(self) -> int:
        return len(self.line)

    def records(self, path: str) -> list[dict[str, Any]]:
        out = []
        for k in range(len(self)):
            record = {"path": path, "line": self.line[k], "column": self.column[k], "kind": self.kind[k],
                      "message": self.message[k], "network": self.network[k],
                      "other_network": self.other_network[k], "other_line": self.other_line[k]}
            if self.id is not None:
                record["id"], record["other_id"] = self.id[k], self.other_id[k]
            out.append(record)
        return out


def warnings_of(source, file_name: str, text: str) -> Found:
    """Duplicate / overlap warnings: one per pair of registrations and kind, in file order."""
    allowlist = source.allowlist
    c = allowlist.compiled
    found = find_overlaps(c.version, c.hi, c.lo, c.prefixlen)
    count = len(allowlist)
    inner_reg = c.prefix_reg[found.inner].astype(np.int64)
    outer_reg = c.prefix_reg[found.outer].astype(np.int64)
    # One warning per (registration, registration, kind): a range gives several prefixes.
    key = (inner_reg * max(count, 1) + outer_reg) * 2 + found.kind
    _, first = np.unique(key, return_index=True)
    first.sort()
    kind, inner, outer = found.kind[first], found.inner[first], found.outer[first]
    inner_reg, outer_reg = inner_reg[first], outer_reg[first]
    if not len(first):          # nothing to place: no line positions worked out
        return Found([], [], [], [], [], [], [], None if source.registry is None else [],
                     None if source.registry is None else [])
    if source.registry is not None:
        by_id = _registry_places(file_name, text, source.format)
        all_ids = [registration_label(d, i) for i, d in enumerate(c.data or [None] * count)]
        places = np.array([by_id.get(rid, (0, 0)) for rid in all_ids], dtype=np.int64).reshape(-1, 2)
    else:
        all_ids = None
        places = _plain_places(file_name, text, count, source.format)
    line, column = places[inner_reg, 0], places[inner_reg, 1]
    other_line = places[outer_reg, 0]
    order = np.lexsort((column, line))
    kind, inner_reg, outer_reg = kind[order], inner_reg[order], outer_reg[order]
    line, column, other_line = line[order].tolist(), column[order].tolist(), other_line[order].tolist()
    nets = _prefix_texts(c, inner[order])
    others = _prefix_texts(c, outer[order])
    same = (inner_reg == outer_reg).tolist()
    if all_ids is None:
        ids = other_ids = None
        where = ["the same registration" if s else f"line {ol}" if ol else f"registration #{j}"
                 for s, ol, j in zip(same, other_line, outer_reg.tolist())]
    else:
        ids = [all_ids[i] for i in inner_reg.tolist()]
        other_ids = [all_ids[j] for j in outer_reg.tolist()]
        # A snapshot has no lines (0): the id alone says which registration.
        where = [f"the same registration {i}" if s else f"{j}, line {ol}" if ol else j
                 for s, i, j, ol in zip(same, ids, other_ids, other_line)]
    kinds = [KINDS[k] for k in kind.tolist()]
    # Of several registrations of one prefix, the one that answers is the
    # outer row: a registry's lowest id in natural order, a plain list's first line.
    if all_ids is None:
        winner = [f"the first (line {ol}) answers lookups" if ol else
                  f"registration #{j} answers lookups (the first)"
                  for ol, j in zip(other_line, outer_reg.tolist())]
    else:
        winner = [f"{j} answers lookups (the lowest id)" for j in other_ids]
    message = [f"{n} is registered again ({w}); {a}" if k == "duplicate"
               else f"{n} lies inside {o} ({w}); lookups return the longer prefix"
               for k, n, o, w, a in zip(kinds, nets, others, where, winner)]
    return Found(line, column, kinds, message, nets, others, other_line, ids, other_ids)
