"""`ipallow filter`: stream addresses (plain lines or a column of CSV/TSV flow logs) through the list.

Throughput comes from never touching a line in Python on the common path:
the input is read in large binary blocks, the block is split into lines (or
its address column is located with numpy over the raw bytes) in bulk, and the
whole block is classified by one call of ``Allowlist._match_text`` (a C loop:
parse + lookup).  Only the lines that need a message (unparseable ones, the
first few in full) are looked at one by one.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import stat
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ipallow import AddressError, _trie
from ipallow.commands import EXIT_ERROR, EXIT_NEGATIVE, EXIT_OK
from ipallow.allowlist import registration_label
from ipallow.commands._common import (AT_HELP, STDIN_NAME, add_list_arguments, add_parser, chosen_list,
                                      load_allowlist, parse_at_argument, print_json,
                                      stops_quietly_on_closed_output)
from ipallow.commands._progress import Progress

EXAMPLES = """\
examples:
  ipallow filter --list registered.csv addresses.txt > allowed.txt
  ipallow filter --list registered.csv --denied addresses.txt     # the lines NOT allowed
  tail -F flows.csv | ipallow filter --list registered.csv --column srcaddr --denied -
  ipallow filter --list registered.csv --column 4 --field-sep ' ' --annotate vpc-flows.log
  ipallow filter --list registered.csv --strict --json addresses.txt 2> summary.json
  ipallow filter --list registry.csv --column src --count-by registration --bytes bytes flows.csv.gz
  export IPALLOW_LIST=/etc/ipallow/registry.jsonl; ipallow filter addresses.txt
  echo 203.0.113.9 | ipallow filter --sample      # the bundled demo registry, to try it out

input:
  Plain: one address per line (surrounding blanks and CR ignored; blank lines skipped).
  --column NAME: the first line is a header naming the columns; it is passed through
  (with 'verdict' and 'registration' appended by --annotate).  --column N (1-based)
  reads field N; add --header when the first line is a header.  Fields are split at
  --field-sep (default: tab if the first line has one, else comma, else space);
  double-quoted CSV fields are understood (not ones spanning lines).  gzip, bzip2 and xz
  input (zstd with the zstandard module) is decompressed, told by its magic bytes.

output (stdout):
  --allowed (default) the lines whose address is covered by a registration
  --denied            the lines whose address is valid but not covered
  --annotate          every line + SEP verdict (allowed|denied|invalid) + SEP registration
                      id (the 'id' column of the list, else #index); SEP is the field
                      separator with --column, else a tab
  --count-by registration  no lines: a table (--json: an object) of lines, and with --bytes
                      COL bytes, per registration (natural id order), then denied and invalid
  Unparseable addresses are never output by --allowed/--denied, never dropped silently:
  they are counted, and the first few reported as INPUT:LINE:COL: message on stderr
  (a long line is cut to 200 characters, its length given).
  A summary of counts goes to stderr at the end (--json: one JSON object instead).

exit status: 0 some line was output (--count-by: some line was counted), 1 no line was
selected (like grep), 2 error: usage, no list given (--list, $IPALLOW_LIST or --sample),
unreadable, corrupt or truncated input, a --column that no line has, an unreadable list,
or (--strict) an unparseable address -- processing stops at that line; the lines before
it have been written."""

BLOCK_SIZE = 1 << 18          # bytes read at a time: 256 KiB keeps a block's line objects in cache
_NL = 10
_CR = 13
_QUOTE = 34

VERDICTS = ("allowed", "denied", "invalid")


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


class Stop(Exception):
    """--strict met an unparseable address."""


class Tally:
    """--count-by registration: lines (and bytes) per registration, denied and invalid."""

    def __init__(self, registrations: int, with_bytes: bool) -> None:
        self.lines = np.zeros(registrations, dtype=np.int64)
        self.bytes = np.zeros(registrations, dtype=np.int64) if with_bytes else None
        self.other = {"denied": [0, 0], "invalid": [0, 0]}    # [lines, bytes]
        self.bad_bytes = 0


# -- reading ---------------------------------------------------------------------------------

class BadInput(Exception):
    """The input cannot be read as lines (corrupt or truncated compressed data)."""


# Compressed input is told by its magic bytes, whatever the file is called:
# name, magic, a factory of decompressor objects (None: the module is missing).
def _zstd():
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard.ZstdDecompressor().decompressobj


def _codecs():
    import bz2
    import lzma
    import zlib
    return (("gzip", b"\x1f\x8b", lambda: zlib.decompressobj(wbits=31)),
            ("bzip2", b"BZh", bz2.BZ2Decompressor),
            ("xz", b"\xfd7zXZ\x00", lzma.LZMADecompressor),
            ("zstd", b"\x28\xb5\x2f\xfd", _zstd()))


MAGIC_SIZE = 6
COMPRESSED_READ = 1 << 16     # small reads of compressed input bound each decompressed piece


def _raw_chunks(fd: int, bar: Progress, size: int):
    done = 0
    while True:
        chunk = os.read(fd, size)
        if not chunk:
            return
        done += len(chunk)
        bar.update(done)
        yield chunk


def _input_chunks(fd: int, bar: Progress):
    """The bytes of the input, decompressed when it starts with a gzip, bzip2, xz or zstd magic.

    Concatenated members (``cat a.gz b.gz``, rotated logs) are read one after
    another.  Raises BadInput for corrupt or truncated data, or zstd input
    without the ``zstandard`` module.
    """
    head = b""
    while len(head) < MAGIC_SIZE:
        chunk = os.read(fd, BLOCK_SIZE)
        if not chunk:
            break
        head += chunk
    bar.update(len(head))
    codec = next(((name, make) for name, magic, make in _codecs() if head.startswith(magic)), None)
    if codec is None:
        if head:
            yield head
        yield from _raw_chunks(fd, bar, BLOCK_SIZE)
        return
    name, make = codec
    if make is None:
        raise BadInput(f"{name}-compressed input needs the zstandard module (pip install zstandard)")
    decompressor = make()
    fed = False
    try:
        for chunk in itertools.chain([head], _raw_chunks(fd, bar, COMPRESSED_READ)):
            while chunk:
                fed = True
                out = decompressor.decompress(chunk)
                if out:
                    yield out
                if decompressor.eof:        # the next member, if any, starts here
                    chunk, decompressor, fed = decompressor.unused_data, make(), False
                else:
                    chunk = b""
    except BadInput:
        raise
    except Exception as exc:    # zlib.error, OSError, LZMAError, ZstdError ...: all mean corrupt input
        raise BadInput(f"corrupt {name} input: {exc}") from None
    if fed:
        raise BadInput(f"truncated {name} input (the stream ends before its end marker)")


def _read_blocks(chunks):
    """Blocks of whole lines (each ending in a newline) from the input chunks, in order.

    ``os.read`` returns what is there (a pipe: as soon as the writer wrote), so
    ``tail -F | ipallow filter`` passes lines on without waiting for a full block.
    """
    carry = b""
    for chunk in chunks:
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        carry = data[cut:]
        yield data[:cut] if cut < len(data) else data
    if carry:
        yield carry + b"\n"


SHOWN_TEXT = 200     # characters of an offending line or field shown in a message


def _printable(text: str, limit: int = SHOWN_TEXT) -> str:
    """``text`` fit for a one-line message: control characters escaped, cut to ``limit``
    characters with its full length said (a 20 MB line is never echoed whole)."""
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in cut)
    if len(text) > limit:
        cut += f"... ({len(text):,} characters)"
    return cut


def _quoted(text: str) -> str:
    """``repr(text)``, cut to SHOWN_TEXT characters with the full length said."""
    if len(text) <= SHOWN_TEXT:
        return repr(text)
    return f"{text[:SHOWN_TEXT]!r}... ({len(text):,} characters)"


def _separator(value: str | None, first_line: bytes) -> int:
    if value is None:
        for candidate in (b"\t", b",", b" "):
            if candidate in first_line:
                return candidate[0]
        return ord(",")
    named = {"\\t": "\t", "tab": "\t", "TAB": "\t", "space": " ", "comma": ",", "\\s": " "}
    value = named.get(value, value)
    raw = value.encode("utf-8")
    if len(raw) != 1 or raw in (b"\n", b"\r", b'"'):
        raise ValueError(f"--field-sep must be one ASCII character (or \\t), not {value!r}")
    return raw[0]


def _split_fields(line: bytes, sep: int) -> list[bytes]:
    """Fields of one line, CSV quoting understood (the slow path)."""
    if _QUOTE not in line:
        return line.split(bytes([sep]))
    text = line.decode("utf-8", "surrogateescape")
    row = next(csv.reader([text], delimiter=chr(sep), skipinitialspace=False), [])
    return [f.encode("utf-8", "surrogateescape") for f in row]


def _resolve_column(spec: str, header: bytes | None, sep: int) -> tuple[int, str]:
    """0-based field index of --column, and how to name it in messages."""
    if spec.isdigit():
        index = int(spec)
        if index < 1:
            raise ValueError("--column numbers start at 1")
        return index - 1, f"field {index}"
    assert header is not None
    names = [f.strip().decode("utf-8", "replace") for f in _split_fields(header.rstrip(b"\r\n"), sep)]
    for candidates in (names, [n.lower() for n in names]):
        want = spec if candidates is names else spec.lower()
        if want in candidates:
            return candidates.index(want), f"column {spec!r}"
    shown = ", ".join(_printable(n, 40) for n in names[:20]) + (", ..." if len(names) > 20 else "")
    raise ValueError(f"no column {spec!r} in the header line (separator {chr(sep)!r}): {shown}")


# -- locating the address of every line --------------------------------------------------------

def _line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ends = np.flatnonzero(buf == _NL)
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
    newlines = buf == _NL
    marks = buf == sep
    marks |= newlines
    delims = np.flatnonzero(marks)
    if len(delims) != fields * int(np.count_nonzero(newlines)):
        return None
    ends = delims[fields - 1::fields]
    if not (buf[ends] == _NL).all():
        return None
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    fs = delims[column - 1::fields] + 1 if column else starts.copy()
    fe = delims[column::fields].copy()
    return starts, ends, fs, fe, np.ones(len(ends), dtype=bool)


def _trim(buf: np.ndarray, fs: np.ndarray, fe: np.ndarray) -> None:
    """Move field bounds past surrounding blanks and CR, in place (a few vectorised rounds)."""
    while True:
        m = fs < fe
        m[m] = (buf[fs[m]] == 32) | (buf[fs[m]] == 9) | (buf[fs[m]] == _CR)
        if not m.any():
            break
        fs[m] += 1
    while True:
        m = fe > fs
        last = buf[fe[m] - 1]
        m[m] = (last == 32) | (last == 9) | (last == _CR)
        if not m.any():
            break
        fe[m] -= 1


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


def _selected_runs(data: bytes, starts: np.ndarray, ends: np.ndarray, select: np.ndarray) -> bytes:
    """The selected lines (with their newlines), copied as runs of consecutive lines."""
    edges = np.diff(select.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    first = starts[np.flatnonzero(edges == 1)]
    stop = ends[np.flatnonzero(edges == -1) - 1] + 1
    return b"".join([data[i:j] for i, j in zip(first.tolist(), stop.tolist())])


# -- the command -----------------------------------------------------------------------------

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
        self.labels: dict[int, bytes] = {}
        self.bar: Progress | None = None
        self.err_stream = err_stream

    # -- labels for --annotate
    def _quote(self, text: str) -> bytes:
        raw = text.encode("utf-8", "replace")
        if self.column is not None and (self.sep in raw or _QUOTE in raw):
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
                message = f"unparseable address {_quoted(text)}"
            except AddressError as exc:
                message = f"invalid IP address {_quoted(exc.text)}: {_printable(exc.reason)}"
                column += (exc.column or 1) - 1
            except (TypeError, ValueError) as exc:
                message = _printable(str(exc))
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
        if self.column is None:
            lines = data.split(b"\n")
            lines.pop()
            needs_strip = b"\r" in data or b" " in data or b"\t" in data
            texts = [t.strip() for t in lines] if needs_strip else lines
            bounds = None
        else:
            lines = None
            buf = np.frombuffer(data, dtype=np.uint8)
            regular = _regular_bounds(data, buf, self.column, self.sep)
            if regular is not None:
                starts, ends, fs, fe, present = regular
            else:
                starts, ends = _line_bounds(buf)
                fs, fe, present = _field_bounds(buf, starts, ends, self.column, self.sep)
            if b" " in data or b"\t" in data or b"\r" in data:
                _trim(buf, fs, fe)
            texts = [data[i:j] for i, j in zip(fs.tolist(), fe.tolist())]
            if _QUOTE in data:
                self._unquote(data, starts, ends, texts, present)
            bounds = (buf, starts, ends, fs, fe, present)
        result = self.allowlist._match_text(texts)
        n = block_lines = len(result)

        # Rows that are neither allowed nor denied: blank lines, or unparseable addresses.
        odd = np.flatnonzero(result < -1)
        if len(odd):
            if bounds is None:
                is_blank = np.array([not texts[i] for i in odd.tolist()], dtype=bool)
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
                column = lines[i].find(texts[i]) + 1 if texts[i] else 1
                self._report(first_line_no + i, texts[i], column, True)
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
                if lines is not None:
                    chosen = list(itertools.compress(lines, select.tolist()))
                    chosen.append(b"")
                    self.out.write(b"\n".join(chosen))
                else:
                    self.out.write(_selected_runs(data, starts[:n], ends[:n], select))
                c.output += count
        if stopped:
            raise Stop
        return block_lines

    def _unquote(self, data: bytes, starts, ends, texts: list[bytes], present, column=None) -> None:
        """Redo the lines that contain a double quote with the csv module (the slow path)."""
        column = self.column if column is None else column
        quoted = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _QUOTE)
        rows = np.unique(np.searchsorted(ends, quoted))
        for i in rows.tolist():
            fields = _split_fields(data[int(starts[i]):int(ends[i])].rstrip(b"\r"), self.sep)
            present[i] = column < len(fields)
            texts[i] = fields[column].strip() if present[i] else b""

    def _byte_counts(self, data: bytes, bounds, n: int, first_line_no: int) -> np.ndarray:
        """The --bytes field of the first ``n`` lines as int64; a bad value counts 0 and is reported."""
        buf, starts, ends = bounds[0], bounds[1][:n], bounds[2][:n]
        fs, fe, present = _field_bounds(buf, starts, ends, self.bytes_column, self.sep)
        if b" " in data or b"\t" in data or b"\r" in data:
            _trim(buf, fs, fe)
        texts = [data[i:j] for i, j in zip(fs.tolist(), fe.tolist())]
        if _QUOTE in data:
            self._unquote(data, starts, ends, texts, present, self.bytes_column)
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
                shown = _quoted(texts[i].decode("utf-8", "replace")) if present[i] else "(no such field)"
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


def _print_tally(flt: "Filter", name: str) -> None:
    """The --count-by table (or JSON) on stdout: registrations in natural id order, then the rest."""
    from ipallow.registry import id_key
    tally = flt.tally
    rows = []
    for reg in np.flatnonzero(tally.lines).tolist():
        data = flt.data[reg] if flt.data is not None else None
        rows.append((registration_label(data, reg), reg, int(tally.lines[reg]),
                     int(tally.bytes[reg]) if tally.bytes is not None else None))
    rows.sort(key=lambda row: id_key(row[0]))
    with_bytes = tally.bytes is not None
    if flt.args.json:
        def entry(lines, size):
            return {"lines": lines, **({"bytes": size} if with_bytes else {})}
        print_json({"input": name, "count_by": "registration",
                    "registrations": [{"id": label, "registration": reg, **entry(lines, size)}
                                      for label, reg, lines, size in rows],
                    "denied": entry(*tally.other["denied"]), "invalid": entry(*tally.other["invalid"])})
        return
    table = [(label, lines, size) for label, _, lines, size in rows]
    table += [(f"({key})", *tally.other[key]) for key in ("denied", "invalid")]
    heads = ("registration", "lines") + (("bytes",) if with_bytes else ())
    cells = [heads] + [(label, f"{lines:,}") + ((f"{size:,}",) if with_bytes else ())
                       for label, lines, size in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(heads))]
    for row in cells:
        print("  ".join([row[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(row[1:], widths[1:])]))


def _summary_line(name: str, c: Counts, seconds: float) -> str:
    rate = c.lines / seconds if seconds > 0 else 0.0
    shown = ""
    if c.unparseable > len(c.reported):
        shown = f" (first {len(c.reported)} shown)"
    return (f"ipallow filter: {name}: {c.lines:,} lines: {c.allowed:,} allowed, {c.denied:,} denied, "
            f"{c.unparseable:,} unparseable{shown}, {c.blank:,} blank; {c.output:,} written; "
            f"{seconds:.2f} s, {rate / 1e6:.2f} M lines/s")


@stops_quietly_on_closed_output
def cmd_filter(args: argparse.Namespace) -> int:
    name = STDIN_NAME if args.input == "-" else args.input
    list_name = chosen_list(args)
    if list_name == "-" and args.input == "-":
        print("ipallow filter: the list and the input cannot both be stdin", file=sys.stderr)
        return EXIT_ERROR
    if args.report_limit < 0:
        print("ipallow filter: --report-limit must be >= 0", file=sys.stderr)
        return EXIT_ERROR
    if args.count_by and (args.denied or args.annotate):
        print("ipallow filter: --count-by counts every line; it takes no --denied or --annotate",
              file=sys.stderr)
        return EXIT_ERROR
    if args.bytes is not None and (not args.count_by or args.column is None):
        print("ipallow filter: --bytes needs --count-by and --column", file=sys.stderr)
        return EXIT_ERROR
    allowlist = load_allowlist(list_name, list_format=args.list_format, at=args.at)
    if args.input == "-":
        fd, total = sys.stdin.buffer.fileno(), None
        handle = None
    else:
        handle = open(args.input, "rb", buffering=0)
        fd = handle.fileno()
        info = os.fstat(fd)
        total = info.st_size if stat.S_ISREG(info.st_mode) else None
    out = sys.stdout.buffer
    flt = Filter(args, allowlist, out, sys.stderr, name)
    started = time.perf_counter()
    status = None
    bar = Progress(f"filtering {name}", total, unit="B",
                   enabled=False if args.json else None)
    flt.bar = bar if bar.enabled else None
    try:
        with bar:
            blocks = _read_blocks(_input_chunks(fd, bar))
            line_no = 1
            if args.column is not None:
                first = next(blocks, b"")
                head, _, rest = first.partition(b"\n")
                try:
                    flt.sep = _separator(args.field_sep, head)
                    has_header = not args.column.isdigit() or args.header
                    flt.column, flt.column_label = _resolve_column(args.column, head if has_header else None,
                                                                   flt.sep)
                    if args.bytes is not None:
                        if not args.bytes.isdigit() and not has_header:
                            raise ValueError("--bytes NAME needs a header line (--column NAME or --header)")
                        flt.bytes_column = _resolve_column(args.bytes, head if has_header else None,
                                                           flt.sep)[0]
                except ValueError as exc:
                    print(f"ipallow filter: {exc}", file=sys.stderr)
                    return EXIT_ERROR
                if first and has_header:
                    if flt.mode != "count":         # counts replace the lines, header included
                        flt.header(head + b"\n")
                    line_no = 2
                    first = rest
                if first:
                    blocks = itertools.chain([first], blocks)
            elif args.field_sep is not None or args.header:
                print("ipallow filter: --field-sep and --header need --column", file=sys.stderr)
                return EXIT_ERROR
            try:
                for data in blocks:
                    line_no += flt.block(data, line_no)
                    out.flush()
            except Stop:
                out.flush()
                status = EXIT_ERROR
    except BadInput as exc:
        out.flush()
        print(f"ipallow filter: {name}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if handle is not None:
            handle.close()
    seconds = time.perf_counter() - started
    c = flt.counts
    if flt.column is not None and c.missing and c.missing == c.lines - c.blank:
        # Not one line has the column: the wrong --column or --field-sep, not bad data.
        sep = {9: "tab", 32: "space"}.get(flt.sep, repr(chr(flt.sep)))
        print(f"ipallow filter: {name}: no line has {flt.column_label} (separator {sep}); "
              f"check --column and --field-sep", file=sys.stderr)
        return EXIT_ERROR
    if flt.tally is not None and status is None:
        _print_tally(flt, name)
    if args.json:
        print_json({"input": name, "lines": c.lines, "allowed": c.allowed, "denied": c.denied,
                    "unparseable": c.unparseable, "blank": c.blank, "written": c.output,
                    "mode": flt.mode, "strict": args.strict, "stopped": status is not None,
                    "unparseable_lines": c.reported, "seconds": round(seconds, 3),
                    "lines_per_second": round(c.lines / seconds) if seconds > 0 else None},
                   sys.stderr)
    elif not args.quiet or c.unparseable:
        if status is not None:
            print(f"ipallow filter: stopped at line {c.reported[-1]['line']}: unparseable address "
                  f"(--strict)", file=sys.stderr)
        print(_summary_line(name, c, seconds), file=sys.stderr)
    if status is not None:
        return status
    if flt.tally is not None:
        return EXIT_OK if c.lines > c.blank else EXIT_NEGATIVE
    return EXIT_OK if c.output else EXIT_NEGATIVE


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_parser(
        commands, "filter",
        help="stream addresses or flow-log lines; keep the allowed, the denied, or annotate each",
        description="Read addresses (one per line, or a column of CSV/TSV flow logs) and print "
                    "the allowed lines, the denied lines, or every line with its verdict.",
        examples=EXAMPLES)
    parser.add_argument("input", nargs="?", default="-", metavar="INPUT",
                        help="file to read; - or nothing for stdin")
    add_list_arguments(parser, stdin="- for stdin when INPUT is a file")
    parser.add_argument("--column", metavar="NAME|N",
                        help="the address is in this column: a header name, or a 1-based number")
    parser.add_argument("--field-sep", metavar="SEP",
                        help="field separator for --column: one character, \\t or tab, space, comma "
                             "(default: guessed from the first line)")
    parser.add_argument("--header", action="store_true",
                        help="with --column N: the first line is a header (passed through)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--allowed", action="store_true", help="print the allowed lines (the default)")
    mode.add_argument("--denied", action="store_true", help="print the denied lines")
    mode.add_argument("--annotate", action="store_true",
                      help="print every line with its verdict and registration id appended")
    parser.add_argument("--count-by", choices=("registration",),
                        help="write no lines: print how many lines (and, with --bytes, bytes) each "
                             "registration allowed, plus the denied and invalid ones, as a table "
                             "(--json: one JSON object) on stdout")
    parser.add_argument("--bytes", metavar="NAME|N",
                        help="with --count-by: the column holding each line's byte count (a header "
                             "name or a 1-based number)")
    parser.add_argument("--strict", action="store_true",
                        help="an unparseable address is fatal: stop there, exit 2")
    parser.add_argument("--report-limit", type=int, default=10, metavar="N",
                        help="report the first N unparseable lines in full (default 10); all are counted")
    parser.add_argument("--at", metavar="TIME", type=parse_at_argument, help=AT_HELP)
    parser.add_argument("--json", action="store_true",
                        help="the summary (with the reported lines) as one JSON object on stderr")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no summary on stderr unless some address was unparseable")
    parser.set_defaults(handler=cmd_filter)
