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

The package: ``_table`` (the prefixes every builder is given, the searchsorted baseline),
``_queries``, ``_peers`` (one adapter per library), ``_compare`` (agreement), ``_timing``,
``_run`` (the steps of one run) and ``_plot``.  Its names are imported on first use, so
``ipallow bench --help`` (which quotes the defaults and the peers) loads no numpy.

>>> import ipallow
>>> al = ipallow.Allowlist(["192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32"])
>>> result = ipallow.bench.run(al, queries=2000, seconds=0.2, peers=[])
>>> result["agreement"]["ok"], result["queries"]["count"]
(True, 2000)
"""

from importlib import import_module as _import_module

from ipallow.bench._defaults import DEFAULT_QUERIES, DEFAULT_SECONDS, LATENCY_BATCH, MAX_EXAMPLES

_WHERE = {
    "PrefixTable": "_table", "merged_ranges": "_table", "rows_to_s16": "_table",
    "searchsorted_contains": "_table",
    "Queries": "_queries", "QueryProblem": "_queries", "FamilyQueries": "_queries",
    "random_queries": "_queries", "read_queries": "_queries", "ipv4_texts": "_queries",
    "ipv6_texts": "_queries",
    "Peer": "_peers", "PEERS": "_peers", "installed_peers": "_peers",
    "PytriciaPeer": "_peers", "RadixPeer": "_peers", "SubnetTreePeer": "_peers", "NetaddrPeer": "_peers",
    "RoaringPeer": "_peers",
    "compare": "_compare",
    "latency": "_timing", "loop_floor": "_timing", "throughput": "_timing", "rss_bytes": "_timing",
    "run": "_run", "machine_info": "_run", "LOAD_ROW": "_run", "BUILD_ROW": "_run",
    "plot": "_plot", "PlotUnavailable": "_plot", "require_matplotlib": "_plot",
}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(f"{__name__}.{module}"), name)
    globals()[name] = value          # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "DEFAULT_QUERIES", "DEFAULT_SECONDS", "LATENCY_BATCH",
    "PrefixTable", "Queries", "QueryProblem", "Peer", "PEERS", "installed_peers",
    "random_queries", "read_queries", "compare", "latency", "throughput",
    "merged_ranges", "searchsorted_contains", "rows_to_s16", "ipv4_texts", "ipv6_texts",
    "run", "machine_info", "plot", "PlotUnavailable", "require_matplotlib",
]
