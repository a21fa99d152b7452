"""Reading MaxMind DBs in: Allowlist.from_mmdb on the real GeoLite2 City database (the
maxminddb-geolite2 package) checked against the maxminddb reader itself, the --where
expression language (accepted forms, refused forms with their column, never Python), and
`ipallow compile --from-mmdb FILE --where EXPR`."""

from __future__ import annotations

import ipaddress
import json
from datetime import date
import random
import shutil
import subprocess

import pytest

import ipallow
from ipallow import Allowlist, mmdb
from ipallow.mmdb import WhereError, where

IPALLOW = shutil.which("ipallow")
needs_cli = pytest.mark.skipif(IPALLOW is None, reason="the ipallow executable is not installed")

RECORD = {"autonomous_system_number": 17557, "country": {"iso_code": "PK", "names": {"zh-CN": "巴基斯坦"}},
          "subdivisions": [{"iso_code": "SD"}, {"iso_code": "PB"}], "location": {"accuracy_radius": 50},
          "traits": {"is_anonymous_proxy": False}, "ratio": 0.5}


# -- the language ------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, expected", [
    ("autonomous_system_number in {17557, 38193}", True),
    ("autonomous_system_number not in {17557, 38193}", False),
    ('country.iso_code == "PK"', True),
    ('country.iso_code != "PK"', False),
    ('country.names["zh-CN"] == "巴基斯坦"', True),
    ('subdivisions[0].iso_code == "SD" and subdivisions[-1].iso_code == "PB"', True),
    ('subdivisions[5].iso_code == "SD"', False),                 # out of range: None
    ("location.accuracy_radius <= 50 < 100", True),               # chains
    ("location.accuracy_radius > 50", False),
    ("not traits.is_anonymous_proxy", True),
    ("traits.is_anonymous_proxy or ratio >= 0.5", True),
    ("missing.field == None", True),                              # a missing field is None
    ("missing.field", False),
    ('missing.field < 3 or country.iso_code < 3', False),         # incomparable: false
    ("autonomous_system_number in [1, 2, -3]", False),
    ('country in {"PK"}', False),                                 # a dict in a set: false, no error
    ("True", True),
])
def test_language_answers(expression, expected):
    assert where(expression)(RECORD) is expected


@pytest.mark.parametrize("expression, column, message", [
    ('__import__("os").system("true")', 1, "a call is not in the language"),
    ("country.iso_code == 'PK' and len(x) > 1", 30, "a call"),
    ("autonomous_system_number + 1 == 2", 1, "arithmetic"),
    ("country.iso_code is None", 21, "Is is not in the language"),
    ("country[code] == 1", 9, "string key or an integer index"),
    ("country.iso_code == x.y", 21, None),                         # fields on both sides are fine
    ("a in {b}", 7, "expected a literal"),
    ("a ==", 1, "syntax error"),
    ("  ", 1, "empty expression"),
    ("[x for x in y]", 1, "a comprehension"),
    ("lambda: 1", 1, "a lambda"),
    ("(a := 1)", 2, "an assignment"),
])
def test_language_refuses_with_the_column(expression, column, message):
    if message is None:
        where(expression)
        return
    with pytest.raises(WhereError, match=message) as caught:
        where(expression)
    assert caught.value.column == column
    assert f"--where column {column}:" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_language_type_errors():
    with pytest.raises(TypeError):
        where(b"a == 1")
    with pytest.raises(TypeError):
        Allowlist.from_mmdb("x.mmdb", where=3)


# -- GeoLite2 City, real data ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def city():
    pytest.importorskip("maxminddb", reason="the maxminddb package (test extra) is not installed")
    geolite2 = pytest.importorskip("_maxminddb_geolite2",
                                   reason="the maxminddb-geolite2 package (test extra) is not installed")
    return geolite2.geolite2_database()


@pytest.fixture(scope="module")
def pakistan(city):
    # One pass over the database; the expression reads one top-level field, so only that
    # field of each of the 458k distinct records is decoded, and the kept records whole.
    return Allowlist.from_mmdb(city, where='country.iso_code == "PK"')


def _country(record):
    return ((record or {}).get("country") or {}).get("iso_code")


def test_city_networks_agree_with_the_reader(city, pakistan):
    import maxminddb
    assert len(pakistan) > 1000 and pakistan.prefix_count[4] and pakistan.prefix_count[6]
    with maxminddb.open_database(city, maxminddb.MODE_MMAP_EXT if hasattr(maxminddb, "extension")
                                 else maxminddb.MODE_FILE) as reader:
        for entry in pakistan:
            network, = entry.networks
            first, last = network.network_address, network.broadcast_address
            for address in (first, last):
                record, prefix_len = reader.get_with_prefix_len(address)
                # the same network (prefix lengths of IPv4 counted as IPv4) and the same record
                assert prefix_len == network.prefixlen, network
                assert record == entry.data and _country(record) == "PK", network
            for outside in (int(first) - 1, int(last) + 1):
                if 0 <= outside < 1 << network.max_prefixlen:
                    address = ipaddress.ip_address(outside) if network.version == 6 \
                        else ipaddress.IPv4Address(outside)
                    assert (_country(reader.get(address)) == "PK") == (address in pakistan), address
        # and random addresses, in or out
        rng = random.Random(7)
        for _ in range(4000):
            address = ipaddress.IPv4Address(rng.getrandbits(32))
            assert (_country(reader.get(address)) == "PK") == (address in pakistan), address
        pk6 = [e.networks[0] for e in pakistan if e.networks[0].version == 6]
        for network in rng.sample(pk6, min(50, len(pk6))):
            address = network[rng.randrange(network.num_addresses)]
            assert address in pakistan and _country(reader.get(address)) == "PK"


def test_city_records_are_kept_whole(pakistan):
    karachi = [e for e in pakistan if ((e.data.get("city") or {}).get("names") or {}).get("en") == "Karachi"]
    assert karachi and all(e.data["country"]["names"]["en"] == "Pakistan" for e in karachi)
    assert all("location" in e.data and "continent" in e.data for e in pakistan)


def test_callable_sees_each_distinct_record_once(exported_sample):
    seen = []

    def owned_by_indus(record):
        seen.append(record)
        return record.get("owner") == "Indus Call Center"

    allowlist = Allowlist.from_mmdb(exported_sample, where=owned_by_indus)
    ids = [r["id"] for r in seen]
    assert len(ids) == len(set(ids)) == len({e.data["id"] for e in Allowlist.from_mmdb(exported_sample)})
    assert len(allowlist) and all(e.data["owner"] == "Indus Call Center" for e in allowlist)
    # every whole record, as the expression's fast path keeps them too
    by_expression = Allowlist.from_mmdb(exported_sample, where='owner == "Indus Call Center"')
    assert [(e.networks, e.data) for e in by_expression] == [(e.networks, e.data) for e in allowlist]


# -- the command -------------------------------------------------------------------------------

@needs_cli
def test_compile_from_mmdb(tmp_path, exported_sample):
    out = tmp_path / "calls.ipallow"
    result = subprocess.run([IPALLOW, "compile", "--from-mmdb", exported_sample, "--where",
                             'category == "call_center" and status == "active"', "-o", out, "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    snapshot = ipallow.load(out)
    assert report["registrations"] == len(snapshot) > 0
    registry = Allowlist.from_registry(ipallow.SAMPLE_LIST, at=date(2026, 1, 1))
    expected = {str(n) for e in registry for n in e.networks
                if e.data.category == "call_center"}
    for entry in snapshot:
        assert entry.data["category"] == "call_center"
        match = registry.lookup(entry.networks[0].network_address)
        assert match.data.id == entry.data["id"] and str(match.network) in expected


@needs_cli
@pytest.mark.parametrize("args, message", [
    (["--where", "a = 1"], "--where column 3: syntax error"),
    (["--where", "open('x')"], "a call is not in the language"),
    (["LIST"], "either LIST or --from-mmdb"),
])
def test_compile_from_mmdb_errors(tmp_path, exported_sample, args, message):
    result = subprocess.run([IPALLOW, "compile", "--from-mmdb", exported_sample, *args, "-o", tmp_path / "x"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def exported_sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "sample.mmdb"
    Allowlist.from_registry(ipallow.SAMPLE_LIST, at=date(2026, 1, 1)).export_mmdb(path)
    return str(path)
