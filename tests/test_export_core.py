"""The compiled core's export functions against ``ipaddress``: the minimal CIDR cover
(``aggregate_prefixes``), CIDR text (``cidr_text``) and the one-pass text list reader
(``scan_network_text``), on seeded random lists, and their refusals of bad input."""

from __future__ import annotations

import ipaddress
import random
import shutil
import subprocess

import numpy as np
import pytest

from ipallow import _trie
from oracle import normalize_network

MASK64 = (1 << 64) - 1


def random_networks(rng: random.Random, count: int) -> list:
    """Networks of both versions, with /0, /32 and /128, nesting, duplicates and neighbours."""
    nets: list = []
    for _ in range(count):
        kind = rng.random()
        if nets and kind < 0.15:                        # a duplicate or a net inside an earlier one
            base = rng.choice(nets)
            longer = rng.randint(base.prefixlen, base.max_prefixlen)
            nets.append(next(base.subnets(new_prefix=longer)) if rng.random() < 0.5 else base)
        elif nets and kind < 0.35:                      # the neighbour of an earlier one (adjacent)
            base = rng.choice(nets)
            if base.prefixlen:
                top = int(base.network_address) ^ (1 << (base.max_prefixlen - base.prefixlen))
                nets.append(ipaddress.ip_network((top, base.prefixlen)))
        elif kind < 0.37:
            nets.append(ipaddress.ip_network(rng.choice(["0.0.0.0/0", "::/0"])))
        elif kind < 0.7:                                # IPv4, crowded into a small space
            plen = rng.choice([rng.randint(0, 32), 32, 24, rng.randint(20, 32)])
            value = rng.getrandbits(32) if rng.random() < 0.2 else (0x0A000000 | rng.getrandbits(14) << 10)
            nets.append(ipaddress.IPv4Network((value, plen), strict=False))
        else:
            plen = rng.choice([rng.randint(0, 128), 128, 64, 48, rng.randint(60, 128)])
            value = (rng.getrandbits(128) if rng.random() < 0.2
                     else (0x20010DB8 << 96) | rng.getrandbits(24) << 64 | rng.getrandbits(64) * rng.randint(0, 1))
            nets.append(ipaddress.IPv6Network((value, plen), strict=False))
    return nets


def table(nets: list):
    version = np.array([n.version for n in nets], dtype=np.uint8)
    values = [int(n.network_address) for n in nets]
    hi = np.array([v >> 64 for v in values], dtype=np.uint64)
    lo = np.array([v & MASK64 for v in values], dtype=np.uint64)
    plen = np.array([n.prefixlen for n in nets], dtype=np.uint8)
    return version, hi, lo, plen


def cover(nets: list, version: int) -> list:
    return list(ipaddress.collapse_addresses(n for n in nets if n.version == version))


@pytest.mark.parametrize("seed", range(12))
def test_aggregate_prefixes_is_collapse_addresses(seed):
    rng = random.Random(seed)
    nets = random_networks(rng, rng.choice([1, 5, 50, 400]))
    addr4, plen4, hi6, lo6, plen6 = _trie.aggregate_prefixes(*table(nets))
    got4 = [ipaddress.IPv4Network((int(a), int(p))) for a, p in zip(addr4, plen4)]
    got6 = [ipaddress.IPv6Network((int(h) << 64 | int(l), int(p))) for h, l, p in zip(hi6, lo6, plen6)]
    assert got4 == cover(nets, 4)
    assert got6 == cover(nets, 6)


@pytest.mark.parametrize("varying", range(16))
def test_aggregate_prefixes_sorts_whatever_bytes_vary(varying):
    # The IPv4 sort goes a byte of the first address at a time and skips a byte that is the
    # same everywhere: every mix of varying and constant bytes.  Even /32s never touch, so the
    # cover is the sorted distinct addresses, in the sort's own order.
    rng = random.Random(700 + varying)
    fixed = [rng.getrandbits(8) for _ in range(4)]
    values = []
    for _ in range(rng.choice([1, 2, 300, 3000])):
        digits = [rng.getrandbits(8) if varying >> k & 1 else fixed[k] for k in range(4)]
        values.append((digits[3] << 24 | digits[2] << 16 | digits[1] << 8 | digits[0]) & ~1)
    nets = [ipaddress.IPv4Network((v, 32)) for v in values]
    addr4, plen4, *_ = _trie.aggregate_prefixes(*table(nets))
    assert addr4.tolist() == sorted(set(values)) and set(plen4.tolist()) == {32}
    assert [ipaddress.IPv4Network((int(a), int(p))) for a, p in zip(addr4, plen4)] == cover(nets, 4)


@pytest.mark.parametrize("texts", [
    ["0.0.0.0/0", "10.0.0.0/8"], ["255.255.255.255/32", "255.255.255.254/32"],
    ["0.0.0.0/1", "128.0.0.0/1"], ["::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"],
    ["::/1", "8000::/1"], ["0:0:0:1::/64", "0:0:0:0:8000::/65", "::/65"], [],
])
def test_aggregate_prefixes_edges(texts):
    """The ends of both spaces (no wrap-around past the last address), /0 and empty lists."""
    nets = [ipaddress.ip_network(t) for t in texts]
    addr4, plen4, hi6, lo6, plen6 = _trie.aggregate_prefixes(*table(nets))
    assert [f"{ipaddress.IPv4Address(int(a))}/{p}" for a, p in zip(addr4, plen4)] == \
        [str(n) for n in cover(nets, 4)]
    assert [str(ipaddress.IPv6Network((int(h) << 64 | int(l), int(p)))) for h, l, p in zip(hi6, lo6, plen6)] == \
        [str(n) for n in cover(nets, 6)]


def test_aggregate_prefixes_ignores_host_bits():
    version, hi, lo, plen = table([ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")])
    lo[0] |= np.uint64(0xFFFF)
    hi[1] |= np.uint64(0xFFFF)
    addr4, plen4, hi6, lo6, plen6 = _trie.aggregate_prefixes(version, hi, lo, plen)
    assert (addr4.tolist(), plen4.tolist()) == ([0x0A000000], [8])
    assert (hi6.tolist(), lo6.tolist(), plen6.tolist()) == ([0x20010DB8 << 32], [0], [32])


@pytest.mark.parametrize("version, plen, message", [
    (4, 33, "IPv4 prefix length 33"), (6, 129, "IPv6 prefix length 129"), (5, 8, "IP version 5"),
])
def test_aggregate_prefixes_refuses_bad_rows(version, plen, message):
    with pytest.raises(ValueError, match=message):
        _trie.aggregate_prefixes(np.array([version], np.uint8), np.zeros(1, np.uint64),
                                 np.zeros(1, np.uint64), np.array([plen], np.uint8))


def test_aggregate_prefixes_refuses_different_lengths():
    with pytest.raises(ValueError, match="same length"):
        _trie.aggregate_prefixes(np.array([4, 4], np.uint8), np.zeros(2, np.uint64),
                                 np.zeros(1, np.uint64), np.zeros(2, np.uint8))


@pytest.mark.parametrize("seed", range(6))
def test_cidr_text_is_ipaddress_text(seed):
    rng = random.Random(100 + seed)
    nets = random_networks(rng, 300)
    # IPv6 values with every shape of zero run: single zero groups, ties, ::ffff:0:0/96, ::a.b.c.d.
    nets += [ipaddress.IPv6Network((sum(rng.choice([0, 0, 1, 0xABCD]) << (16 * g) for g in range(8)), 128))
             for _ in range(300)]
    nets += [ipaddress.ip_network(t) for t in ("::ffff:1.2.3.4/128", "::1.2.3.4/128", "1:0:1:1:1:1:1:1/128",
                                                 "1:0:0:1:0:0:1:1/128", "::/0", "0.0.0.0/0")]
    version, hi, lo, plen = table(nets)
    for v in (4, 6):
        rows = version == v
        want = [str(n) for n in nets if n.version == v]
        text = _trie.cidr_text(v, hi[rows], lo[rows], plen[rows])
        assert text == "".join(w + "\n" for w in want)
        grouped = _trie.cidr_text(v, hi[rows], lo[rows], plen[rows], 8, b"\t", b", ", b",\n")
        assert grouped == "".join("\t" + ", ".join(want[i:i + 8]) + ",\n" for i in range(0, len(want), 8))


def test_cidr_text_refusals():
    one = (np.zeros(1, np.uint64), np.zeros(1, np.uint64))
    with pytest.raises(ValueError, match="prefix length 33"):
        _trie.cidr_text(4, *one, np.array([33], np.uint8))
    with pytest.raises(ValueError, match="version"):
        _trie.cidr_text(5, *one, np.array([3], np.uint8))
    with pytest.raises(ValueError, match="same length"):
        _trie.cidr_text(6, np.zeros(2, np.uint64), one[1], np.array([3], np.uint8))
    with pytest.raises(ValueError, match="per_line"):
        _trie.cidr_text(4, *one, np.array([3], np.uint8), 0)
    with pytest.raises(ValueError, match="ASCII"):
        _trie.cidr_text(4, *one, np.array([3], np.uint8), 1, "é".encode())
    with pytest.raises(TypeError):
        _trie.cidr_text(4, *one, np.array([3], np.uint8), 1, None)
    assert _trie.cidr_text(4, None, np.zeros(0, np.uint64), np.zeros(0, np.uint8)) == ""


def random_range(rng: random.Random) -> tuple[str, list]:
    """A range 'a - b' as a list writes it, and its blocks by ipaddress.summarize_address_range:
    IPv4 and IPv6, one address to the whole space, ends on and beside block boundaries,
    IPv4-mapped IPv6 (blocks that become IPv4 and blocks that stay IPv6)."""
    kind = rng.random()
    if kind < 0.5:
        bits, make = 32, ipaddress.IPv4Address
        base = 0
    elif kind < 0.65:
        bits, make = 32, ipaddress.IPv6Address          # inside (or across the end of) ::ffff:0:0/96
        base = 0xFFFF << 32
    else:
        bits, make = 128, ipaddress.IPv6Address
        base = 0
    top = (1 << bits) - 1
    span_bits = rng.randint(0, bits)
    first = rng.getrandbits(bits)
    if rng.random() < 0.3:
        first &= ~((1 << rng.randint(0, bits)) - 1) & top
    last = min(first + rng.getrandbits(span_bits) + rng.choice([0, 0, 1, -1]) * (span_bits > 0), top)
    last = max(last, first)
    if base and rng.random() < 0.2:                     # past the mapped block's end
        last = rng.getrandbits(40)
        first = min(first, last)
    if rng.random() < 0.05:
        first, last = 0, top
    a, b = make(base + first), make(base + last)
    text = rng.choice(["{} - {}", "{}-{}", "{} -{}", "{}\t-  {}"]).format(a, b)
    return text, [normalize_network(n) for n in ipaddress.summarize_address_range(a, b)]


@pytest.mark.parametrize("seed", range(6))
def test_scan_network_text_reads_as_the_loader(seed):
    """Networks and ranges, with blanks and comments around them: each entry's rows are its
    network, or its range's blocks in ascending order, and reg_first says whose rows are whose."""
    rng = random.Random(200 + seed)
    nets = random_networks(rng, 200)
    lines, expected = [], []
    for n in nets:
        if rng.random() < 0.3:
            text, blocks = random_range(rng)
        else:
            text = str(n) if rng.random() < 0.8 else str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n)
            blocks = [normalize_network(n)]
        lines.append(rng.choice(["", " ", "\t", "\x0b"]) + text + rng.choice(["", " ", "\r", " # note", "#x"]))
        expected.append([(b.version, int(b.network_address), b.prefixlen) for b in blocks])
        if rng.random() < 0.1:
            lines.append(rng.choice(["", "   ", "# a comment", " \t# 1.2.3.4/33", "# 1.2.3.9 - 1.2.3.4"]))
    raw = "\n".join(lines).encode() + rng.choice([b"", b"\n"])
    version, hi, lo, plen, reg_first = _trie.scan_network_text(raw)
    rows = [(int(v), int(h) << 64 | int(l), int(p)) for v, h, l, p in zip(version, hi, lo, plen)]
    assert len(reg_first) == len(expected) + 1 and reg_first[0] == 0 and reg_first[-1] == len(rows)
    assert [rows[reg_first[i]:reg_first[i + 1]] for i in range(len(expected))] == expected


def test_scan_network_text_grows_its_rows_for_ranges_of_many_blocks():
    """Ranges of 62 and 254 blocks take the rows of many lines; the entries after them still fit."""
    wide4 = "0.0.0.1 - 255.255.255.254"
    wide6 = "::1 - ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"
    lines = [wide4] * 300 + ["10.0.0.0/8"] * 50 + [wide6] * 40 + ["2001:db8::/32", "192.0.2.1"]
    version, hi, lo, plen, reg_first = _trie.scan_network_text("\n".join(lines).encode())
    assert np.diff(reg_first).tolist() == [62] * 300 + [1] * 50 + [254] * 40 + [1, 1]
    assert len(version) == 300 * 62 + 50 + 40 * 254 + 2
    assert (version[-2], int(hi[-2]), int(plen[-2])) == (6, 0x20010DB800000000, 32)
    assert (version[-1], int(lo[-1]), int(plen[-1])) == (4, 0xC0000201, 32)
    assert plen[reg_first[350]:reg_first[351]].tolist() == list(range(128, 1, -1)) + list(range(2, 129))


@pytest.mark.parametrize("raw", [
    b"10.0.0.1/8\n",                          # host bits: an error to report there
    b"10.0.0.0/33\n", b"nonsense\n", b"1.2.3.4\x00\n",
    "\ufeff10.0.0.0/8\n".encode(),            # BOM and UTF-8: decoded there
    "10.0.0.0/8 # café\n".encode(), b"10.0.0.0/8\n\xff\n",
    # ranges the general loader reports
    b"10.0.0.0/8\n1.2.3.9 - 1.2.3.4\n", b"1.2.3.4 - ::1\n", b"::1 - 1.2.3.4\n", b"1.2.3.4 -\n",
    b"- 1.2.3.4\n", b"-\n", b"1.2.3.0/24 - 1.2.3.255\n", b"1.2.3.4 - 1.2.3.5 - 1.2.3.6\n",
    b"1.2.3.4 - 1.2.3.x\n", b"::2 - ::1\n", b"1.2.3.4 - 1.2.3.4/32\n",
])
def test_scan_network_text_leaves_the_rest_to_the_loader(raw):
    assert _trie.scan_network_text(raw) is None


def test_scan_network_text_reads_crlf_and_blanks_as_plain_lines():
    """A line that is one network is parsed whole (with a CRLF's CR left off); any other line
    (blanks around it, two CRs, a comment) is stripped first: every form reads the same."""
    nets = ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "::ffff:1.2.3.0/120", "0.0.0.0/0", "::/0"]
    plain = _trie.scan_network_text(("\n".join(nets) + "\n").encode())
    for form in ("{}\r", "{}\r\r", " {}\r", "{} \r", "\t{}", "{}#x\r", "{} # x", "\x0b{}\x0c"):
        got = _trie.scan_network_text("\n".join(form.format(n) for n in nets).encode())
        assert [a.tolist() for a in got] == [a.tolist() for a in plain], form


def test_scan_network_text_finds_a_byte_outside_ascii_anywhere():
    """The check reads eight bytes at a time, then the tail one by one: every offset counts."""
    lines = b"10.0.0.0/8\n192.0.2.0/24\n2001:db8::/32\n#c\n"
    assert _trie.scan_network_text(lines) is not None
    for offset in range(len(lines) + 1):
        for byte in (b"\x80", b"\xff", b"\xc3"):
            raw = lines[:offset] + byte + lines[offset:]
            assert _trie.scan_network_text(raw) is None, (offset, byte)


def test_scan_network_text_empty_and_types():
    assert [len(a) for a in _trie.scan_network_text(b"")] == [0, 0, 0, 0, 1]
    assert [len(a) for a in _trie.scan_network_text(b"\n# only a comment\n  \n")] == [0, 0, 0, 0, 1]
    with pytest.raises(TypeError):
        _trie.scan_network_text("10.0.0.0/8")
    assert _trie.scan_network_text(b"10.0.0.1/8", strict=False) is None     # the loader warns


@pytest.mark.parametrize("seed", range(4))
def test_core_cover_is_the_numpy_reference(seed):
    """export.aggregate (the core) and its numpy reference give the same Prefixes."""
    from ipallow import export
    nets = random_networks(random.Random(300 + seed), 500)
    core, reference = export.aggregate(*table(nets)), export.aggregate(*table(nets), reference=True)
    for v in (4, 6):
        assert [a.tolist() for a in core[v][1:]] == [a.tolist() for a in reference[v][1:]]
        assert core[v].version == reference[v].version == v


# -- `ipallow export` of a plain text list: the core's one-pass reader, or the one loader ----------

IPALLOW = shutil.which("ipallow")


@pytest.mark.skipif(IPALLOW is None, reason="the ipallow executable is not installed")
@pytest.mark.parametrize("content", [
    "# a list\n10.0.0.0/9\r\n10.128.0.0/9 # second half\n\n  2001:db8::/33\n2001:db8:8000::/33\n1.2.3.4\n",
    "10.0.0.0/8\n1.2.3.4 - 1.2.3.9\n",                 # a range: the loader's
    "\ufeff10.0.0.0/8\n# café\n192.0.2.0/24\n",         # BOM, UTF-8: the loader's
    "",
])
@pytest.mark.parametrize("form", [["cidr"], ["nft"], ["ipset"], ["nft", "--family", "ip6"], ["cidr", "--json"]])
def test_export_of_a_text_file_is_the_loaders(tmp_path, content, form):
    """A file (read by the core in one pass where it can) exports exactly as the same list on
    stdin (always through the one loader): stdout, stderr (but the name) and exit status."""
    path = tmp_path / "list.txt"
    path.write_text(content, encoding="utf-8")
    args = ["export", "--allow-empty", "--format", *form]
    from_file = subprocess.run([IPALLOW, *args, str(path)], capture_output=True, timeout=120)
    from_stdin = subprocess.run([IPALLOW, *args, "-"], input=path.read_bytes(), capture_output=True,
                                timeout=120)
    assert from_file.returncode == from_stdin.returncode == 0, from_file.stderr
    assert from_file.stdout == from_stdin.stdout.replace(b"from <stdin>", f"from {path}".encode())
    assert from_file.stderr == from_stdin.stderr.replace(b"<stdin>", str(path).encode())


@pytest.mark.skipif(IPALLOW is None, reason="the ipallow executable is not installed")
def test_export_of_a_bad_text_file_names_the_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("10.0.0.0/8\n10.0.0.1/8\n")
    done = subprocess.run([IPALLOW, "export", "--format", "cidr", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert f"{path}:2:" in done.stderr
