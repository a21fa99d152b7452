"""The MaxMind DB search tree, built from a prefix table and walked back, with numpy.

A MaxMind DB answers an address by walking a binary tree one address bit per
level; each node holds two records (left: bit 0, right: bit 1), and a record is
another node (its number), "no data" (``node_count``) or a pointer into the data
section (``node_count + 16 + offset``).  Data sits only in records, never in
nodes, so a registered prefix with more-specific prefixes inside it has its
answer pushed down into every record of its subtree that no more-specific one
claims: that is how longest-prefix match survives exactly.

Building works level by level on the prefix rows sorted by address (no Python
loop over prefixes): at depth ``d`` the rows with ``prefixlen >= d`` truncated to
their first ``d`` bits group into the *items* of that level -- consecutive equal
keys, because truncation keeps the order.  An item with a longer prefix inside
it is a node; one without is a leaf record carrying its own answer.  Each item's
parent is the node of the level above that its rows came from, so linking a
level to the next is a cumulative sum, and a node's *inherited* answer (the
longest registered prefix covering it) is its own prefix's registration, else its
parent's.  Nodes are numbered level after level, the root first.

Walking (:func:`leaves`) reads every record into two arrays and follows them
breadth first, one numpy step per depth.
"""

from __future__ import annotations

import numpy as np

EMPTY = -1          # symbolic records while building: no data here,
LINK_V4 = -2        # the IPv4 subtree's root (from ::/96 and ::ffff:0:0/96),
FIRST_ANSWER = -3   # registration r is FIRST_ANSWER - r; node numbers are >= 0

_U64 = np.uint64


def answer_code(reg: np.ndarray) -> np.ndarray:
    """Registration numbers -> the symbolic records that stand for their data."""
    return FIRST_ANSWER - reg.astype(np.int64)


def _key(hi: np.ndarray, lo: np.ndarray, depth: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``depth`` bits of each address, right-aligned, as (high word, low word)."""
    if depth == 0:
        return np.zeros(len(hi), _U64), np.zeros(len(lo), _U64)
    if bits == 32:
        return np.zeros(len(hi), _U64), lo >> _U64(32 - depth)
    if depth <= 64:
        return hi >> _U64(64 - depth), np.zeros(len(lo), _U64)
    return hi, lo >> _U64(128 - depth)


def build(hi: np.ndarray, lo: np.ndarray, plen: np.ndarray, answer: np.ndarray, bits: int,
          first_node: int) -> tuple[np.ndarray, np.ndarray]:
    """Left and right records (symbolic, int64) of the tree of one address family.

    Arguments:
        hi, lo, plen: the prefixes (IPv4 in ``lo``, ``bits`` 32; IPv6 ``bits`` 128),
            sorted by (hi, lo, plen), no two alike.
        answer: the symbolic record of each prefix's data (:func:`answer_code` or LINK_V4).
        first_node: the number of this tree's root in the whole file.

    The root is always a node, even for no prefixes (both records EMPTY then).
    """
    rows = np.arange(len(plen))
    lefts, rights = [], []
    node_offset = first_node
    parent_ord = parent_inherit = None     # per row of the level above: its node ordinal; per node: inherited
    prev_lefts = prev_rights = None
    for depth in range(bits + 1):
        key_hi, key_lo = _key(hi[rows], lo[rows], depth, bits)
        row_len = plen[rows]
        new = np.ones(len(rows), dtype=bool)
        new[1:] = (key_hi[1:] != key_hi[:-1]) | (key_lo[1:] != key_lo[:-1])
        group = np.cumsum(new) - 1
        count = int(group[-1]) + 1 if len(rows) else (1 if depth == 0 else 0)
        exact = np.full(count, EMPTY, dtype=np.int64)
        at_length = row_len == depth
        exact[group[at_length]] = answer[rows[at_length]]
        is_node = np.zeros(count, dtype=bool)
        is_node[group[row_len > depth]] = True
        if depth == 0:
            is_node[:] = True                # the root is a node whatever the table holds
        node_ord = np.cumsum(is_node) - 1
        firsts = np.flatnonzero(new)
        if depth == 0:
            inherit = exact[is_node]
        else:
            # Link this level's items into the records of the nodes above.
            parent = parent_ord[firsts]
            bit = (key_lo[firsts] if (bits == 32 or depth > 64) else key_hi[firsts]) & _U64(1)
            inherit_all = np.where(exact != EMPTY, exact, parent_inherit[parent])
            own = np.where(is_node, node_offset + node_ord, inherit_all)
            prev_lefts[parent[bit == 0]] = own[bit == 0]
            prev_rights[parent[bit == 1]] = own[bit == 1]
            inherit = inherit_all[is_node]
        nodes = int(is_node.sum())
        if not nodes:
            break
        # Records no item claims inherit the longest registered prefix above them.
        prev_lefts = inherit.copy()
        prev_rights = inherit.copy()
        lefts.append(prev_lefts)
        rights.append(prev_rights)
        node_offset += nodes
        deeper = row_len > depth
        parent_ord = node_ord[group[deeper]]
        parent_inherit = inherit
        rows = rows[deeper]
    return np.concatenate(lefts), np.concatenate(rights)


def pack(left: np.ndarray, right: np.ndarray, record_size: int) -> bytes:
    """The search tree section: each node's two records, big endian, ``record_size`` bits each."""
    n = len(left)
    if record_size == 24:
        out = np.empty((n, 6), dtype=np.uint8)
        for i, shift in enumerate((16, 8, 0)):
            out[:, i] = (left >> shift) & 0xFF
            out[:, 3 + i] = (right >> shift) & 0xFF
    elif record_size == 28:
        # The middle byte holds the top four bits of each record: left's high nibble first.
        out = np.empty((n, 7), dtype=np.uint8)
        for i, shift in enumerate((16, 8, 0)):
            out[:, i] = (left >> shift) & 0xFF
            out[:, 4 + i] = (right >> shift) & 0xFF
        out[:, 3] = (((left >> 24) & 0x0F) << 4) | ((right >> 24) & 0x0F)
    else:
        out = np.empty((n, 2), dtype=">u4")
        out[:, 0], out[:, 1] = left, right
    return out.tobytes()


def unpack(tree: bytes | memoryview, node_count: int, record_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every node's left and right record (int64) from the search tree section."""
    if record_size not in (24, 28, 32):
        raise ValueError(f"record_size {record_size} is not one of the format's 24, 28, 32")
    width = record_size // 4
    raw = np.frombuffer(tree, dtype=np.uint8, count=node_count * width).reshape(node_count, width)
    b = raw.astype(np.int64)
    if record_size == 24:
        left = (b[:, 0] << 16) | (b[:, 1] << 8) | b[:, 2]
        right = (b[:, 3] << 16) | (b[:, 4] << 8) | b[:, 5]
    elif record_size == 28:
        left = ((b[:, 3] >> 4) << 24) | (b[:, 0] << 16) | (b[:, 1] << 8) | b[:, 2]
        right = ((b[:, 3] & 0x0F) << 24) | (b[:, 4] << 16) | (b[:, 5] << 8) | b[:, 6]
    else:
        left = (b[:, 0] << 24) | (b[:, 1] << 16) | (b[:, 2] << 8) | b[:, 3]
        right = (b[:, 4] << 24) | (b[:, 5] << 16) | (b[:, 6] << 8) | b[:, 7]
    return left, right


def ipv4_start(left: np.ndarray, node_count: int, ip_version: int) -> int:
    """The record IPv4 lookups start from: 96 left turns from the root of an IPv6 tree."""
    node = 0
    if ip_version == 6:
        for _ in range(96):
            if node >= node_count:
                break
            node = int(left[node])
    return node


def leaves(left: np.ndarray, right: np.ndarray, node_count: int, ip_version: int):
    """Every data record of the tree: (hi, lo, depth, record) arrays, addresses left-aligned.

    Records pointing at the IPv4 subtree from anywhere but ``::/96`` (the
    ``::ffff:0:0/96`` and 6to4 aliases) are skipped, as the MaxMind readers'
    network iteration skips them, so each network appears once.

    Raises:
        ValueError: a tree deeper than the address, or one whose nodes are shared so
            widely it cannot be a tree.  (Data pointers are checked by the decoder.)
    """
    bits = 128 if ip_version == 6 else 32
    start_v4 = ipv4_start(left, node_count, ip_version)
    limit = 4 * node_count + 4096
    node = np.zeros(1, dtype=np.int64)
    hi = np.zeros(1, dtype=_U64)
    lo = np.zeros(1, dtype=_U64)
    found: list[tuple] = []
    for depth in range(bits):
        position = bits - 1 - depth                  # the bit this level decides
        one_hi, one_lo = (_U64(1) << _U64(position - 64), _U64(0)) if position >= 64 \
            else (_U64(0), _U64(1) << _U64(position))
        child = np.concatenate((left[node], right[node]))
        c_hi = np.concatenate((hi, hi | one_hi))
        c_lo = np.concatenate((lo, lo | one_lo))
        if ip_version == 6 and start_v4 != 0:
            aliased = (child == start_v4) & ((c_hi != 0) | (c_lo != 0))
            keep = ~aliased
            child, c_hi, c_lo = child[keep], c_hi[keep], c_lo[keep]
        data = child > node_count
        if data.any():
            found.append((c_hi[data], c_lo[data], depth + 1, child[data]))
        deeper = child < node_count
        node, hi, lo = child[deeper], c_hi[deeper], c_lo[deeper]
        if not len(node):
            break
        if len(node) > limit:
            raise ValueError("the search tree shares nodes too widely to be a tree")
    else:
        if len(node):
            raise ValueError(f"the search tree is deeper than {bits} bits")
    if not found:
        empty = np.empty(0, dtype=_U64)
        return empty, empty, np.empty(0, dtype=np.uint8), np.empty(0, dtype=np.int64)
    return (np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found]),
            np.concatenate([np.full(len(f[0]), f[2], dtype=np.uint8) for f in found]),
            np.concatenate([f[3] for f in found]))
