"""MaxMind DB export (ipallow.mmdb.to_bytes, Allowlist.export_mmdb, `ipallow export --format mmdb`)
read back by the real readers -- the maxminddb package in its pure-Python and C modes, Debian's
mmdblookup -- and compared with Allowlist.lookup() at every prefix boundary of random nested
tables (fixed seeds); and read in again with Allowlist.from_mmdb, compared with maxminddb's
own network iteration."""

from __future__ import annotations

import ipaddress
import json
from datetime import date
import os
import random
import re
import shutil
import subprocess

import pytest

import ipallow
from ipallow import Allowlist, mmdb

maxminddb = pytest.importorskip("maxminddb", reason="the maxminddb package (test extra) is not installed")

IPALLOW = shutil.which("ipallow")
MMDBLOOKUP = shutil.which("mmdblookup")
needs_cli = pytest.mark.skipif(IPALLOW is None, reason="the ipallow executable is not installed")

PURE_MODES = [maxminddb.MODE_FILE, maxminddb.MODE_MEMORY]
try:
    import maxminddb.extension  # noqa: F401
    C_MODES = [maxminddb.MODE_MMAP_EXT]
except ImportError:                       # the readers' C extension did not build here
    C_MODES = []
MODES = PURE_MODES + C_MODES


# -- random nested tables ---------------------------------------------------------------------

def nested_table(seed: int, count: int = 160) -> list[tuple[str, dict]]:
    """Prefixes that nest several deep, repeat, and touch, in both families, each with a record.

    Every prefix is drawn inside an earlier one (or a fresh block) so most addresses have
    several covering prefixes and longest match decides.  IPv6 stays outside ::/96 and
    ::ffff:0:0/96 (those are the IPv4 space of a MaxMind DB; tested on their own below).
    """
    rng = random.Random(seed)
    drawn: list[tuple[int, int, int]] = []
    for _ in range(count):
        version = rng.choice((4, 4, 6))
        bits = 32 if version == 4 else 128
        parents = [p for p in drawn if p[0] == version and p[2] < bits]
        if parents and rng.random() < 0.75:
            _, base, base_len = rng.choice(parents)
        elif version == 4:
            base, base_len = 0, rng.choice((0, 1, 4, 8))
        else:
            base, base_len = 0x2000 << 112, 3
        plen = min(bits, base_len + rng.choice((0, 1, 1, 2, 3, 5, 8, 13)))
        if version == 4 and plen < 8 and rng.random() < 0.5:
            plen = 8
        offset = rng.getrandbits(bits - base_len) if bits > base_len else 0
        value = (base | offset) & ~((1 << (bits - plen)) - 1) & ((1 << bits) - 1)
        drawn.append((version, value, plen))
    drawn.append(drawn[len(drawn) // 2])                  # an exact duplicate: the first answers
    drawn.append((4, 0xFFFFFFFF, 32))                     # the corners
    drawn.append((6, (1 << 128) - 1, 128))
    out = []
    for i, (version, value, plen) in enumerate(drawn):
        net = ipaddress.ip_network((value, plen))
        out.append((str(net), {"id": f"R{i}", "owner": rng.choice(["acme", "globex", "initech"]),
                               "category": rng.choice(["vpn", "office"]), "rank": i}))
    return out


def boundary_addresses(allowlist: Allowlist) -> list:
    """First and last address of every prefix, and their neighbours (within the family)."""
    out = set()
    for entry in allowlist:
        for net in entry.networks:
            top = (1 << net.max_prefixlen) - 1
            for value in (int(net.network_address), int(net.broadcast_address)):
                for v in (value - 1, value, value + 1):
                    if 0 <= v <= top:
                        out.add(ipaddress.ip_address(v) if net.version == 6 else ipaddress.IPv4Address(v))
    return sorted(out, key=lambda a: (a.version, int(a)))


def expected_id(allowlist: Allowlist, address) -> str | None:
    match = allowlist.lookup(address)
    return None if match is None else match.data["id"]


@pytest.fixture(scope="module", params=[11, 29])
def exported(request, tmp_path_factory):
    allowlist = Allowlist(nested_table(request.param))
    path = tmp_path_factory.mktemp("mmdb") / f"nested{request.param}.mmdb"
    summary = allowlist.export_mmdb(path, build_epoch=1_700_000_000)
    return allowlist, path, summary


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_every_boundary_answers_as_lookup(exported, mode):
    allowlist, path, _ = exported
    addresses = boundary_addresses(allowlist)
    assert len(addresses) > 500
    with maxminddb.open_database(str(path), mode) as reader:
        for address in addresses:
            record, prefix_len = reader.get_with_prefix_len(address)
            match = allowlist.lookup(address)
            if match is None:
                assert record is None, address
                continue
            assert record == match.data, address          # the whole record, exactly
            # The reader's network lies inside the registered network that answers.
            found = ipaddress.ip_network((int(address), prefix_len), strict=False)
            assert found.subnet_of(match.network), (address, found, match.network)


def test_ipv4_mapped_alias_answers_as_ipv4(exported):
    allowlist, path, _ = exported
    ipv4 = [a for a in boundary_addresses(allowlist) if a.version == 4]
    with maxminddb.open_database(str(path), MODES[-1]) as reader:
        for address in ipv4[:400]:
            mapped = ipaddress.IPv6Address(f"::ffff:{address}")
            compat = ipaddress.IPv6Address(int(address))           # ::a.b.c.d, under ::/96
            for alias in (mapped, compat):
                record = reader.get(alias)
                assert (record or {}).get("id") == expected_id(allowlist, address), alias


def test_metadata(exported):
    allowlist, path, summary = exported
    with maxminddb.open_database(str(path), PURE_MODES[0]) as reader:
        meta = reader.metadata()
    assert meta.database_type == mmdb.DATABASE_TYPE
    assert meta.ip_version == 6 and meta.build_epoch == 1_700_000_000
    assert meta.description == {"en": f"ipallow allowlist: {len(allowlist):,} registrations"}
    assert (meta.binary_format_major_version, meta.binary_format_minor_version) == (2, 0)
    assert meta.node_count == summary["node_count"] and meta.record_size == summary["record_size"]
    assert os.path.getsize(path) == summary["bytes"]


@pytest.mark.skipif(MMDBLOOKUP is None, reason="mmdblookup (Debian package mmdb-bin) is not installed")
def test_mmdblookup_agrees(exported):
    allowlist, path, _ = exported
    addresses = boundary_addresses(allowlist)
    sample = random.Random(5).sample(addresses, 120)
    for address in sample:
        result = subprocess.run([MMDBLOOKUP, "-f", str(path), "-i", str(address), "id"],
                                capture_output=True, text=True, timeout=30)
        found = re.search(r'"([^"]*)" <utf8_string>', result.stdout)
        expected = expected_id(allowlist, address)
        if expected is None:
            assert found is None and "Could not find an entry" in result.stderr + result.stdout, address
        else:
            assert found is not None and found.group(1) == expected, (address, result.stdout, result.stderr)


def test_from_mmdb_equals_the_readers_network_iteration(exported):
    allowlist, path, _ = exported
    back = Allowlist.from_mmdb(path)
    ours = sorted((str(e.networks[0]), e.data["id"]) for e in back)
    for mode in MODES:
        with maxminddb.open_database(str(path), mode) as reader:
            theirs = sorted((str(network), record["id"]) for network, record in reader)
        assert ours == theirs, mode
    # and it answers as the list it came from, everywhere
    for address in boundary_addresses(allowlist):
        assert expected_id(back, address) == expected_id(allowlist, address), address


# -- the IPv4 space inside IPv6, the families, the records -------------------------------------

def test_ipv6_prefixes_covering_ipv4_space(tmp_path):
    """::/0 answers outside ::/96 and ::ffff:0:0/96; inside them the IPv4 table does."""
    allowlist = Allowlist([("::/0", {"id": "all6"}), ("10.0.0.0/8", {"id": "ten"}),
                           ("::1/128", {"id": "loopback6"}), ("::fffe:0:0/95", {"id": "around"})])
    summary = allowlist.export_mmdb(tmp_path / "a.mmdb")
    assert summary["left_out"] == 1                          # ::1/128 lies in ::/96
    with maxminddb.open_database(str(tmp_path / "a.mmdb"), MODES[-1]) as reader:
        assert reader.get("2001:db8::1") == {"id": "all6"}
        assert reader.get("::1:0:0") == {"id": "all6"}         # just past ::/96
        assert reader.get("::fffe:0:1") == {"id": "around"}    # the other half of the /95
        assert reader.get("::ffff:10.1.2.3") == {"id": "ten"} == reader.get("10.1.2.3")
        assert reader.get("::10.1.2.3") == {"id": "ten"}
        assert reader.get("::ffff:11.0.0.1") is None and reader.get("::1") is None


@pytest.mark.parametrize("family, ip_version, present, absent",
                         [("ip", 4, "10.1.2.3", "2001:db8::1"), ("ip6", 6, "2001:db8::1", "10.1.2.3")])
def test_one_family(tmp_path, family, ip_version, present, absent):
    allowlist = Allowlist([("10.0.0.0/8", {"id": "v4"}), ("2001:db8::/32", {"id": "v6"})])
    allowlist.export_mmdb(tmp_path / "f.mmdb", family=family)
    with maxminddb.open_database(str(tmp_path / "f.mmdb"), MODES[-1]) as reader:
        assert reader.metadata().ip_version == ip_version
        assert reader.get(present) is not None
        if ip_version == 6:
            assert reader.get(absent) is None
    with pytest.raises(ValueError, match="family"):
        allowlist.export_mmdb(tmp_path / "g.mmdb", family="inet6")


def test_registry_records_carry_the_registration_fields(tmp_path):
    allowlist = Allowlist.from_registry(ipallow.SAMPLE_LIST)
    allowlist.export_mmdb(tmp_path / "r.mmdb")
    with maxminddb.open_database(str(tmp_path / "r.mmdb"), PURE_MODES[0]) as reader:
        checked = 0
        for entry in allowlist:
            reg = entry.data
            for net in entry.networks:
                if allowlist.lookup(net.network_address).index != entry.index:
                    continue                                   # a longer prefix answers there
                record = reader.get(net.network_address)
                assert record["id"] == reg.id and record["owner"] == reg.owner
                assert record["category"] == reg.category and record["status"] == reg.status
                if reg.expires_at is None:
                    assert "expires_at" not in record
                else:
                    assert record["expires_at"] == reg.expires_at.isoformat().replace("+00:00", "Z")
                checked += 1
    assert checked >= 3


def test_plain_records(tmp_path):
    allowlist = Allowlist(["192.0.2.0/24", ("198.51.100.0/24", "note"),
                           ("203.0.113.0/24", {"owner": "x", "n": -5, "f": 1.5, "ok": True, "l": [1, "a"],
                                               "big": 1 << 70, "skip": None})])
    allowlist.export_mmdb(tmp_path / "p.mmdb")
    with maxminddb.open_database(str(tmp_path / "p.mmdb"), MODES[-1]) as reader:
        assert reader.get("192.0.2.1") == {"id": "#0"}
        assert reader.get("198.51.100.1") == {"id": "#1", "data": "note"}
        assert reader.get("203.0.113.1") == {"id": "#2", "owner": "x", "n": -5, "f": 1.5, "ok": True,
                                             "l": [1, "a"], "big": 1 << 70}


def test_unencodable_data_is_refused(tmp_path):
    with pytest.raises(TypeError, match=r"registration #0\.when: set"):
        Allowlist([("10.0.0.0/8", {"when": {1, 2}})]).export_mmdb(tmp_path / "x.mmdb")
    with pytest.raises(ValueError, match="int32"):
        Allowlist([("10.0.0.0/8", {"n": -(1 << 40)})]).export_mmdb(tmp_path / "x.mmdb")
    assert not (tmp_path / "x.mmdb").exists()


def test_empty_list(tmp_path):
    Allowlist([]).export_mmdb(tmp_path / "e.mmdb")
    with maxminddb.open_database(str(tmp_path / "e.mmdb"), PURE_MODES[0]) as reader:
        assert reader.get("10.0.0.1") is None and reader.get("2001:db8::1") is None
        assert list(reader) == []
    assert len(Allowlist.from_mmdb(tmp_path / "e.mmdb")) == 0


def test_large_records_need_wider_tree_records(tmp_path):
    """Records past 16 MiB of data force 28-bit tree records (the size field's long forms too)."""
    blob = "x" * 70_000                                          # a 3-byte size field
    allowlist = Allowlist([(f"10.{i >> 8}.{i & 255}.0/24", {"blob": blob, "i": i}) for i in range(260)])
    summary = allowlist.export_mmdb(tmp_path / "w.mmdb")
    assert summary["record_size"] == 28
    with maxminddb.open_database(str(tmp_path / "w.mmdb"), PURE_MODES[0]) as reader:
        assert reader.get("10.1.3.9") == {"id": "#259", "blob": blob, "i": 259}
    assert Allowlist.from_mmdb(tmp_path / "w.mmdb").lookup("10.1.3.9").data["i"] == 259


def test_not_a_mmdb(tmp_path):
    (tmp_path / "junk.mmdb").write_bytes(b"\0" * 100)
    with pytest.raises(mmdb.FormatError, match="junk.mmdb: not a MaxMind DB"):
        Allowlist.from_mmdb(tmp_path / "junk.mmdb")
    with pytest.raises(TypeError, match="callable"):
        Allowlist.from_mmdb(tmp_path / "junk.mmdb", where=3)


# -- the command -------------------------------------------------------------------------------

def run(*args, check=True):
    result = subprocess.run([IPALLOW, *map(str, args)], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@needs_cli
def test_export_command_writes_the_registry(tmp_path):
    out = tmp_path / "allow.mmdb"
    result = run("export", "--format", "mmdb", "-o", out, "--json", ipallow.SAMPLE_LIST, "--at", "2026-01-01")
    summary = json.loads(result.stderr)
    assert summary["format"] == "mmdb" and summary["written"] and summary["mmdb"]["ip_version"] == 6
    allowlist = Allowlist.from_registry(ipallow.SAMPLE_LIST, at=date(2026, 1, 1))
    with maxminddb.open_database(str(out), MODES[-1]) as reader:
        for address in boundary_addresses(allowlist):
            assert (reader.get(address) or {}).get("id") == (
                None if allowlist.lookup(address) is None else allowlist.lookup(address).data.id), address


@needs_cli
def test_export_command_guards_and_stdout(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    refused = run("export", "--format", "mmdb", "-o", tmp_path / "e.mmdb", empty, check=False)
    assert refused.returncode == 1 and "empty" in refused.stderr
    assert not (tmp_path / "e.mmdb").exists()
    to_stdout = subprocess.run([IPALLOW, "export", "--format", "mmdb", "-q", ipallow.SAMPLE_LIST],
                               capture_output=True, timeout=120)
    assert to_stdout.returncode == 0 and to_stdout.stdout.rfind(b"\xab\xcd\xefMaxMind.com") > 0


def test_damaged_files_fail_cleanly(tmp_path):
    """Seeded byte flips and truncations of an exported file: read, or a ValueError -- never
    another exception (IndexError, struct.error, RecursionError...)."""
    allowlist = Allowlist(nested_table(3, count=40))
    good = tmp_path / "good.mmdb"
    allowlist.export_mmdb(good)
    original = good.read_bytes()
    rng = random.Random(17)
    bad = tmp_path / "bad.mmdb"
    outcomes = {"read": 0, "refused": 0}
    for trial in range(120):
        data = bytearray(original)
        if trial % 3 == 0:
            data = data[:rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        bad.write_bytes(bytes(data))
        try:
            Allowlist.from_mmdb(bad)
            outcomes["read"] += 1
        except ValueError:
            outcomes["refused"] += 1
    assert outcomes["read"] and outcomes["refused"]
