"""`ipallow export` of a text list or a plain list's snapshot, read without numpy or argparse
(issue #15: at least as fast as FireHOL iprange on 100k CIDRs, start-up included).

What is checked:

* the command lines the export module reads itself (``quick_arguments``) mean what argparse
  says they mean, for every form, and the common forms are taken;
* the numpy-free path (``_read_without_numpy``) writes byte for byte what the one loader's
  path writes, on seeded random lists and their snapshots, every format and family;
* the snapshot's prefix table is verified as opening the snapshot verifies it: a corrupt
  section or a truncated file is refused with the same message, a registry's snapshot is
  left to the loader (what counts depends on --at);
* the core's numpy-free pieces agree with the numpy ones they stand beside.
"""

from __future__ import annotations

import array
import contextlib
import io
import ipaddress
import random
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ipallow
from ipallow import _cidrtext, _trie, cli, export
from ipallow.commands import export as export_command
from ipallow.snapshot._cover import read_cover


# -- quick_arguments against argparse ---------------------------------------------------------

def argparse_reading(argv: list[str]):
    """What argparse makes of ``ipallow export ARGV`` (a dict), or None when it refuses it."""
    parser = cli.build_parser(["export"])
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return vars(parser.parse_args(["export", *argv]))
    except SystemExit:
        return None


def quick_reading(argv: list[str]):
    args = export_command.quick_arguments(argv)
    return None if args is None else vars(args)


TOKENS = st.sampled_from([
    "--format", "--family", "--name", "--table", "-o", "--output", "--list-format", "--previous",
    "--max-loss", "--at", "--allow-empty", "--force", "--json", "-q", "--quiet", "--form", "--fam",
    "-h", "--help", "--", "-", "-x", "-qo", "-ofile", "--json=1", "--force=yes",
    "cidr", "nft", "ipset", "mmdb", "inet", "ip", "ip6", "txt", "snapshot", "csv", "bogus",
    "list.txt", "other.txt", "allowed", "a=b", "", "-1", "50",
    "--format=cidr", "--format=nft", "--format=", "--family=ip6", "--name=x", "--name=",
    "--name=-x", "--table=t", "--output=out.nft", "--list-format=txt", "--format=bogus",
])


@settings(max_examples=3000, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOKENS, max_size=9))
def test_quick_arguments_mean_what_argparse_says(argv):
    quick = quick_reading(argv)
    if quick is not None:
        assert quick == argparse_reading(argv), argv


@pytest.mark.parametrize("argv", [
    ["--format", "cidr", "list.txt"],
    ["--format=nft", "--family", "ip", "--name", "pta_vpn", "--table", "filter", "-o", "pta.nft", "list.txt"],
    ["list.txt", "--format", "ipset", "--name", "pta", "-q"],
    ["--format", "cidr", "--json", "--allow-empty", "--force", "--list-format", "snapshot", "x.ipallow"],
    ["--format", "nft", "--output=/etc/nft/pta.nft", "--quiet", "registered.txt"],
    ["--format", "cidr"],                               # FILE from $IPALLOW_LIST
])
def test_the_common_export_command_lines_are_read_without_argparse(argv):
    assert quick_reading(argv) is not None
    assert quick_reading(argv) == argparse_reading(argv)


@pytest.mark.parametrize("argv", [
    ["--format", "cidr", "--previous", "old.txt", "list.txt"],      # a loss check: the loader's path
    ["--format", "cidr", "--max-loss", "10", "list.txt"],
    ["--format", "cidr", "--at", "2026-01-01", "list.txt"],
    ["--form", "cidr", "list.txt"],                                   # abbreviations: argparse's
    ["--format", "cidr", "-o", "-", "list.txt"],
    ["--format", "bogus", "list.txt"],
    ["list.txt"],
    ["--format", "cidr", "a.txt", "b.txt"],
    ["--format", "cidr", "--", "list.txt"],
    ["--format", "cidr", "--help"],
])
def test_anything_else_is_left_to_argparse(argv):
    assert quick_reading(argv) is None


# -- the numpy-free path writes what the loader's path writes -----------------------------------

def random_list(rng: random.Random, n: int) -> str:
    """Networks and ranges of both versions, with comments, blanks, CRLF, nesting, /0 and
    duplicates."""
    lines = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.45:
            plen = rng.choice([8, 16, 20, 24, 28, 32, rng.randint(0, 32)])
            value = rng.getrandbits(32) if rng.random() < 0.3 else 0x0A000000 | rng.getrandbits(16) << 8
            lines.append(str(ipaddress.IPv4Network((value, plen), strict=False)))
        elif kind < 0.6:
            first = 0x0A000000 | rng.getrandbits(16)
            lines.append(f"{ipaddress.IPv4Address(first)} - {ipaddress.IPv4Address(first + rng.randint(0, 900))}")
        elif kind < 0.85:
            plen = rng.choice([32, 48, 64, 128, rng.randint(0, 128)])
            value = (0x20010DB8 << 96) | rng.getrandbits(32) << 64 | rng.getrandbits(64) * rng.randint(0, 1)
            lines.append(str(ipaddress.IPv6Network((value, plen), strict=False)))
        elif kind < 0.9:
            lines.append("# a comment")
        elif kind < 0.93:
            lines.append("")
        elif kind < 0.96 and lines:
            lines.append(rng.choice(lines))
        else:
            lines.append(rng.choice(["0.0.0.0/0", "::/0", "::ffff:10.0.0.0/104", "192.0.2.7  # host"]))
    newline = "\r\n" if rng.random() < 0.2 else "\n"
    return newline.join(lines) + newline


def run_export(argv: list[str], *, numpy_free: bool, monkeypatch) -> tuple[int, str, str]:
    """(status, stdout, stderr) of ``ipallow export ARGV`` in this process, by the numpy-free
    path where it applies, or by the loader's path whatever the input."""
    with monkeypatch.context() as patch:
        if not numpy_free:
            patch.setattr(export_command, "_read_without_numpy", lambda args: None)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main(["export", *argv])
    return status, out.getvalue(), err.getvalue()


FORMS = [["--format", "cidr"], ["--format", "cidr", "--family", "ip6"], ["--format", "nft"],
         ["--format", "nft", "--family", "ip", "--table", "filter", "--name", "pta"],
         ["--format", "ipset", "--family", "ip6"], ["--format", "ipset", "--json"],
         ["--format", "cidr", "--json"]]


@pytest.mark.parametrize("seed", range(12))
def test_text_lists_and_their_snapshots_export_as_through_the_loader(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    text = tmp_path / "list.txt"
    text.write_text(random_list(rng, rng.choice([1, 5, 40, 400])))
    snapshot = tmp_path / "list.ipallow"
    ipallow.Allowlist.from_file(text).save(snapshot)
    assert export_command._read_without_numpy(SimpleNamespace(
        file=str(text), format="cidr", list_format=None, at=None)) is not None
    for path in (text, snapshot):
        for form in FORMS:
            argv = [*form, str(path)]
            fast = run_export(argv, numpy_free=True, monkeypatch=monkeypatch)
            assert fast == run_export(argv, numpy_free=False, monkeypatch=monkeypatch), argv
            assert fast[0] in (0, 1)


def test_an_output_file_and_its_loss_check_take_the_same_path(tmp_path, monkeypatch):
    """-o FILE compares with the export it replaces (numpy, for the loss check): the cover read
    without numpy is handed over as numpy prefixes, with the same verdict."""
    old = tmp_path / "old.txt"
    old.write_text("10.0.0.0/8\n2001:db8::/32\n")
    new = tmp_path / "new.txt"
    new.write_text("10.0.0.0/9\n2001:db8::/32\n")
    outputs = []
    for numpy_free in (True, False):
        target = tmp_path / f"out-{numpy_free}.nft"
        assert run_export(["--format", "nft", "-o", str(target), str(old)], numpy_free=numpy_free,
                          monkeypatch=monkeypatch)[0] == 0
        status, out, err = run_export(["--format", "nft", "-o", str(target), "--max-loss", "40", str(new)],
                                      numpy_free=numpy_free, monkeypatch=monkeypatch)
        outputs.append((status, out, err.replace(str(target), "TARGET"), target.read_text()))
        status, _, err = run_export(["--format", "nft", "-o", str(target), str(new)],
                                    numpy_free=numpy_free, monkeypatch=monkeypatch)
        outputs.append((status, err.replace(str(target), "TARGET"), target.read_text()))
    assert outputs[0] == outputs[2] and outputs[1] == outputs[3]
    assert outputs[0][0] == 1 and "refused" in outputs[0][2]         # 50% of IPv4 lost > 40%
    assert outputs[1][0] == 0


def test_a_registry_snapshot_is_left_to_the_loader(tmp_path):
    registry = tmp_path / "reg.csv"
    registry.write_text("id,cidr,status,expires_at\nA,192.0.2.0/24,active,2000-01-01T00:00:00Z\n"
                        "B,198.51.100.0/24,active,\n")
    snapshot = tmp_path / "reg.ipallow"
    ipallow.Allowlist.from_file(registry).save(snapshot)
    assert read_cover(snapshot) is None
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["export", "--format", "cidr", str(snapshot)]) == 0
    assert out.getvalue() == "198.51.100.0/24\n"                     # A has expired


def test_a_snapshot_cover_is_the_loaders_cover(tmp_path):
    rng = random.Random(7)
    text = tmp_path / "list.txt"
    text.write_text(random_list(rng, 3000))
    allowlist = ipallow.Allowlist.from_file(text)
    allowlist.save(tmp_path / "list.ipallow")
    registrations, cover = read_cover(tmp_path / "list.ipallow")
    assert registrations == len(allowlist)
    want = export.aggregate_allowlist(allowlist)
    got = export.as_prefixes(cover)
    for v in (4, 6):
        assert export.cidr_texts(got[v]) == export.cidr_texts(want[v])


def corrupt(path, section: str) -> None:
    from ipallow.snapshot import read_header
    data = bytearray(path.read_bytes())
    _, sections = read_header(bytes(data), str(path))
    offset, nbytes = sections[section][:2]
    data[offset + nbytes // 2] ^= 0x40
    path.write_bytes(bytes(data))


def loader_refusal(path) -> str:
    with pytest.raises(ipallow.SnapshotError) as refused:
        allowlist = ipallow.Allowlist.from_file(path)
        export.aggregate_allowlist(allowlist)
    return str(refused.value)


@pytest.mark.parametrize("section", ["version", "hi", "lo", "prefixlen", "reg_first", "reg_rows", "prefix_reg"])
def test_a_corrupt_prefix_table_is_refused_as_opening_refuses_it(tmp_path, section):
    path = tmp_path / "list.ipallow"
    ipallow.Allowlist(["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"] * 30).save(path)
    corrupt(path, section)
    with pytest.raises(ipallow.SnapshotError) as refused:
        read_cover(path)
    assert str(refused.value) == loader_refusal(path)
    assert f"checksum mismatch in section {section}" in str(refused.value)


def test_a_truncated_or_foreign_snapshot_is_refused_as_opening_refuses_it(tmp_path):
    path = tmp_path / "list.ipallow"
    ipallow.Allowlist(["10.0.0.0/8"]).save(path)
    whole = path.read_bytes()
    for cut in (len(whole) - 1, 200, 81, 10):
        path.write_bytes(whole[:cut])
        with pytest.raises(ipallow.SnapshotError) as refused:
            read_cover(path)
        assert str(refused.value) == loader_refusal(path)
    path.write_bytes(b"")
    with pytest.raises(ipallow.SnapshotError, match="empty file"):
        read_cover(path)


# -- the core's numpy-free pieces ----------------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_text_list_cover_is_the_scan_then_the_aggregation(seed):
    rng = random.Random(seed)
    raw = random_list(rng, rng.choice([0, 1, 10, 300])).encode()
    scanned = _trie.scan_network_text(raw)
    entries, *cover = _trie.text_list_cover(raw)
    assert entries == len(scanned[4]) - 1
    want = _trie.aggregate_prefixes(*scanned[:4])
    assert [a.tolist() for a in cover] == [a.tolist() for a in want]
    assert all(type(a) is array.array for a in cover)


def test_text_list_cover_leaves_what_the_scan_leaves_to_the_loader():
    for raw in (b"10.0.0.1/8\n", "10.0.0.0/8 # \u00e9\n".encode(), b"\xef\xbb\xbf10.0.0.0/8\n", b"bogus\n"):
        assert _trie.scan_network_text(raw) is None and _trie.text_list_cover(raw) is None
    with pytest.raises(TypeError):
        _trie.text_list_cover("10.0.0.0/8")


def test_aggregate_prefixes_reads_buffers_in_place_and_converts_the_rest():
    version = [4, 4, 6]
    hi = [0, 0, 0x20010DB8 << 32]
    lo = [0x0A000000, 0x0A800000, 0]
    plen = [9, 9, 32]
    want = ([0x0A000000], [8], [0x20010DB8 << 32], [0], [32])
    forms = [
        (version, hi, lo, plen),                                               # lists: numpy converts
        (np.array(version, np.uint8), np.array(hi, np.uint64), np.array(lo, np.uint64), np.array(plen, np.uint8)),
        (array.array("B", version), array.array("Q", hi), array.array("Q", lo), array.array("B", plen)),
        (memoryview(bytes(version)), memoryview(array.array("Q", hi)), memoryview(array.array("Q", lo)),
         bytes(plen)),
        (np.array(version, np.int64), np.array(hi, np.int64).astype(np.uint64), np.array(lo, np.int64),
         np.repeat(np.array(plen, np.uint8), 2)[::2]),                          # other dtypes, strided
    ]
    for form in forms:
        got = _trie.aggregate_prefixes(*form)
        assert all(type(a) is array.array for a in got)
        assert [a.tolist() for a in got] == [list(w) for w in want]


def test_the_writers_write_the_cores_cover_as_they_write_numpy_prefixes():
    rng = random.Random(3)
    raw = random_list(rng, 500).encode()
    _, *cover = _trie.text_list_cover(raw)
    as_cover, as_numpy = _cidrtext.covers(tuple(cover)), export.as_prefixes(tuple(cover))
    for write, options in ((_cidrtext.write_cidr, {}),
                           (_cidrtext.write_nft, {"table": "t", "name": "n", "family": "inet"}),
                           (_cidrtext.write_ipset, {"name": "n", "family": "inet"})):
        texts = []
        for agg in (as_cover, as_numpy):
            out = io.StringIO()
            write(out, agg, **options)
            texts.append(out.getvalue())
        assert texts[0] == texts[1] and texts[0]
    for v in (4, 6):
        assert _cidrtext.address_count(as_cover[v]) == sum(
            ipaddress.ip_network(c).num_addresses for c in export.cidr_texts(as_numpy[v]))


def test_a_zero_length_prefix_is_two_halves_for_ipset_in_either_form():
    _, *cover = _trie.text_list_cover(b"0.0.0.0/0\n::/0\n")
    for agg in (_cidrtext.covers(tuple(cover)), export.as_prefixes(tuple(cover))):
        assert _cidrtext.text(_cidrtext.halved_zero_length(agg[4])) == "0.0.0.0/1\n128.0.0.0/1\n"
        assert _cidrtext.text(_cidrtext.halved_zero_length(agg[6])) == "::/1\n8000::/1\n"
        assert export.cidr_texts(agg[4]) == ["0.0.0.0/0"]
