"""ipallow.export (aggregation and writers) and `ipallow export`, checked against netaddr and
against the real nft / ipset tools in a private network namespace."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess

import netaddr
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipallow import Allowlist
from ipallow import export

IPALLOW = shutil.which("ipallow")
needs_cli = pytest.mark.skipif(IPALLOW is None, reason="the ipallow executable is not installed")


# -- random prefix lists that really overlap, nest, repeat and touch ---------------------------

# Blocks the draws crowd into, so adjacent siblings (the merges) happen often; plus the corners.
_V4_BASES = [(0, 0), (0x0A000000, 20), (0xC0000200, 24), (0xFFFFFF00, 24), (0x00000000, 28)]
_V6_BASES = [(0, 0), (0x20010DB8 << 96, 116), (0, 122), ((1 << 128) - 256, 120),
             (0x20010DB8 << 96 | 1 << 64, 60)]


@st.composite
def prefixes(draw: st.DrawFn, version: int) -> tuple[int, int, int]:
    bits = 32 if version == 4 else 128
    base, base_len = draw(st.sampled_from(_V4_BASES if version == 4 else _V6_BASES))
    plen = draw(st.integers(base_len, bits) if base_len else
                st.sampled_from([0, 1, 2, 7, bits // 2, bits - 1, bits]))
    offset = draw(st.integers(0, (1 << (bits - base_len)) - 1))
    value = (base | offset) & ~((1 << (bits - plen)) - 1) & ((1 << bits) - 1)
    return version, value, plen


prefix_lists = st.lists(st.one_of(prefixes(4), prefixes(6)), max_size=60)


def table(rows):
    version = np.array([r[0] for r in rows], dtype=np.uint8)
    hi = np.array([r[1] >> 64 for r in rows], dtype=np.uint64)
    lo = np.array([r[1] & (2**64 - 1) for r in rows], dtype=np.uint64)
    plen = np.array([r[2] for r in rows], dtype=np.uint8)
    return version, hi, lo, plen


def netaddr_cidrs(rows) -> list[str]:
    """The independent answer: netaddr.IPSet compacts to the minimal CIDR list."""
    ipset = netaddr.IPSet(netaddr.IPNetwork(f"{netaddr.IPAddress(value, version)}/{plen}")
                          for version, value, plen in rows)
    # netaddr writes IPv4-compatible IPv6 as '::0.1.0.0'; compare RFC 5952 text (ipaddress's)
    return [str(ipaddress.ip_network(str(c))) for c in ipset.iter_cidrs()]


def our_cidrs(agg) -> list[str]:
    return export.cidr_texts(agg[4]) + export.cidr_texts(agg[6])


@given(prefix_lists)
def test_aggregate_equals_netaddr_ipset(rows):
    agg = export.aggregate(*table(rows))
    ours = our_cidrs(agg)
    # Same text, same order (both sort by address, IPv4 first): same addresses, and minimal.
    assert ours == netaddr_cidrs(rows)
    total = netaddr.IPSet(ours)
    assert export.address_count(agg[4]) + export.address_count(agg[6]) == total.size


@given(prefix_lists)
def test_aggregate_is_disjoint_sorted_and_unmergeable(rows):
    agg = export.aggregate(*table(rows))
    for version, p in agg.items():
        nets = [ipaddress.ip_network(t) for t in export.cidr_texts(p)]
        assert all(n.version == version for n in nets)
        for a, b in zip(nets, nets[1:]):
            assert a.broadcast_address < b.network_address          # sorted, disjoint
            if a.prefixlen == b.prefixlen and a.prefixlen > 0:      # never two halves of one block
                assert a.supernet() != b.supernet()


def test_aggregate_edge_cases():
    rows = [(4, 0, 1), (4, 1 << 31, 1),                         # two /1 -> 0.0.0.0/0
            (6, 0, 128), (6, 1, 128), (6, 2, 127),              # ::/126
            (6, (1 << 128) - 1, 128), (6, 0x20010DB8 << 96, 32), (6, 0x20010DB8 << 96, 32)]
    agg = export.aggregate(*table(rows))
    assert our_cidrs(agg) == ["0.0.0.0/0", "::/126", "2001:db8::/32", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"]
    assert export.address_count(agg[4]) == 2**32
    assert export.address_count(agg[6]) == 4 + 2**96 + 1
    empty = export.aggregate(*table([]))
    assert len(empty[4]) == len(empty[6]) == 0 and export.address_count(empty[6]) == 0


def test_aggregate_allowlist_ranges_and_mapped():
    al = Allowlist(["10.0.0.0 - 10.0.0.254", "10.0.0.255", "::ffff:192.0.2.0/120", "192.0.2.0/24"])
    assert our_cidrs(export.aggregate_allowlist(al)) == ["10.0.0.0/24", "192.0.2.0/24"]
    only_first = export.aggregate_allowlist(al, [0])
    assert len(export.cidr_texts(only_first[4])) == 8      # 10.0.0.0 - 10.0.0.254 is 8 CIDRs


def test_big_synthetic_table_against_lookups():
    """A BGP-like table: every aggregated block's ends and neighbours agree with the allowlist."""
    from ipallow import synth
    keys, plens = synth.ipv4_table(20000, seed=5)
    al = Allowlist(synth.ipv4_strings(keys, plens))
    p = export.aggregate_allowlist(al)[4]
    first = p.lo.astype(np.int64)
    last = first + (1 << (32 - p.prefixlen.astype(np.int64))) - 1
    inside = np.concatenate((first, last)).astype(np.uint32)
    assert al.contains_many(inside).all()
    outside = np.concatenate((first[first > 0] - 1, last[last < 2**32 - 1] + 1))
    outside = np.setdiff1d(outside, inside)      # a neighbour may start the next block
    assert not al.contains_many(outside.astype(np.uint32)).any()
    assert export.address_count(p) == netaddr.IPSet(export.cidr_texts(p)).size


def test_cidr_texts_zero_length_split_for_ipset():
    agg = export.aggregate(*table([(4, 0, 0), (6, 0, 0)]))
    assert export.cidr_texts(agg[4], no_zero_length=True) == ["0.0.0.0/1", "128.0.0.0/1"]
    assert export.cidr_texts(agg[6], no_zero_length=True) == ["::/1", "8000::/1"]


def test_ipv6_text_is_rfc5952_like_ipaddress():
    values = [0, 1, 0x01020304, 0xFFFF01020304, 0x20010DB8 << 96, 1 << 127, (1 << 128) - 1,
              0x20010DB8000000000001000000000001]
    p = export.Prefixes(6, np.array([v >> 64 for v in values], np.uint64),
                        np.array([v & (2**64 - 1) for v in values], np.uint64),
                        np.full(len(values), 128, np.uint8))
    assert export.cidr_texts(p) == [f"{ipaddress.IPv6Address(v)}/128" for v in values]


# -- writers -----------------------------------------------------------------------------------

def _agg(*cidrs):
    return export.aggregate_allowlist(Allowlist(list(cidrs)))


def test_write_nft_layout(tmp_path):
    out = tmp_path / "x.nft"
    with open(out, "w") as f:
        export.write_nft(f, _agg("192.0.2.0/25", "192.0.2.128/25", "2001:db8::/32"),
                         table="t", name="s", family="inet", comment=["hello"])
    text = out.read_text()
    assert text.startswith("# hello\n")
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert body == ["add table inet t",
                    "add set inet t s_v4 { type ipv4_addr; flags interval; }",
                    "flush set inet t s_v4",
                    "add element inet t s_v4 {", "\t192.0.2.0/24,", "}",
                    "add set inet t s_v6 { type ipv6_addr; flags interval; }",
                    "flush set inet t s_v6",
                    "add element inet t s_v6 {", "\t2001:db8::/32,", "}"]


def test_write_nft_single_family_and_empty_set_still_flushed(tmp_path):
    out = tmp_path / "x.nft"
    with open(out, "w") as f:
        export.write_nft(f, _agg("2001:db8::/32"), table="t", name="s", family="ip")
    body = [line for line in out.read_text().splitlines() if line and not line.startswith("#")]
    assert body == ["add table ip t", "add set ip t s { type ipv4_addr; flags interval; }",
                    "flush set ip t s"]


def test_write_ipset_layout(tmp_path):
    out = tmp_path / "x.ipset"
    with open(out, "w") as f:
        export.write_ipset(f, _agg("10.0.0.0/8", "0.0.0.0/0"), name="s", family="ip")
    body = [line for line in out.read_text().splitlines() if line and not line.startswith("#")]
    params = f"hash:net family inet hashsize 1024 maxelem {export.IPSET_MAXELEM}"
    assert body == [f"create s {params} -exist", f"create s.tmp {params} -exist", "flush s.tmp",
                    "add s.tmp 0.0.0.0/1", "add s.tmp 128.0.0.0/1", "swap s.tmp s", "destroy s.tmp"]


# -- the command -------------------------------------------------------------------------------

def run(*args, stdin=None, check=True):
    result = subprocess.run([IPALLOW, *args], capture_output=True, text=True, input=stdin, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def random_list(path, seed, count=400, v6=True):
    """A list file of random overlapping entries (CIDRs, addresses, ranges) and its netaddr.IPSet."""
    rng = np.random.default_rng(seed)
    lines, expected = [], netaddr.IPSet()
    for _ in range(count):
        kind = rng.integers(0, 10)
        if v6 and kind == 0:
            plen = int(rng.integers(100, 129))
            value = (0x20010DB8 << 96) | int(rng.integers(0, 1 << 16)) << 8
            net = netaddr.IPNetwork(f"{netaddr.IPAddress(value, 6)}/{plen}").cidr
            lines.append(str(net))
            expected.add(net)
        elif kind == 1:
            first = int(rng.integers(0x0A000000, 0x0A010000))
            last = first + int(rng.integers(0, 700))
            a, b = netaddr.IPAddress(first, 4), netaddr.IPAddress(last, 4)
            lines.append(f"{a} - {b}")
            expected.add(netaddr.IPRange(a, b))
        else:
            plen = int(rng.integers(18, 33))
            value = int(rng.integers(0x0A000000, 0x0A010000))
            net = netaddr.IPNetwork(f"{netaddr.IPAddress(value, 4)}/{plen}").cidr
            lines.append(str(net))
            expected.add(net)
    path.write_text("\n".join(lines) + "\n")
    return expected


@needs_cli
def test_cli_export_cidr_covers_exactly_the_input(tmp_path):
    for seed in range(5):
        expected = random_list(tmp_path / "list.txt", seed)
        result = run("export", "--format", "cidr", str(tmp_path / "list.txt"))
        assert result.stdout.splitlines() == [str(ipaddress.ip_network(str(c))) for c in expected.iter_cidrs()]
        entries = len((tmp_path / "list.txt").read_text().splitlines())       # a range is one
        assert f"{entries} registrations ->" in result.stderr


@needs_cli
def test_cli_export_stdin_output_file_and_json(tmp_path):
    text = "cidr,id\n192.0.2.0/25,A\n192.0.2.128/25,B\n2001:db8::/32,C\n"
    target = tmp_path / "out.nft"
    result = run("export", "--format", "nft", "--family", "ip", "-o", str(target), "--json", "-",
                 stdin=text)
    assert result.stdout == ""
    summary = json.loads(result.stderr)
    assert summary["registrations"] == 3 and summary["cidrs"] == {"ipv4": 1}
    assert summary["left_out"] == {"ipv6": 1} and summary["sets"] == ["allowed"]
    assert "add element ip ipallow allowed {\n\t192.0.2.0/24,\n}" in target.read_text()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".ipallow-")]   # no temp left


@needs_cli
def test_cli_export_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("10.0.0.0/8\n10.0.0.1/8\n")
    result = run("export", "--format", "cidr", str(bad), check=False)
    assert result.returncode == 2 and f"{bad}:2:1: invalid network '10.0.0.1/8': host bits set" in result.stderr
    assert result.stdout == ""
    target = tmp_path / "keep.nft"
    target.write_text("old\n")
    result = run("export", "--format", "nft", "-o", str(target), str(bad), check=False)
    assert result.returncode == 2 and target.read_text() == "old\n"     # never half-written
    good = tmp_path / "good.txt"
    good.write_text("10.0.0.0/8\n")
    result = run("export", "--format", "nft", "--name", "bad-name", str(good), check=False)
    assert result.returncode == 2 and "invalid nftables name 'bad-name'" in result.stderr
    result = run("export", "--format", "ipset", "--name", "x" * 26, str(good), check=False)
    assert result.returncode == 2 and "too long" in result.stderr
    assert run("export", str(good), check=False).returncode == 2                 # --format missing
    assert "examples:" in run("export", "--help").stdout


# -- the real tools, in a private network namespace --------------------------------------------

# The tools live in /usr/sbin, which a non-login PATH may lack.
_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
_ENV = {**os.environ, "PATH": _PATH}


def _namespace_runner(tool: str):
    """A function running a shell script in a fresh network namespace, or pytest.skip with why."""
    if shutil.which(tool, path=_PATH) is None:
        pytest.skip(f"{tool} is not installed (apt-get install -y nftables ipset; .ci/run does it)")
    unshare = shutil.which("unshare", path=_PATH)
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed: cannot make a private network namespace")
    probe = {"nft": "nft list tables", "ipset": "ipset list -n"}[tool]
    trial = subprocess.run([unshare, "-n", "sh", "-c", probe], capture_output=True, text=True,
                           timeout=60, env=_ENV)
    if trial.returncode != 0:
        pytest.skip(f"cannot run {tool} in a private network namespace here "
                    f"(needs root / CAP_NET_ADMIN and kernel support): {trial.stderr.strip()}")

    def in_namespace(script: str) -> subprocess.CompletedProcess:
        # The namespace lives as long as this shell: whatever the script leaves is gone with it.
        # The scripts still delete what they made, so they are also safe to run outside one.
        return subprocess.run([unshare, "-n", "sh", "-ec", script], capture_output=True, text=True,
                              timeout=300, env=_ENV)
    return in_namespace


def _nft_elements(listing: str, set_name: str) -> netaddr.IPSet:
    found = netaddr.IPSet()
    for item in json.loads(listing)["nftables"]:
        s = item.get("set")
        if not s or s["name"] != set_name:
            continue
        for elem in s.get("elem", []):
            if isinstance(elem, dict) and "elem" in elem:
                elem = elem["elem"]["val"]
            if isinstance(elem, str):
                found.add(netaddr.IPAddress(elem))
            elif "prefix" in elem:
                found.add(netaddr.IPNetwork(f"{elem['prefix']['addr']}/{elem['prefix']['len']}"))
            elif "range" in elem:
                found.add(netaddr.IPRange(*elem["range"]))
            else:
                raise AssertionError(f"unexpected nft element {elem!r}")
    return found


@needs_cli
def test_nft_loads_the_export_and_holds_exactly_the_input(tmp_path):
    in_namespace = _namespace_runner("nft")
    first = random_list(tmp_path / "first.txt", seed=11, count=1500)
    second = random_list(tmp_path / "second.txt", seed=12, count=300)
    for name in ("first", "second"):
        run("export", "--format", "nft", "--table", "ipallow_test", "--name", "reg",
            "-o", str(tmp_path / f"{name}.nft"), str(tmp_path / f"{name}.txt"))
    script = f"""
        nft -f {tmp_path}/first.nft
        nft -j list table inet ipallow_test > {tmp_path}/after_first.json
        nft -f {tmp_path}/second.nft          # reload over the live set: flush + add, one transaction
        nft -j list table inet ipallow_test > {tmp_path}/after_second.json
        nft delete table inet ipallow_test
        nft list tables > {tmp_path}/left.txt
    """
    result = in_namespace(script)
    assert result.returncode == 0, result.stderr
    for name, expected in (("after_first", first), ("after_second", second)):
        listing = (tmp_path / f"{name}.json").read_text()
        v4 = _nft_elements(listing, "reg_v4")
        v6 = _nft_elements(listing, "reg_v6")
        assert v4 | v6 == expected, name
        assert all(c.version == 4 for c in v4.iter_cidrs()) and all(c.version == 6 for c in v6.iter_cidrs())
    assert (tmp_path / "left.txt").read_text().strip() == ""


@needs_cli
def test_nft_single_family_tables(tmp_path):
    in_namespace = _namespace_runner("nft")
    expected = random_list(tmp_path / "list.txt", seed=13, count=200)
    for family in ("ip", "ip6"):
        run("export", "--format", "nft", "--family", family, "--table", "t", "--name", "s",
            "-o", str(tmp_path / f"{family}.nft"), str(tmp_path / "list.txt"))
    result = in_namespace(f"""
        nft -f {tmp_path}/ip.nft; nft -f {tmp_path}/ip6.nft
        nft -j list set ip t s > {tmp_path}/ip.json; nft -j list set ip6 t s > {tmp_path}/ip6.json
        nft delete table ip t; nft delete table ip6 t
    """)
    assert result.returncode == 0, result.stderr
    v4 = _nft_elements((tmp_path / "ip.json").read_text(), "s")
    v6 = _nft_elements((tmp_path / "ip6.json").read_text(), "s")
    assert v4 == netaddr.IPSet(c for c in expected.iter_cidrs() if c.version == 4)
    assert v6 == netaddr.IPSet(c for c in expected.iter_cidrs() if c.version == 6)


def _ipset_members(saved: str, set_name: str) -> netaddr.IPSet:
    found = netaddr.IPSet()
    for line in saved.splitlines():
        parts = line.split()
        if parts[:2] == ["add", set_name]:
            found.add(netaddr.IPNetwork(parts[2]))
    return found


@needs_cli
def test_ipset_restore_swaps_in_exactly_the_input(tmp_path):
    in_namespace = _namespace_runner("ipset")
    first = random_list(tmp_path / "first.txt", seed=21, count=1500)
    second = random_list(tmp_path / "second.txt", seed=22, count=300)
    for name in ("first", "second"):
        run("export", "--format", "ipset", "--name", "ipallow_t",
            "-o", str(tmp_path / f"{name}.ipset"), str(tmp_path / f"{name}.txt"))
    result = in_namespace(f"""
        ipset restore -file {tmp_path}/first.ipset
        ipset save > {tmp_path}/after_first.txt
        ipset list -n > {tmp_path}/names_first.txt
        ipset restore -file {tmp_path}/second.ipset
        ipset save > {tmp_path}/after_second.txt
        ipset destroy ipallow_t_v4; ipset destroy ipallow_t_v6
        ipset list -n > {tmp_path}/left.txt
    """)
    assert result.returncode == 0, result.stderr
    for name, expected in (("after_first", first), ("after_second", second)):
        saved = (tmp_path / f"{name}.txt").read_text()
        assert _ipset_members(saved, "ipallow_t_v4") | _ipset_members(saved, "ipallow_t_v6") == expected
        assert "ipallow_t_v4.tmp" not in saved                      # the temporary set is gone
    assert sorted((tmp_path / "names_first.txt").read_text().split()) == ["ipallow_t_v4", "ipallow_t_v6"]
    assert (tmp_path / "left.txt").read_text().strip() == ""


@needs_cli
def test_ipset_whole_space_is_two_halves(tmp_path):
    in_namespace = _namespace_runner("ipset")
    (tmp_path / "all.txt").write_text("0.0.0.0/0\n10.0.0.0/8\n")
    run("export", "--format", "ipset", "--family", "ip", "--name", "everything",
        "-o", str(tmp_path / "all.ipset"), str(tmp_path / "all.txt"))
    result = in_namespace(f"""
        ipset restore -file {tmp_path}/all.ipset
        ipset save everything > {tmp_path}/saved.txt
        ipset destroy everything
    """)
    assert result.returncode == 0, result.stderr
    assert _ipset_members((tmp_path / "saved.txt").read_text(), "everything") == netaddr.IPSet(["0.0.0.0/0"])
