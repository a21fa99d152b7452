"""The bulk reader of CSV registries (#15): the registry the row-by-row loader gives, or none.

The oracle is the row-by-row loader itself (``registry._io`` with the bulk reader switched
off), which owns every rule and message; it is checked against ``ipaddress`` and the
lifecycle reference in test_registry.py and test_load_fastpaths.py.
"""

from __future__ import annotations

import json
import random
import warnings

import numpy as np
import pytest

from ipallow import HostBitsWarning, ParseError
from ipallow.registry import _io, parse_registry
from ipallow._trie import csv_columns
from ipallow.registry._bulk import read_csv_registry, read_jsonl_registry

ARRAYS = ("_status_active", "_valid_from", "_expires_at", "_reg_first", "_version", "_hi", "_lo", "_plen",
          "_owner", "_ids", "_bounds")

# One network per cell, as the bulk reader takes them (whitespace around is stripped).
NETWORKS = ["10.0.0.0/8", "192.0.2.0/24", "198.51.100.7", " 203.0.113.0/31 ", "0.0.0.0/0", "255.255.255.255/32",
            "2001:db8::/32", "2001:DB8:1::/48", "::/0", "2001:db8::1/128", "::ffff:192.0.2.0/120",
            "::ffff:198.51.100.9", "fe80::/10"]
# Cells the bulk reader leaves to the row-by-row loader: several networks, ranges, host bits, errors.
ODD_NETWORKS = ["10.0.0.0/8;192.0.2.0/24", "198.51.100.0 - 198.51.100.9", "10.0.0.1/8", "zz", "", "1.2.3.4/33",
                "2001:db8::1/32", "10.0.0.0/8;"]
OWNERS = ["Ann", " Bob ", "", "Çelik Ltd", "Acme, Inc.", 'Say "hi"', "two\nlines", "cr\r\nlf"]
CATEGORIES = ["other", " Call_Center ", "COMPANY_VPN", "freelancer_vpn", "video_conference"]
STATUSES = ["active", "Active", " revoked", "pending", "suspended"]
TIMES = ["", "2030-01-01", "2030-01-01T12:00:00Z", "2031-05-05 10:00+05:00", " 2029-12-31 "]
STARTS = ["", "2020-01-01", "2024-06-01T00:00:00Z"]
TAGS = ["", "a", "a, b;a", " x ;y"]
ODD = {"category": "bogus", "status": "", "valid_from": "2040-01-01", "expires_at": "tomorrow", "tags": "a"}


def quoted(text: str, rng: random.Random) -> str:
    """A CSV field: quoted when it must be (a comma or a quote in it), and now and then anyway."""
    if any(c in text for c in ',"\r\n') or rng.random() < 0.05:
        return '"' + text.replace('"', '""') + '"'
    return text


def random_export(rng: random.Random, rows: int, faults: bool) -> str:
    """A CSV registry export: random columns in a random order and spelling, random rows; with
    ``faults``, a few rows or lines the bulk reader must leave to the row-by-row loader."""
    network_column = rng.choice(["cidr", "network", "networks", "ip", "CIDR"])
    optional = [c for c in ("owner", "category", "status", "valid_from", "expires_at", "tags")
                if rng.random() < 0.7]
    extra = [c for c in ("note", "Site") if rng.random() < 0.3]
    columns = ["id", network_column, *optional, *extra]
    rng.shuffle(columns)
    header = [rng.choice([c, c.upper(), f" {c} "]) if c in ("id", "owner", "status") else c for c in columns]
    lines = [",".join(header)]
    # ids of one shape (``PTA-<number>``: their order and uniqueness come from the numbers) or mixed
    shapes = rng.choice([["PTA-{}"], ["PTA-{}", " R{} ", "x{}y"], ["PTA-{}", "PTA-0{}"]])
    for number in range(rows):
        row = {"id": rng.choice(shapes).format(number),
               network_column: rng.choice(NETWORKS), "owner": rng.choice(OWNERS),
               "category": rng.choice(CATEGORIES), "status": rng.choice(STATUSES),
               "valid_from": rng.choice(STARTS), "expires_at": rng.choice(TIMES), "tags": rng.choice(TAGS),
               "note": rng.choice(["", "n", "a, b"]), "Site": rng.choice(["s1", ""])}
        if faults and rng.random() < 0.02:
            row[network_column] = rng.choice(ODD_NETWORKS)
        if faults and rng.random() < 0.02:
            field = rng.choice(list(ODD))
            row[field] = ODD[field]
        if faults and rng.random() < 0.02 and number:
            row["id"] = f"PTA-{rng.randrange(number)}"          # a duplicate id (merged or refused)
        line = ",".join(quoted(row[c], rng) for c in columns)
        if faults and rng.random() < 0.01:
            line += rng.choice([",", ",more"])                    # a field too many
        lines.append(line)
        if rng.random() < 0.02:
            lines.append(rng.choice(["", ""]))                     # a blank line
    text = rng.choice(["\n", "\r\n"]).join(lines)
    if faults and rng.random() < 0.05:
        text = text.replace("\n", "\r", 1)                        # a lone CR
    return text + rng.choice(["\n", "", "\n\n"])


def row_by_row(monkeypatch, text: str, strict: bool = True, format: str = "csv"):
    """What the row-by-row loader alone makes of ``text``: the registry, or the ParseError."""
    with monkeypatch.context() as patch:
        patch.setattr(_io, "read_csv_registry", lambda text, name: None)
        patch.setattr(_io, "read_jsonl_registry", lambda text, name: None)
        try:
            return parse_registry(text, f"r.{format}", format=format, strict=strict)
        except ParseError as exc:
            return exc


def assert_same_registry(bulk, expected) -> None:
    assert type(bulk) is type(expected)
    assert bulk == expected and bulk.source == expected.source
    assert repr(list(bulk)) == repr(list(expected))       # the types too: networks, datetimes, extra
    assert bulk._index == expected._index
    for name in ARRAYS:
        got, want = getattr(bulk, name), getattr(expected, name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name


READERS = {"csv": read_csv_registry, "jsonl": read_jsonl_registry}


def assert_read_in_bulk(monkeypatch, text: str, format: str) -> None:
    """A plain export: the bulk reader takes it, and gives the row-by-row registry."""
    expected = row_by_row(monkeypatch, text, format=format)
    if isinstance(expected, ParseError):      # e.g. ids that clash by chance: not a plain export
        pytest.fail(f"the generator made a faulty export: {expected}")
    bulk = READERS[format](text, f"r.{format}")
    assert bulk is not None, "a plain export must take the bulk reader"
    assert_same_registry(bulk, expected)
    assert_same_registry(parse_registry(text, f"r.{format}"), expected)


def assert_loads_as_row_by_row(monkeypatch, text: str, format: str):
    """Any export: the bulk reader gives the row-by-row registry or nothing, and the loader
    the row-by-row registry or error.  Returns what the bulk reader gave."""
    expected = row_by_row(monkeypatch, text, format=format)
    bulk = READERS[format](text, f"r.{format}")
    if bulk is not None:
        assert not isinstance(expected, ParseError), f"bulk read an export with problems: {expected}"
        assert_same_registry(bulk, expected)
    if isinstance(expected, ParseError):
        with pytest.raises(ParseError) as caught:
            parse_registry(text, f"r.{format}")
        assert str(caught.value) == str(expected)
    else:
        assert_same_registry(parse_registry(text, f"r.{format}"), expected)
    return bulk


@pytest.mark.parametrize("text", [
    "id,cidr\nA,10.0.0.0/8;192.0.2.0/24\n",              # several networks in a cell
    "id,cidr\nA,10.0.0.0 - 10.0.0.9\n",                  # a range
    "id,cidr\nA,10.0.0.1/8\n",                           # host bits
    "id,cidr\nA,10.0.0.0/8\nA,192.0.2.0/24\n",           # one id twice (merged)
    "id,cidr\nA,10.0.0.0/8\n ,192.0.2.0/24\n",           # a missing id
    "id,cidr,status\nA,10.0.0.0/8,gone\n",               # a status that is none
    "id,cidr,valid_from,expires_at\nA,10.0.0.0/8,2030-01-01,2029-01-01\n",   # ends before it starts
    "id,cidr\nA,10.0.0.0/8,x\nB,192.0.2.0/24\n",         # a field too many
    "id,cidr,owner\nA,10.0.0.0/8,a,b\nB,192.0.2.0/24\n", # one too many, then ...
    "id,cidr\nA,10.0.0.0/8\n,\n",                        # a row of blank fields (skipped)
    "id,cidr\n",                                         # no rows
    "id,cidr,cidr\nA,10.0.0.0/8,10.0.0.0/8\n",           # a header problem
    "id,cidr,status\nA,10.0.0.0/8,active\x00\n",         # NUL
])
def test_what_the_bulk_reader_leaves_to_the_row_by_row_loader(monkeypatch, text):
    assert assert_loads_as_row_by_row(monkeypatch, text, "csv") is None


def test_a_lone_cr_ends_a_line_as_csv_reads_it(monkeypatch):
    text = "id,cidr,note\nA,10.0.0.0/8,x\r\nB,192.0.2.0/24,y\rC,::/0,z\n"
    bulk = read_csv_registry(text, "r.csv")
    assert bulk is not None and [r.id for r in bulk] == ["A", "B", "C"]
    assert_same_registry(bulk, row_by_row(monkeypatch, text))


def test_columns_are_refused_when_a_line_has_a_field_too_many_and_a_later_one_too_few():
    def columns(text: str, width: int):
        return csv_columns(text, width, [False] * width)
    assert columns("h,H\na,b\nc,d", 2) == [["a", "c"], ["b", "d"]]
    assert columns("h,H\na,b\nc,d\n", 2) == [["a", "c"], ["b", "d"]]
    assert columns("h,H\na,b,x\nc\ne,f", 2) is None     # as many fields in all
    assert columns("h,H\na,b\nc,d,e", 2) is None
    assert columns("h,H\na,b\n\nc,d", 2) is None        # a blank line
    assert columns("h,H\na,b\nc,d\n\n", 2) is None
    assert columns("h,H\n", 2) is None and columns("h,H", 2) is None
    assert columns("h,H\na,b\nc,d", 3) is None
    with pytest.raises(ParseError) as caught:
        parse_registry("id,cidr\nA,10.0.0.0/8,x\nB\n", "r.csv")
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (2, "expected 2 fields, found 3"), (3, "expected 2 fields, found 1")]


def test_host_bits_without_strict_still_warn_once(tmp_path):
    text = "id,cidr\nA,10.0.0.1/8\nB,192.0.2.0/24\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = parse_registry(text, "r.csv", strict=False)
    assert [str(r.network) for r in registry] == ["10.0.0.0/8", "192.0.2.0/24"]
    assert [type(w.message) for w in caught] == [HostBitsWarning]


def test_bulk_records_are_records_like_any_other():
    registry = read_csv_registry("id,cidr,owner,status,expires_at,tags,note\n"
                                 "PTA-1, 192.0.2.0/24 ,Acme,Suspended,2030-01-01,\"a,b\",x\n", "r.csv")
    record = registry.get("PTA-1")
    assert record.networks == (__import__("ipaddress").ip_network("192.0.2.0/24"),)
    assert (record.owner, record.status, record.tags, dict(record.extra)) == ("Acme", "suspended", ("a", "b"),
                                                                             {"note": "x"})
    assert record.expires_at.isoformat() == "2030-01-01T00:00:00+00:00"
    assert hash(record) == hash(type(record)(**{f: getattr(record, f) for f in (
        "id", "networks", "owner", "category", "status", "valid_from", "expires_at", "tags", "extra")}))
    with pytest.raises(AttributeError):
        record.owner = "x"


def test_an_export_without_quotes_is_split_without_the_csv_reader(monkeypatch):
    """The shape of bench_load's registry: one split of the text, no csv reader."""
    lines = ["id,cidr,owner,category,status,expires_at"] + [
        f"PTA-{i},10.{i // 256}.{i % 256}.0/24,Owner {i % 7},other,{'active' if i % 10 else 'suspended'},"
        f"{2030 + i % 7}-01-01" for i in range(3000)]
    text = "\n".join(lines) + "\n"
    expected = row_by_row(monkeypatch, text)
    monkeypatch.setattr("ipallow.registry._bulk.csv.reader", None)    # any use of it fails
    bulk = read_csv_registry(text, "r.csv")
    assert bulk is not None
    assert_same_registry(bulk, expected)
    assert_same_registry(read_csv_registry(text.replace("\n", "\r\n"), "r.csv"), expected)


# -- JSON Lines ---------------------------------------------------------------------------

JSON_ODD = [("id", 7.0), ("networks", ["10.0.0.0/8"]), ("tags", ["a"]), ("category", None), ("status", 1),
            ("owner", 5), ("expires_at", 20300101)]


def random_jsonl(rng: random.Random, rows: int, faults: bool) -> str:
    """A JSON Lines export: random keys in a random (shared) order; with ``faults``, records or
    lines the bulk reader must leave to the row-by-row loader."""
    network_key = rng.choice(["cidr", "network", "networks", "ip"])
    optional = [k for k in ("owner", "category", "status", "valid_from", "expires_at", "tags")
                if rng.random() < 0.7]
    extra = [k for k in ("note", "Site", "ID") if rng.random() < 0.3]     # keys match exactly: ID is extra
    keys = ["id", network_key, *optional, *extra]
    rng.shuffle(keys)
    lines = []
    for number in range(rows):
        record = {"id": rng.choice([f"PTA-{number}", f" R{number} ", 10_000_000 + number]),
                  network_key: rng.choice(NETWORKS),
                  "owner": rng.choice(OWNERS + [None]), "category": rng.choice(CATEGORIES),
                  "status": rng.choice(STATUSES), "valid_from": rng.choice(STARTS + [None]),
                  "expires_at": rng.choice(TIMES + [None]), "tags": rng.choice(TAGS + [None]),
                  "note": rng.choice(["n", None, 3, [1, {"a": [2]}], {"k": "v"}]), "Site": "s", "ID": "x"}
        if faults and rng.random() < 0.02:
            record[network_key] = rng.choice(ODD_NETWORKS)
        if faults and rng.random() < 0.02:
            key, value = rng.choice(JSON_ODD)
            record[key if key != "networks" else network_key] = value
        if faults and rng.random() < 0.02 and number:
            record["id"] = f"PTA-{rng.randrange(number)}"
        line = json.dumps({k: record[k] for k in keys}, ensure_ascii=rng.random() < 0.5)
        if faults and rng.random() < 0.03:
            line = rng.choice([
                line[:-1] + ', "id": "dup"}',                  # a key twice
                line + " " + line,                             # two objects on a line
                "[" + line + "]", "null", line[:-1],           # not an object, not JSON
                json.dumps({k: record[k] for k in reversed(keys)}),   # another key order
                json.dumps({k: record[k] for k in keys[:-1]}) if len(keys) > 2 else line,   # a key fewer
                line[:-1] + ', "ip": "192.0.2.0/24"}' if network_key != "ip" else line,   # two network keys
                line[:-1] + ', "deep": ' + "[" * 5000 + "]" * 5000 + "}",
            ])
        lines.append(line)
        if rng.random() < 0.03:
            lines.append(rng.choice(["", "  ", "\r"]))
    return rng.choice(["\n", "\r\n"]).join(lines) + rng.choice(["\n", ""])


@pytest.mark.parametrize("text", [
    '{"id":"A","cidr":"10.0.0.0/8"}\n{"cidr":"192.0.2.0/24","id":"B"}\n',    # another key order
    '{"id":"A","cidr":"10.0.0.0/8","owner":null}\n{"id":"B","cidr":"192.0.2.0/24"}\n',  # a key fewer
    '{"id":true,"cidr":"10.0.0.0/8"}\n',                                      # a bool id (refused)
    '{"id":7,"cidr":"10.0.0.0/8"}\n{"id":"7","cidr":"192.0.2.0/24"}\n',       # 7 and "7": one id twice
    '{"id":"A","cidr":["10.0.0.0/8"]}\n',                                     # a list of networks
    '{"id":"A","cidr":"10.0.0.0/8","id":"B"}\n',                              # a key twice
    '{"id":"A","cidr":"10.0.0.0/8"} {"id":"B","cidr":"192.0.2.0/24"}\n',      # two objects on a line
    '{"id":"A","cidr":"10.0.0.0/8","ip":"192.0.2.0/24"}\n',                   # two network keys
    '{"id":"A","cidr":"10.0.0.0/8","category":null}\n',                       # null where text is needed
    '{"id":"A","network":"10.0.0.0/8"}\n{"id":"B","network":"10.0.0.1/8"}\n',  # host bits
    '{"id":"A","cidr":[{}\n{}]}\n{"x":1},{"y":2}\n',     # lines that are JSON only when joined
    '\n  \n',
])
def test_what_the_bulk_jsonl_reader_leaves_to_the_row_by_row_loader(monkeypatch, text):
    assert assert_loads_as_row_by_row(monkeypatch, text, "jsonl") is None


# -- both formats ----------------------------------------------------------------------------

GENERATORS = {"csv": random_export, "jsonl": random_jsonl}


@pytest.mark.parametrize("format, seed", [("csv", seed) for seed in range(40)]
                         + [("jsonl", 2000 + seed) for seed in range(30)])
def test_a_plain_export_is_read_in_bulk_to_the_row_by_row_registry(monkeypatch, format, seed):
    rng = random.Random(seed)
    assert_read_in_bulk(monkeypatch, GENERATORS[format](rng, rng.choice([1, 2, 30, 400]), faults=False), format)


@pytest.mark.parametrize("format, seed", [("csv", 1000 + seed) for seed in range(60)]
                         + [("jsonl", 3000 + seed) for seed in range(50)])
def test_an_export_with_faults_loads_as_the_row_by_row_loader_loads_it(monkeypatch, format, seed):
    rng = random.Random(seed)
    assert_loads_as_row_by_row(monkeypatch, GENERATORS[format](rng, rng.choice([5, 60, 300]), faults=True), format)
