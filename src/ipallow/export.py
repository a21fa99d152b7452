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

The writers turn that list into text:

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

from typing import IO, Iterable

import numpy as np

# The one prefix type: export's public ``Prefixes`` is it.
from ipallow import _trie
from ipallow._prefixes import Prefixes, split

__all__ = ["Prefixes", "aggregate", "aggregate_allowlist", "address_count", "cidr_texts",
           "write_cidr", "write_nft", "write_ipset", "FAMILIES", "IPSET_MAXELEM",
           "export_entries", "read_export", "lost_addresses"]

_ONE = np.uint64(1)

#: --family value -> IP versions it exports.
FAMILIES = {"inet": (4, 6), "ip": (4,), "ip6": (6,)}

#: ``maxelem`` of every ipset this module creates.  A constant on purpose:
#: ``ipset create ... -exist`` fails when an existing set differs in maxelem,
#: and a swapped-in set keeps the maxelem of the temporary set, so the value
#: must not depend on the list size.  (hashsize may differ: ipset ignores it
#: in that comparison, and it grows by itself.)
IPSET_MAXELEM = 1 << 24


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
        addr4, plen4, hi6, lo6, plen6 = _trie.aggregate_prefixes(version, hi, lo, prefixlen)
        return {4: Prefixes(4, np.zeros(len(addr4), np.uint64), addr4, plen4),
                6: Prefixes(6, hi6, lo6, plen6)}
    result = split(version, hi, lo, prefixlen)
    for v, p in result.items():
        if len(p):
            p = p.outermost()
            result[v] = Prefixes(v, *_merge_siblings(p.hi, p.lo, p.prefixlen, p.bits))
    return result


def aggregate_allowlist(allowlist, registrations: Iterable[int] | None = None) -> dict[int, Prefixes]:
    """:func:`aggregate` over an Allowlist's prefixes (or only those of some registrations)."""
    c = allowlist.compiled
    if registrations is None:
        return aggregate(c.version, c.hi, c.lo, c.prefixlen)
    wanted = np.zeros(len(c.reg_first) - 1, dtype=bool)
    wanted[np.fromiter(registrations, dtype=np.int64)] = True
    rows = wanted[c.prefix_reg]
    return aggregate(c.version[rows], c.hi[rows], c.lo[rows], c.prefixlen[rows])


def address_count(prefixes: Prefixes) -> int:
    """Number of addresses covered by disjoint prefixes (exact, any size)."""
    bits = prefixes.bits
    per_length = np.bincount(prefixes.prefixlen, minlength=bits + 1)
    return sum(int(n) << (bits - length) for length, n in enumerate(per_length.tolist()) if n)


# -- text ------------------------------------------------------------------------

def _halved_zero_length(p: Prefixes) -> Prefixes:
    """A /0 as its two /1 halves (ipset's hash:net cannot store a /0); anything else as is."""
    if len(p) and int(p.prefixlen.min()) == 0:
        top = np.uint64(1 << 31) if p.version == 4 else np.uint64(1 << 63)
        if p.version == 4:
            return Prefixes(4, np.zeros(2, np.uint64), np.array([0, top], np.uint64), np.ones(2, np.uint8))
        return Prefixes(6, np.array([0, top], np.uint64), np.zeros(2, np.uint64), np.ones(2, np.uint8))
    return p


def cidr_texts(prefixes: Prefixes, *, no_zero_length: bool = False) -> list[str]:
    """``"address/length"`` for each prefix.

    ``no_zero_length``: write a /0 as its two /1 halves (ipset's hash:net
    cannot store a /0).
    """
    p = _halved_zero_length(prefixes) if no_zero_length else prefixes
    return p.strings()


def _text(p: Prefixes, per_line: int = 1, line_start: str = "", item_sep: str = "",
          line_end: str = "\n") -> str:
    """The prefixes as one string, written by the compiled core: lines of ``per_line``
    items, each ``line_start + item (item_sep item)... + line_end``."""
    return _trie.cidr_text(p.version, p.hi, p.lo, p.prefixlen, per_line, line_start.encode("ascii"),
                           item_sep.encode("ascii"), line_end.encode("ascii"))


# -- writers ---------------------------------------------------------------------

def _header(out: IO[str], comment: Iterable[str]) -> None:
    for line in comment:
        out.write(f"# {line}\n" if line else "#\n")


def write_cidr(out: IO[str], agg: dict[int, Prefixes], versions: Iterable[int] = (4, 6)) -> None:
    """One CIDR per line, IPv4 first, nothing else."""
    for v in versions:
        if len(agg[v]):
            out.write(_text(agg[v]))


NFT_TYPES = {4: "ipv4_addr", 6: "ipv6_addr"}
_NFT_PER_STATEMENT = 4096     # elements per 'add element' statement (all in one transaction)


def set_names(name: str, versions: tuple[int, ...]) -> dict[int, str]:
    """The set name of each exported IP version: NAME alone, or NAME_v4 / NAME_v6 for both."""
    if len(versions) == 1:
        return {versions[0]: name}
    return {v: f"{name}_v{v}" for v in versions}


def write_nft(out: IO[str], agg: dict[int, Prefixes], *, table: str, name: str,
              family: str, comment: Iterable[str] = ()) -> None:
    """An nftables file defining interval set(s) with exactly the aggregated prefixes.

    ``nft -f FILE`` runs the whole file as one transaction: the table and set
    are created if missing, the set is flushed and refilled, and packets see
    either the old contents or the new, never a mix or an empty set.  A set
    for a family with no prefixes is still flushed (the list may have lost
    its last IPv6 entry).
    """
    versions = FAMILIES[family]
    _header(out, [*comment, "", f"load atomically with: nft -f FILE  (family {family}, table {table})"])
    out.write("\n")
    out.write(f"add table {family} {table}\n")
    for v, set_name in set_names(name, versions).items():
        out.write(f"add set {family} {table} {set_name} {{ type {NFT_TYPES[v]}; flags interval; }}\n")
        out.write(f"flush set {family} {table} {set_name}\n")
        p = agg[v]
        for start in range(0, len(p), _NFT_PER_STATEMENT):
            stop = start + _NFT_PER_STATEMENT
            chunk = Prefixes(v, p.hi[start:stop], p.lo[start:stop], p.prefixlen[start:stop])
            out.write(f"add element {family} {table} {set_name} {{\n")
            out.write(_text(chunk, 8, "\t", ", ", ",\n"))
            out.write("}\n")


IPSET_FAMILY = {4: "inet", 6: "inet6"}


def write_ipset(out: IO[str], agg: dict[int, Prefixes], *, name: str, family: str,
                comment: Iterable[str] = ()) -> None:
    """An ``ipset restore`` script: fill ``NAME.tmp``, swap it with ``NAME``, destroy it.

    The live set is created (empty) if missing, so the swap always has a
    partner; traffic sees the old members until the swap, then the new ones.
    A ``/0`` is written as two ``/1`` (``hash:net`` cannot hold a /0).
    """
    versions = FAMILIES[family]
    _header(out, [*comment, "", "load with: ipset restore -file FILE   (or: ipset restore < FILE)"])
    for v, set_name in set_names(name, versions).items():
        p = _halved_zero_length(agg[v])
        hashsize = 1024
        while hashsize * 4 < len(p):
            hashsize *= 2
        params = f"hash:net family {IPSET_FAMILY[v]} hashsize {hashsize} maxelem {IPSET_MAXELEM}"
        temp = f"{set_name}.tmp"
        out.write(f"create {set_name} {params} -exist\n")
        out.write(f"create {temp} {params} -exist\n")
        out.write(f"flush {temp}\n")
        add = f"add {temp} "
        if len(p) and add.isascii():
            out.write(_text(p, 1, add))
        elif len(p):                # a name outside ASCII (not from the command line, which checks)
            out.write(add + f"\n{add}".join(p.strings()) + "\n")
        out.write(f"swap {temp} {set_name}\n")
        out.write(f"destroy {temp}\n")


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
