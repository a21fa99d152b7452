"""Entries -> compiled tables: parse (C fast path, Python for the rest), lay out, build.

The result is a :class:`Compiled`: a prefix table (one row per registered CIDR,
grouped by registration), the registration data, and the two Poptrie tables.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ipallow import _hugepages, _parse, _trie
from ipallow.errors import HostBitsWarning

# Level-0 sizes.  Big tables get Poptrie's 18 (IPv4) / 16 (IPv6) bits; small
# ones a smaller array so a ten-entry list does not cost a megabyte.
# IPv6 sizes keep every 6-bit step clear of the 64-bit word boundary.
BIG_TABLE = 16384
DIR_BITS_4 = (12, 18)
DIR_BITS_6 = (10, 16)

ErrorHandler = Callable[[int, Exception], None]


@dataclass
class Compiled:
    """Everything an Allowlist is made of: plain arrays, saved as is in snapshots.

    Prefix rows are in the order the tables number their answers (the core's
    first-appearance order, which keeps a leaf to one byte); registrations keep
    the order they were given in, and ``reg_rows`` lists each one's rows in the
    order its networks were given.  ``data`` is a sequence indexed by
    registration (a list, a lazily decoding view for snapshots, or a ``LazyList``
    of a registry read in bulk), or None when no registration carried data.
    """

    version: np.ndarray      # uint8, per prefix
    hi: np.ndarray           # uint64, per prefix (IPv6 high word; 0 for IPv4)
    lo: np.ndarray           # uint64, per prefix (IPv6 low word; the address for IPv4)
    prefixlen: np.ndarray    # uint8, per prefix
    reg_first: np.ndarray    # int64, registration i owns rows reg_rows[reg_first[i]:reg_first[i+1]]
    prefix_reg: np.ndarray   # int32, registration index of each prefix
    data: Sequence | None    # registration data, or None when no entry carried any
    tables: tuple            # (dir4, heap4, bits4, dir6, heap6, bits6)
    reg_rows: np.ndarray     # int32, prefix rows of the registrations, in registration order

    def rows_of(self, registration: int) -> np.ndarray:
        """Prefix rows of one registration, in the order its networks were given."""
        return self.reg_rows[int(self.reg_first[registration]):int(self.reg_first[registration + 1])]


def assemble(version: np.ndarray, hi: np.ndarray, lo: np.ndarray, plen: np.ndarray,
             reg_first: np.ndarray, data: Sequence | None) -> Compiled:
    """Compile a prefix table laid out by registration (registration i owns
    rows ``reg_first[i]:reg_first[i+1]``), renumbering the rows as the tables do."""
    tables, order = build_tables(version, hi, lo, plen)
    # After the tables, not before: a world-sized list's compile peaks in build_tables.
    sizes = np.diff(reg_first)
    prefix_reg = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    del sizes
    reg_rows = np.empty(len(order), dtype=np.int32)
    reg_rows[order] = np.arange(len(order), dtype=np.int32)
    return Compiled(version[order], hi[order], lo[order], plen[order], reg_first,
                    prefix_reg[order], data, tables, reg_rows)


def compile_entries(entries: Any, strict: bool = True,
                    on_error: ErrorHandler | None = None) -> Compiled:
    """Parse and compile registered entries.

    Arguments:
        entries: an iterable of entries or ``(entry, data)`` pairs.
        strict: host bits set in a CIDR is an error (else masked, with a warning).
        on_error: called as ``on_error(position, exception)`` for each bad item
            instead of raising the first one (the file loaders collect them).

    Raises:
        TypeError / AddressError: the first bad item, when ``on_error`` is None.
    """
    if isinstance(entries, (str, bytes)):
        raise TypeError(f"expected an iterable of entries, not a single {type(entries).__name__}; "
                        f"wrap it in a list")
    try:
        # Always a private copy (a list subclass too): the caller's list may change while
        # it is compiled (another thread, or an entry's own Python code), the copy cannot.
        items = list(entries)
    except TypeError:
        raise TypeError(f"expected an iterable of entries, got {type(entries).__name__}") from None
    version, hi, lo, plen, status, data, masked = _trie.parse_entries(items, strict)

    blocks = _ranges_in_bulk(items, version, hi, lo, plen, status)
    # Items the C fast path left alone: other types, ranges, errors to report.
    multi: dict[int, list[_parse.Network]] = {}
    failed = False
    for i in np.flatnonzero(status).tolist():
        try:
            entry, item_data = _parse.split_item(items[i])
            networks, item_masked = _parse.entry_networks(entry, strict)
        except (TypeError, ValueError) as exc:
            if on_error is None:
                exc.add_note(f"in registered entry #{i}")
                raise
            on_error(i, exc)
            failed = True
            continue
        masked += item_masked
        if item_data is not None:
            if data is None:
                data = [None] * len(items)
            data[i] = item_data
        if len(networks) == 1:
            (v, value, length), = networks
            version[i], hi[i], lo[i], plen[i] = v, value >> 64, value & 0xFFFFFFFFFFFFFFFF, length
        else:
            multi[i] = networks
    if failed:
        # The caller collected the problems and will raise; nothing is built.
        return None  # type: ignore[return-value]
    if masked and not strict:
        warnings.warn(HostBitsWarning(f"strict=False: host bits cleared in {masked} "
                                      f"network{'s' if masked != 1 else ''}")
                      , stacklevel=3)
    version, hi, lo, plen, reg_first = _lay_out(version, hi, lo, plen, multi, blocks)
    return assemble(version, hi, lo, plen, reg_first, data)


def _ranges_in_bulk(items: list, version, hi, lo, plen, status) -> "Blocks | None":
    """Cut the ranges ``a - b`` given as text all at once, with the core's one-pass reader of
    text lists (the cut a file's ranges get), and mark them done in ``status``.

    A range that is one CIDR block is written into its row here; when some range has several
    blocks, every range's blocks are returned for :func:`_lay_out`.  One by one
    (:func:`ipallow._parse.entry_networks`) ranges cost 3x their CIDRs.  Items the reader
    could take the wrong way (a newline or '#' in them, non-ASCII text) stay pending, and so
    do all the ranges when one of them is an error to report: that path gives the same blocks
    in the same order, and the messages.
    """
    picked = [i for i in np.flatnonzero(status).tolist()
              if type(items[i]) is str and "-" in items[i] and items[i].isascii()
              and "\n" not in items[i] and "#" not in items[i]]
    if not picked:
        return None
    table = _trie.scan_network_text("\n".join(items[i] for i in picked).encode("ascii"))
    if table is None or len(table[4]) != len(picked) + 1:
        return None
    block_version, block_hi, block_lo, block_plen, block_first = table
    rows = np.asarray(picked, dtype=np.int64)
    status[rows] = 0
    if len(block_version) == len(rows):          # every range is one CIDR block
        version[rows], hi[rows], lo[rows], plen[rows] = block_version, block_hi, block_lo, block_plen
        return None
    return Blocks(rows, block_first, block_version, block_hi, block_lo, block_plen)


@dataclass
class Blocks:
    """The CIDR blocks of several registrations (ranges), grouped by registration in ascending
    order: registration ``rows[g]`` has blocks ``first[g]:first[g + 1]``."""

    rows: np.ndarray          # int64, the registrations (ascending), one per group
    first: np.ndarray         # int64, len(rows) + 1
    version: np.ndarray       # uint8, per block
    hi: np.ndarray            # uint64
    lo: np.ndarray            # uint64
    prefixlen: np.ndarray     # uint8


def _lay_out(version, hi, lo, plen, multi, blocks: Blocks | None = None):
    """Prefix table grouped by registration; ranges contribute several rows (``multi``: Python
    networks per registration; ``blocks``: blocks cut in bulk)."""
    count = len(version)
    if not multi and blocks is None:
        return version, hi, lo, plen, np.arange(count + 1, dtype=np.int64)
    sizes = np.ones(count, dtype=np.int64)
    for i, networks in multi.items():
        sizes[i] = len(networks)
    if blocks is not None:
        sizes[blocks.rows] = np.diff(blocks.first)
    reg_first = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(sizes, out=reg_first[1:])
    total = int(reg_first[-1])
    single = sizes == 1
    out = [np.zeros(total, dtype=a.dtype) for a in (version, hi, lo, plen)]
    starts = reg_first[:-1][single]
    for dst, src in zip(out, (version, hi, lo, plen)):
        dst[starts] = src[single]
    if blocks is not None:
        # block k of group g goes to row reg_first[rows[g]] + (k - first[g])
        owner = np.repeat(np.arange(len(blocks.rows)), np.diff(blocks.first))
        at = reg_first[blocks.rows][owner] + (np.arange(len(owner)) - blocks.first[owner])
        out[0][at], out[1][at], out[2][at], out[3][at] = (blocks.version, blocks.hi, blocks.lo,
                                                          blocks.prefixlen)
    for i, networks in multi.items():
        for j, (v, value, length) in enumerate(networks):
            row = reg_first[i] + j
            out[0][row], out[1][row], out[2][row], out[3][row] = (
                v, value >> 64, value & 0xFFFFFFFFFFFFFFFF, length)
    return (*out, reg_first)


def build_tables(version: np.ndarray, hi: np.ndarray, lo: np.ndarray, plen: np.ndarray) -> tuple:
    """The IPv4 and IPv6 tables for a prefix table, and the row order they number.

    Returns ``(tables, order)``: the tables answer ``p + 1`` for input row
    ``order[p]``.  IPv4 answers come first, then IPv6, then the rows that never
    answer (duplicates and prefixes wholly covered by longer ones).
    """
    count = len(version)
    if count >= 1 << 30:
        raise OverflowError("more than 2**30 - 1 prefixes")
    values = np.arange(1, count + 1, dtype=np.uint32)   # build input: row + 1
    is4 = version == 4
    # IPv4: sort by (address, length); a stable sort keeps the first duplicate first.
    addr4, plen4, val4 = lo[is4], plen[is4], values[is4]
    order = np.argsort((addr4 << np.uint64(6)) | plen4.astype(np.uint64), kind="stable")
    bits4 = DIR_BITS_4[len(order) >= BIG_TABLE]
    dir4, heap4, appear4 = _trie.build_table(
        np.ascontiguousarray(addr4[order] << np.uint64(32)), np.zeros(len(order), np.uint64),
        np.ascontiguousarray(plen4[order]), np.ascontiguousarray(val4[order]), bits4, 1, count)
    del addr4, plen4, val4                 # each family's inputs go before the next is built
    is6 = ~is4
    del is4
    hi6, lo6, plen6, val6 = hi[is6], lo[is6], plen[is6], values[is6]
    order = np.lexsort((val6, plen6, lo6, hi6))
    bits6 = DIR_BITS_6[len(order) >= BIG_TABLE]
    dir6, heap6, appear6 = _trie.build_table(
        np.ascontiguousarray(hi6[order]), np.ascontiguousarray(lo6[order]),
        np.ascontiguousarray(plen6[order]), np.ascontiguousarray(val6[order]), bits6,
        len(appear4) + 1, count)
    del hi6, lo6, plen6, val6, values, order
    answering = np.concatenate([appear4, appear6]).astype(np.int64) - 1
    silent = np.ones(count, dtype=bool)
    silent[answering] = False
    rows = np.concatenate([answering, np.flatnonzero(silent)])
    # in huge pages where the platform has them (a batch reads the tables all over)
    dir4, heap4 = _hugepages.copied((dir4, heap4))
    dir6, heap6 = _hugepages.copied((dir6, heap6))
    return (dir4, heap4, bits4, dir6, heap6, bits6), rows
