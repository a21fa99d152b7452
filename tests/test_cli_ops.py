"""The operator commands (validate, filter, stats, diff, check --explain), driven through the
installed `ipallow` executable in a subprocess."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess

import netaddr
import numpy as np
import pytest

from terminal import drain

import ipallow

IPALLOW = shutil.which("ipallow")
pytestmark = pytest.mark.skipif(IPALLOW is None, reason="the ipallow executable is not installed")


def run(*args, stdin=None, binary=False):
    return subprocess.run([IPALLOW, *args], capture_output=True, text=not binary, input=stdin, timeout=120)


@pytest.mark.parametrize("command", ["validate", "filter", "export", "stats", "diff", "check"])
def test_every_command_has_help_with_examples(command):
    result = run(command, "--help")
    if command == "diff" and result.returncode == 2 and "invalid choice" in result.stderr:
        pytest.skip("ipallow diff is not there yet")
    assert result.returncode == 0, result.stderr
    assert "examples:" in result.stdout and "exit status" in result.stdout


# -- validate --------------------------------------------------------------------------------

LIST = """\
# registered ranges
10.0.0.0/8
10.1.0.0/16
  10.1.0.0/16
192.0.2.0/24   # documentation
2001:db8::/32
2001:db8:1::/48
10.2.0.0 - 10.2.3.255
"""


def test_validate_clean_list_exit_zero(tmp_path):
    path = tmp_path / "ok.txt"
    path.write_text("192.0.2.0/24\n198.51.100.0/24\n2001:db8::/32\n")
    result = run("validate", str(path))
    assert result.returncode == 0 and result.stdout == ""
    assert "OK: 3 registrations, 2 IPv4 and 1 IPv6 prefixes, no warnings" in result.stderr


def test_validate_warnings_at_the_right_places(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text(LIST)
    result = run("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{path}:3:1: warning: 10.1.0.0/16 lies inside 10.0.0.0/8 (line 2); lookups return the longer prefix",
        f"{path}:4:3: warning: 10.1.0.0/16 is registered again (line 3); the first (line 3) answers lookups",
        f"{path}:7:1: warning: 2001:db8:1::/48 lies inside 2001:db8::/32 (line 6); lookups return the longer prefix",
        f"{path}:8:1: warning: 10.2.0.0/22 lies inside 10.0.0.0/8 (line 2); lookups return the longer prefix",
    ]
    assert "4 warnings (1 duplicate, 3 overlap)" in result.stderr
    assert run("validate", "--strict", str(path)).returncode == 1
    quiet = run("validate", "--no-warnings", str(path))
    assert quiet.returncode == 0 and quiet.stdout == ""


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_validate_places_warnings_of_a_generated_list_by_line(tmp_path, newline):
    """A list with an entry flush left on every line is placed by counting lines (no line
    strings made): CRLF files and a missing last newline must still land on the right lines."""
    entries = [f"10.{i}.0.0/16" for i in range(40)] + ["10.7.3.0/24", "10.0.0.0/8", "10.7.3.0/24"]
    path = tmp_path / "generated.txt"
    path.write_bytes(newline.join(entries).encode())          # no newline after the last
    result = run("validate", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"{path}:1:1: warning: 10.0.0.0/16 lies inside 10.0.0.0/8 (line 42); "
                        f"lookups return the longer prefix")
    assert lines[-2] == (f"{path}:41:1: warning: 10.7.3.0/24 lies inside 10.0.0.0/8 (line 42); "
                         f"lookups return the longer prefix")
    assert len(lines) == 42
    assert lines[-1] == (f"{path}:43:1: warning: 10.7.3.0/24 is registered again (line 41); "
                         f"the first (line 41) answers lookups")


def test_validate_every_error_and_exit_one(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("10.0.0.0/8\n10.0.0.1/8\n1.2.3.256\n\n10.0.0.0/40 # x\n10.1.0.0/16\n")
    result = run("validate", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}:2:1: error: invalid network '10.0.0.1/8': host bits set",
        f"{path}:3:7: error: invalid network '1.2.3.256': octet greater than 255",
        f"{path}:5:10: error: invalid network '10.0.0.0/40': prefix length out of range",
    ]
    assert "3 errors; the file does not load" in result.stderr
    data = json.loads(run("validate", "--json", str(path)).stdout)
    assert data["valid"] is False and [e["line"] for e in data["errors"]] == [2, 3, 5]
    assert data["errors"][0] == {"path": str(path), "line": 2, "column": 1,
                                 "message": "invalid network '10.0.0.1/8': host bits set"}


def test_validate_registry_csv_names_ids_and_checks_only_what_counts(tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text("id,cidr,status,owner\n"
                    "A,10.0.0.0/8,active,x\n"
                    "B,10.1.0.0/16,active,y\n"
                    "C,10.0.0.0/8,active,z\n"
                    "D,10.5.0.0/16,revoked,w\n")
    result = run("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{path}:3:3: warning: 10.1.0.0/16 lies inside 10.0.0.0/8 (A, line 2); lookups return the longer prefix",
        f"{path}:4:3: warning: 10.0.0.0/8 is registered again (A, line 2); A answers lookups (the lowest id)",
    ]
    assert "4 registrations (3 counting now)" in result.stderr
    data = json.loads(run("validate", "--json", str(path)).stdout)
    assert data["kind"] == "registry" and data["counting"] == 3
    assert [(w["id"], w["other_id"], w["kind"]) for w in data["warnings"]] == [
        ("B", "A", "overlap"), ("C", "A", "duplicate")]


def test_validate_registry_errors_jsonl(tmp_path):
    path = tmp_path / "registry.jsonl"
    path.write_text('{"id": "A", "networks": ["10.0.0.0/8"]}\n'
                    '{"id": "B", "networks": "10.0.0.256/32", "status": "active"}\n'
                    '{"id": "C", "networks": "10.1.0.0/16", "status": "sleeping"}\n')
    result = run("validate", str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{path}:2:") and "octet greater than 255" in lines[0]
    assert lines[1].startswith(f"{path}:3:") and "unknown status 'sleeping'" in lines[1]


def test_validate_stdin_and_unreadable(tmp_path):
    result = run("validate", "-", stdin="10.0.0.0/8\n10.0.0.0/8\n")
    assert result.returncode == 0
    assert result.stdout.startswith("<stdin>:2:1: warning: 10.0.0.0/8 is registered again (line 1)")
    result = run("validate", "-", stdin="cidr,id\n10.0.0.1/8,A\n")
    assert result.returncode == 1 and result.stdout.startswith("<stdin>:2:1: error:")
    missing = run("validate", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and "nope.txt" in missing.stderr


def test_validate_overlaps_agree_with_a_pairwise_check(tmp_path):
    """The vectorised overlap finder against the obvious O(n^2) definition, on a random list."""
    rng = np.random.default_rng(3)
    nets = []
    for _ in range(300):
        plen = int(rng.integers(12, 25))
        value = int(rng.integers(0x0A000000, 0x0A400000)) & ~((1 << (32 - plen)) - 1) & 0xFFFFFFFF
        nets.append(ipaddress.IPv4Network((value, plen)))
    path = tmp_path / "random.txt"
    path.write_text("".join(f"{n}\n" for n in nets))
    data = json.loads(run("validate", "--json", str(path)).stdout)
    got = {(w["line"], w["kind"]) for w in data["warnings"]}
    expected = set()
    for i, n in enumerate(nets):
        earlier_same = [j for j in range(i) if nets[j] == n]
        if earlier_same:
            expected.add((i + 1, "duplicate"))
        first_copy = not earlier_same
        if first_copy and any(m != n and n.subnet_of(m) for m in nets):
            expected.add((i + 1, "overlap"))
    assert got == expected


# -- filter ----------------------------------------------------------------------------------

@pytest.fixture
def reglist(tmp_path):
    path = tmp_path / "reg.csv"
    path.write_text("id,cidr,status\n"
                    "A,192.0.2.0/24,active\n"
                    "B,198.51.100.0/24,revoked\n"
                    "C,2001:db8::/32,active\n"
                    "D,10.0.0.0/8,active\n"
                    "E,10.1.0.0/16,active\n")
    return path


ADDRESSES = "192.0.2.7\n8.8.8.8\n  10.1.2.3 \r\n\n198.51.100.1\n1.2.3.256\n2001:db8::5\nnot-an-ip\n::ffff:10.9.9.9\n"


def test_filter_allowed_denied_annotate(reglist):
    raw = run("filter", "--list", str(reglist), stdin=ADDRESSES.encode(), binary=True)
    assert raw.stdout == b"192.0.2.7\n  10.1.2.3 \r\n2001:db8::5\n::ffff:10.9.9.9\n"   # lines as read
    allowed = run("filter", "--list", str(reglist), stdin=ADDRESSES)
    assert allowed.returncode == 0
    assert ("<stdin>: 9 lines: 4 allowed, 2 denied, 2 unparseable, 1 blank; 4 written"
            in allowed.stderr)
    assert "<stdin>:6:7: invalid IP address '1.2.3.256': octet greater than 255" in allowed.stderr
    assert "<stdin>:8:1: invalid IP address 'not-an-ip'" in allowed.stderr
    denied = run("filter", "--list", str(reglist), "--denied", stdin=ADDRESSES)
    assert denied.stdout == "8.8.8.8\n198.51.100.1\n"      # B is revoked: it does not count
    annotated = run("filter", "--list", str(reglist), "--annotate", stdin=ADDRESSES)
    assert annotated.stdout.splitlines() == [
        "192.0.2.7\tallowed\tA", "8.8.8.8\tdenied\t", "  10.1.2.3 \tallowed\tE", "",
        "198.51.100.1\tdenied\t", "1.2.3.256\tinvalid\t", "2001:db8::5\tallowed\tC",
        "not-an-ip\tinvalid\t", "::ffff:10.9.9.9\tallowed\tD"]


def test_filter_exit_codes_strict_and_json(reglist, tmp_path):
    none = run("filter", "--list", str(reglist), stdin="8.8.8.8\n")
    assert none.returncode == 1 and none.stdout == ""          # like grep: nothing selected
    strict = run("filter", "--list", str(reglist), "--strict", stdin=ADDRESSES)
    assert strict.returncode == 2
    assert strict.stdout == "192.0.2.7\n  10.1.2.3 \n"        # the lines before the bad one
    assert "stopped at line 6" in strict.stderr
    summary = run("filter", "--list", str(reglist), "--json", stdin=ADDRESSES)
    data = json.loads(summary.stderr)
    assert (data["lines"], data["allowed"], data["denied"], data["unparseable"], data["blank"]) == (9, 4, 2, 2, 1)
    assert [(u["line"], u["column"], u["text"]) for u in data["unparseable_lines"]] == [
        (6, 7, "1.2.3.256"), (8, 1, "not-an-ip")]
    limited = run("filter", "--list", str(reglist), "--report-limit", "1", stdin=ADDRESSES)
    assert "2 unparseable (first 1 shown)" in limited.stderr
    assert limited.stderr.count("invalid IP address") == 1
    missing = run("filter", "--list", str(reglist), str(tmp_path / "absent.log"))
    assert missing.returncode == 2 and "absent.log" in missing.stderr
    assert run("filter", "--allowed", "--denied", stdin="").returncode == 2


def test_filter_csv_columns_by_name_and_number(reglist, tmp_path):
    flows = tmp_path / "flows.csv"
    flows.write_text("ts,src,dst\n1,192.0.2.7,x\n2,8.8.8.8,y\n3,\"10.1.0.1\",z\n4\n5,,q\n6, 2001:db8::1 ,r\n")
    result = run("filter", "--list", str(reglist), "--column", "src", str(flows))
    assert result.stdout == "ts,src,dst\n1,192.0.2.7,x\n3,\"10.1.0.1\",z\n6, 2001:db8::1 ,r\n"
    assert f"{flows}:5:2: no column 'src': the line has fewer fields" in result.stderr
    assert f"{flows}:6:3: empty column 'src'" in result.stderr
    annotated = run("filter", "--list", str(reglist), "--column", "SRC", "--annotate", str(flows))
    assert annotated.stdout.splitlines()[:4] == ["ts,src,dst,verdict,registration", "1,192.0.2.7,x,allowed,A",
                                                 "2,8.8.8.8,y,denied,", "3,\"10.1.0.1\",z,allowed,E"]
    by_number = run("filter", "--list", str(reglist), "--column", "2", "--header", "--denied", str(flows))
    assert by_number.stdout == "ts,src,dst\n2,8.8.8.8,y\n"
    tsv = tmp_path / "flows.tsv"
    tsv.write_text("a\tb\n192.0.2.1\tx\n8.8.4.4\ty\n")
    assert run("filter", "--list", str(reglist), "--column", "1", str(tsv)).stdout == "192.0.2.1\tx\n"
    spaced = tmp_path / "vpc.log"
    spaced.write_text("2 123 eni-1 192.0.2.9 10.0.0.1 ACCEPT\n2 123 eni-1 8.8.8.8 10.0.0.1 ACCEPT\n")
    result = run("filter", "--list", str(reglist), "--column", "4", "--field-sep", "space", str(spaced))
    assert result.stdout == "2 123 eni-1 192.0.2.9 10.0.0.1 ACCEPT\n"
    bad = run("filter", "--list", str(reglist), "--column", "nope", str(flows))
    assert bad.returncode == 2 and "no column 'nope' in the header line" in bad.stderr


def _random_address_lines(n, seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**32, n, dtype=np.uint64)
    lines = [str(ipaddress.IPv4Address(int(v))) for v in values]
    for i in rng.choice(n, n // 20, replace=False).tolist():
        lines[i] = str(ipaddress.IPv6Address((0x20010DB8 << 96) | int(rng.integers(0, 2**32))))
    for i in rng.choice(n, n // 50, replace=False).tolist():
        lines[i] = str(rng.choice(["1.2.3", "fe80::1%eth0", "01.2.3.4", "", "x" * 70]))
    return lines


def test_filter_agrees_with_lookup_across_block_boundaries(tmp_path):
    """200k lines (several 256 KiB blocks): every verdict equals Allowlist.lookup's, in order."""
    listing = tmp_path / "list.txt"
    listing.write_text("0.0.0.0/2\n128.0.0.0/3\n200.0.0.0/8\n2001:db8::/33\n")
    al = ipallow.Allowlist.from_file(listing)
    lines = _random_address_lines(200_000, seed=5)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines))            # no final newline: the last line still counts
    result = run("filter", "--list", str(listing), "--annotate", "--json", str(source))
    assert result.returncode == 0, result.stderr
    out = result.stdout.split("\n")
    assert out.pop() == "" and len(out) == len(lines)
    counts = {"allowed": 0, "denied": 0, "invalid": 0}
    for text, annotated in zip(lines, out):
        if not text:
            assert annotated == ""
            continue
        try:
            match = al.lookup(text)
            verdict = "allowed" if match else "denied"
            label = f"#{match.index}" if match else ""
        except ValueError:
            verdict, label = "invalid", ""
        counts[verdict] += 1
        assert annotated == f"{text}\t{verdict}\t{label}", text
    summary = json.loads(result.stderr)
    assert (summary["allowed"], summary["denied"], summary["unparseable"]) == (
        counts["allowed"], counts["denied"], counts["invalid"])


def test_filter_closed_output_is_quiet(tmp_path):
    source = tmp_path / "many.txt"
    source.write_text("192.0.2.1\n" * 300_000)
    listing = tmp_path / "l.txt"
    listing.write_text("192.0.2.0/24\n")
    pipeline = subprocess.run(f"'{IPALLOW}' filter --list '{listing}' '{source}' | head -n 2",
                              shell=True, capture_output=True, text=True, timeout=60)
    assert pipeline.stdout == "192.0.2.1\n192.0.2.1\n"
    assert "Traceback" not in pipeline.stderr and "Broken pipe" not in pipeline.stderr


# -- stats -----------------------------------------------------------------------------------

def test_stats_registry_counts_and_addresses(tmp_path):
    path = tmp_path / "reg.csv"
    path.write_text("id,cidr,status,category\n"
                    "A,10.0.0.0/8,active,company_vpn\n"
                    "B,10.1.0.0/16,revoked,call_center\n"
                    "C,10.2.0.0/16,active,call_center\n"
                    "D,2001:db8::/32,active,other\n"
                    "E,2001:db8:1::/48; 2001:db9::/64,active,other\n")
    data = json.loads(run("stats", "--json", str(path)).stdout)
    assert data["registrations"] == 5 and data["counting"] == 4
    assert data["by_status"] == {"active": 4, "revoked": 1}
    assert data["by_category"] == {"call_center": 2, "other": 2, "company_vpn": 1}
    assert data["prefixes"] == {"ipv4": 2, "ipv6": 3}
    assert data["by_prefixlen"]["ipv6"] == {"/32": 1, "/48": 1, "/64": 1}
    assert data["addresses"]["ipv4"] == 2**24                          # 10.2/16 inside 10/8
    assert int(data["addresses"]["ipv6"]) == 2**96 + 2**64
    assert data["addresses"]["ipv6_powers_of_two"] == [96, 64]
    assert data["nested"] == 2 and data["duplicates"] == 0
    assert data["aggregated"] == {"ipv4": 1, "ipv6": 2}
    assert data["compiled"]["nbytes"] > 0
    text = run("stats", str(path))
    assert text.returncode == 0
    assert "16,777,216 (0.3906% of the IPv4 space)" in text.stdout
    # IPv6 sizes read as in `ipallow diff`: /64 networks and three significant digits (issue #12)
    v6 = 2**96 + 2**64
    assert f"addresses IPv6        {v6 >> 64:,} /64s = {v6:.3e}\n" in text.stdout, text.stdout
    assert "2^" not in text.stdout and "by status" in text.stdout


def test_stats_plain_list_matches_netaddr(tmp_path):
    rng = np.random.default_rng(9)
    nets = [f"{ipaddress.IPv4Address(int(v) & 0xFFFFFF00)}/{int(p)}"
            for v, p in zip(rng.integers(0, 2**32, 500), rng.integers(8, 33, 500))]
    nets = [str(ipaddress.ip_network(n, strict=False)) for n in nets]
    path = tmp_path / "list.txt"
    path.write_text("\n".join(nets) + "\n")
    data = json.loads(run("stats", "--json", str(path)).stdout)
    assert data["addresses"]["ipv4"] == netaddr.IPSet(nets).size
    assert data["registrations"] == 500 and "by_status" not in data


def test_stats_at_instant(tmp_path):
    path = tmp_path / "reg.jsonl"
    path.write_text('{"id": "A", "networks": "10.0.0.0/8", "expires_at": "2030-01-01"}\n'
                    '{"id": "B", "networks": "11.0.0.0/8", "valid_from": "2031-01-01"}\n')
    now = json.loads(run("stats", "--json", "--at", "2029-06-01", str(path)).stdout)
    later = json.loads(run("stats", "--json", "--at", "2031-06-01T00:00:00Z", str(path)).stdout)
    assert now["counting"] == 1 and later["counting"] == 1
    assert now["addresses"]["ipv4"] == later["addresses"]["ipv4"] == 2**24
    bad = run("stats", "--at", "yesterday", str(path))
    assert bad.returncode == 2 and "unparseable timestamp" in bad.stderr


# -- diff ------------------------------------------------------------------------------------

OLD = "id,cidr,status,owner\nA,10.0.0.0/8,active,x\nB,10.1.0.0/16,active,y\nC,192.0.2.0/24,active,z\n"
NEW = ("id,cidr,status,owner\nA,10.0.0.0/8,active,x\nB,10.1.0.0/16,suspended,y\nD,198.51.100.0/24,active,w\n"
       "C,192.0.2.0/25;2001:db8::/32,active,z\n")


def test_diff_command_shows_a_prefix_that_changes_hands(tmp_path):
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old.write_text("id,cidr\nPTA-10,192.0.2.0/24\n")
    new.write_text("id,cidr\nPTA-10,192.0.2.0/24\nPTA-9,192.0.2.0/24\n")
    done = run("diff", str(old), str(new))
    assert done.returncode == 1, done.stderr
    assert "answers: 1 prefix change hands" in done.stdout
    assert "> 192.0.2.0/24  PTA-10 -> PTA-9" in done.stdout
    assert "coverage IPv4: no change" in done.stdout
    done = run("diff", "--json", str(new), str(old))
    assert json.loads(done.stdout)["handovers"] == [{"network": "192.0.2.0/24", "old": "PTA-9", "new": "PTA-10"}]


def test_diff_registries(tmp_path):
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old.write_text(OLD)
    new.write_text(NEW)
    result = run("diff", str(old), str(new))
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"--- {old}", f"+++ {new}",
        "registrations: 1 added, 0 removed, 2 changed, 1 unchanged",
        "+ D  198.51.100.0/24  w  [active, other]",
        "~ B  status: active -> suspended",
        "~ C  networks +192.0.2.0/25 +2001:db8::/32 -192.0.2.0/24",
        "coverage IPv4: +256 addresses (1 CIDR), -128 addresses (1 CIDR); 16,777,472 -> 16,777,600",
        "  + 198.51.100.0/24", "  - 192.0.2.128/25",
        "coverage IPv6: +4,294,967,296 /64s = 7.923e+28 addresses (1 CIDR), -0 addresses (0 CIDRs); "
        "0 -> 4,294,967,296 /64s = 7.923e+28",
        "  + 2001:db8::/32"]
    data = json.loads(run("diff", "--json", str(old), str(new)).stdout)
    assert [r["id"] for r in data["added"]] == ["D"] and data["removed"] == []
    assert [c["id"] for c in data["changed"]] == ["B", "C"]
    assert data["changed"][0]["fields"] == [{"field": "status", "old": "active", "new": "suspended"}]
    assert data["coverage"]["ipv4"]["lost"] == ["192.0.2.128/25"]
    assert data["coverage"]["ipv6"]["gained_addresses"] == str(2**96)
    same = run("diff", str(old), "-", stdin=OLD)
    assert same.returncode == 0 and "0 added, 0 removed, 0 changed, 3 unchanged" in same.stdout
    summary = run("diff", "--summary", str(old), str(new))
    assert "+ D" not in summary.stdout and "1 added" in summary.stdout


def test_diff_plain_lists_coverage_only_and_matches_netaddr(tmp_path):
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("10.0.0.0/8\n192.0.2.0/24\n")
    new.write_text("10.0.0.0/9\n10.128.0.0/10\n192.0.2.0 - 192.0.3.10\n")
    data = json.loads(run("diff", "--json", str(old), str(new)).stdout)
    gained = netaddr.IPSet(["10.0.0.0/9", "10.128.0.0/10", netaddr.IPRange("192.0.2.0", "192.0.3.10")]) - \
        netaddr.IPSet(["10.0.0.0/8", "192.0.2.0/24"])
    lost = netaddr.IPSet(["10.0.0.0/8", "192.0.2.0/24"]) - \
        netaddr.IPSet(["10.0.0.0/9", "10.128.0.0/10", netaddr.IPRange("192.0.2.0", "192.0.3.10")])
    assert data["coverage"]["ipv4"]["gained"] == [str(c) for c in gained.iter_cidrs()]
    assert data["coverage"]["ipv4"]["lost"] == [str(c) for c in lost.iter_cidrs()]
    text = run("diff", str(old), str(new)).stdout
    assert "registrations: not compared" in text
    assert run("diff", str(old), str(tmp_path / "missing.txt")).returncode == 2


# -- check --explain -------------------------------------------------------------------------

def test_check_explain_registry(tmp_path):
    path = tmp_path / "reg.csv"
    path.write_text("id,cidr,status,owner,expires_at\nA,10.0.0.0/8,active,Acme,\nB,10.1.0.0/16,revoked,Bravo,\n"
                    "C,10.1.2.0/24,active,Charlie,2020-01-01\nD,10.1.0.0/20,active,Delta,\n")
    result = run("check", "--explain", "--list", str(path), "10.1.2.3", "8.8.8.8")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "10.1.2.3  allowed  10.1.0.0/20  D Delta",
        "    10.1.2.0/24  C Charlie  does not count: expired on 2020-01-01T00:00:00Z",
        "  * 10.1.0.0/20  D Delta    counts: active",
        "    10.1.0.0/16  B Bravo    does not count: revoked",
        "    10.0.0.0/8   A Acme     counts: active (a longer prefix decides)",
        "8.8.8.8   denied",
        "    no registration covers this address"]
    past = run("check", "--explain", "--json", "--at", "2019-06-01", "--list", str(path), "10.1.2.3")
    record = json.loads(past.stdout)
    assert record["verdict"] == "allowed" and record["id"] == "C"
    assert [(e["id"], e["counts"], e["code"], e["decides"]) for e in record["explain"]] == [
        ("C", True, "active", True), ("D", True, "active", False), ("B", False, "revoked", False),
        ("A", True, "active", False)]
    assert run("check", "--explain", "1.2.3.256").returncode == 2


def test_check_explain_plain_list_duplicates(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("10.0.0.0/8\n10.1.0.0/16\n10.1.0.0/16\n")
    result = run("check", "--explain", "--list", str(path), "10.1.2.3")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "10.1.2.3  allowed  10.1.0.0/16  registration #1",
        "  * 10.1.0.0/16  registration #1  counts: listed in this allowlist",
        "    10.1.0.0/16  registration #2  counts: listed in this allowlist (the same prefix, registered earlier, decides)",
        "    10.0.0.0/8   registration #0  counts: listed in this allowlist (a longer prefix decides)"]


# -- the progress line -------------------------------------------------------------------------

def test_progress_helper_draws_only_when_enabled():
    import io
    import time
    from ipallow.commands._progress import Progress, enabled_for
    assert not enabled_for(io.StringIO())            # not a terminal: never drawn
    quiet = io.StringIO()
    with Progress("x", total=10, stream=quiet, delay=0.0) as bar:
        bar.update(5)
        time.sleep(0.3)
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    with Progress("working", total=100, unit="B", stream=shown, delay=0.05, enabled=True) as bar:
        bar.update(50)
        time.sleep(0.4)
        bar.message("a diagnostic")
    text = shown.getvalue()
    assert "\r\x1b[Kworking [" in text and " 50.0%" in text and "a diagnostic\n" in text
    assert text.endswith("\r\x1b[K") or text.endswith("a diagnostic\n")
    fast = io.StringIO()
    with Progress("fast", stream=fast, delay=1.0, enabled=True):
        pass                                          # under a second: nothing at all
    assert fast.getvalue() == ""


def test_filter_shows_progress_on_a_terminal_only(tmp_path):
    import time
    listing = tmp_path / "l.txt"
    listing.write_text("192.0.2.0/24\n")
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([IPALLOW, "filter", "--list", str(listing), "-"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=slave)
        proc.stdin.write(b"192.0.2.1\n")
        proc.stdin.flush()
        # Once the first line is out, filtering (and its timer) has started, however
        # long the start-up took on a loaded machine; then make the work outlast a second.
        first = proc.stdout.readline()
        time.sleep(1.8)
        proc.stdin.write(b"8.8.8.8\n")
        proc.stdin.close()
        out = first + proc.stdout.read()
        assert proc.wait(timeout=60) == 0
        os.close(slave)
        slave = -1
        err = drain(master).decode()
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert out == b"192.0.2.1\n"
    assert "filtering <stdin>" in err and "\x1b[K" in err
    piped = run("filter", "--list", str(listing), stdin="192.0.2.1\n")
    assert "\x1b" not in piped.stderr and "\r" not in piped.stderr
