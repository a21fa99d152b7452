"""The pre-rollout benchmark (``ipallow bench``): one list, ipallow against the installed peers.

An operator deciding on rollout wants four things measured on *their* list, on *their*
machine, and one thing checked:

* **build** -- compiling the list's prefixes (given as CIDR text to every builder alike),
  plus loading the list file itself (parse + compile, or mapping a snapshot);
* **memory** -- the compiled index (``Allowlist.nbytes``, exact) and, for comparison,
  what each peer's structure added to the process's resident memory (approximate);
* **single-lookup latency** -- p50 / p99 nanoseconds per call (see :func:`latency`);
* **batch throughput** -- millions of lookups per second on a ``uint32`` array, an
  ``(n, 2)`` ``uint64`` array and a list of strings (peers without a batch API: the
  list comprehension a user would write), next to a numpy ``searchsorted`` baseline;
* **agreement** -- every peer answers *every* query and is compared with ipallow; a
  peer that can report its longest match (pytricia, py-radix, SubnetTree) is compared
  on the matched prefix length (a matched prefix is determined by the query and its
  length), the others on membership.  Any difference is listed, query by query.

Peers are whatever is installed among pytricia, py-radix, SubnetTree (pysubnettree),
netaddr ``IPSet`` and pyroaring ``BitMap`` (IPv4 only).  Each peer gets one structure
per address family, so no peer's own IPv4-in-IPv6 convention can differ from ipallow's.
Queries are normalised before anyone sees them: an IPv4-mapped IPv6 address is asked
as the IPv4 address, which is ipallow's documented meaning of it.

Everything here returns plain JSON-ready dicts; ``ipallow.commands.bench`` prints them.

>>> import ipallow
>>> al = ipallow.Allowlist(["192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32"])
>>> result = run(al, queries=2000, seconds=0.2, peers=[])
>>> result["agreement"]["ok"], result["queries"]["count"]
(True, 2000)
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import ipaddress
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterable, Sequence

import numpy as np

import ipallow
from ipallow import synth
from ipallow._prefixes import Prefixes, split
from ipallow._trie import address_key

__all__ = [
    "DEFAULT_QUERIES", "DEFAULT_SECONDS", "LATENCY_BATCH",
    "PrefixTable", "Queries", "QueryProblem", "Peer", "PEERS", "installed_peers",
    "random_queries", "read_queries", "compare", "latency", "throughput",
    "merged_ranges", "searchsorted_contains", "rows_to_s16", "ipv4_texts", "ipv6_texts",
    "run", "machine_info", "plot", "PlotUnavailable", "require_matplotlib",
]

DEFAULT_QUERIES = 100_000
DEFAULT_SECONDS = 8.0
LATENCY_BATCH = 16          # calls timed between two perf_counter_ns() reads
MAX_EXAMPLES = 1000         # disagreeing queries kept per peer and family (the count is exact)
_SAMPLE_FIRST = 1000        # items timed once to size a slow peer's batch

_U64 = np.uint64


# --------------------------------------------------------------------------- prefixes


@dataclass
class PrefixTable:
    """The prefixes an allowlist counts, per family, as numpy arrays (and CIDR text on demand).

    ``v4_keys`` uint32 network addresses, ``v4_plens``; ``v6_hi`` / ``v6_lo`` uint64
    halves, ``v6_plens``.  Every builder (ipallow included) is given the same text.
    A thin view: :meth:`family` gives the package's one prefix type, which does the work.
    """

    v4_keys: np.ndarray
    v4_plens: np.ndarray
    v6_hi: np.ndarray
    v6_lo: np.ndarray
    v6_plens: np.ndarray
    _text: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_allowlist(cls, allowlist: "ipallow.Allowlist") -> "PrefixTable":
        c = allowlist.compiled
        v4, v6 = split(c.version, c.hi, c.lo, c.prefixlen).values()
        return cls(v4.lo.astype(np.uint32), v4.prefixlen, v6.hi, v6.lo, v6.prefixlen)

    def family(self, family: int) -> Prefixes:
        """The family's prefixes as :class:`ipallow._prefixes.Prefixes`."""
        if family == 4:
            return Prefixes(4, np.zeros(self.v4_keys.size, np.uint64), self.v4_keys.astype(np.uint64),
                            self.v4_plens)
        return Prefixes(6, self.v6_hi, self.v6_lo, self.v6_plens)

    def count(self, family: int) -> int:
        return int(self.v4_keys.size if family == 4 else self.v6_hi.size)

    def strings(self, family: int) -> list[str]:
        """The family's prefixes as CIDR text (cached)."""
        if family not in self._text:
            self._text[family] = self.family(family).strings()
        return self._text[family]

    def ranges(self, family: int) -> tuple[list[int], list[int]]:
        """Per prefix, its first and last address as Python ints (for range-based peers)."""
        spans = self.family(family).spans()
        return [first for first, _ in spans], [last for _, last in spans]


def merged_ranges(table: PrefixTable, family: int) -> tuple[np.ndarray, np.ndarray]:
    """The family's prefixes merged into sorted, disjoint, non-touching closed ranges.

    IPv4: ``uint32`` start and end arrays.  IPv6: big-endian ``S16`` keys, which numpy
    compares byte by byte, i.e. in the order of the 128-bit numbers.  This is the table
    of the ``searchsorted`` baseline; it is built from the prefix list, not from
    ipallow's compiled trie, so the baseline checks the trie independently.
    """
    first_hi, first_lo, last_hi, last_lo = table.family(family).merged_ranges()
    if family == 4:
        return first_lo.astype(np.uint32), last_lo.astype(np.uint32)
    return (rows_to_s16(np.column_stack((first_hi, first_lo))),
            rows_to_s16(np.column_stack((last_hi, last_lo))))


def rows_to_s16(rows: np.ndarray) -> np.ndarray:
    """``(n, 2)`` uint64 (hi, lo) rows -> big-endian ``S16`` keys."""
    return np.ascontiguousarray(np.asarray(rows).astype(">u8")).view("S16").reshape(-1)


def searchsorted_contains(starts: np.ndarray, ends: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Membership in sorted disjoint closed ranges: the last start <= q, then q <= its end."""
    if starts.size == 0:
        return np.zeros(q.shape[0], dtype=bool)
    idx = np.searchsorted(starts, q, side="right") - 1
    return (idx >= 0) & (q <= ends[idx])   # ends[-1] for idx == -1 is masked by idx >= 0


# --------------------------------------------------------------------------- queries


class QueryProblem(tuple):
    """``(line, text, message)``: a line of a query file that is not an address."""

    __slots__ = ()

    def __new__(cls, line: int, text: str, message: str):
        return super().__new__(cls, (line, text, message))

    line = property(lambda self: self[0])
    text = property(lambda self: self[1])
    message = property(lambda self: self[2])


@dataclass
class FamilyQueries:
    """The queries of one family: keys as the batch API takes them, text, ints, labels."""

    family: int
    keys: np.ndarray                 # uint32 (IPv4) or (n, 2) uint64 (IPv6)
    texts: list[str]                 # normalised address text, what every peer is asked
    labels: list[str] | None = None  # query file: "line N: original text"

    @property
    def size(self) -> int:
        return int(self.keys.shape[0])

    @property
    def ints(self) -> list[int]:
        if self.family == 4:
            return self.keys.tolist()
        return [(h << 64) | l_ for h, l_ in self.keys.tolist()]

    def label(self, i: int) -> str:
        return self.labels[i] if self.labels is not None else self.texts[i]


@dataclass
class Queries:
    """What the benchmark asks: per family, plus where the queries came from."""

    origin: str                          # "random" or the query file's name
    families: dict[int, FamilyQueries]
    problems: list[QueryProblem] = field(default_factory=list)
    seed: int | None = None

    @property
    def count(self) -> int:
        return sum(f.size for f in self.families.values())


def ipv4_texts(keys: np.ndarray) -> list[str]:
    """Dotted-quad text of each uint32 address.

    >>> ipv4_texts(np.array([0xC0000201], dtype=np.uint32))
    ['192.0.2.1']
    """
    return [s[:-3] for s in synth.ipv4_strings(keys, np.full(keys.size, 32, np.uint8))]


def ipv6_texts(rows: np.ndarray) -> list[str]:
    """RFC 5952 text of each (hi, lo) uint64 row.

    >>> ipv6_texts(np.array([[0x20010DB800000000, 1]], dtype=np.uint64))
    ['2001:db8::1']
    """
    rows = np.asarray(rows, dtype=np.uint64).reshape(-1, 2)
    return [s[:-4] for s in synth.ipv6_strings(rows[:, 0], rows[:, 1], np.full(rows.shape[0], 128, np.uint8))]


def _family_queries(family: int, keys: np.ndarray, labels: list[str] | None = None) -> FamilyQueries:
    texts = ipv4_texts(keys) if family == 4 else ipv6_texts(keys)
    return FamilyQueries(family, keys, texts, labels)


def random_queries(table: PrefixTable, n: int, seed: int = 1) -> Queries:
    """``n`` addresses drawn like ``ipallow.synth``'s query generators, from the list's own prefixes.

    The count is split between the families in proportion to their prefix counts (every
    family with prefixes gets at least one query); within a family, half the queries lie
    inside randomly chosen prefixes and half are uniform over the family's whole space.
    A list with no prefixes at all gets uniform IPv4 queries.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"the number of queries must be at least 1, got {n}")
    c4, c6 = table.count(4), table.count(6)
    if c4 + c6 == 0:
        n4 = n
    else:
        n4 = round(n * c4 / (c4 + c6))
        if c4 and n4 == 0:
            n4 = 1
        if c6 and n4 == n and n > 1:
            n4 = n - 1
    n6 = n - n4
    families = {}
    if n4:
        families[4] = _family_queries(4, synth.ipv4_queries(table.v4_keys, table.v4_plens, n4, seed=seed))
    if n6:
        families[6] = _family_queries(6, synth.ipv6_queries(table.v6_hi, table.v6_lo, table.v6_plens, n6,
                                                            seed=seed + 1))
    return Queries("random", families, seed=seed)


def read_queries(lines: Iterable[str], name: str) -> Queries:
    """Addresses from a file, one a line (blank lines and ``#`` comments skipped).

    Every accepted address form (dotted quad, any RFC 4291 IPv6 text) is taken, the
    surrounding whitespace of a line ignored.  Lines that are not an address are
    returned as :class:`QueryProblem` ``(line, text, message)``; they are not asked.
    """
    v4: list[int] = []
    v4_labels: list[str] = []
    v6: list[int] = []
    v6_labels: list[str] = []
    problems: list[QueryProblem] = []
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            version, value = address_key(text)
        except (ValueError, TypeError) as exc:
            problems.append(QueryProblem(number, text, str(exc)))
            continue
        if version == 4:
            v4.append(value)
            v4_labels.append(f"line {number}: {text}")
        else:
            v6.append(value)
            v6_labels.append(f"line {number}: {text}")
    families = {}
    if v4:
        families[4] = _family_queries(4, np.array(v4, dtype=np.uint32), v4_labels)
    if v6:
        rows = np.array([(v >> 64, v & 0xFFFFFFFFFFFFFFFF) for v in v6], dtype=np.uint64).reshape(-1, 2)
        families[6] = _family_queries(6, rows, v6_labels)
    return Queries(name, families, problems)


# --------------------------------------------------------------------------- peers


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
        return np.fromiter((q in handle for q in items), dtype=bool, count=len(items))


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
        return np.fromiter((get(q, -1) for q in items), dtype=np.int16, count=len(items))


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
        return np.fromiter(((n.prefixlen if (n := best(q)) is not None else -1) for q in items),
                           dtype=np.int16, count=len(items))


class SubnetTreePeer(Peer):
    name, module, distribution = "SubnetTree", "SubnetTree", "pysubnettree"
    longest_match = True

    def build(self, table, family):
        import SubnetTree
        return _insert_all(SubnetTree.SubnetTree(), table, family)

    def answers(self, handle, items):
        return np.fromiter(((handle[q] if q in handle else -1) for q in items),
                           dtype=np.int16, count=len(items))


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


# --------------------------------------------------------------------------- agreement


def _describe(answer: int, longest: bool, family: int, text: str) -> str:
    """An answer in words: the matched network, or in / not in."""
    if not longest:
        return "in the list" if answer else "not in the list"
    if answer < 0:
        return "no match"
    bits = 32 if family == 4 else 128
    net = ipaddress.ip_network(f"{text}/{bits}").supernet(new_prefix=int(answer))
    return f"match {net}"


def compare(peer: str, family: int, queries: FamilyQueries, expected: np.ndarray, got: Any,
            *, longest_match: bool) -> dict | None:
    """``None`` when ``got`` agrees with ipallow's ``expected`` on every query, else a report.

    ``expected``: ipallow's matched prefix length per query (-1 = no match).  ``got``:
    the peer's answers, matched prefix lengths when ``longest_match``, else membership
    (compared with ``expected >= 0``).  A wrong number of answers is a disagreement
    too.  The report: ``{"peer", "family", "queries", "disagreements", "examples":
    [{"query", "ipallow", "peer"}, ...]}`` with at most ``MAX_EXAMPLES`` examples.
    """
    expected = np.asarray(expected).reshape(-1).astype(np.int64)
    got = np.asarray(got).reshape(-1)
    n = expected.size
    if got.size != n:
        return {"peer": peer, "family": family, "queries": n, "disagreements": n,
                "examples": [], "error": f"{got.size:,} answers for {n:,} queries"}
    if longest_match:
        got_v = got.astype(np.int64)
        bad = np.flatnonzero(got_v != expected)
    else:
        got_v = got.astype(bool)
        bad = np.flatnonzero(got_v != (expected >= 0))
    if bad.size == 0:
        return None
    examples = []
    for i in bad[:MAX_EXAMPLES].tolist():
        text = queries.texts[i]
        mine = int(expected[i]) if longest_match else int(expected[i] >= 0)
        examples.append({"query": queries.label(i),
                         "ipallow": _describe(mine, longest_match, family, text),
                         "peer": _describe(int(got_v[i]), longest_match, family, text)})
    return {"peer": peer, "family": family, "queries": n, "disagreements": int(bad.size),
            "examples": examples}


# --------------------------------------------------------------------------- timing


def _in_loop(container, groups, clock) -> list[int]:
    times = []
    append = times.append
    for g in groups:
        t0 = clock()
        for q in g:
            q in container      # noqa: B015 - the membership test is what is timed
        append(clock() - t0)
    return times


def _call_loop(fn, groups, clock) -> list[int]:
    times = []
    append = times.append
    for g in groups:
        t0 = clock()
        for q in g:
            fn(q)
        append(clock() - t0)
    return times


@contextlib.contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while timing, as ``timeit`` does.

    This process holds every peer's structure (millions of objects for a big list);
    a full collection triggered inside a timed loop would be charged to whichever
    library happened to allocate at that moment.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _batch_ns(kind: str, target, items: Sequence, seconds: float, batch: int) -> np.ndarray:
    """Per-call nanoseconds of every ``batch``-call group timed within ``seconds`` (at least 2,000 groups
    or one pass over ``items``, whichever is fewer)."""
    batch = max(1, min(batch, len(items)))
    groups = [items[i:i + batch] for i in range(0, len(items) - batch + 1, batch)]
    loop = _in_loop if kind == "in" else _call_loop
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    out: list[int] = []
    start = 0
    with _gc_paused():
        while True:
            out.extend(loop(target, groups[start:start + 2000], clock))
            start = start + 2000 if start + 2000 < len(groups) else 0
            if clock() >= deadline:
                break
    return np.asarray(out, dtype=np.float64) / batch


def latency(kind: str, target, items: Sequence, *, seconds: float, floor_ns: float,
            batch: int = LATENCY_BATCH) -> dict:
    """Single-call latency of ``q in target`` (``kind="in"``) or ``target(q)`` (``"call"``).

    How: the calls are made in groups of ``batch`` consecutive queries; each group is
    timed with two ``time.perf_counter_ns()`` reads, divided by ``batch``, and the
    loop floor (the same loop around the cheapest operation, see :func:`loop_floor`)
    is subtracted.  p50 / p99 are percentiles over groups, repeated over the queries
    for ``seconds``.  A single call (tens of nanoseconds) is shorter than the clock's
    own overhead, hence the groups; a p99 is therefore the 99th percentile of
    ``batch``-call means, which smooths single outliers (a page fault, a preemption)
    over the group.
    """
    per_call = _batch_ns(kind, target, items, seconds, batch) - floor_ns
    per_call = np.maximum(per_call, 0.0)
    return {"p50_ns": round(float(np.percentile(per_call, 50)), 1),
            "p99_ns": round(float(np.percentile(per_call, 99)), 1),
            "min_ns": round(float(per_call.min()), 1),
            "calls": int(per_call.size * max(1, min(batch, len(items))))}


def loop_floor(kind: str, items: Sequence, *, seconds: float, batch: int = LATENCY_BATCH) -> float:
    """Median per-call cost of the timing loop itself: ``q in ()`` or ``id(q)``.

    An empty tuple makes ``in`` do nothing with the query (no hash, no comparison),
    so the floor is the same whatever the query's type.
    """
    target = () if kind == "in" else id
    return float(np.median(_batch_ns(kind, target, items, seconds, batch)))


def throughput(fn: Callable[[Any], Any], items: Any, *, seconds: float, min_runs: int = 3,
               max_runs: int = 50) -> dict:
    """Lookups per second of ``fn(items)``: best and median over repeated runs.

    A run over all of ``items`` that would not fit ``min_runs`` times into ``seconds``
    (a pure-Python peer over many queries) is timed on a leading slice instead, sized
    from one timed run over the first 1,000 items.  Items per second do not depend on
    the slice length for a per-item loop.
    """
    n = len(items)
    clock = time.perf_counter
    use = items
    if n > _SAMPLE_FIRST:
        t0 = clock()
        fn(items[:_SAMPLE_FIRST])
        per_item = (clock() - t0) / _SAMPLE_FIRST
        fit = int(seconds / min_runs / max(per_item, 1e-12))
        if fit < n:
            use = items[:max(fit, _SAMPLE_FIRST)]
    m = len(use)
    times: list[float] = []
    spent = 0.0
    with _gc_paused():
        while len(times) < max_runs and (len(times) < min_runs or spent < seconds):
            t0 = clock()
            fn(use)
            t = clock() - t0
            times.append(t)
            spent += t
            if spent > 2 * seconds:
                break
    best, median = min(times), float(np.median(times))
    return {"items": m, "runs": len(times),
            "best_M_per_s": round(m / best / 1e6, 3) if best > 0 else None,
            "median_M_per_s": round(m / median / 1e6, 3) if median > 0 else None,
            "best_ns_per_item": round(best / m * 1e9, 2), "median_ns_per_item": round(median / m * 1e9, 2)}


def rss_bytes() -> int | None:
    """Resident set size of this process (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _timed_builds(build: Callable[[], Any], *, seconds: float, max_runs: int = 3) -> tuple[Any, dict]:
    """Build once measuring resident-memory growth, then repeat (discarding) within ``seconds``."""
    gc.collect()
    before = rss_bytes()
    t0 = time.perf_counter()
    kept = build()
    times = [time.perf_counter() - t0]
    after = rss_bytes()
    while len(times) < max_runs and sum(times) < seconds:
        t0 = time.perf_counter()
        build()
        times.append(time.perf_counter() - t0)
    growth = None if before is None or after is None else max(after - before, 0)
    return kept, {"best_s": min(times), "median_s": float(np.median(times)), "runs": len(times),
                  "rss_growth_bytes": growth}


# --------------------------------------------------------------------------- machine


def machine_info() -> dict:
    """CPU model, CPU count, load average, Python / numpy / ipallow versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    return {"cpu": cpu, "cpus": os.cpu_count(), "load_average": load,
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "numpy": np.__version__, "ipallow": ipallow.__version__, "platform": sys.platform}


# --------------------------------------------------------------------------- the run


def _expected(allowlist, fq: FamilyQueries) -> np.ndarray:
    """ipallow's matched prefix length per query (-1 = none)."""
    idx = allowlist._match_many(fq.keys)
    plen = allowlist.compiled.prefixlen
    out = np.full(idx.size, -1, dtype=np.int64)
    hit = idx >= 0
    out[hit] = plen[idx[hit]]
    return out


_FAMILY_ARRAY = {4: "uint32 array", 6: "(n, 2) uint64 array"}
LOAD_ROW = "load the list file"
BUILD_ROW = "Allowlist(cidr strings)"


def run(allowlist: "ipallow.Allowlist", *, queries: "int | Queries" = DEFAULT_QUERIES,
        seconds: float = DEFAULT_SECONDS, peers: Sequence[Peer] | None = None, seed: int = 1,
        load_seconds: float | None = None, source: dict | None = None,
        progress: Callable[[int, int, str], None] | None = None,
        batch: int = LATENCY_BATCH) -> dict:
    """Benchmark ``allowlist`` against ``peers`` (default: every installed one).

    Arguments:
        allowlist: what to measure (its prefixes are what every builder compiles).
        queries: a number of random queries (see :func:`random_queries`) or a
            :class:`Queries` (e.g. from :func:`read_queries`).
        seconds: the timing budget, shared by the latency and throughput rows
            (builds of big lists and the agreement check come on top).
        peers: peers to compare with; ``None`` = every installed peer.
        load_seconds: how long loading the list file took (reported with the builds).
        source: optional description of the list, copied into the result.
        progress: called as ``progress(done, total, what)`` between steps.

    Returns a JSON-ready dict: ``list``, ``machine``, ``queries``, ``peers``, ``build``,
    ``latency``, ``throughput``, ``agreement`` (``ok`` false when anyone disagrees).
    """
    installed, missing = installed_peers()
    peers = installed if peers is None else list(peers)
    table = PrefixTable.from_allowlist(allowlist)
    qs = queries if isinstance(queries, Queries) else random_queries(table, queries, seed=seed)
    runner = _Run(allowlist, table, qs, peers, missing, seconds=seconds, batch=batch,
                  load_seconds=load_seconds, source=source)
    return runner.execute(progress)


class _Run:
    """One :func:`run`: the result it fills in and one method per kind of step.

    The steps are listed first (:meth:`steps`), then executed in order, so the
    progress callback knows the total and the timing rows know how many share
    ``seconds``.  Steps pass what they build (peer structures, ipallow's expected
    answers, the searchsorted tables) to later ones through ``handles`` / ``expected``.
    """

    def __init__(self, allowlist: "ipallow.Allowlist", table: PrefixTable, qs: Queries,
                 peers: list[Peer], missing: list[str], *, seconds: float, batch: int,
                 load_seconds: float | None, source: dict | None) -> None:
        self.allowlist, self.table, self.qs, self.peers = allowlist, table, qs, peers
        self.seconds, self.batch, self.load_seconds = seconds, batch, load_seconds
        self.fams = sorted(qs.families)
        self.handles: dict[tuple[str, int], Any] = {}
        self.expected: dict[int, np.ndarray] = {}
        self.floors: dict[tuple[str, str, int], float] = {}
        self.n_timed = 0   # latency + throughput rows, to share `seconds`
        self.build_budget = max(seconds * 0.1, 0.05)
        self.result: dict[str, Any] = {
            "list": {**(source or {}), "registrations": len(allowlist),
                     "prefixes": {"ipv4": table.count(4), "ipv6": table.count(6)}},
            "machine": machine_info(),
            "queries": {"origin": qs.origin, "count": qs.count, "seed": qs.seed,
                        "per_family": {f"ipv{f}": qs.families[f].size for f in self.fams},
                        "problems": [{"line": p.line, "text": p.text, "message": p.message}
                                     for p in qs.problems]},
            "settings": {"seconds": seconds, "latency_batch": batch},
            "peers": {"compared": [{"name": p.name, "version": p.version(), "families": list(p.families),
                                    "compared_on": "longest match" if p.longest_match else "membership"}
                                   for p in peers],
                      "not_installed": missing},
            "build": [], "memory": {}, "latency": [], "throughput": [],
            "agreement": {"ok": True, "checked": [], "disagreements": []},
        }

    # -- the plan ------------------------------------------------------------

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        """Every step in order, as (what it does, the call); sets ``n_timed``."""
        fams, peers = self.fams, self.peers
        steps: list[tuple[str, Callable[[], None]]] = [("building ipallow", self.build_ipallow)]
        steps += [(f"building {peer.name}", partial(self.build_peer, peer)) for peer in peers]
        for f in fams:
            steps.append((f"checking ipallow (IPv{f})", partial(self.check_ipallow, f)))
            steps += [(f"checking {peer.name} (IPv{f})", partial(self.check_peer, peer, f))
                      for peer in peers if f in peer.families]
        timed = [("timing single lookups", s) for s in self.latency_steps()]
        timed += [("timing batches", s) for s in self.throughput_steps()]
        self.n_timed = len(timed)
        return steps + timed

    def latency_steps(self) -> list[Callable[[], None]]:
        al, out = self.allowlist, []
        for f in self.fams:
            out.append(partial(self.latency_row, "ipallow", "q in allowlist", "str", f, lambda: ("in", al)))
            out.append(partial(self.latency_row, "ipallow", "allowlist.lookup(q)", "str", f,
                               lambda: ("call", al.lookup)))
            out.append(partial(self.latency_row, "ipallow", "q in allowlist", "int", f, lambda: ("in", al)))
            for peer in self.peers:
                if f in peer.families:
                    out.append(partial(self.latency_row, peer.name, peer.operation, peer.form, f,
                                       partial(self.peer_member, peer, f)))
        return out

    def throughput_steps(self) -> list[Callable[[], None]]:
        al, out = self.allowlist, []
        for f in self.fams:
            fq = self.qs.families[f]
            arr = _FAMILY_ARRAY[f]
            out.append(partial(self.throughput_row, "ipallow", "contains_many", arr, f,
                               lambda fq=fq: (al.contains_many, fq.keys)))
            out.append(partial(self.throughput_row, "ipallow", "lookup_many", arr, f,
                               lambda fq=fq: (al.lookup_many, fq.keys)))
            out.append(partial(self.throughput_row, "numpy searchsorted", "merged ranges",
                               arr if f == 4 else "S16 array", f, partial(self.searchsorted_batch, f)))
            out.append(partial(self.throughput_row, "ipallow", "contains_many", "list of str", f,
                               lambda fq=fq: (al.contains_many, fq.texts)))
            out.append(partial(self.throughput_row, "ipallow", "lookup_many", "list of str", f,
                               lambda fq=fq: (al.lookup_many, fq.texts)))
            for peer in self.peers:
                if f in peer.families:
                    out.append(partial(self.throughput_row, peer.name, f"[{peer.operation} for q in list]",
                                       "list of str" if peer.form == "str" else "list of int", f,
                                       partial(self.comprehension, peer, f)))
        return out

    def execute(self, progress: Callable[[int, int, str], None] | None) -> dict:
        """Run every step (reporting progress between them) and return the result."""
        if self.load_seconds is not None:
            self.result["build"].append({"impl": "ipallow", "what": LOAD_ROW, "best_s": self.load_seconds,
                                         "median_s": self.load_seconds, "runs": 1, "rss_growth_bytes": None})
        steps = self.steps()
        total = len(steps)
        for done, (what, step) in enumerate(steps):
            if progress is not None:
                progress(done, total, what)
            step()
        if progress is not None:
            progress(total, total, "done")
        _add_ratios(self.result)
        return self.result

    # -- build ---------------------------------------------------------------

    def build_ipallow(self) -> None:
        table, allowlist, result = self.table, self.allowlist, self.result
        strings = table.strings(4) + table.strings(6)
        _, info = _timed_builds(lambda: ipallow.Allowlist(strings), seconds=self.build_budget)
        result["build"].append({"impl": "ipallow", "what": BUILD_ROW, **info})
        nb = int(allowlist.nbytes)
        n = max(table.count(4) + table.count(6), 1)
        result["memory"] = {"nbytes": nb, "bytes_per_prefix": round(nb / n, 2),
                            "tables": {f"ipv{k}": {kk: int(vv) for kk, vv in v.items()}
                                       for k, v in allowlist._table_stats().items()}}

    def build_peer(self, peer: Peer) -> None:
        total = {"impl": peer.name, "what": "insert every prefix", "best_s": 0.0, "median_s": 0.0,
                 "runs": None, "rss_growth_bytes": 0}
        for f in peer.families:
            if f not in self.fams and self.table.count(f) == 0:
                continue        # nothing to insert and nothing to ask
            handle, info = _timed_builds(lambda: peer.build(self.table, f), seconds=self.build_budget)
            self.handles[(peer.name, f)] = handle
            total["best_s"] += info["best_s"]
            total["median_s"] += info["median_s"]
            total["runs"] = info["runs"] if total["runs"] is None else min(total["runs"], info["runs"])
            if info["rss_growth_bytes"] is None or total["rss_growth_bytes"] is None:
                total["rss_growth_bytes"] = None
            else:
                total["rss_growth_bytes"] += info["rss_growth_bytes"]
        self.result["build"].append(total)

    # -- agreement -----------------------------------------------------------

    def checked(self, impl: str, f: int, fq: FamilyQueries, report: dict | None) -> None:
        """Record one agreement check; a report (a disagreement) fails the run's agreement."""
        agreement = self.result["agreement"]
        agreement["checked"].append({"impl": impl, "family": f, "queries": fq.size, "agree": report is None})
        if report:
            agreement["ok"] = False
            agreement["disagreements"].append(report)

    def check_ipallow(self, f: int) -> None:
        allowlist = self.allowlist
        fq = self.qs.families[f]
        exp = self.expected[f] = _expected(allowlist, fq)
        # ipallow's own input forms must agree with each other
        forms = {
            "contains_many(" + _FAMILY_ARRAY[f] + ")": allowlist.contains_many(fq.keys),
            "contains_many(list of str)": allowlist.contains_many(fq.texts),
            "str in allowlist": np.fromiter((q in allowlist for q in fq.texts), dtype=bool, count=fq.size),
        }
        reg = allowlist.lookup_many(fq.keys)
        forms["lookup_many(" + _FAMILY_ARRAY[f] + ") >= 0"] = reg >= 0
        for name, got in forms.items():
            self.checked(f"ipallow {name}", f, fq,
                         compare(f"ipallow {name}", f, fq, exp, got, longest_match=False))
        starts, ends = merged_ranges(self.table, f)
        self.handles[("searchsorted", f)] = (starts, ends)
        q = fq.keys if f == 4 else rows_to_s16(fq.keys)
        self.handles[("searchsorted-q", f)] = q
        self.checked("numpy searchsorted", f, fq,
                     compare("numpy searchsorted", f, fq, exp, searchsorted_contains(starts, ends, q),
                             longest_match=False))

    def check_peer(self, peer: Peer, f: int) -> None:
        fq = self.qs.families[f]
        items = fq.texts if peer.form == "str" else fq.ints
        try:
            got = peer.answers(self.handles[(peer.name, f)], items)
        except Exception as exc:   # a peer that cannot answer is a finding, not a crash
            rep = {"peer": peer.name, "family": f, "queries": fq.size, "disagreements": fq.size,
                   "examples": [], "error": f"{type(exc).__name__}: {exc}"}
        else:
            rep = compare(peer.name, f, fq, self.expected[f], got, longest_match=peer.longest_match)
        self.checked(peer.name, f, fq, rep)

    # -- latency -------------------------------------------------------------

    def share(self) -> float:
        """Seconds for one timing row."""
        return max(self.seconds / max(self.n_timed, 1), 0.02)

    def latency_row(self, impl: str, op: str, form: str, f: int,
                    kind_target: Callable[[], tuple[str, Any]]) -> None:
        fq = self.qs.families[f]
        items = fq.texts if form == "str" else fq.ints
        kind, target = kind_target()
        key = (kind, form, f)
        if key not in self.floors:
            self.floors[key] = loop_floor(kind, items, seconds=min(self.share() / 2, 0.5), batch=self.batch)
        row = latency(kind, target, items, seconds=self.share(), floor_ns=self.floors[key], batch=self.batch)
        self.result["latency"].append({"impl": impl, "operation": op, "input": form, "family": f,
                                       "floor_ns": round(self.floors[key], 1), **row})

    def peer_member(self, peer: Peer, f: int) -> tuple[str, Any]:
        return peer.member(self.handles[(peer.name, f)])

    # -- throughput ----------------------------------------------------------

    def throughput_row(self, impl: str, op: str, inp: str, f: int,
                       make: Callable[[], tuple[Callable, Any]]) -> None:
        fn, items = make()
        row = throughput(fn, items, seconds=self.share())
        self.result["throughput"].append({"impl": impl, "operation": op, "input": inp, "family": f, **row})

    def searchsorted_batch(self, f: int) -> tuple[Callable, Any]:
        starts, ends = self.handles[("searchsorted", f)]
        return (lambda q: searchsorted_contains(starts, ends, q)), self.handles[("searchsorted-q", f)]

    def comprehension(self, peer: Peer, f: int) -> tuple[Callable, Any]:
        kind, target = self.peer_member(peer, f)
        fq = self.qs.families[f]
        items = fq.texts if peer.form == "str" else fq.ints
        if kind == "in":
            return (lambda xs: [q in target for q in xs]), items
        return (lambda xs: [target(q) is not None for q in xs]), items


def _add_ratios(result: dict) -> None:
    """Each row's cost relative to ipallow's matching row (``x`` > 1: ipallow is faster)."""
    ref_lat = {(r["family"], r["input"]): r["p50_ns"] for r in result["latency"]
               if r["impl"] == "ipallow" and r["operation"] == "q in allowlist"}
    for r in result["latency"]:
        base = ref_lat.get((r["family"], r["input"]))
        r["vs_ipallow"] = round(r["p50_ns"] / base, 2) if base else None
    ref_tp = {}
    for r in result["throughput"]:
        if r["impl"] == "ipallow" and r["operation"] == "contains_many":
            ref_tp[(r["family"], "array" if "array" in r["input"] else "list")] = r["best_M_per_s"]
    for r in result["throughput"]:
        base = ref_tp.get((r["family"], "array" if "array" in r["input"] else "list"))
        r["vs_ipallow"] = round(base / r["best_M_per_s"], 2) if base and r["best_M_per_s"] else None
    ref_build = next((r["best_s"] for r in result["build"] if r["what"] == BUILD_ROW), None)
    for r in result["build"]:
        r["vs_ipallow"] = (round(r["best_s"] / ref_build, 2) if ref_build and r["what"] != LOAD_ROW
                           else None)


# --------------------------------------------------------------------------- plot


class PlotUnavailable(RuntimeError):
    """``--plot`` was asked for but matplotlib is not installed."""


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailable` (with the install hint) unless matplotlib imports."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotUnavailable("--plot needs matplotlib, which is not installed: "
                              "pip install 'ipallow[plot]' (or pip install matplotlib)") from None


def plot(result: dict, handle) -> None:
    """Write a PNG bar chart of ``result`` to the binary file ``handle``.

    Three panels: single-lookup p50 (ns per call, log scale), batch throughput
    (M lookups/s, log scale) and build time; ipallow's bars are drawn darker.
    """
    require_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat = result["latency"]
    tp = result["throughput"]
    builds = [b for b in result["build"] if b["what"] != LOAD_ROW]
    sizes = [max(len(lat), 1), max(len(tp), 1), max(len(builds), 1)]
    fig, axes = plt.subplots(3, 1, figsize=(11, 1.6 + 0.24 * sum(sizes) + 1.5),
                             gridspec_kw={"height_ratios": sizes})

    def bars(ax, labels, values, impls, title, xlabel, log=True):
        y = np.arange(len(labels))
        colors = ["#1f4e79" if i == "ipallow" else "#9dbbd8" for i in impls]
        ax.barh(y, values, color=colors)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        if log and values and min(values) > 0:
            ax.set_xscale("log")
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel(xlabel, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        for yi, v in zip(y, values):
            ax.text(v, yi, f" {v:,.3g}", va="center", fontsize=7)
        ax.margins(x=0.12)

    bars(axes[0], [f"IPv{r['family']} {r['impl']}: {r['operation']} ({r['input']})" for r in lat],
         [max(r["p50_ns"], 0.1) for r in lat], [r["impl"] for r in lat],
         "single lookup, p50 ns per call, loop floor subtracted (lower is better)", "ns per call (log scale)")
    bars(axes[1], [f"IPv{r['family']} {r['impl']}: {r['operation']} ({r['input']})" for r in tp],
         [r["best_M_per_s"] or 0.0 for r in tp], [r["impl"] for r in tp],
         "batch throughput, best run (higher is better)", "million lookups / s (log scale)")
    bars(axes[2], [b["impl"] for b in builds], [b["best_s"] * 1e3 for b in builds],
         [b["impl"] for b in builds], "build from the list's prefixes as CIDR strings (lower is better)", "ms",
         log=False)
    src = os.path.basename(str(result["list"].get("name", "")))
    m = result["machine"]
    load = "/".join(f"{x:g}" for x in m["load_average"]) if m["load_average"] else "?"
    fig.suptitle(f"ipallow bench: {src}: {result['list']['prefixes']['ipv4']:,} IPv4 + "
                 f"{result['list']['prefixes']['ipv6']:,} IPv6 prefixes, {result['queries']['count']:,} queries\n"
                 f"{m['cpu']}, {m['cpus']} CPUs, load average {load}; Python {m['python']}, "
                 f"ipallow {m['ipallow']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)
