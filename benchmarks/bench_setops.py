"""Set algebra on two seeded 100,000-prefix lists: ipallow against netaddr.IPSet and pyroaring.

Run:

    python -m pytest benchmarks/bench_setops.py --benchmark-only --benchmark-group-by=group

``IPALLOW_BENCH_SETOPS_PREFIXES`` sets the rows of each list (default 100,000): two
``ipallow.synth`` tables, seeds 1 and 2, IPv4 (BGP-like, so they overlap and nest) and IPv6.
Per operation (union, intersection, difference) and family the group times:

* ``ipallow-cidrs`` -- :func:`ipallow.setops.address_set`: the minimal CIDR list of the result,
  what ``ipallow merge | common | except`` write;
* ``ipallow-allowlist`` -- ``a | b``, ``a & b``, ``a - b``: the result as a compiled Allowlist
  with the registrations kept (includes building its index);
* ``netaddr`` -- ``IPSet`` operators on sets built beforehand (the result is an ``IPSet``);
* ``pyroaring-op`` (IPv4) -- ``BitMap`` operators alone, on bitmaps built beforehand: the
  floor of what pyroaring costs, with no CIDRs in or out;
* ``pyroaring-cidrs`` (IPv4) -- the same job as ``ipallow-cidrs`` through pyroaring, as
  ``ipallow.diff`` uses it: bitmaps from the prefixes, the operator, the runs back out.

The session summary gives each one's median and how many times ``ipallow-cidrs`` it takes.
"""

from __future__ import annotations

import importlib
import os
from collections import defaultdict

import netaddr
import pytest

import ipallow
from ipallow import setops, synth
from ipallow._prefixes import Prefixes, ipv4_strings, ipv6_strings

N = int(os.environ.get("IPALLOW_BENCH_SETOPS_PREFIXES", "100000").replace("_", "").replace(",", ""))
OPERATORS = {"union": "__or__", "intersection": "__and__", "difference": "__sub__"}
MEDIANS: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)

try:
    from pyroaring import BitMap  # noqa: F401
    _diff = importlib.import_module("ipallow.diff")       # its bitmap helpers (ipallow.diff is the function)
except ImportError:      # pragma: no cover - pyroaring is in the bench extra
    _diff = None


def _strings(version: int, seed: int) -> list[str]:
    if version == 4:
        return ipv4_strings(*synth.ipv4_table(N, seed=seed))
    return ipv6_strings(*synth.ipv6_table(N, seed=seed))


@pytest.fixture(scope="module")
def lists():
    """{version: (strings a, strings b, Allowlist a, Allowlist b)}."""
    out = {}
    for version in (4, 6):
        a, b = _strings(version, 1), _strings(version, 2)
        out[version] = (a, b, ipallow.Allowlist(a), ipallow.Allowlist(b))
    return out


@pytest.fixture(scope="module")
def ipsets(lists):
    return {v: (netaddr.IPSet(a), netaddr.IPSet(b)) for v, (a, b, _, _) in lists.items()}


def _prefixes4(allowlist) -> Prefixes:
    c = allowlist.compiled
    rows = c.version == 4
    return Prefixes(4, c.hi[rows], c.lo[rows], c.prefixlen[rows])


@pytest.fixture(scope="module")
def bitmaps(lists):
    if _diff is None:
        pytest.skip("pyroaring is not installed (it is in the bench extra)")
    _, _, a, b = lists[4]
    return _diff._bitmap4(_prefixes4(a)), _diff._bitmap4(_prefixes4(b))


@pytest.fixture(scope="module", autouse=True)
def ratios(summary):
    yield
    for (operation, version), times in sorted(MEDIANS.items()):
        base = times.get("ipallow-cidrs")
        for name, median in sorted(times.items(), key=lambda kv: kv[1]):
            ratio = f" = {median / base:.1f}x ipallow-cidrs" if base else ""
            summary.append((f"setops-{operation}-v{version}", name, f"{median * 1e3:,.1f}",
                            f"ms median{ratio}"))


def _time(benchmark, function, operation, version, name, rounds):
    benchmark.group = f"setops-{operation}-v{version}"
    result = benchmark.pedantic(function, rounds=rounds, iterations=1, warmup_rounds=1 if rounds > 3 else 0)
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None:
        MEDIANS[(operation, version)][name] = stats.median
    return result


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("operation", list(OPERATORS))
def test_ipallow_cidrs(benchmark, lists, operation, version):
    _, _, a, b = lists[version]
    result = _time(benchmark, lambda: setops.address_set(operation, [a.compiled, b.compiled]),
                   operation, version, "ipallow-cidrs", rounds=10)
    assert len(result[version]) or operation == "intersection"


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("operation", list(OPERATORS))
def test_ipallow_allowlist(benchmark, lists, operation, version):
    _, _, a, b = lists[version]
    result = _time(benchmark, lambda: getattr(a, OPERATORS[operation])(b), operation, version,
                   "ipallow-allowlist", rounds=5)
    assert isinstance(result, ipallow.Allowlist)


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("operation", list(OPERATORS))
def test_netaddr(benchmark, ipsets, operation, version):
    a, b = ipsets[version]
    _time(benchmark, lambda: getattr(a, OPERATORS[operation])(b), operation, version, "netaddr", rounds=3)


@pytest.mark.parametrize("operation", list(OPERATORS))
def test_pyroaring_op(benchmark, bitmaps, operation):
    a, b = bitmaps
    _time(benchmark, lambda: getattr(a, OPERATORS[operation])(b), operation, 4, "pyroaring-op", rounds=10)


@pytest.mark.parametrize("operation", list(OPERATORS))
def test_pyroaring_cidrs(benchmark, lists, bitmaps, operation):
    _, _, a, b = lists[4]
    pa, pb = _prefixes4(a), _prefixes4(b)

    def through_pyroaring():
        both = getattr(_diff._bitmap4(pa), OPERATORS[operation])(_diff._bitmap4(pb))
        return _diff._runs4(both)

    runs = _time(benchmark, through_pyroaring, operation, 4, "pyroaring-cidrs", rounds=3)
    # The same addresses as ipallow's: the benchmark compares like with like.
    ranges = setops.combine_ranges(operation, [setops.address_ranges(a.compiled)[4],
                                               setops.address_ranges(b.compiled)[4]])
    assert runs == list(zip(ranges.first_lo.tolist(), ranges.last_lo.tolist()))
