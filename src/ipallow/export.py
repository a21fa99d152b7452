"""Aggregated exports of an allowlist: minimal CIDR lists, nftables sets, ipset scripts.

:func:`aggregate` turns a prefix table (overlapping, nested, duplicate and
adjacent prefixes allowed) into the *minimal* list of CIDRs covering exactly
the same addresses, per IP version.  It works on the integer prefix table
(``Compiled.version / hi / lo / prefixlen``) with numpy, never on
``ipaddress`` objects:

1. sort by (address, prefix length) and drop every prefix that lies inside an
   earlier one (CIDRs either nest or are disjoint, so "inside" is "its last
   address is not beyond the largest last address seen so far");
2. from the longest prefix length to the shortest, merge sibling pairs (the
   two halves of one block) into their parent, which joins the next level.

The result is the set of maximal aligned blocks inside the covered set, which
is the unique minimal CIDR cover.  IPv6 values are kept as two ``uint64``
words (high, low) throughout; IPv4 uses the low word only.  The exports use the
compiled core's ``aggregate_prefixes`` (spans sorted, merged and cut into
aligned blocks, in C), which computes the same cover; the numpy version above
stays as the reference (``aggregate(..., reference=True)``).

The writers turn that list (of either kind: numpy ``Prefixes``, or the core's buffers) into
text; they live in :mod:`ipallow._cidrtext`, which needs no numpy, so that ``ipallow export`` of
a text list or a snapshot starts without it:

* :func:`write_cidr` -- one CIDR per line (IPv4 first);
* :func:`write_nft` -- an ``nft -f`` file: ``add table``, ``add set`` (interval
  set), ``flush set`` and ``add element`` in one file, which nft applies as one
  transaction (the set is never seen half-filled or empty);
* :func:`write_ipset` -- an ``ipset restore`` script that fills a temporary
  set and ``swap``s it with the live one, then destroys the temporary set.

:func:`read_export` reads any of the three back (``ipallow export --previous``
compares a new export with it before replacing it).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

# The one prefix type: export's public ``Prefixes`` is it.
from ipallow import _trie
from ipallow._cidrtext import (FAMILIES, IPSET_FAMILY, IPSET_MAXELEM, NFT_TYPES, address_count,
                               halved_zero_length, set_names, text, write_cidr, write_ipset, write_nft)
from ipallow._prefixes import Prefixes, split

__all__ = ["Prefixes", "aggregate", "aggregate_allowlist", "as_prefixes", "address_count", "cidr_texts",
           "write_cidr", "write_nft", "write_ipset", "set_names", "FAMILIES", "IPSET_MAXELEM",
           "IPSET_FAMILY", "NFT_TYPES", "export_entries", "read_export", "lost_addresses"]

_ONE = np.uint64(1)


def _sort_order(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Order by (hi, lo) ascending; numpy's lexsort takes the last key as primary."""
    return np.lexsort((lo, hi))


def _merge_siblings(hi, lo, plen, bits):
    """Replace every pair of sibling blocks by their parent, bottom-up; the minimal cover."""
    out_hi, out_lo, out_len = [], [], []
    by_len = np.argsort(plen, kind="stable")
    bounds = np.searchsorted(plen[by_len], np.arange(bits + 2))
    carry_hi = carry_lo = np.empty(0, dtype=np.uint64)
    for length in range(bits, -1, -1):
        rows = by_len[bounds[length]:bounds[length + 1]]
        level_hi = np.concatenate((hi[rows], carry_hi))
        level_lo = np.concatenate((lo[rows], carry_lo))
        carry_hi = carry_lo = np.empty(0, dtype=np.uint64)
        if not len(level_hi):
            continue
        if length == 0:
            out_hi.append(level_hi[:1])     # at most one /0 (the set is disjoint)
            out_lo.append(level_lo[:1])
            out_len.append(np.zeros(1, dtype=np.uint8))
            continue
        order = _sort_order(level_hi, level_lo)
        level_hi, level_lo = level_hi[order], level_lo[order]
        host = bits - length                # the parent clears bit `host`
        if host < 64:
            parent_hi, parent_lo = level_hi, level_lo & ~(_ONE << np.uint64(host))
        else:
            parent_hi, parent_lo = level_hi & ~(_ONE << np.uint64(host - 64)), level_lo
        pair = (parent_hi[1:] == parent_hi[:-1]) & (parent_lo[1:] == parent_lo[:-1])
        merged = np.zeros(len(level_hi), dtype=bool)
        merged[:-1] |= pair
        merged[1:] |= pair
        single = ~merged
        out_hi.append(level_hi[single])
        out_lo.append(level_lo[single])
        out_len.append(np.full(int(single.sum()), length, dtype=np.uint8))
        carry_hi, carry_lo = parent_hi[:-1][pair], parent_lo[:-1][pair]
    if not out_hi:
        return (np.empty(0, np.uint64), np.empty(0, np.uint64), np.empty(0, np.uint8))
    hi, lo, plen = np.concatenate(out_hi), np.concatenate(out_lo), np.concatenate(out_len)
    order = _sort_order(hi, lo)
    return hi[order], lo[order], plen[order]


def aggregate(version: np.ndarray, hi: np.ndarray, lo: np.ndarray,
              prefixlen: np.ndarray, *, reference: bool = False) -> dict[int, Prefixes]:
    """The minimal CIDR list covering exactly the given prefixes, per IP version.

    Arguments:
        version, hi, lo, prefixlen: a prefix table as in ``Compiled`` (one row
            per prefix; IPv4 addresses in ``lo``; host bits must be clear).

        reference: compute it with the numpy steps described above instead of
            the compiled core (same result; kept to check one against the other).

    Returns:
        ``{4: Prefixes, 6: Prefixes}``, each sorted by address, pairwise
        disjoint, with no two that could be merged into one CIDR.

    >>> agg = aggregate(np.array([4, 4], np.uint8), np.zeros(2, np.uint64),
    ...                 np.array([0x0A000000, 0x0A800000], np.uint64), np.array([9, 9], np.uint8))
    >>> cidr_texts(agg[4])
    ['10.0.0.0/8']
    """
    if not reference:
        return as_prefixes(_trie.aggregate_prefixes(version, hi, lo, prefixlen))
    result = split(version, hi, lo, prefixlen)
    for v, p in result.items():
        if len(p):
            p = p.outermost()
            result[v] = Prefixes(v, *_merge_siblings(p.hi, p.lo, p.prefixlen, p.bits))
    return result


def as_prefixes(cover: tuple) -> dict[int, Prefixes]:
    """``{4: Prefixes, 6: Prefixes}`` viewing the core's cover ``(addr4, plen4, hi6, lo6,
    plen6)`` (``array.array``'s) without a copy."""
    addr4, plen4, hi6, lo6, plen6 = (np.frombuffer(a, np.uint8 if a.typecode == "B" else np.uint64)
                                     for a in cover)
    return {4: Prefixes(4, np.zeros(len(addr4), np.uint64), addr4, plen4),
            6: Prefixes(6, hi6, lo6, plen6)}


def aggregate_allowlist(allowlist, registrations: Iterable[int] | None = None) -> dict[int, Prefixes]:
    """:func:`aggregate` over an Allowlist's prefixes (or only those of some registrations)."""
    c = allowlist.compiled
    if registrations is None:
        return aggregate(c.version, c.hi, c.lo, c.prefixlen)
    wanted = np.zeros(len(c.reg_first) - 1, dtype=bool)
    wanted[np.fromiter(registrations, dtype=np.int64)] = True
    rows = wanted[c.prefix_reg]
    return aggregate(c.version[rows], c.hi[rows], c.lo[rows], c.prefixlen[rows])


# -- text ------------------------------------------------------------------------
# The writers (write_cidr, write_nft, write_ipset) and address_count live in ipallow._cidrtext,
# which needs no numpy; they are this module's public API.

def cidr_texts(prefixes: Prefixes, *, no_zero_length: bool = False) -> list[str]:
    """``"address/length"`` for each prefix.

    ``no_zero_length``: write a /0 as its two /1 halves (ipset's hash:net
    cannot store a /0).
    """
    p = halved_zero_length(prefixes) if no_zero_length else prefixes
    return text(p).splitlines() if len(p) else []


# -- reading an export back ---------------------------------------------------------

_NFT_STRUCTURE = ("table", "set", "chain", "rule", "map", "element")
_IPSET_STRUCTURE = ("create", "flush", "swap", "destroy", "rename", "-N", "-F", "-W", "-X")


def export_entries(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The CIDRs of an export written by this module, and where each is (line, column).

    Reads all three formats: an nft file (the elements of its ``add element
    ... { ... }`` statements), an ipset script (its ``add SET CIDR`` lines) and
    a CIDR list (one a line).  ``#`` comments and the other statements of nft
    and ipset files are skipped; any other line is taken as an entry, so a
    file that is not an export fails to parse rather than reading as empty.
    """
    entries: list[str] = []
    places: list[tuple[int, int]] = []

    def take(line_no: int, line: str, part: str, start: int) -> None:
        for piece in part.split(","):
            if piece.strip():
                entries.append(piece.strip())
                places.append((line_no, line.index(piece.strip(), start) + 1))
            start += len(piece) + 1

    in_elements = False
    for line_no, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0]
        stripped = body.strip()
        if not stripped:
            continue
        if in_elements:
            inside, closing, _ = body.partition("}")
            take(line_no, line, inside, 0)
            in_elements = not closing
            continue
        words = stripped.split()
        if words[0] == "add" and len(words) > 1 and words[1] == "element":
            opening = body.find("{")
            if opening < 0:
                entries.append(stripped)            # not an element list: let it fail to parse
                places.append((line_no, body.index(stripped) + 1))
                continue
            inside, closing, _ = body[opening + 1:].partition("}")
            take(line_no, line, inside, opening + 1)
            in_elements = not closing
        elif words[0] == "add" and len(words) > 1 and words[1] in _NFT_STRUCTURE:
            continue
        elif words[0] in ("add", "-A") and len(words) == 3:          # ipset: add SET CIDR
            entries.append(words[2])
            places.append((line_no, body.index(words[2], body.index(words[1]) + len(words[1])) + 1))
        elif words[0] in _IPSET_STRUCTURE or words[0] == "COMMIT":
            continue
        else:
            entries.append(stripped)
            places.append((line_no, body.index(stripped) + 1))
    return entries, places


def read_export(path: str) -> dict[int, Prefixes]:
    """The aggregated prefixes of an earlier export file (any of the three formats).

    Raises:
        ParseError: a line that is neither a statement of the format nor a
            valid CIDR (``path:line:col``), or text that is not UTF-8.
        OSError: the file cannot be read.
    """
    from ipallow import _formats, loaders
    with open(path, "rb") as handle:
        raw = handle.read()
    entries, places = export_entries(_formats.decode(raw, path))
    compiled = loaders._compile_or_raise(entries, places, [], path, True)
    return aggregate(compiled.version, compiled.hi, compiled.lo, compiled.prefixlen)


def lost_addresses(previous: Prefixes, new: Prefixes) -> int:
    """How many addresses ``previous`` covers that ``new`` does not (both aggregated, one version)."""
    old_spans, new_spans = previous.spans(), new.spans()     # sorted: the prefixes are
    kept = j = 0
    for first, last in old_spans:
        while j < len(new_spans) and new_spans[j][1] < first:
            j += 1
        k = j
        while k < len(new_spans) and new_spans[k][0] <= last:
            kept += min(last, new_spans[k][1]) - max(first, new_spans[k][0]) + 1
            k += 1
    return address_count(previous) - kept
