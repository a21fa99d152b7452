"""List files: text and CSV, all-or-nothing loading, path:line:col errors."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest

import ipallow
from ipallow import Allowlist, ParseError


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_text_file_entries_comments_blank_lines_and_ranges(tmp_path):
    path = write(tmp_path, "registered.txt", (
        "# national registry export\n"
        "\n"
        "203.0.113.0/24   # Acme Soft\n"
        "   198.51.100.7\n"
        "2001:db8::/32\n"
        "192.0.2.10 - 192.0.2.20\n"))
    al = Allowlist.from_file(path)
    assert len(al) == 4
    assert [e.networks for e in al][:3] == [
        (ipaddress.ip_network("203.0.113.0/24"),),
        (ipaddress.ip_network("198.51.100.7/32"),),
        (ipaddress.ip_network("2001:db8::/32"),)]
    # The range is one registration made of its minimal CIDRs.
    assert al[3].networks == tuple(ipaddress.summarize_address_range(
        ipaddress.ip_address("192.0.2.10"), ipaddress.ip_address("192.0.2.20")))
    for host in range(10, 21):
        assert al.lookup(f"192.0.2.{host}").index == 3
    assert "192.0.2.9" not in al and "192.0.2.21" not in al
    assert "203.0.113.255" in al and "198.51.100.8" not in al


def test_csv_file_columns_become_registration_data(tmp_path):
    path = write(tmp_path, "registry.csv", (
        "id,CIDR,owner,category\n"
        "PTA-1,203.0.113.0/24,Acme Soft,company_vpn\n"
        'PTA-2,2001:db8::/48,"Lahore, Freelancers",freelancer_vpn\n'
        "\n"
        "PTA-3,192.0.2.0 - 192.0.2.127,Indus,call_center\n"))
    # Read as a plain CSV list (format="csv"): the other columns are each row's data.
    al = Allowlist.from_file(path, format="csv")
    assert len(al) == 3
    match = al.lookup("2001:db8:0:1::5")
    assert match.data == {"id": "PTA-2", "owner": "Lahore, Freelancers", "category": "freelancer_vpn"}
    assert match.network == ipaddress.ip_network("2001:db8::/48")
    assert al.lookup("192.0.2.64").data["id"] == "PTA-3"
    assert al.lookup("192.0.2.128") is None
    # Recognised by its id column (the default), it is a registry: the data are Registrations.
    registry = Allowlist.from_file(path)
    assert len(registry) == 3
    record = registry.lookup("2001:db8:0:1::5").data
    assert (record.id, record.owner, record.category) == ("PTA-2", "Lahore, Freelancers", "freelancer_vpn")
    assert registry.lookup("192.0.2.64").data.id == "PTA-3"


@pytest.mark.parametrize("column", ["cidr", "network", "ip", "Network"])
def test_csv_network_column_names(tmp_path, column):
    path = write(tmp_path, "l.csv", f"{column},note\n10.0.0.0/8,x\n")
    assert "10.9.9.9" in Allowlist.from_file(path)


def test_every_bad_line_is_reported_with_path_line_column(tmp_path):
    path = write(tmp_path, "bad.txt", (
        "10.0.0.0/8\n"
        "1.2.3.256\n"              # line 2: octet at column 7
        "  2001:db8::g/32\n"       # line 3: 'g' at column 13 (after 2 spaces of indent)
        "192.0.2.1/24\n"           # line 4: host bits
        "# fine\n"
        "10.0.0.0/33\n"))          # line 6: prefix length
    with pytest.raises(ParseError) as info:
        Allowlist.from_file(path)
    problems = info.value.problems
    assert [(p.line, p.column) for p in problems] == [(2, 7), (3, 13), (4, 1), (6, 10)]
    message = str(info.value)
    assert f"{path}:2:7: invalid network '1.2.3.256': octet greater than 255" in message
    assert f"{path}:3:13: invalid network '2001:db8::g/32': unexpected character 'g'" in message
    assert f"{path}:4:1: invalid network '192.0.2.1/24': host bits set" in message
    assert f"{path}:6:10: invalid network '10.0.0.0/33': prefix length out of range" in message
    assert isinstance(info.value, ValueError)


def test_strict_false_masks_host_bits_in_files(tmp_path):
    path = write(tmp_path, "hosts.txt", "192.0.2.1/24\n")
    with pytest.warns(ipallow.HostBitsWarning, match="1 network"):
        al = Allowlist.from_file(path, strict=False)
    assert al[0].networks == (ipaddress.ip_network("192.0.2.0/24"),)


def test_error_listing_shows_twenty_then_a_count(tmp_path):
    path = write(tmp_path, "many.txt", "".join(f"10.0.0.{300 + i}\n" for i in range(25)))
    with pytest.raises(ParseError) as info:
        Allowlist.from_file(path)
    assert len(info.value.problems) == 25
    lines = str(info.value).splitlines()
    assert lines[0] == "25 problems; nothing was loaded:"
    assert len([line for line in lines if line.startswith(str(path))]) == 20
    assert lines[-1] == "... and 5 more problems"


def test_csv_structure_errors(tmp_path):
    missing = write(tmp_path, "nocol.csv", "id,owner\nPTA-1,Acme\n")
    with pytest.raises(ParseError, match=r"nocol.csv:1:1: no network column"):
        Allowlist.from_file(missing)
    ragged = write(tmp_path, "ragged.csv", "cidr,owner\n10.0.0.0/8,a,extra\n10.0.0.1/8,b\n")
    with pytest.raises(ParseError) as info:
        Allowlist.from_file(ragged)
    assert [(p.line, p.column) for p in info.value.problems] == [(2, 1), (3, 1)]
    assert "expected 2 fields, found 3" in info.value.problems[0].message
    assert "host bits set" in info.value.problems[1].message
    empty = write(tmp_path, "empty.csv", "")
    with pytest.raises(ParseError, match="empty CSV file"):
        Allowlist.from_file(empty)


def test_csv_error_column_points_at_the_field(tmp_path):
    path = write(tmp_path, "col.csv", "id,cidr\nPTA-1,10.0.0.999\n")
    with pytest.raises(ParseError) as info:
        Allowlist.from_file(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (2, 14)   # the '999' octet


def test_not_utf8_is_reported_with_its_place(tmp_path):
    path = write(tmp_path, "latin1.txt", b"10.0.0.0/8\n10.1.\xff.0/24\n")
    with pytest.raises(ParseError) as info:
        Allowlist.from_file(path)
    assert [(p.line, p.column) for p in info.value.problems] == [(2, 6)]
    assert "not valid UTF-8" in str(info.value)


def test_utf8_bom_is_accepted(tmp_path):
    path = write(tmp_path, "bom.csv", "\ufeffcidr,owner\n10.0.0.0/8,x\n")
    assert "10.1.1.1" in Allowlist.from_file(path)


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        Allowlist.from_file(tmp_path / "nope.txt")
    with pytest.raises(TypeError):
        Allowlist.from_file(None)


def test_empty_text_file_is_an_empty_allowlist(tmp_path):
    al = Allowlist.from_file(write(tmp_path, "empty.txt", "# nothing yet\n\n"))
    assert len(al) == 0 and "1.2.3.4" not in al and "::1" not in al
    assert al.contains_many(np.array([1, 2], dtype=np.uint32)).tolist() == [False, False]


def test_bundled_sample_list():
    al = Allowlist.from_file(ipallow.SAMPLE_LIST)
    assert len(al) > 1000
    for covered in ("203.0.113.9", "198.51.100.7", "2001:db8::1"):
        assert covered in al
    for uncovered in ("8.8.8.8", "1.1.1.1"):
        assert uncovered not in al


def test_large_file_matches_the_list_constructor(tmp_path):
    rng = np.random.default_rng(7)
    addrs = rng.integers(0, 1 << 32, 20000, dtype=np.uint64)
    lines = [f"{ipaddress.IPv4Address(int(a) & ~0xFF)}/24" for a in addrs]
    path = write(tmp_path, "big.txt", "\n".join(lines) + "\n")
    from_file = Allowlist.from_file(path)
    from_list = Allowlist(lines)
    queries = rng.integers(0, 1 << 32, 40000, dtype=np.uint64).astype(np.uint32)
    queries[::2] = addrs[: len(queries[::2])].astype(np.uint32)
    assert np.array_equal(from_file.lookup_many(queries), from_list.lookup_many(queries))
    assert from_file.contains_many(queries)[::2].all()


def test_csv_column_when_the_same_text_appears_earlier_on_the_line(tmp_path):
    path = write(tmp_path, "dup.csv", "note,cidr\n10.0.0.1/8,10.0.0.1/8\n")
    with pytest.raises(ParseError) as info:
        Allowlist.from_file(path)
    assert [(p.line, p.column) for p in info.value.problems] == [(2, 12)]


def test_csv_columns_survive_quoted_line_breaks_and_form_feeds(tmp_path):
    path = write(tmp_path, "odd.csv", 'owner,cidr\n"a\fb\u2028c",10.0.0.0/8\n"multi\nline",  10.0.0.1/8\n')
    with pytest.raises(ParseError) as info:
        Allowlist.from_file(path)
    # The record starts on line 3; its cidr value sits on line 4 after 'line",' and two blanks.
    assert [(p.line, p.column) for p in info.value.problems] == [(4, 9)]
