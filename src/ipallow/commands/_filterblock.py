"""`ipallow filter`'s engine: one block of input lines classified, counted and written.

Throughput comes from never touching a line in Python on the common path: plain
lines kept or dropped (the default, --denied) go through one pass of the core
(``_trie.filter_lines``: find, parse, look up, copy out); for --annotate and
--count-by, which need every line's answer, the core locates them (``_trie.line_rows``)
and ``Allowlist._match_text_arrow`` reads them in place; a column of CSV/TSV lines is
located with numpy over the raw bytes (:mod:`ipallow._delimited`) and classified by one call of
``Allowlist._match_text`` (a C loop: parse + lookup).  Only the lines that need a
message (unparseable ones, the first few in full) are looked at one by one.

Not a command: ``register`` is a no-op because ``ipallow.cli`` registers every
module of this package.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ipallow import _trie
from ipallow.errors import AddressError
from ipallow.allowlist import registration_label
from ipallow.commands._format import SHOWN_TEXT, printable, quoted
from ipallow.commands._progress import Progress

if TYPE_CHECKING:
    from ipallow._delimited import Fields


def register(subparsers) -> None:  # noqa: ARG001 - see the module docstring
    """Nothing: this module is a helper, not a command."""


@dataclass
class Counts:
    lines: int = 0
    allowed: int = 0
    denied: int = 0
    unparseable: int = 0
    blank: int = 0
    output: int = 0
    missing: int = 0           # lines without the --column field
    reported: list = field(default_factory=list)


def _strips(data: bytes) -> bool:
    """Whether a block's plain lines are stripped: when it holds a CR, space or tab anywhere
    (a block without them keeps a lone \\x0b or \\x0c as part of a line's text)."""
    return b"\r" in data or b" " in data or b"\t" in data


class Stop(Exception):
    """--strict met an unparseable address."""


class Tally:
    """--count-by registration: lines (and bytes) per registration, denied and invalid."""

    def __init__(self, registrations: int, with_bytes: bool) -> None:
        self.lines = np.zeros(registrations, dtype=np.int64)
        self.bytes = np.zeros(registrations, dtype=np.int64) if with_bytes else None
        self.other = {"denied": [0, 0], "invalid": [0, 0]}    # [lines, bytes]
        self.bad_bytes = 0


class Filter:
    def __init__(self, args: argparse.Namespace, allowlist, out, err_stream, name: str) -> None:
        self.args = args
        self.allowlist = allowlist
        self.prefix_reg = allowlist.compiled.prefix_reg
        self.data = allowlist.compiled.data
        self.out = out
        self.name = name
        self.mode = ("count" if args.count_by else "annotate" if args.annotate
                     else "denied" if args.denied else "allowed")
        self.tally = Tally(len(allowlist), args.bytes is not None) if args.count_by else None
        self.bytes_column: int | None = None
        self.counts = Counts()
        self.column: int | None = None
        self.column_label = ""
        self.sep = ord("\t")
        self.delimited = None
        if args.column is not None:
            # Here, not at the top: csv and a NamedTuple are 4-6 ms of start-up plain lines skip.
            from ipallow import _delimited
            self.delimited = _delimited
        self.labels: dict[int, bytes] = {}
        self.bar: Progress | None = None
        self.err_stream = err_stream

    # -- labels for --annotate
    def _quote(self, text: str) -> bytes:
        raw = text.encode("utf-8", "replace")
        if self.column is not None and (self.sep in raw or self.delimited.QUOTE in raw):
            raw = b'"' + raw.replace(b'"', b'""') + b'"'
        return raw

    def _suffix(self, verdict: str, label: str = "") -> bytes:
        s = bytes([self.sep])
        return s + verdict.encode() + s + self._quote(label) + b"\n"

    def _label_of(self, reg: int) -> bytes:
        label = self.labels.get(reg)
        if label is None:
            data = self.data[reg] if self.data is not None else None
            label = self.labels[reg] = self._suffix("allowed", registration_label(data, reg))
        return label

    # -- reporting unparseable lines
    def _report(self, line_no: int, raw: bytes, column: int, present: bool) -> None:
        """Count-only past --report-limit; else one INPUT:LINE:COL: message (or a JSON entry)."""
        c = self.counts
        if len(c.reported) >= self.args.report_limit and not self.args.strict:
            return
        text = raw.decode("utf-8", "replace")
        if not present:
            message = f"no {self.column_label}: the line has fewer fields"
        elif not text:
            message = f"empty {self.column_label}" if self.column is not None else "empty address"
        else:
            try:
                _trie.parse_address(text)
                message = f"unparseable address {quoted(text)}"
            except AddressError as exc:
                message = f"invalid IP address {quoted(exc.text)}: {printable(exc.reason)}"
                column += (exc.column or 1) - 1
            except (TypeError, ValueError) as exc:
                message = printable(str(exc))
        c.reported.append({"line": line_no, "column": column, "text": text[:SHOWN_TEXT],
                           "length": len(text), "message": message})
        if not self.args.json:
            line = f"{self.name}:{line_no}:{column}: {message}"
            if self.bar is not None:
                self.bar.message(line)
            else:
                print(line, file=self.err_stream)

    # -- one block of whole lines
    def block(self, data: bytes, first_line_no: int) -> int:
        """Classify and write one block of whole lines; return how many lines it had.

        Raises Stop (--strict) at the first unparseable address.
        """
        if self.column is None and self.mode in ("allowed", "denied"):
            return self._keep_lines(data, first_line_no)
        lines = None
        if self.column is None:
            # No object per line: the core packs the lines' (stripped) texts end to end and
            # the index reads them there, as the rows of an Arrow string array.
            packed, rows, text_starts, newlines = _trie.line_rows(data, _strips(data))
            result = self.allowlist._match_text_arrow(rows, packed, None, 0, len(newlines), large=True)
            bounds = None
        else:
            bounds = self.delimited.locate(data, self.column, self.sep)
            texts, starts, ends, fs, present = bounds
            result = self.allowlist._match_text(texts)
        n = block_lines = len(result)

        def plain_text(i: int) -> bytes:
            return packed[int(rows[i]):int(rows[i + 1])]

        # Rows that are neither allowed nor denied: blank lines, or unparseable addresses.
        odd = np.flatnonzero(result < -1)
        if len(odd):
            if bounds is None:
                is_blank = rows[odd] == rows[odd + 1]
            else:
                is_blank = np.array([not data[s:e].strip() for s, e in
                                     zip(starts[odd].tolist(), ends[odd].tolist())], dtype=bool)
            blank, bad = odd[is_blank], odd[~is_blank]
        else:
            blank = bad = odd
        stopped = False
        if len(bad) and self.args.strict:
            stopped, n = True, int(bad[0])
            bad, blank, result = bad[:1], blank[blank < n], result[:n]
        for i in bad.tolist():
            if bounds is None:
                text = plain_text(i)
                line_start = int(newlines[i - 1]) + 1 if i else 0
                column = int(text_starts[i]) - line_start + 1 if text else 1
                self._report(first_line_no + i, text, column, True)
            else:
                self._report(first_line_no + i, texts[i], int(fs[i] - starts[i]) + 1, bool(present[i]))

        c = self.counts
        allowed = result >= 0
        denied = result == -1
        n_allowed = int(np.count_nonzero(allowed))
        n_denied = int(np.count_nonzero(denied))
        c.lines += n
        c.allowed += n_allowed
        c.denied += n_denied
        c.blank += len(blank)
        c.unparseable += n - n_allowed - n_denied - len(blank)
        if stopped:                 # the fatal line itself: read and counted, not written
            c.lines += 1
            c.unparseable += 1

        if len(bad) and bounds is not None:
            c.missing += int(np.count_nonzero(~present[bad]))
        if self.mode == "count":
            self._count(data, bounds, result, bad, first_line_no, n)
        elif self.mode == "annotate":
            self._annotate(data, lines, result, blank, n)
        else:
            select, count = (allowed, n_allowed) if self.mode == "allowed" else (denied, n_denied)
            if count:                       # lines pass through as read (a CR before \n stays)
                self.out.write(self.delimited.selected_lines(data, starts[:n], ends[:n], select))
                c.output += count
        if stopped:
            raise Stop
        return block_lines

    def _keep_lines(self, data: bytes, first_line_no: int) -> int:
        """``block`` for plain lines kept or dropped: one pass in the core, no array per line."""
        c = self.counts
        stopping = self.args.strict
        report = 1 if stopping else max(self.args.report_limit - len(c.reported), 0)
        kept, n, allowed, denied, blank, bad = _trie.filter_lines(
            self.allowlist, data, self.mode == "allowed", _strips(data), stopping, report)
        for i, line_start, text_start, text_end in bad:
            text = data[text_start:text_end]
            self._report(first_line_no + i, text, text_start - line_start + 1, True)
        c.lines += n
        c.allowed += allowed
        c.denied += denied
        c.blank += blank
        c.unparseable += n - allowed - denied - blank
        if kept:                            # lines pass through as read (a CR before \n stays)
            self.out.write(kept)
            c.output += allowed if self.mode == "allowed" else denied
        if stopping and bad:                # the fatal line itself: read and counted, not written
            c.lines += 1
            c.unparseable += 1
            raise Stop
        return n

    def _byte_counts(self, data: bytes, bounds: Fields, n: int, first_line_no: int) -> np.ndarray:
        """The --bytes field of the first ``n`` lines as int64; a bad value counts 0 and is reported."""
        texts, starts, _, fs, present = self.delimited.locate(data, self.bytes_column, self.sep,
                                                          lines=(bounds.starts[:n], bounds.ends[:n]))
        try:
            values = np.array(texts, dtype="S").astype(np.int64) if texts else np.zeros(0, np.int64)
            ok = values >= 0
        except (ValueError, OverflowError):
            values = np.zeros(len(texts), dtype=np.int64)
            ok = np.zeros(len(texts), dtype=bool)
            for i, text in enumerate(texts):
                if text.isdigit() and len(text) < 19:
                    values[i], ok[i] = int(text), True
        for i in np.flatnonzero(~ok).tolist():
            values[i] = 0
            tally = self.tally
            tally.bad_bytes += 1
            if tally.bad_bytes <= self.args.report_limit:
                shown = quoted(texts[i].decode("utf-8", "replace")) if present[i] else "(no such field)"
                self._say(f"{self.name}:{first_line_no + i}:{int(fs[i] - starts[i]) + 1}: "
                          f"not a byte count: {shown}; counted as 0")
        return values

    def _count(self, data: bytes, bounds, result, bad, first_line_no: int, n: int) -> None:
        tally = self.tally
        result = result[:n]
        sizes = self._byte_counts(data, bounds, n, first_line_no) if tally.bytes is not None else None
        hit = np.flatnonzero(result >= 0)
        regs = self.prefix_reg[result[hit]]
        tally.lines += np.bincount(regs, minlength=len(tally.lines))
        if sizes is not None:
            np.add.at(tally.bytes, regs, sizes[hit])
        bad = bad[bad < n]
        for key, rows in (("denied", np.flatnonzero(result == -1)), ("invalid", bad)):
            tally.other[key][0] += len(rows)
            if sizes is not None:
                tally.other[key][1] += int(sizes[rows].sum())

    def _say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.message(line)
        else:
            print(line, file=self.err_stream)

    def _annotate(self, data, lines, result, blank, n) -> None:
        if lines is None:
            lines = data.split(b"\n")
            lines.pop()
        if b"\r" in data:
            lines = [line.rstrip(b"\r") for line in lines]
        lines = lines[:n]
        suffix = np.empty(n, dtype=object)
        suffix[result == -1] = self._suffix("denied")
        suffix[result < -1] = self._suffix("invalid")
        suffix[blank] = b"\n"
        hit = np.flatnonzero(result >= 0)
        if len(hit):
            regs = self.prefix_reg[result[hit]]
            unique, inverse = np.unique(regs, return_inverse=True)
            labels = np.empty(len(unique), dtype=object)
            labels[:] = [self._label_of(r) for r in unique.tolist()]
            suffix[hit] = labels[inverse]
        joined: list[Any] = [None] * (2 * n)
        joined[0::2] = lines
        joined[1::2] = suffix.tolist()
        self.out.write(b"".join(joined))
        self.counts.output += n

    def header(self, line: bytes) -> None:
        if self.mode == "annotate":
            body = line.rstrip(b"\r\n")
            s = bytes([self.sep])
            self.out.write(body + s + b"verdict" + s + b"registration\n")
        else:
            self.out.write(line if line.endswith(b"\n") else line + b"\n")
