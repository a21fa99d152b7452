"""The comparison libraries: how each is built from the list and asked a question.

numpy is imported when a peer answers, not before: ``ipallow bench --help`` names the peers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import numpy as np

    from ipallow.bench._table import PrefixTable


def _answers(values, dtype: str, count: int) -> np.ndarray:
    """The answers of a generator as a numpy array (numpy imported here, on first use)."""
    import numpy as np
    return np.fromiter(values, dtype=dtype, count=count)


class Peer:
    """One comparison library.  Subclasses say how to build it and how to ask it.

    ``answers`` returns, per query, the matched prefix length (-1 for no match) when
    ``longest_match`` is true, else membership as bool.  ``member`` returns how one
    call is made for the latency loop: ``("in", container)`` times ``q in container``,
    ``("call", fn)`` times ``fn(q)``.  ``form`` is what the peer is asked with:
    ``"str"`` (the normalised text) or ``"int"``.
    """

    name = "?"
    module = "?"
    distribution = "?"
    families: tuple[int, ...] = (4, 6)
    longest_match = False
    form = "str"
    operation = "q in t"

    def available(self) -> bool:
        try:
            importlib.import_module(self.module)
        except ImportError:
            return False
        return True

    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version(self.distribution)
        except PackageNotFoundError:
            return "?"

    def build(self, table: PrefixTable, family: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def member(self, handle: Any) -> tuple[str, Any]:
        return "in", handle

    def answers(self, handle: Any, items: Sequence) -> np.ndarray:
        return _answers((q in handle for q in items), "bool", len(items))


def _insert_all(trie, table, family):
    """Insert every prefix of one family as ``trie.insert(cidr, prefixlen)`` (pytricia, SubnetTree):
    the stored value is the prefix length, so answers can be compared on the longest match."""
    insert = trie.insert
    plens = (table.v4_plens if family == 4 else table.v6_plens).tolist()
    for cidr, plen in zip(table.strings(family), plens):
        insert(cidr, plen)
    return trie


class PytriciaPeer(Peer):
    name, module, distribution = "pytricia", "pytricia", "pytricia"
    longest_match = True

    def build(self, table, family):
        import pytricia
        return _insert_all(pytricia.PyTricia(32 if family == 4 else 128), table, family)

    def answers(self, handle, items):
        get = handle.get
        return _answers((get(q, -1) for q in items), "int16", len(items))


class RadixPeer(Peer):
    name, module, distribution = "py-radix", "radix", "py-radix"
    longest_match = True
    operation = "t.search_best(q) is not None"

    def build(self, table, family):
        import radix
        t = radix.Radix()
        add = t.add
        for s in table.strings(family):
            add(s)
        return t

    def member(self, handle):
        return "call", handle.search_best

    def answers(self, handle, items):
        best = handle.search_best
        return _answers(((n.prefixlen if (n := best(q)) is not None else -1) for q in items),
                        "int16", len(items))


class SubnetTreePeer(Peer):
    name, module, distribution = "SubnetTree", "SubnetTree", "pysubnettree"
    longest_match = True

    def build(self, table, family):
        import SubnetTree
        return _insert_all(SubnetTree.SubnetTree(), table, family)

    def answers(self, handle, items):
        return _answers(((handle[q] if q in handle else -1) for q in items), "int16", len(items))


class NetaddrPeer(Peer):
    name, module, distribution = "netaddr.IPSet", "netaddr", "netaddr"

    def build(self, table, family):
        import netaddr
        return netaddr.IPSet(table.strings(family))


class RoaringPeer(Peer):
    name, module, distribution = "pyroaring.BitMap", "pyroaring", "pyroaring"
    families = (4,)
    form = "int"
    operation = "int(q) in bitmap"

    def build(self, table, family):
        import pyroaring
        bm = pyroaring.BitMap()
        add_range = bm.add_range
        for first, last in zip(*table.ranges(4)):
            add_range(first, last + 1)      # add_range's end is exclusive
        bm.run_optimize()
        return bm


#: Every peer ``ipallow bench`` knows, in the order they are shown.
PEERS: tuple[Peer, ...] = (PytriciaPeer(), RadixPeer(), SubnetTreePeer(), NetaddrPeer(), RoaringPeer())


def installed_peers() -> tuple[list[Peer], list[str]]:
    """(peers whose module imports, names of the ones that do not)."""
    have, missing = [], []
    for peer in PEERS:
        if peer.available():
            have.append(peer)
        else:
            missing.append(peer.name)
    return have, missing
