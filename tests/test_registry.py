"""Registration records, registry loaders (CSV / JSON Lines), lifecycle filtering, from_registry, explain."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import pickle
import random
import warnings
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

import ipallow
from ipallow import (AddressError, Allowlist, Explanation, ParseError, Registration, Registry, Standing,
                     load_registry)
from ipallow.registry import parse_registry, to_timestamp
from lifecycle_reference import Reference

UTC = timezone.utc
N = ipaddress.ip_network
T0 = datetime(2025, 1, 1, tzinfo=UTC)
S0 = T0.timestamp()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def problems_of(excinfo):
    return [str(p) for p in excinfo.value.problems]


# ---------------------------------------------------------------------------------------------
# the record


def test_registration_normalises_its_fields():
    r = Registration("  PTA-1 ", ["192.0.2.0/24", "10.0.0.1 - 10.0.0.6", "::ffff:198.51.100.0/120",
                                  N("192.0.2.0/24")],
                     owner=" Acme ", category="Company_VPN", status=" Active",
                     valid_from="2025-01-01", expires_at="2025-06-01T05:00:00+05:00",
                     tags="a; b,a ,", extra={"region": "Punjab", "nested": {"k": [1, 2]}})
    assert r.id == "PTA-1" and r.owner == "Acme"
    assert r.category == "company_vpn" and r.status == "active"
    # a range keeps one id and becomes its minimal CIDRs; mapped IPv6 is IPv4; duplicates dropped
    assert r.networks == (N("192.0.2.0/24"), N("10.0.0.1/32"), N("10.0.0.2/31"), N("10.0.0.4/31"),
                          N("10.0.0.6/32"), N("198.51.100.0/24"))
    assert r.network == N("192.0.2.0/24")
    assert r.valid_from == T0 and r.valid_from.tzinfo is not None
    assert r.expires_at == datetime(2025, 6, 1, tzinfo=UTC)
    assert r.tags == ("a", "b")
    assert r.extra["region"] == "Punjab" and r.extra["nested"]["k"] == (1, 2)


def test_registration_is_immutable_hashable_and_picklable():
    r = Registration("A", "10.0.0.0/8", extra={"x": [1]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.status = "revoked"  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.extra["x"] = 2  # type: ignore[index]
    assert pickle.loads(pickle.dumps(r)) == r
    assert {r, Registration("A", "10.0.0.0/8", extra={"x": [1]})} == {r}
    assert Registration("A", "10.0.0.0/8", extra={"x": 1}) != Registration("A", "10.0.0.0/8", extra={"x": 2})


def test_to_dict_from_dict_round_trip():
    r = Registration("A", ["10.0.0.0/8", "2001:db8::/32"], owner="o", status="suspended",
                     valid_from=T0, expires_at=T0 + timedelta(days=1), tags=("t",), extra={"n": {"k": [1]}})
    record = r.to_dict()
    assert json.loads(json.dumps(record)) == record
    assert record["valid_from"] == "2025-01-01T00:00:00Z"
    assert Registration.from_dict(record) == r


@pytest.mark.parametrize("kwargs,exc", [
    (dict(id=None, networks="10.0.0.0/8"), TypeError),
    (dict(id=5, networks="10.0.0.0/8"), TypeError),
    (dict(id="  ", networks="10.0.0.0/8"), ValueError),
    (dict(id="A", networks=None), TypeError),
    (dict(id="A", networks=[]), ValueError),
    (dict(id="A", networks=[None]), TypeError),
    (dict(id="A", networks=1.5), TypeError),
    (dict(id="A", networks="10.0.0.1/8"), AddressError),
    (dict(id="A", networks="10.0.0.256"), AddressError),
    (dict(id="A", networks="10.0.0.0/8", status="expired"), ValueError),
    (dict(id="A", networks="10.0.0.0/8", status=None), TypeError),
    (dict(id="A", networks="10.0.0.0/8", category="vpn"), ValueError),
    (dict(id="A", networks="10.0.0.0/8", owner=3), TypeError),
    (dict(id="A", networks="10.0.0.0/8", valid_from=datetime(2025, 1, 1)), ValueError),
    (dict(id="A", networks="10.0.0.0/8", valid_from="yesterday"), ValueError),
    (dict(id="A", networks="10.0.0.0/8", valid_from=1735689600), TypeError),
    (dict(id="A", networks="10.0.0.0/8", valid_from="2025-02-01", expires_at="2025-01-01"), ValueError),
    (dict(id="A", networks="10.0.0.0/8", valid_from="2025-02-01", expires_at="2025-02-01"), ValueError),
    (dict(id="A", networks="10.0.0.0/8", tags=[1]), TypeError),
    (dict(id="A", networks="10.0.0.0/8", extra=[1]), TypeError),
    (dict(id="A", networks="10.0.0.0/8", extra={"status": "x"}), ValueError),
    (dict(id="A", networks="10.0.0.0/8", extra={1: "x"}), TypeError),
], ids=lambda v: repr(v) if isinstance(v, dict) else v.__name__)
def test_registration_rejects_bad_fields(kwargs, exc):
    with pytest.raises(exc):
        Registration(**kwargs)


def test_ipaddress_objects_are_single_entries_not_iterated():
    # an ipaddress network is iterable (its addresses): it must stay one network
    r = Registration("A", N("10.0.0.0/30"))
    assert r.networks == (N("10.0.0.0/30"),)


# ---------------------------------------------------------------------------------------------
# lifecycle


def test_counts_at_half_open_window_and_reasons():
    r = Registration("A", "10.0.0.0/8", valid_from=T0, expires_at=T0 + timedelta(days=30))
    before, start = r.counts_at(S0 - 1), r.counts_at(S0)
    last, end = r.counts_at(S0 + 30 * 86400 - 1e-3), r.counts_at(T0 + timedelta(days=30))
    assert before == Standing(False, "not_yet_valid", "not valid until 2025-01-01T00:00:00Z")
    assert not before and start and last
    assert start.reason == "active until 2025-01-31T00:00:00Z"
    assert end == Standing(False, "expired", "expired on 2025-01-31T00:00:00Z")
    assert Registration("B", "10.0.0.0/8").counts_at() == Standing(True, "active", "active")


@pytest.mark.parametrize("status,code,reason", [
    ("pending", "pending", "pending: not yet approved"),
    ("suspended", "suspended", "suspended"),
    ("revoked", "revoked", "revoked"),
])
def test_non_active_status_never_counts(status, code, reason):
    r = Registration("A", "10.0.0.0/8", status=status)
    assert r.counts_at(S0) == Standing(False, code, reason)
    expired = Registration("A", "10.0.0.0/8", status=status, expires_at=T0)
    assert expired.counts_at(S0 + 1).reason == f"{reason} (and expired on 2025-01-01T00:00:00Z)"


def test_instants_in_every_form():
    assert to_timestamp(T0) == to_timestamp(S0) == to_timestamp(int(S0)) == to_timestamp(date(2025, 1, 1))
    assert to_timestamp(datetime(2025, 1, 1, 5, tzinfo=timezone(timedelta(hours=5)))) == S0
    with pytest.raises(ValueError):
        to_timestamp(datetime(2025, 1, 1))          # naive: ambiguous
    with pytest.raises(ValueError):
        to_timestamp(float("nan"))
    for bad in (True, "2025-01-01", [1]):
        with pytest.raises(TypeError):
            to_timestamp(bad)


# ---------------------------------------------------------------------------------------------
# CSV


CSV_GOOD = (
    "id,cidr,owner,category,status,valid_from,expires_at,tags,region\n"
    "PTA-1,192.0.2.0/24,Acme Soft,company_vpn,active,2025-01-01,2026-01-01T00:00:00Z,\"gold;sla\",Punjab\n"
    "PTA-2,\"198.51.100.0/25; 198.51.100.128/26\",\"Lahore, Freelancers\",freelancer_vpn,suspended,,,,Sindh\n"
    "\n"
    "PTA-3,10.0.0.0 - 10.0.0.9,Indus,call_center,ACTIVE,,2025-03-01 00:00:00+05:00,,\n"
    "PTA-1,203.0.113.0/24,Acme Soft,company_vpn,active,2025-01-01,2026-01-01T00:00:00Z,gold;sla,Punjab\n"
)


def test_csv_registry_every_column(tmp_path):
    reg = load_registry(write(tmp_path, "reg.csv", CSV_GOOD))
    assert [r.id for r in reg] == ["PTA-1", "PTA-2", "PTA-3"] and reg.source.endswith("reg.csv")
    one, two, three = reg
    # duplicate id with identical data: one registration covering both networks
    assert one.networks == (N("192.0.2.0/24"), N("203.0.113.0/24"))
    assert one.tags == ("gold", "sla") and one.extra == {"region": "Punjab"}
    assert one.valid_from == T0 and one.expires_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert two.networks == (N("198.51.100.0/25"), N("198.51.100.128/26"))
    assert two.owner == "Lahore, Freelancers" and two.status == "suspended" and two.valid_from is None
    assert three.status == "active" and three.expires_at == datetime(2025, 2, 28, 19, tzinfo=UTC)
    assert three.networks == (N("10.0.0.0/29"), N("10.0.0.8/31"))   # a range: one id, its CIDRs
    assert three.extra == {"region": ""}


def test_csv_optional_columns_take_defaults():
    reg = load_registry(ipallow.SAMPLE_LIST)     # cidr,id,owner,category: no status, no times
    assert len(reg) > 3000
    assert {r.status for r in reg} == {"active"} and all(r.valid_from is None for r in reg)
    assert reg.get("PTA-0003").owner == "Indus Call Center"


def test_csv_problems_are_all_listed_with_line_and_column(tmp_path):
    text = (
        "id,network,status,category,valid_from,expires_at\n"           # 1
        "A,10.0.0.0/8,active,other,,\n"                                # 2  fine
        "B,10.0.0.1/8,active,other,,\n"                                # 3  host bits: col 3
        "C,1.2.3.0/24;1.2.3.256,active,other,,\n"                      # 4  2nd piece, bad octet
        "D,1.2.4.0/24,expired,other,,\n"                               # 5  unknown status: col 14
        "E,1.2.5.0/24,active,vpn,,\n"                                  # 6  unknown category: col 21
        "F,1.2.6.0/24,active,other,next week,\n"                       # 7  timestamp: col 27
        "G,1.2.7.0/24,active,other,2025-02-01,2025-01-01\n"            # 8  expires before: col 38
        "A,10.0.0.0/8,revoked,other,,\n"                               # 9  duplicate id, different status
        ",1.2.8.0/24,active,other,,\n"                                 # 10 missing id
        "H,,active,other,,\n"                                          # 11 missing network
        "I,1.2.9.0/24,,other,,\n"                                      # 12 empty status
        "J,1.2.10.0/24,active\n"                                       # 13 field count
    )
    with pytest.raises(ParseError) as excinfo:
        load_registry(write(tmp_path, "reg.csv", text))
    got = problems_of(excinfo)
    p = str(tmp_path / "reg.csv")
    assert got == [
        f"{p}:3:3: invalid network '10.0.0.1/8': host bits set",
        f"{p}:4:20: invalid network '1.2.3.256': octet greater than 255",
        f"{p}:5:14: unknown status 'expired': expected one of pending, active, suspended, revoked",
        f"{p}:6:21: unknown category 'vpn': expected one of company_vpn, freelancer_vpn, call_center, "
        f"video_conference, other",
        f"{p}:7:27: valid_from: unparseable timestamp 'next week': expected ISO 8601 such as "
        f"2025-01-31T12:00:00Z",
        f"{p}:8:38: expires_at 2025-01-01T00:00:00Z is not after valid_from 2025-02-01T00:00:00Z",
        f"{p}:9:1: duplicate id 'A' with different status than line 2",
        f"{p}:10:1: missing id",
        f"{p}:11:3: missing network",
        f"{p}:12:14: missing status (the column is there but the value is empty)",
        f"{p}:13:1: expected 6 fields, found 3",
    ]
    assert "11 problems; nothing was loaded" in str(excinfo.value)


def test_csv_columns_count_from_the_value_inside_quotes_and_across_lines(tmp_path):
    text = ('id,owner,cidr\n'
            'A,"two\nlines","10.0.0.1/8"\n'
            'B,"say ""hi""",1.2.3.4/33\n'
            'C,x,  "1.2.3.0/24"\n')          # not a quoted field (excel dialect): the quotes are text
    with pytest.raises(ParseError) as excinfo:
        load_registry(write(tmp_path, "q.csv", text))
    p = str(tmp_path / "q.csv")
    got = problems_of(excinfo)
    # A's network value starts on physical line 3 after `lines",` and the opening quote
    assert got[0] == f"{p}:3:9: invalid network '10.0.0.1/8': host bits set"
    # B's starts after a field holding escaped quotes (column 16); the error points at the length
    assert got[1].startswith(f"{p}:4:24: invalid network '1.2.3.4/33': ")
    assert got[2].startswith(f"{p}:5:7: invalid network '\"1.2.3.0/24\"': ")
    assert len(got) == 3


@pytest.mark.parametrize("text,expected", [
    ("", "1:1: empty CSV file: expected a header row"),
    ("cidr,owner\n10.0.0.0/8,x\n", "1:1: no id column in header"),
    ("id,owner\nA,x\n", "1:1: no network column in header"),
    ("id,cidr,ip\nA,10.0.0.0/8,10.0.0.1\n", "1:1: several network columns (cidr, ip): keep one"),
    ("id,cidr,Owner,owner\nA,10.0.0.0/8,x,y\n", "1:15: duplicate column 'owner' in header"),
    (b"id,cidr\nA,10.0.0.0/8\xff\n", "2:13: not valid UTF-8"),
])
def test_csv_structural_problems(tmp_path, text, expected):
    with pytest.raises(ParseError) as excinfo:
        load_registry(write(tmp_path, "s.csv", text))
    assert expected in str(excinfo.value)


def test_csv_header_only_is_an_empty_registry(tmp_path):
    reg = load_registry(write(tmp_path, "h.csv", "id,cidr\n"))
    assert len(reg) == 0 and len(Allowlist.from_registry(reg)) == 0


# ---------------------------------------------------------------------------------------------
# JSON Lines


def test_jsonl_registry(tmp_path):
    lines = [
        {"id": "A", "networks": ["192.0.2.0/24", "2001:db8::/32"], "owner": "Acme", "status": "active",
         "valid_from": "2025-01-01T00:00:00Z", "expires_at": None, "tags": ["x", "y"],
         "contact": {"email": "a@example.org"}, "seats": 12},
        {"id": 42, "cidr": "198.51.100.0/24", "category": "call_center", "note": "line\u2028sep"},
    ]
    text = "\r\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n\n   \n"
    reg = load_registry(write(tmp_path, "reg.jsonl", text))
    a, b = reg
    assert a.networks == (N("192.0.2.0/24"), N("2001:db8::/32")) and a.tags == ("x", "y")
    assert a.extra == {"contact": {"email": "a@example.org"}, "seats": 12}
    assert b.id == "42" and b.category == "call_center" and b.status == "active"
    assert b.extra["note"] == "line\u2028sep"   # U+2028 inside a string does not end the record


def test_jsonl_problems_with_columns(tmp_path):
    text = "\n".join([
        '{"id": "A", "network": "10.0.0.0/8"}',                     # 1 fine
        '{"id": "B", "network": "10.0.0.0/8",}',                    # 2 invalid JSON (trailing comma) col 37
        '["not", "an", "object"]',                                  # 3 col 1
        '{"id": "C", "network": ["1.2.3.0/24", 5]}',                # 4 networks type col 24
        '{"id": "D", "network": "1.2.4.0/24", "status": 1}',        # 5 status type col 48
        '{"id": "E", "network": "1.2.5.0/24", "expires_at": "2025-13-01"}',  # 6 col 52
        '{"id": "F", "network": "1.2.6.0/24", "id": "G"}',          # 7 duplicate field col 38
        '{"network": "1.2.7.0/24"}',                                # 8 no id
        '{"id": true, "network": "1.2.8.0/24"}',                    # 9 id type col 8
        '{"id": "H", "network": "1.2.9.0/24"} trailing',            # 10 col 38
        '{"id": "I", "network": "2001:db8::1/32"}',                 # 11 host bits col 24
        '{"id": "J", "network": "1.2.10.0/24", "ip": "1.2.10.1"}',  # 12 two network fields col 45
    ])
    with pytest.raises(ParseError) as excinfo:
        load_registry(write(tmp_path, "r.jsonl", text))
    got = [s.split(": ", 1) for s in problems_of(excinfo)]
    where = [g[0].rsplit(":", 2)[1:] for g in got]
    assert where == [["2", "37"], ["3", "1"], ["4", "24"], ["5", "48"], ["6", "52"], ["7", "38"],
                     ["8", "1"], ["9", "8"], ["10", "38"], ["11", "24"], ["12", "45"]]
    messages = [g[1] for g in got]
    assert messages[0].startswith("invalid JSON")
    assert messages[1] == "expected a JSON object ({...}) on each line"
    assert messages[5] == "duplicate field 'id'"
    assert messages[2] == "networks must be a string or a list of strings, found a number in the list"
    assert messages[6] == "no id field"
    assert messages[9] == "invalid network '2001:db8::1/32': host bits set"
    assert messages[10] == "several network fields (network, ip): keep one"


def test_format_detection_and_override(tmp_path):
    jsonl = '{"id": "A", "network": "10.0.0.0/8"}\n'
    csv_text = "id,cidr\nA,10.0.0.0/8\n"
    for name, text, fmt in (("a.ndjson", jsonl, None), ("a.export", jsonl, None), ("b.export", csv_text, None),
                            ("c.txt", jsonl, "jsonl"), ("d.data", csv_text, "csv")):
        reg = load_registry(write(tmp_path, name, text), format=fmt)
        assert reg[0].networks == (N("10.0.0.0/8"),), name
    with pytest.raises(ValueError):
        load_registry(write(tmp_path, "e.csv", csv_text), format="xml")
    with pytest.raises(TypeError):
        load_registry(None)
    with pytest.raises(OSError):
        load_registry(tmp_path / "missing.csv")


def test_strict_false_masks_host_bits_with_one_warning(tmp_path):
    path = write(tmp_path, "m.csv", "id,cidr\nA,10.0.0.1/8\nB,192.0.2.9/24\n")
    with pytest.raises(ParseError):
        load_registry(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = load_registry(path, strict=False)
    assert [r.network for r in reg] == [N("10.0.0.0/8"), N("192.0.2.0/24")]
    assert len(caught) == 1 and issubclass(caught[0].category, ipallow.HostBitsWarning)
    assert "2 networks" in str(caught[0].message)


# ---------------------------------------------------------------------------------------------
# the registry


def test_registry_merges_equal_duplicates_and_refuses_conflicts():
    reg = Registry([Registration("A", "10.0.0.0/8"), Registration("B", "10.1.0.0/16"),
                    Registration("A", ["10.0.0.0/8", "11.0.0.0/8"])])
    assert len(reg) == 2 and reg.get("A").networks == (N("10.0.0.0/8"), N("11.0.0.0/8"))
    assert reg.index_of("B") == 1 and reg.get(" B ").id == "B" and reg.get("Z") is None
    with pytest.raises(ValueError, match="duplicate id 'A' with different owner"):
        Registry([Registration("A", "10.0.0.0/8"), Registration("A", "10.0.0.0/8", owner="x")])
    for bad in (None, "reg.csv", 5, ["10.0.0.0/8"]):
        with pytest.raises(TypeError):
            Registry(bad)
    assert pickle.loads(pickle.dumps(reg)) == reg
    assert "2 registrations, 2 active" in repr(reg)


def test_registry_boundaries_only_of_active_records():
    reg = Registry([
        Registration("A", "10.0.0.0/8", valid_from=T0, expires_at=T0 + timedelta(hours=2)),
        Registration("B", "11.0.0.0/8", expires_at=T0 + timedelta(hours=1)),
        Registration("C", "12.0.0.0/8", status="revoked", expires_at=T0 + timedelta(hours=3)),
    ])
    assert reg.boundaries == (T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert reg.next_boundary(T0 - timedelta(days=1)) == T0
    assert reg.next_boundary(T0) == T0 + timedelta(hours=1)       # strictly after
    assert reg.next_boundary(T0 + timedelta(hours=2)) is None
    assert [r.id for r in reg.active_at(S0 - 1)] == ["B"]
    assert [r.id for r in reg.active_at(S0)] == ["A", "B"]
    assert [r.id for r in reg.active_at(S0 + 3600)] == ["A"]
    assert reg.active_at(S0 + 7200) == []


# ---------------------------------------------------------------------------------------------
# from_registry and explain


def test_from_registry_compiles_only_what_counts_and_lookup_returns_the_registration(tmp_path):
    path = write(tmp_path, "reg.csv", CSV_GOOD)
    at = datetime(2025, 2, 1, tzinfo=UTC)
    al = Allowlist.from_registry(path, at=at)
    assert [e.data.id for e in al] == ["PTA-1", "PTA-3"]          # PTA-2 suspended
    match = al.lookup("203.0.113.7")
    assert isinstance(match.data, Registration) and match.data.id == "PTA-1" and match.index == 0
    assert "198.51.100.1" not in al
    assert "10.0.0.9" in al and "10.0.0.10" not in al
    later = Allowlist.from_registry(load_registry(path), at=datetime(2025, 3, 1, tzinfo=UTC))
    assert "10.0.0.1" not in later                                  # PTA-3 expired at 2025-02-28T19:00Z
    early = Allowlist.from_registry(list(load_registry(path)), at=T0 - timedelta(seconds=1))
    assert [e.data.id for e in early] == ["PTA-3"]
    with pytest.raises(TypeError):
        Allowlist.from_registry(None)
    with pytest.raises(TypeError):
        Allowlist.from_registry([Registration("A", "10.0.0.0/8")], at="now")


def test_same_registry_in_any_row_order_compiles_to_identical_snapshots(tmp_path):
    records = [Registration(f"PTA-{i:03d}", f"10.{i}.0.0/16", owner=f"o{i}") for i in range(50)]
    records += [Registration("PTA-DUP-B", "10.7.0.0/16"), Registration("PTA-DUP-A", "10.7.0.0/16")]
    shuffled = list(records)
    random.Random(3).shuffle(shuffled)
    first, second = tmp_path / "a.ipallow", tmp_path / "b.ipallow"
    Allowlist.from_registry(Registry(records), at=T0).save(first, created=0)
    Allowlist.from_registry(Registry(shuffled), at=T0).save(second, created=0)
    assert first.read_bytes() == second.read_bytes()
    # Equal prefixes resolve by id, whatever the row order.
    assert Allowlist.from_registry(Registry(shuffled), at=T0).lookup("10.7.1.1").data.id == "PTA-007"


def test_explain_lists_every_covering_registration_longest_first(tmp_path):
    reg = Registry([
        Registration("WIDE", "10.0.0.0/8"),
        Registration("SUSP", "10.1.0.0/16", status="suspended"),
        Registration("OLD", "10.1.2.0/24", expires_at=T0),
        Registration("SOON", ["10.1.2.0/25", "10.1.0.0/20"], valid_from=T0 + timedelta(days=10)),
        Registration("SAME", "10.1.2.0/25"),
        Registration("ELSE", "192.0.2.0/24"),
    ])
    al = Allowlist.from_registry(reg, at=T0 + timedelta(days=1))
    got = al.explain("10.1.2.3")
    assert [(e.registration.id, str(e.network), e.counts, e.code) for e in got] == [
        ("SAME", "10.1.2.0/25", True, "active"),           # id order breaks the /25 tie
        ("SOON", "10.1.2.0/25", False, "not_yet_valid"),
        ("OLD", "10.1.2.0/24", False, "expired"),
        ("SUSP", "10.1.0.0/16", False, "suspended"),
        ("WIDE", "10.0.0.0/8", True, "active"),
    ]
    assert got[2].reason == "expired on 2025-01-01T00:00:00Z"
    assert got[1].reason == "not valid until 2025-01-11T00:00:00Z"
    # the first entry that counts is what lookup answers
    assert next(e for e in got if e.counts).registration is al.lookup("10.1.2.3").data
    # another instant
    later = al.explain("10.1.2.3", at=T0 + timedelta(days=11))
    assert [e.registration.id for e in later if e.counts] == ["SAME", "SOON", "WIDE"]
    assert al.explain("8.8.8.8") == []
    assert isinstance(got[0], Explanation)
    with pytest.raises(TypeError):
        al.explain(None)
    with pytest.raises(AddressError):
        al.explain("10.1.2.300")


def test_explain_on_a_plain_allowlist():
    al = Allowlist(["10.0.0.0/8", ("10.1.0.0/16", {"id": "X"})])
    assert [(e.registration, e.code, e.counts) for e in al.explain("10.1.0.1")] == [
        ({"id": "X"}, "listed", True), (None, "listed", True)]


# ---------------------------------------------------------------------------------------------
# randomised: from_registry == an independent reference, at many instants


def random_registry(rng: random.Random, count: int, instants: list[float]) -> list[Registration]:
    """Nested, overlapping IPv4 and IPv6 registrations with lifecycles drawn from a few instants."""
    out = []
    for i in range(count):
        if rng.random() < 0.7:
            plen = rng.choice([8, 12, 16, 20, 24, 24, 24, 28, 30, 32])
            value = (10 << 24) | (rng.getrandbits(24) if plen > 8 else 0)
            net = ipaddress.IPv4Network((value >> (32 - plen) << (32 - plen), plen))
        else:
            plen = rng.choice([32, 40, 48, 48, 56, 64, 96])
            value = (0x20010DB8 << 96) | rng.getrandbits(96)
            net = ipaddress.IPv6Network((value >> (128 - plen) << (128 - plen), plen))
        status = rng.choices(["active", "pending", "suspended", "revoked"], [7, 1, 1, 1])[0]
        vf = ea = None
        if rng.random() < 0.5:
            vf = rng.choice(instants)
        if rng.random() < 0.5:
            later = [t for t in instants if vf is None or t > vf]
            ea = rng.choice(later) if later else None
        out.append(Registration(f"R{i:05d}", net, status=status,
                                valid_from=None if vf is None else datetime.fromtimestamp(vf, UTC),
                                expires_at=None if ea is None else datetime.fromtimestamp(ea, UTC)))
    return out


def probes_for(records: list[Registration], rng: random.Random) -> list:
    """Addresses at, just inside and just outside every registered network."""
    addrs = set()
    for r in records:
        net = r.network
        first, last = int(net.network_address), int(net.broadcast_address)
        top = 2**32 - 1 if net.version == 4 else 2**128 - 1
        for v in (first, last, rng.randint(first, last), first - 1, last + 1):
            if 0 <= v <= top:
                addrs.add((net.version, v))
    return [ipaddress.ip_address(v) if ver == 6 or v >= 2**32 else ipaddress.IPv4Address(v)
            for ver, v in sorted(addrs)]


def registry_positions(al: Allowlist, registry_index: dict[str, int], indices: np.ndarray) -> np.ndarray:
    position = np.array([registry_index[r.id] for r in al._compiled.data] + [-1], dtype=np.int64)
    return position[indices]


def test_from_registry_matches_reference_at_many_instants():
    rng = random.Random(20250101)
    instants = [S0 + k * 3600 for k in range(12)]
    records = random_registry(rng, 1500, instants)
    reg = Registry(records)
    probes = probes_for(records, rng)
    ref = Reference(records, probes)
    index = {r.id: i for i, r in enumerate(records)}
    checked = 0
    for t in sorted({S0 - 1e6, *instants, *(t - 1 for t in instants), *(t + 1 for t in instants)}):
        al = Allowlist.from_registry(reg, at=t)
        want = ref.answers(t)
        got = registry_positions(al, index, al.lookup_many(probes))
        assert np.array_equal(got, want), f"at {t - S0:+} s"
        assert al.contains_many(probes).tolist() == (want >= 0).tolist()
        for k in rng.sample(range(len(probes)), 40):
            m = al.lookup(probes[k])
            assert (m.data.id if m else None) == (records[want[k]].id if want[k] >= 0 else None)
        checked += len(probes)
    assert checked > 100_000


def test_registry_built_allowlist_pickles_with_its_registrations():
    al = Allowlist.from_registry([Registration("A", "10.0.0.0/8", expires_at=T0 + timedelta(days=1),
                                               tags=("t",), extra={"n": {"k": [1]}}),
                                  Registration("B", "2001:db8::/32", status="revoked")], at=T0)
    back = pickle.loads(pickle.dumps(al))
    assert back.lookup("10.1.2.3").data == al.lookup("10.1.2.3").data
    assert isinstance(back.lookup("10.1.2.3").data, Registration) and len(back) == 1


def test_format_time_is_the_same_instant_text_cached_or_not():
    """Registry times are formatted through a cache for UTC datetimes: its text must be what
    the plain formatting gives, for any instant, and a zone's repeated hour (two instants
    that compare equal, differing only by ``fold``) must keep its two texts."""
    from zoneinfo import ZoneInfo

    from ipallow.registry import format_time
    from ipallow.registry._time import _format
    rng = random.Random(1530)
    utc = datetime(1970, 1, 1, tzinfo=timezone.utc)
    for _ in range(3000):
        moment = utc + timedelta(seconds=rng.randrange(0, 2**32), microseconds=rng.choice([0, rng.randrange(10**6)]))
        for shown in (moment, moment.astimezone(timezone(timedelta(hours=rng.randrange(-12, 13))))):
            assert format_time(shown) == _format(shown) == format_time(moment)
    assert format_time(datetime(2025, 1, 31, 12, tzinfo=timezone.utc)) == "2025-01-31T12:00:00Z"
    first = datetime(2025, 11, 2, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    second = first.replace(fold=1)
    assert first == second
    assert (format_time(first), format_time(second)) == ("2025-11-02T05:30:00Z", "2025-11-02T06:30:00Z")
    assert format_time(first.astimezone(timezone.utc)) == "2025-11-02T05:30:00Z"
    assert format_time(second.astimezone(timezone.utc)) == "2025-11-02T06:30:00Z"


def test_a_year_before_1000_is_written_with_four_digits_and_reads_back():
    """Found by the CI fuzz smoke run (registry harness): ``strftime('%Y')`` writes year 851 as
    '851' on glibc, which the ISO 8601 reader then refuses, so a record with valid_from
    0851-01-01 could not go through to_dict / from_dict."""
    from ipallow.registry import format_time
    assert format_time(datetime(851, 1, 1, tzinfo=timezone.utc)) == "0851-01-01T00:00:00Z"
    assert format_time(datetime(1, 2, 3, 4, 5, 6, 7, tzinfo=timezone.utc)) == "0001-02-03T04:05:06.000007Z"
    record = Registration("PTA-3", "198.51.100.0/24", valid_from="0851-01-01", expires_at="0999-12-31T23:59:59Z")
    assert record.to_dict()["valid_from"] == "0851-01-01T00:00:00Z"
    assert Registration.from_dict(record.to_dict()) == record


def test_a_json_value_nested_too_deeply_is_a_problem_at_its_place_not_a_crash():
    """json's decoder raises RecursionError (not ValueError) past ~1000 levels: a JSON Lines
    registry with such a value is a ParseError at the value, and nothing is loaded."""
    nested = "[" * 100_000 + "]" * 100_000
    text = '{"id":"A","cidr":"10.0.0.0/8"}\n{"id":"B","cidr":"192.0.2.0/24","note":' + nested + '}\n'
    with pytest.raises(ParseError) as caught:
        parse_registry(text, "deep.jsonl")
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (2, 1 + text.split("\n")[1].index("["))
    assert "nested too deeply" in problem.message


def test_a_lifecycle_section_nested_too_deeply_is_unreadable_not_a_crash():
    from ipallow.registry import decode_lifecycle
    head = b'{"format":1,"evaluated_at":0,"since":null,"until":null,"registrations":0,"counting":0}'
    body = b'{"ids":' + b"[" * 100_000 + b"]" * 100_000 + b',"others":[]}'
    with pytest.raises(ValueError, match="unreadable lifecycle section"):
        decode_lifecycle(head + b"\n" + body, [])
