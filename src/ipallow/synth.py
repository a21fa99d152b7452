"""Seeded synthetic prefix tables and query sets, for benchmarks, the bundled sample and tests.

Real routing tables cannot be committed (size, licensing) and random prefixes are a poor
stand-in: a uniformly random set of 1,000,000 /24s looks nothing like a BGP table, where
prefixes crowd into a few tens of thousands of allocated blocks, most of them /24, with
aggregates covering more-specifics and the odd exact duplicate.  The generators here
reproduce that *shape* with nothing but numpy, so a million-row table takes a fraction of
a second and the same ``seed`` always gives byte-identical arrays.

Everything is returned as plain numpy integer arrays (IPv4 keys as ``uint32``, IPv6 keys as
two ``uint64`` halves, prefix lengths as ``uint8``); ``ipv4_strings`` / ``ipv6_strings``
turn them into CIDR text, and ``ipv4_queries`` / ``ipv6_queries`` draw lookup workloads that
hit the table about half the time.

>>> keys, plens = ipv4_table(5, seed=3)
>>> len(ipv4_strings(keys, plens))
5
"""
from __future__ import annotations


import numpy as np

# The CIDR text helpers are the package's own (synth has re-exported them since before).
from ipallow._prefixes import ipv4_strings, ipv6_strings
from ipallow._prefixes import low_mask64 as _low_mask64, v6_network_masks as _v6_masks

__all__ = [
    "ipv4_table",
    "ipv6_table",
    "ipv4_strings",
    "ipv6_strings",
    "ipv4_queries",
    "ipv6_queries",
]


# IPv4 space no public allocation may touch (IANA special-purpose registry, RFC 6890 and
# successors).  224.0.0.0/3 covers both multicast (224/4) and the reserved 240/4.
# The three documentation /24s are excluded so that a synthetic table never collides with
# the hand-written examples in the docs and the bundled sample.
_V4_RESERVED = [
    ("0.0.0.0", 8),
    ("10.0.0.0", 8),
    ("100.64.0.0", 10),
    ("127.0.0.0", 8),
    ("169.254.0.0", 16),
    ("172.16.0.0", 12),
    ("192.0.0.0", 24),
    ("192.0.2.0", 24),
    ("192.88.99.0", 24),
    ("192.168.0.0", 16),
    ("198.18.0.0", 15),
    ("198.51.100.0", 24),
    ("203.0.113.0", 24),
    ("224.0.0.0", 3),
]

# Special-purpose blocks inside 2000::/3 (the high 64 bits are enough to describe them).
_V6_RESERVED = [
    (0x2001_0000 << 32, 23),  # 2001::/23  IETF protocol assignments (Teredo, ORCHID, ...)
    (0x2001_0DB8 << 32, 32),  # 2001:db8::/32  documentation
    (0x2002_0000 << 32, 16),  # 2002::/16  6to4
    (0x3FFF_0000 << 32, 20),  # 3fff::/20  documentation (RFC 9637)
]


def _v4_int(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def _ranges_hit(starts: np.ndarray, ends: np.ndarray, reserved) -> np.ndarray:
    """True where the closed interval [starts, ends] overlaps any (start, end) in ``reserved``."""
    hit = np.zeros(starts.shape, dtype=bool)
    for rs, re in reserved:
        hit |= (starts <= re) & (ends >= rs)
    return hit


_V4_RESERVED_RANGES = [
    (_v4_int(a), _v4_int(a) + (1 << (32 - p)) - 1) for a, p in _V4_RESERVED
]
_V6_RESERVED_RANGES = [(hi, hi + (1 << (64 - p)) - 1) for hi, p in _V6_RESERVED]


def _pick(rng: np.random.Generator, values, weights, size: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return rng.choice(np.asarray(values), size=size, p=w / w.sum())


# --------------------------------------------------------------------------- IPv4

# Prefix-length mix of the generated rows, loosely after public BGP table reports:
# /24 dominates, then /22-/23 and /20-/21; short prefixes are rarer, and long ones
# (more-specifics leaked from customer routes, blackhole /32s) are rarer still.
_V4_MID_LENS = np.arange(16, 24)  # 30 %
_V4_MID_W = [6, 2, 3, 5, 8, 9, 35, 32]
_V4_SHORT_LENS = np.arange(8, 16)  # 5 %: weighted towards /14-/15
_V4_SHORT_W = [1, 1, 2, 4, 8, 16, 30, 38]
_V4_LONG_LENS = np.arange(25, 33)  # 5 %
_V4_LONG_W = [20, 14, 14, 12, 10, 8, 4, 18]
# Allocation sizes: mostly /16, a few hundred /8-/12 in a 40,000-allocation table.  More
# large blocks than this and a million rows cover nearly all public space in a few
# hundred merged ranges, which no real table does.
_V4_ALLOC_LENS = np.arange(8, 17)
_V4_ALLOC_W = [0.02, 0.04, 0.1, 0.3, 1, 2, 5, 10, 82]


def _v4_allocations(rng: np.random.Generator, count: int):
    """``count`` allocated blocks /8-/16 in public unicast space: (base, prefixlen, fill)."""
    base = np.empty(0, dtype=np.uint64)
    alen = np.empty(0, dtype=np.int64)
    while base.size < count:
        m = 2 * (count - base.size) + 16
        lens = _pick(rng, _V4_ALLOC_LENS, _V4_ALLOC_W, m).astype(np.int64)
        first = rng.integers(1, 224, size=m, dtype=np.uint64)
        rest = rng.integers(0, 1 << 24, size=m, dtype=np.uint64)
        addr = (first << np.uint64(24)) | rest
        host = _low_mask64(32 - lens)
        addr &= ~host
        bad = _ranges_hit(addr, addr | host, _V4_RESERVED_RANGES)
        base = np.concatenate([base, addr[~bad]])
        alen = np.concatenate([alen, lens[~bad]])
    base, alen = base[:count], alen[:count]
    # How much of its block an allocation has handed out: holders number customers from
    # the bottom of their block up, so prefixes crowd into the low part of each allocation.
    fill = rng.uniform(0.4, 1.0, size=count)
    order = np.argsort(alen, kind="stable")  # shortest (largest) first: see ipv4_table
    return base[order], alen[order], fill[order]


def ipv4_table(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A BGP-like IPv4 prefix table of exactly ``n`` rows.

    Shape, and why: a real routing table is not uniform over the address space.  We first
    draw about ``n / 25`` "allocations" (capped at 40,000: a few tens of thousands for a
    million rows), blocks /8-/16 (mostly /16, a few hundred /8-/12) in public unicast
    space -- never 0/8, 10/8, 127/8, 224/4 and above, nor the other special-purpose blocks
    (RFC 1918, CGN, link-local, documentation, benchmarking).  Each row's prefix length
    follows the mix of public tables: about 60 % /24, 30 % /16-/23 (mostly /22-/23),
    5 % /8-/15 (mostly /14-/15) and 5 % /25-/32.  The row then goes inside an allocation
    at least as large as itself (bigger blocks get more rows), in the lower ``fill``
    fraction of the block (holders hand out addresses from the bottom), so prefixes
    cluster and nest (a /16 aggregate over /22s over /24s), and unallocated space and
    the unused top of each block stay uncovered.  A million rows cover about half of the
    address space in about 100,000 disjoint ranges.  Exact duplicates: 0.5 % of rows are
    copies of other rows, and drawing many rows into the same blocks repeats more (about
    8 % in all, most of them among the /8-/15 rows, for which there are few positions).
    Rows are in random order (a builder must not rely on sorted input).

    Arguments:
        n: number of rows (>= 0).
        seed: any value accepted by ``numpy.random.default_rng``; same seed, same table.

    Returns:
        ``(keys, prefixlens)``: ``keys`` uint32 network addresses with no host bits set,
        ``prefixlens`` uint8 in 8..32.

    >>> k, p = ipv4_table(1000, seed=1)
    >>> k.dtype.name, p.dtype.name, len(k)
    ('uint32', 'uint8', 1000)
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    n_alloc = int(min(max(n // 25, 16), 40_000))
    a_base, a_len, a_fill = _v4_allocations(rng, n_alloc)
    # bigger blocks get more rows; allocations are sorted by length, so the ones at least
    # as large as a /p prefix are a leading slice and a weighted draw among them is one
    # searchsorted into the cumulative weights
    a_cum = np.cumsum(np.exp2((16 - a_len) * 0.75))
    n_fit = np.searchsorted(a_len, np.arange(33), side="right")  # allocations with len <= p
    n_fit[n_fit == 0] = n_alloc  # none that large (small tables): any, as an aggregate

    keys = np.empty(0, dtype=np.uint32)
    plens = np.empty(0, dtype=np.uint8)
    while keys.size < n:
        m = n - keys.size + n // 50 + 16  # slack for rows dropped below
        u = rng.random(m)
        plen = np.full(m, 24, dtype=np.int64)
        mid = (u >= 0.60) & (u < 0.90)
        short = (u >= 0.90) & (u < 0.95)
        long_ = u >= 0.95
        plen[mid] = _pick(rng, _V4_MID_LENS, _V4_MID_W, int(mid.sum()))
        plen[short] = _pick(rng, _V4_SHORT_LENS, _V4_SHORT_W, int(short.sum()))
        plen[long_] = _pick(rng, _V4_LONG_LENS, _V4_LONG_W, int(long_.sum()))
        fit = n_fit[plen]
        which = np.searchsorted(a_cum, rng.random(m) * a_cum[fit - 1], side="right")
        which = np.minimum(which, fit - 1)

        alen = a_len[which]
        free = np.clip(plen - alen, 0, None)  # bits between allocation and prefix
        slots = np.exp2(free) * a_fill[which]
        off = np.floor(rng.random(m) * slots).astype(np.uint64)
        off = np.minimum(off, _low_mask64(free))
        addr = a_base[which] | (off << (32 - plen).astype(np.uint64))
        host = _low_mask64(32 - plen)
        addr &= ~host
        # An aggregate shorter than its allocation (only when no allocation is large
        # enough) can reach into reserved space (172.0.0.0/8 covers 172.16.0.0/12): drop it.
        bad = _ranges_hit(addr, addr | host, _V4_RESERVED_RANGES)
        keys = np.concatenate([keys, addr[~bad].astype(np.uint32)])
        plens = np.concatenate([plens, plen[~bad].astype(np.uint8)])
    keys, plens = keys[:n], plens[:n]

    n_dup = n // 200
    if n_dup and n > 1:
        dst = rng.choice(n, size=n_dup, replace=False)
        src = rng.integers(0, n, size=n_dup)
        keys[dst] = keys[src]
        plens[dst] = plens[src]
    return keys, plens


# --------------------------------------------------------------------------- IPv6

_V6_ALLOC_LENS = np.arange(20, 30)  # RIR-sized allocations /20-/29
_V6_ALLOC_W = [4, 2, 3, 4, 4, 5, 6, 4, 4, 14]
_V6_MAIN_LENS = np.arange(32, 49)  # 85 %: /32-/48, /48 and /32 dominate, /40 /44 /36 next
_V6_MAIN_W = [20, 1, 1, 1, 4, 1, 1, 1, 8, 1, 1, 1, 8, 2, 2, 3, 50]
_V6_AGG_LENS = np.arange(20, 32)  # 3 %: allocation-level aggregates
_V6_AGG_W = [2, 1, 1, 2, 2, 2, 2, 2, 2, 8, 2, 2]
_V6_LONG_LENS = np.arange(56, 65)  # 11 %: customer /56 ... /64
_V6_LONG_W = [40, 2, 2, 2, 5, 2, 2, 2, 43]
# 1 %: /128 host routes


def ipv6_table(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A BGP-like IPv6 prefix table of exactly ``n`` rows, as two uint64 halves.

    Shape, and why: the IPv6 default-free zone is a few hundred thousand prefixes under
    2000::/3, nearly all /32 (allocations announced whole) to /48 (the smallest prefix
    widely accepted), with /48 the single most common length.  We draw about ``n / 50``
    allocations (capped at 4,000: a few thousand) of /20-/29 inside 2000::/3, avoiding the
    special-purpose blocks 2001::/23, 2001:db8::/32, 2002::/16 and 3fff::/20, and place each
    row inside one: 85 % /32-/48, 3 % /20-/31 aggregates, 11 % /56-/64 and 1 % /128.
    Within an allocation, subnets are numbered from the bottom up to a per-allocation
    width (4..20 bits), so prefixes cluster the way sequential assignment makes them;
    /128 rows get a random interface identifier.  About 0.5 % of rows are exact copies
    of other rows.  Rows are in random order.

    Arguments:
        n: number of rows (>= 0).
        seed: any value accepted by ``numpy.random.default_rng``; same seed, same table.

    Returns:
        ``(hi, lo, prefixlens)``: the network address split into its high and low 64 bits
        (uint64, no host bits set) and the prefix length (uint8, 20..128).

    >>> hi, lo, p = ipv6_table(1000, seed=1)
    >>> bool(((hi >> 61) == 1).all())   # all inside 2000::/3
    True
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    n_alloc = int(min(max(n // 50, 16), 4_000))

    a_hi = np.empty(0, dtype=np.uint64)
    a_len = np.empty(0, dtype=np.int64)
    while a_hi.size < n_alloc:
        m = 2 * (n_alloc - a_hi.size) + 16
        lens = _pick(rng, _V6_ALLOC_LENS, _V6_ALLOC_W, m).astype(np.int64)
        top = rng.integers(0, 1 << 61, size=m, dtype=np.uint64) | (np.uint64(1) << np.uint64(61))
        host = _low_mask64(64 - lens)
        top &= ~host
        bad = _ranges_hit(top, top | host, _V6_RESERVED_RANGES)
        a_hi = np.concatenate([a_hi, top[~bad]])
        a_len = np.concatenate([a_len, lens[~bad]])
    a_hi, a_len = a_hi[:n_alloc], a_len[:n_alloc]
    a_width = rng.integers(4, 21, size=n_alloc)

    hi_out = np.empty(0, dtype=np.uint64)
    lo_out = np.empty(0, dtype=np.uint64)
    pl_out = np.empty(0, dtype=np.uint8)
    while hi_out.size < n:
        m = n - hi_out.size + n // 50 + 16
        which = rng.integers(0, n_alloc, size=m)
        u = rng.random(m)
        plen = np.full(m, 128, dtype=np.int64)
        main = u < 0.85
        agg = (u >= 0.85) & (u < 0.88)
        long_ = (u >= 0.88) & (u < 0.99)
        plen[main] = _pick(rng, _V6_MAIN_LENS, _V6_MAIN_W, int(main.sum()))
        plen[agg] = _pick(rng, _V6_AGG_LENS, _V6_AGG_W, int(agg.sum()))
        plen[long_] = _pick(rng, _V6_LONG_LENS, _V6_LONG_W, int(long_.sum()))

        alen = a_len[which]
        sub_len = np.minimum(plen, 64)  # where the subnet number ends
        free = np.clip(sub_len - alen, 0, None)
        width = np.minimum(free, a_width[which]).astype(np.uint64)
        subnet = rng.integers(0, 1 << 62, size=m, dtype=np.uint64) & _low_mask64(width)
        # sub_len <= 64, so the subnet number lives entirely in the high half
        hi = a_hi[which] | (subnet << (64 - sub_len).astype(np.uint64))
        lo = np.zeros(m, dtype=np.uint64)
        is_host = plen == 128
        lo[is_host] = rng.integers(0, 1 << 63, size=int(is_host.sum()), dtype=np.uint64) | np.uint64(1)
        hmask, lmask = _v6_masks(plen)
        hi &= hmask
        lo &= lmask
        # aggregates shorter than the allocation may cover reserved space: drop those rows
        host_hi = ~hmask
        bad = _ranges_hit(hi, hi | host_hi, _V6_RESERVED_RANGES)
        hi_out = np.concatenate([hi_out, hi[~bad]])
        lo_out = np.concatenate([lo_out, lo[~bad]])
        pl_out = np.concatenate([pl_out, plen[~bad].astype(np.uint8)])
    hi_out, lo_out, pl_out = hi_out[:n], lo_out[:n], pl_out[:n]

    n_dup = n // 200
    if n_dup and n > 1:
        dst = rng.choice(n, size=n_dup, replace=False)
        src = rng.integers(0, n, size=n_dup)
        hi_out[dst] = hi_out[src]
        lo_out[dst] = lo_out[src]
        pl_out[dst] = pl_out[src]
    return hi_out, lo_out, pl_out


# --------------------------------------------------------------------------- queries


def ipv4_queries(keys, plens, n: int, seed: int = 0) -> np.ndarray:
    """``n`` IPv4 lookup addresses (uint32): half hit the table, half are uniform.

    Half are drawn inside randomly chosen table rows (uniform within the prefix, so the
    hit set follows the table's own clustering), half uniformly over all 2**32 addresses
    (mostly misses, some hits); the two halves are shuffled together so a lookup loop
    cannot predict hit or miss.  With an empty table all ``n`` are uniform.

    >>> k, p = ipv4_table(100, seed=1)
    >>> ipv4_queries(k, p, 10, seed=2).dtype.name
    'uint32'
    """
    n = int(n)
    rng = np.random.default_rng(seed)
    k = np.asarray(keys).astype(np.uint64)
    p = np.asarray(plens).astype(np.int64)
    n_in = n // 2 if k.size else 0
    row = rng.integers(0, max(k.size, 1), size=n_in)
    host = _low_mask64(32 - p[row]) if n_in else np.empty(0, np.uint64)
    inside = k[row] | (rng.integers(0, 1 << 32, size=n_in, dtype=np.uint64) & host)
    uniform = rng.integers(0, 1 << 32, size=n - n_in, dtype=np.uint64)
    q = np.concatenate([inside, uniform]).astype(np.uint32)
    rng.shuffle(q)
    return q


def ipv6_queries(hi, lo, plens, n: int, seed: int = 0) -> np.ndarray:
    """``n`` IPv6 lookup addresses as an ``(n, 2)`` uint64 array of (hi, lo) columns.

    Half inside randomly chosen table rows (uniform within the prefix), half uniform
    over all 2**128 addresses (nearly all misses: only one in eight even falls in
    2000::/3), shuffled together.  With an empty table all ``n`` are uniform.

    >>> h, l, p = ipv6_table(100, seed=1)
    >>> ipv6_queries(h, l, p, 10, seed=2).shape
    (10, 2)
    """
    n = int(n)
    rng = np.random.default_rng(seed)
    h = np.asarray(hi).astype(np.uint64, copy=False)
    l_ = np.asarray(lo).astype(np.uint64, copy=False)
    p = np.asarray(plens).astype(np.int64)
    n_in = n // 2 if h.size else 0
    row = rng.integers(0, max(h.size, 1), size=n_in)
    hmask, lmask = _v6_masks(p[row])
    out = np.empty((n, 2), dtype=np.uint64)
    r = rng.integers(0, 1 << 64, size=(n, 2), dtype=np.uint64)
    out[:n_in, 0] = h[row] | (r[:n_in, 0] & ~hmask)
    out[:n_in, 1] = l_[row] | (r[:n_in, 1] & ~lmask)
    out[n_in:] = r[n_in:]
    rng.shuffle(out, axis=0)
    return out
