"""The prefix table and its 128-bit arithmetic, written once.

A prefix table is parallel arrays, one row a prefix: ``version`` (4 or 6), the
value as two uint64 words ``hi`` / ``lo`` (an IPv4 value sits in ``lo``) and
``prefixlen``.  numpy (like C) leaves a shift of a uint64 by 64 undefined, so
every mask here goes through :func:`low_mask64`.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import NamedTuple

import numpy as np

__all__ = ["ALL_ONES", "low_mask64", "host_masks", "v6_network_masks", "ipv4_strings",
           "ipv6_strings", "Overlaps", "DUPLICATE", "OVERLAP", "KINDS", "find_overlaps"]

ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def low_mask64(bits: np.ndarray) -> np.ndarray:
    """``2**bits - 1`` as uint64 for ``bits`` in 0..64 (numpy shifts by 64 are undefined)."""
    bits = np.asarray(bits, dtype=np.uint64)
    safe = np.minimum(bits, np.uint64(63))
    m = (np.uint64(1) << safe) - np.uint64(1)
    return np.where(bits >= np.uint64(64), ALL_ONES, m)


def v6_network_masks(plens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) network masks for IPv6 prefix lengths 0..128."""
    p = np.asarray(plens, dtype=np.int64)
    hi_host = low_mask64(np.clip(64 - p, 0, 64))
    lo_host = low_mask64(np.clip(128 - p, 0, 64))
    return ~hi_host, ~lo_host


def host_masks(bits: int, plen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) uint64 masks of the host bits of ``bits``-bit prefixes (32 or 128) of
    lengths ``plen``: ``value | mask`` is the prefix's last address."""
    host = bits - np.asarray(plen, dtype=np.int64)
    return low_mask64(np.clip(host - 64, 0, 64)), low_mask64(np.clip(host, 0, 64))


_OCTET_DOT = [f"{i}." for i in range(256)]
_OCTET = [str(i) for i in range(256)]
_SLASH = [f"/{i}" for i in range(129)]


def ipv4_strings(keys, plens) -> list[str]:
    """CIDR text ``"a.b.c.d/p"`` for each (key, prefixlen) row.

    Built from per-octet lookup tables and ``str.join`` over columns: about 0.3 s for a
    million rows, three times faster than an f-string per row.

    >>> ipv4_strings(np.array([0xC0000200], dtype=np.uint32), np.array([24], dtype=np.uint8))
    ['192.0.2.0/24']
    """
    k = np.asarray(keys).astype(np.uint32, copy=False)
    p = np.asarray(plens).astype(np.intp, copy=False)
    if k.shape != p.shape or k.ndim != 1:
        raise ValueError("keys and plens must be 1-D arrays of the same length")
    a = (k >> 24).tolist()
    b = ((k >> 16) & 255).tolist()
    c = ((k >> 8) & 255).tolist()
    d = (k & 255).tolist()
    dot, oct_, sl = _OCTET_DOT.__getitem__, _OCTET.__getitem__, _SLASH.__getitem__
    return list(
        map(
            "".join,
            zip(map(dot, a), map(dot, b), map(dot, c), map(oct_, d), map(sl, p.tolist())),
        )
    )


def ipv6_strings(hi, lo, plens) -> list[str]:
    """RFC 5952 compressed CIDR text (``"2001:db8::/32"``) for each (hi, lo, prefixlen) row.

    Uses the C library's ``inet_ntop`` (glibc, musl, macOS and Windows all produce the
    RFC 5952 form: lowercase, no leading zeros, the longest run of two or more zero groups
    as ``::``).  Rows whose high 64 bits are zero fall back to ``ipaddress``, because
    ``inet_ntop`` writes some of those with an embedded dotted quad.  About 0.3 s for
    200,000 rows.

    >>> ipv6_strings(np.array([0x20010DB800000000], dtype=np.uint64),
    ...              np.array([0], dtype=np.uint64), np.array([32], dtype=np.uint8))
    ['2001:db8::/32']
    """
    h = np.asarray(hi).astype(np.uint64, copy=False)
    l_ = np.asarray(lo).astype(np.uint64, copy=False)
    p = np.asarray(plens).astype(np.intp, copy=False)
    if not (h.shape == l_.shape == p.shape) or h.ndim != 1:
        raise ValueError("hi, lo and plens must be 1-D arrays of the same length")
    packed = np.empty((h.size, 2), dtype=">u8")
    packed[:, 0] = h
    packed[:, 1] = l_
    raw = packed.tobytes()
    ntop = socket.inet_ntop
    af = socket.AF_INET6
    out = [ntop(af, raw[i : i + 16]) for i in range(0, len(raw), 16)]
    sl = _SLASH
    out = [a + sl[q] for a, q in zip(out, p.tolist())]
    zero_hi = np.flatnonzero(h == 0)
    if zero_hi.size:
        for i in zero_hi.tolist():
            addr = ipaddress.IPv6Address(int(l_[i]))
            out[i] = f"{addr.compressed}/{int(p[i])}"
    return out


DUPLICATE, OVERLAP = 0, 1
KINDS = ("duplicate", "overlap")


class Overlaps(NamedTuple):
    """Parallel arrays, one entry per duplicate or nested prefix row."""

    kind: np.ndarray        # DUPLICATE or OVERLAP
    inner: np.ndarray       # the prefix row that repeats / lies inside ...
    outer: np.ndarray       # ... this one (the first of a duplicate run / the outermost container)


def find_overlaps(version: np.ndarray, hi: np.ndarray, lo: np.ndarray, plen: np.ndarray) -> Overlaps:
    """Duplicate and nested prefixes of a prefix table, without comparing every pair.

    Per IP version, sort by (address, prefix length, row).  Equal neighbours are
    duplicates (of the first of their run).  Among distinct prefixes, CIDRs
    either nest or are disjoint, so a prefix lies inside an earlier one exactly
    when its last address is not beyond the largest last address seen so far;
    the earliest prefix reaching that maximum is its outermost container.  The
    largest-so-far is a running maximum over the dense rank of the last
    addresses (one ufunc): O(n log n) overall.
    """
    kinds, inners, outers = [], [], []
    for v, bits in ((4, 32), (6, 128)):
        rows = np.flatnonzero(version == v)
        if len(rows) < 2:
            continue
        h, l, p = hi[rows], lo[rows], plen[rows].astype(np.int64)
        order = np.lexsort((rows, p, l, h))
        rows, h, l, p = rows[order], h[order], l[order], p[order]
        same = np.zeros(len(rows), dtype=bool)
        same[1:] = (h[1:] == h[:-1]) & (l[1:] == l[:-1]) & (p[1:] == p[:-1])
        leader = np.maximum.accumulate(np.where(same, 0, np.arange(len(rows))))
        dup = np.flatnonzero(same)
        kinds.append(np.full(len(dup), DUPLICATE, np.int8))
        inners.append(rows[dup])
        outers.append(rows[leader[dup]])
        keep = np.flatnonzero(~same)
        rows, h, l, p = rows[keep], h[keep], l[keep], p[keep]
        hi_mask, lo_mask = host_masks(bits, p)
        end_h, end_l = h | hi_mask, l | lo_mask
        by_end = np.lexsort((end_l, end_h))
        step = np.zeros(len(rows), dtype=np.int64)
        step[1:] = (end_h[by_end][1:] != end_h[by_end][:-1]) | (end_l[by_end][1:] != end_l[by_end][:-1])
        rank = np.empty(len(rows), dtype=np.int64)
        rank[by_end] = np.cumsum(step)
        n = len(rows)
        # Running maximum of the rank; ties go to the earliest row (the outermost prefix).
        key = rank * n + (n - 1 - np.arange(n))
        best = np.maximum.accumulate(key)
        prev_best = np.empty(n, dtype=np.int64)
        prev_best[0] = -1
        prev_best[1:] = best[:-1]
        inside = np.flatnonzero((prev_best >= 0) & (rank <= prev_best // n))
        outer = n - 1 - prev_best[inside] % n
        kinds.append(np.full(len(inside), OVERLAP, np.int8))
        inners.append(rows[inside])
        outers.append(rows[outer])
    if not kinds:
        return Overlaps(np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return Overlaps(np.concatenate(kinds), np.concatenate(inners).astype(np.int64),
                    np.concatenate(outers).astype(np.int64))
