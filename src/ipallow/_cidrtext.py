"""An aggregated CIDR list written as text: a plain list, an nftables file, an ipset script.

The writers take any prefix table of one IP version whose columns are buffers:
:class:`ipallow.export.Prefixes` (numpy arrays) or :class:`Cover` (the compiled core's
``array.array`` results).  The text itself is written by the core (``_trie.cidr_text``).
Nothing here imports numpy: ``ipallow export`` of a text list or a snapshot runs without
it (numpy's import alone takes longer than FireHOL iprange's whole export of 100k CIDRs).
:mod:`ipallow.export` re-exports the writers; that is where they are documented for users.
"""

from __future__ import annotations

from array import array

from ipallow import _trie

#: --family value -> IP versions it exports.
FAMILIES = {"inet": (4, 6), "ip": (4,), "ip6": (6,)}

#: ``maxelem`` of every ipset this module creates.  A constant on purpose:
#: ``ipset create ... -exist`` fails when an existing set differs in maxelem,
#: and a swapped-in set keeps the maxelem of the temporary set, so the value
#: must not depend on the list size.  (hashsize may differ: ipset ignores it
#: in that comparison, and it grows by itself.)
IPSET_MAXELEM = 1 << 24

NFT_TYPES = {4: "ipv4_addr", 6: "ipv6_addr"}
_NFT_PER_STATEMENT = 4096     # elements per 'add element' statement (all in one transaction)
IPSET_FAMILY = {4: "inet", 6: "inet6"}


class Cover:
    """One IP version's CIDRs as the core's buffers: ``version``, ``hi`` (the high words of
    IPv6 values; None for IPv4), ``lo`` (an IPv4 address, or the low words), ``prefixlen``."""

    __slots__ = ("version", "hi", "lo", "prefixlen")

    def __init__(self, version: int, hi, lo, prefixlen) -> None:
        self.version, self.hi, self.lo, self.prefixlen = version, hi, lo, prefixlen

    def __len__(self) -> int:
        return len(self.prefixlen)


def covers(cover: tuple) -> dict[int, Cover]:
    """``{4: Cover, 6: Cover}`` of the core's ``(addr4, plen4, hi6, lo6, plen6)``."""
    addr4, plen4, hi6, lo6, plen6 = cover
    return {4: Cover(4, None, addr4, plen4), 6: Cover(6, hi6, lo6, plen6)}


def address_count(prefixes) -> int:
    """Number of addresses covered by disjoint prefixes of one version (exact, any size)."""
    bits = 32 if prefixes.version == 4 else 128
    lengths = bytes(prefixes.prefixlen)
    return sum(n << (bits - length) for length in range(bits + 1)
               if (n := lengths.count(length)))


def halved_zero_length(prefixes):
    """A /0 as its two /1 halves (ipset's hash:net cannot store a /0); anything else as is.

    An aggregated list with a /0 is that one block: nothing else is left beside it.
    """
    if not len(prefixes) or 0 not in prefixes.prefixlen:
        return prefixes
    halves = array("B", [1, 1])
    if prefixes.version == 4:
        return Cover(4, None, array("Q", [0, 1 << 31]), halves)
    return Cover(6, array("Q", [0, 1 << 63]), array("Q", [0, 0]), halves)


def text(prefixes, per_line: int = 1, line_start: str = "", item_sep: str = "",
         line_end: str = "\n", start: int = 0, stop: int | None = None) -> str:
    """Rows ``start:stop`` as one string, written by the compiled core: lines of ``per_line``
    items, each ``line_start + item (item_sep item)... + line_end``."""
    v = prefixes.version
    rows = slice(start, stop)
    return _trie.cidr_text(v, None if v == 4 else prefixes.hi[rows], prefixes.lo[rows],
                           prefixes.prefixlen[rows], per_line, line_start.encode("ascii"),
                           item_sep.encode("ascii"), line_end.encode("ascii"))


def set_names(name: str, versions: tuple[int, ...]) -> dict[int, str]:
    """The set name of each exported IP version: NAME alone, or NAME_v4 / NAME_v6 for both."""
    if len(versions) == 1:
        return {versions[0]: name}
    return {v: f"{name}_v{v}" for v in versions}


def _header(out, comment) -> None:
    for line in comment:
        out.write(f"# {line}\n" if line else "#\n")


def write_cidr(out, agg: dict, versions=(4, 6)) -> None:
    """One CIDR per line, IPv4 first, nothing else."""
    for v in versions:
        if len(agg[v]):
            out.write(text(agg[v]))


def write_nft(out, agg: dict, *, table: str, name: str, family: str, comment=()) -> None:
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
            out.write(f"add element {family} {table} {set_name} {{\n")
            out.write(text(p, 8, "\t", ", ", ",\n", start, start + _NFT_PER_STATEMENT))
            out.write("}\n")


def write_ipset(out, agg: dict, *, name: str, family: str, comment=()) -> None:
    """An ``ipset restore`` script: fill ``NAME.tmp``, swap it with ``NAME``, destroy it.

    The live set is created (empty) if missing, so the swap always has a
    partner; traffic sees the old members until the swap, then the new ones.
    A ``/0`` is written as two ``/1`` (``hash:net`` cannot hold a /0).
    """
    versions = FAMILIES[family]
    _header(out, [*comment, "", "load with: ipset restore -file FILE   (or: ipset restore < FILE)"])
    for v, set_name in set_names(name, versions).items():
        p = halved_zero_length(agg[v])
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
            out.write(text(p, 1, add))
        elif len(p):                # a name outside ASCII (not from the command line, which checks)
            out.write("".join(f"{add}{cidr}\n" for cidr in text(p).splitlines()))
        out.write(f"swap {temp} {set_name}\n")
        out.write(f"destroy {temp}\n")
