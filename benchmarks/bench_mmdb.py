"""MaxMind DB export and import.

Run:

    python -m pytest benchmarks/bench_mmdb.py --benchmark-only --benchmark-group-by=group

* ``export`` -- :func:`ipallow.mmdb.to_bytes` of a seeded ``ipallow.synth`` IPv4 table (BGP-like,
  nested) of 100,000 and 1,000,000 prefixes, one registration each (records ``{"id": "#N"}``),
  plus 10% IPv6; the whole file in memory (writing it is one ``write``);
* ``mmdb-writer`` -- the same 100,000-row list through the ``mmdb-writer`` package (PyPI), for
  comparison, when it is installed (one round: it takes tens of seconds);
* ``from_mmdb`` -- ``Allowlist.from_mmdb`` of the GeoLite2 City database the
  ``maxminddb-geolite2`` package ships, ``country.iso_code == "PK"`` (when installed).
"""

from __future__ import annotations

import numpy as np
import pytest

from ipallow import Allowlist, mmdb, synth


def _allowlist(n: int) -> Allowlist:
    keys, plens = synth.ipv4_table(n, seed=1)
    hi, lo, plens6 = synth.ipv6_table(n // 10, seed=2)
    return Allowlist(synth.ipv4_strings(keys, plens) + synth.ipv6_strings(hi, lo, plens6))


@pytest.mark.parametrize("n", [100_000, 1_000_000])
def test_export(benchmark, n):
    allowlist = _allowlist(n)
    benchmark.group = f"export {n:,}"
    data, summary = benchmark.pedantic(mmdb.to_bytes, (allowlist.compiled,), {"build_epoch": 0},
                                       rounds=3, iterations=1)
    assert summary["registrations"] == len(allowlist) and len(data) == summary["bytes"]


def test_mmdb_writer(benchmark, tmp_path):
    writer_module = pytest.importorskip("mmdb_writer", reason="mmdb-writer is not installed")
    from netaddr import IPSet
    allowlist = _allowlist(100_000)
    c = allowlist.compiled
    # shortest first: mmdb-writer lets a later, longer network override inside an earlier one
    order = np.argsort(c.prefixlen, kind="stable")
    rows = [(str(allowlist._network(int(p))), int(c.prefix_reg[p])) for p in order]

    def write():
        writer = writer_module.MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="ipallow")
        for network, reg in rows:
            writer.insert_network(IPSet([network]), {"id": f"#{reg}"})
        writer.to_db_file(str(tmp_path / "w.mmdb"))

    benchmark.group = "export 100,000"
    benchmark.pedantic(write, rounds=1, iterations=1)


def test_from_mmdb_city(benchmark):
    geolite2 = pytest.importorskip("_maxminddb_geolite2", reason="maxminddb-geolite2 is not installed")
    benchmark.group = "from_mmdb GeoLite2 City"
    allowlist = benchmark.pedantic(Allowlist.from_mmdb, (geolite2.geolite2_database(),),
                                   {"where": 'country.iso_code == "PK"'}, rounds=1, iterations=1)
    assert len(allowlist) > 1000
