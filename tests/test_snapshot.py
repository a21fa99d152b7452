"""Snapshot files and pickles: identical answers, deterministic bytes, hostile inputs rejected."""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
import os
import pickle
import random
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

import ipallow
from ipallow import snapshot
from ipallow.allowlist import loads
from ipallow.snapshot import HEADER, SECTION, SnapshotError


def random_entries(seed: int, count: int) -> list:
    """Nested, overlapping and duplicate prefixes of both families, some with data, a range."""
    rnd = random.Random(seed)
    entries: list = []
    for i in range(count):
        if entries and rnd.random() < 0.3:          # nest inside an earlier prefix
            parent = ipaddress.ip_network(entries[rnd.randrange(len(entries))][0])
            if parent.prefixlen < parent.max_prefixlen:
                length = rnd.randint(parent.prefixlen + 1, parent.max_prefixlen)
                offset = rnd.getrandbits(parent.max_prefixlen - parent.prefixlen)
                start = int(parent.network_address) | (offset & ~((1 << (parent.max_prefixlen - length)) - 1))
                net = ipaddress.ip_network((start, length)) if parent.version == 4 else \
                    ipaddress.IPv6Network((start, length))
                entries.append((str(net), {"n": i}))
                continue
        if rnd.random() < 0.7:
            length = rnd.choice([0, 8, 12, 16, 20, 24, 24, 24, 28, 32])
            net = ipaddress.IPv4Network((rnd.getrandbits(32) >> (32 - length) << (32 - length) if length else 0, length))
        else:
            length = rnd.choice([0, 16, 32, 48, 64, 128])
            net = ipaddress.IPv6Network((rnd.getrandbits(128) >> (128 - length) << (128 - length) if length else 0, length))
        entries.append((str(net), {"n": i, "owner": f"owner {i % 7}"} if i % 3 else None))
    entries.append(("198.51.100.10 - 198.51.100.200", {"range": True}))
    entries.append(entries[len(entries) // 2])              # an exact duplicate registration
    return [e if e[1] is not None else e[0] for e in entries]


def probes(al: ipallow.Allowlist, seed: int) -> list:
    """First, last and neighbouring addresses of every prefix, plus random ones."""
    rnd = random.Random(seed)
    out = []
    for entry in al:
        for net in entry.networks:
            first, last = int(net.network_address), int(net.broadcast_address)
            top = (1 << net.max_prefixlen) - 1
            for value in (first - 1, first, last, last + 1):
                if 0 <= value <= top:
                    out.append(str(ipaddress.ip_address(value) if net.version == 4
                                   else ipaddress.IPv6Address(value)))
    out += [str(ipaddress.IPv4Address(rnd.getrandbits(32))) for _ in range(300)]
    out += [str(ipaddress.IPv6Address(rnd.getrandbits(128))) for _ in range(300)]
    return out


def answers(al: ipallow.Allowlist, queries: list) -> tuple:
    return (al.lookup_many(queries).tolist(), al.contains_many(queries).tolist(),
            [al.lookup(q) for q in queries], list(al))


@pytest.fixture(scope="module")
def compiled() -> ipallow.Allowlist:
    return ipallow.Allowlist(random_entries(11, 1500))


@pytest.fixture(scope="module")
def snapshot_bytes(compiled) -> bytes:
    return bytes(snapshot.to_bytes(compiled._compiled, created=0))


def test_compiled_saved_and_unpickled_answer_identically(compiled, tmp_path):
    queries = probes(compiled, 1)
    expected = answers(compiled, queries)
    path = tmp_path / "list.ipallow"
    compiled.save(path)
    loaded = ipallow.load(path)
    assert answers(loaded, queries) == expected
    assert answers(ipallow.Allowlist.from_file(path), queries) == expected
    for protocol in (2, 4, 5):
        assert answers(pickle.loads(pickle.dumps(compiled, protocol=protocol)), queries) == expected
        assert answers(pickle.loads(pickle.dumps(loaded, protocol=protocol)), queries) == expected
    assert loaded.nbytes == compiled.nbytes and len(loaded) == len(compiled)


def test_protocol5_pickle_sends_the_snapshot_out_of_band(compiled, snapshot_bytes):
    buffers: list = []
    payload = pickle.dumps(compiled, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1 and buffers[0].raw().nbytes == len(snapshot_bytes)
    assert len(payload) < 300           # only the class and a buffer reference travel in-band
    clone = pickle.loads(payload, buffers=buffers)
    queries = probes(compiled, 2)
    assert answers(clone, queries) == answers(compiled, queries)


def test_a_saved_file_is_told_apart_from_a_list_by_the_magic_the_loader_knows(tmp_path):
    # ipallow._formats spells the magic out again (the snapshot package is not imported to tell
    # a text list from a snapshot): the two must never drift apart.
    from ipallow import _formats
    assert _formats.SNAPSHOT_MAGIC == snapshot.MAGIC
    path = tmp_path / "no-suffix"
    ipallow.Allowlist(["192.0.2.0/24"]).save(path)
    assert path.read_bytes().startswith(snapshot.MAGIC)
    assert _formats.detect_format(str(path), path.read_bytes()[:_formats.HEAD]) == "snapshot"
    assert "192.0.2.7" in ipallow.load(path)


def test_same_input_gives_byte_identical_files(tmp_path, monkeypatch):
    entries = random_entries(5, 400)
    first, second = tmp_path / "a.ipallow", tmp_path / "b.ipallow"
    ipallow.Allowlist(entries).save(first, created=1_700_000_000)
    ipallow.Allowlist(list(entries)).save(second, created=1_700_000_000)
    assert first.read_bytes() == second.read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    third = tmp_path / "c.ipallow"
    ipallow.Allowlist(entries).save(third)
    assert third.read_bytes() == first.read_bytes()
    assert snapshot.info(third)["created"] == 1_700_000_000


def test_a_saved_file_is_written_a_section_at_a_time_and_holds_the_same_bytes(tmp_path):
    """``save`` and ``write_to`` stream the sections (no whole-file copy in memory): the file
    must be byte for byte what ``to_bytes`` gives, for every kind of content -- plain, with
    data, a registry with its lifecycle, one family only, and empty."""
    import io
    registry = ipallow.Allowlist.from_registry(ipallow.SAMPLE_LIST)
    cases = {
        "plain": ipallow.Allowlist(random_entries(7, 900)),
        "data": ipallow.Allowlist([("10.0.0.0/8", {"n": 1}), ("2001:db8::/32", "six"), ("10.1.0.0/16", None)]),
        "registry": registry,
        "ipv4 only": ipallow.Allowlist(["192.0.2.0/24"]),
        "empty": ipallow.Allowlist([]),
    }
    for name, al in cases.items():
        lifecycle = al._lifecycle_section()
        want = bytes(snapshot.to_bytes(al._compiled, 1_700_000_000, lifecycle))
        path = tmp_path / f"{name}.ipallow"
        al.save(path, created=1_700_000_000)
        assert path.read_bytes() == want, name
        stream = io.BytesIO()
        snapshot.write_to(stream, al._compiled, 1_700_000_000, lifecycle)
        assert stream.getvalue() == want, name
        assert answers(ipallow.load(path), probes(al, 3)) == answers(al, probes(al, 3)), name
    with pytest.raises(TypeError):                  # a bad stamp: nothing written, nothing replaced
        cases["plain"].save(tmp_path / "plain.ipallow", created="yesterday")
    assert tmp_path.joinpath("plain.ipallow").read_bytes() == bytes(
        snapshot.to_bytes(cases["plain"]._compiled, 1_700_000_000))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.ipallow" for n in cases)


def test_every_truncation_is_rejected(snapshot_bytes):
    small = bytes(snapshot.to_bytes(ipallow.Allowlist(["10.0.0.0/8", "2001:db8::/32"])._compiled, 0))
    for length in range(len(small)):
        with pytest.raises(SnapshotError):
            snapshot.from_buffer(small[:length])
    with pytest.raises(SnapshotError, match="trailing bytes"):
        snapshot.from_buffer(small + b"\0")


def _use(buffer: bytes, queries: list) -> tuple:
    return answers(loads(buffer), queries)


def test_random_bit_flips_are_rejected_or_harmless(compiled, snapshot_bytes):
    queries = probes(compiled, 3)[:400]
    expected = answers(compiled, queries)
    rnd = random.Random(2026)
    outcomes = {"rejected": 0, "harmless": 0}
    for _ in range(3000):
        corrupt = bytearray(snapshot_bytes)
        bit = rnd.randrange(len(corrupt) * 8)
        corrupt[bit // 8] ^= 1 << (bit % 8)
        try:
            result = _use(bytes(corrupt), queries)
        except (SnapshotError, ipallow.errors.TableError):
            outcomes["rejected"] += 1
            continue
        assert result == expected, f"bit {bit} changed an answer without being detected"
        outcomes["harmless"] += 1
    # Only the alignment padding is outside every checksum.
    assert outcomes["rejected"] > 0.9 * 3000, outcomes


def test_random_overwrites_are_rejected_or_harmless(compiled, snapshot_bytes):
    queries = probes(compiled, 4)[:200]
    expected = answers(compiled, queries)
    rnd = random.Random(7)
    for _ in range(500):
        corrupt = bytearray(snapshot_bytes)
        start = rnd.randrange(len(corrupt))
        length = rnd.randint(1, 64)
        corrupt[start:start + length] = rnd.randbytes(len(corrupt[start:start + length]))
        try:
            result = _use(bytes(corrupt), queries)
        except (SnapshotError, ipallow.errors.TableError):
            continue
        assert result == expected


def reseal(buffer: bytearray) -> bytearray:
    """Recompute every checksum, as a forger would: only structural checks can object."""
    fields = list(HEADER.unpack_from(buffer, 0))
    n_sections = fields[4]
    rows = []
    for i in range(n_sections):
        row = list(SECTION.unpack_from(buffer, HEADER.size + i * SECTION.size))
        offset, nbytes = row[2], row[3]
        row[5] = ipallow._trie.checksum(bytes(buffer[offset:offset + nbytes]))
        rows.append(row)
    table = b"".join(SECTION.pack(*row) for row in rows)
    fields[-1] = 0
    fields[-1] = ipallow._trie.checksum(HEADER.pack(*fields) + table)
    buffer[:HEADER.size] = HEADER.pack(*fields)
    buffer[HEADER.size:HEADER.size + len(table)] = table
    return buffer


def section_array(buffer: bytearray, name: str) -> np.ndarray:
    _, sections = snapshot.read_header(bytes(buffer))
    offset, nbytes, count, _, dtype = sections[name]
    return np.frombuffer(buffer, dtype=np.uint8, count=nbytes, offset=offset).view(dtype)


# The core's heap format (see "The index" in _trie.pyx), read independently here.
NODE, INNER, OFFSET = 0x80000000, 0x40000000, 0x3FFFFFFF


def bitmap(heap: np.ndarray, at: int) -> int:
    return int(heap[at]) | int(heap[at + 1]) << 32          # a little-endian machine's word order


def nodes(buffer: bytearray, inner: bool | None = None) -> list[int]:
    """Word offset of every IPv4 node, breadth first (only inner or leaf-only ones if asked)."""
    heap = section_array(buffer, "heap4")
    queue = [int(e) for e in section_array(buffer, "dir4") if e & NODE]
    for entry in queue:                                     # grows while it is read
        if entry & INNER:
            at = entry & OFFSET
            queue.extend(int(e) for e in heap[at + 6:at + 6 + bitmap(heap, at + 4).bit_count()])
    return [e & OFFSET for e in queue if inner is None or bool(e & INNER) == inner]


def set_leafvec(b: bytearray, at: int, value: int) -> None:
    heap = section_array(b, "heap4")
    heap[at], heap[at + 1] = value & 0xFFFFFFFF, value >> 32


def last_leaf_only(b: bytearray) -> int:
    return max(nodes(b, inner=False))


def first_inner(b: bytearray) -> int:
    return nodes(b, inner=True)[0]


def share_a_node(b: bytearray) -> None:
    level0 = section_array(b, "dir4")
    answer = int(np.flatnonzero((level0 & NODE) == 0)[0])
    level0[answer] = level0[np.flatnonzero(level0 & NODE)[0]]


CRAFTED = {
    "level-0 entry points past the heap":
        lambda b: section_array(b, "dir4").__setitem__(0, NODE | 0x3FFFFFF0),
    "level-0 answer names a prefix that does not exist":
        lambda b: section_array(b, "dir4").__setitem__(0, 0x7FFFFFF0),
    "a node lies past the end of the heap":
        lambda b: section_array(b, "dir4").__setitem__(0, NODE | (len(section_array(b, "heap4")) - 3)),
    "a node's children or leaves lie past the end of the heap":
        lambda b: set_leafvec(b, last_leaf_only(b), (1 << 64) - 1),
    "a leaf names a prefix that does not exist":
        lambda b: section_array(b, "heap4").__setitem__(nodes(b)[0] + 2, 0x7FFFFFF0),
    "a node's first leaf slot does not start a run":
        lambda b: set_leafvec(b, nodes(b, inner=False)[0],
                              (lambda v: v & (v - 1))(bitmap(section_array(b, "heap4"), nodes(b, inner=False)[0]))),
    "a node is reached twice": share_a_node,
    "a slot is marked both child and leaf":
        lambda b: set_leafvec(b, first_inner(b), bitmap(section_array(b, "heap4"), first_inner(b))
                              | bitmap(section_array(b, "heap4"), first_inner(b) + 4)),
    "a child entry is not a node reference":
        lambda b: section_array(b, "heap4").__setitem__(first_inner(b) + 6, 5),
    "a child entry points past the heap":
        lambda b: section_array(b, "heap4").__setitem__(first_inner(b) + 6, NODE | 0x3FFFFFF0),
    "a prefix names a registration that does not exist":
        lambda b: section_array(b, "prefix_reg").__setitem__(0, 10**6),
}


def test_the_crafted_cases_reach_both_node_shapes(snapshot_bytes):
    """The fixture has inner and leaf-only nodes, so every crafted case above applies."""
    buffer = bytearray(snapshot_bytes)
    assert nodes(buffer, inner=True) and nodes(buffer, inner=False)


@pytest.mark.parametrize("reason", sorted(CRAFTED))
def test_crafted_files_with_valid_checksums_are_rejected(snapshot_bytes, reason):
    corrupt = bytearray(snapshot_bytes)
    CRAFTED[reason](corrupt)
    error = SnapshotError if "registration" in reason else ipallow.errors.TableError
    with pytest.raises(error, match=reason):
        loads(bytes(reseal(corrupt)))


def test_crafted_detail_sections_are_rejected_before_use(snapshot_bytes):
    corrupt = bytearray(snapshot_bytes)
    section_array(corrupt, "reg_first")[1] = 10**9
    al = loads(bytes(reseal(corrupt)))
    with pytest.raises(SnapshotError, match="prefix table: registration offsets"):
        al[0]
    corrupt = bytearray(snapshot_bytes)
    section_array(corrupt, "version")[0] = 5
    al = loads(bytes(reseal(corrupt)))
    with pytest.raises(SnapshotError, match="prefix table: unknown IP version 5 at row 0"):
        al.lookup(al[0].networks[0].network_address)
    corrupt = bytearray(snapshot_bytes)
    rows = section_array(corrupt, "reg_rows")
    owner = section_array(corrupt, "prefix_reg")
    owner[rows[0]] = owner[rows[-1]]                   # a valid registration, but not row 0's
    al = loads(bytes(reseal(corrupt)))
    with pytest.raises(SnapshotError, match="is listed under registration 0 but names another"):
        al[0]
    corrupt = bytearray(snapshot_bytes)
    section_array(corrupt, "reg_rows")[1] = section_array(corrupt, "reg_rows")[0]
    al = loads(bytes(reseal(corrupt)))
    with pytest.raises(SnapshotError, match=r"prefix table: registration rows are not a permutation \(entry 1\)"):
        list(al)


def test_future_version_and_other_byte_order_are_named(snapshot_bytes):
    future = bytearray(snapshot_bytes)
    struct.pack_into("=I", future, 8, snapshot.FORMAT_VERSION + 1)
    with pytest.raises(SnapshotError, match=rf"format version {snapshot.FORMAT_VERSION + 1} is newer than "
                                            rf"this ipallow supports \({snapshot.FORMAT_VERSION}\)"):
        snapshot.from_buffer(bytes(reseal(future)))
    older = bytearray(snapshot_bytes)
    struct.pack_into("=I", older, 8, 1)
    with pytest.raises(SnapshotError, match="format version 1 was written by an older ipallow"):
        snapshot.from_buffer(bytes(reseal(older)))
    swapped = bytearray(snapshot_bytes)
    swapped[12:16] = swapped[12:16][::-1]              # the byte-order mark as the other order writes it
    with pytest.raises(SnapshotError, match="other byte order"):
        snapshot.from_buffer(bytes(swapped))
    with pytest.raises(SnapshotError, match="bad magic"):
        snapshot.from_buffer(b"#" + bytes(snapshot_bytes[1:]))


def test_failed_save_leaves_the_old_file_and_no_debris(tmp_path):
    path = tmp_path / "list.ipallow"
    ipallow.Allowlist(["10.0.0.0/8"]).save(path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="registration #0"):
        ipallow.Allowlist([("192.0.2.0/24", {"when": object()})]).save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["list.ipallow"]
    with pytest.raises(OSError):
        ipallow.Allowlist(["10.0.0.0/8"]).save(tmp_path / "missing-dir" / "x.ipallow")


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ipallow.load(tmp_path / "absent.ipallow")
    (tmp_path / "empty.ipallow").write_bytes(b"")
    with pytest.raises(SnapshotError, match="empty file"):
        ipallow.load(tmp_path / "empty.ipallow")


def _worker(path, barrier, results):
    def private_kib():
        fields = {}
        with open("/proc/self/smaps_rollup") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    fields[parts[0].rstrip(":")] = int(parts[1])
        return fields["Private_Clean"] + fields["Private_Dirty"]

    queries = np.random.default_rng(os.getpid()).integers(0, 1 << 32, 20000, dtype=np.uint64).astype(np.uint32)
    before = private_kib()
    al = ipallow.load(path, share=True)            # the default reads a private copy
    assert al.shared, "no read lease could be taken"
    sections = [t for t in al._compiled.tables if isinstance(t, np.ndarray)]
    for section in sections + [al._compiled.prefix_reg]:   # touch every page lookups can read
        int(section.view(np.uint8).sum())
    al.contains_many(queries)
    al[len(al) - 1]                                # and the lazily verified sections
    barrier.wait(timeout=120)                      # all eight map the file now
    results.put(private_kib() - before)
    barrier.wait(timeout=120)


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="needs Linux /proc smaps_rollup")
def test_eight_processes_share_one_copy_of_the_pages(tmp_path):
    rng = np.random.default_rng(3)
    starts = rng.integers(1 << 24, 223 << 24, 200_000, dtype=np.uint64) >> np.uint64(8) << np.uint64(8)
    al = ipallow.Allowlist([f"{ipaddress.IPv4Address(int(s))}/24" for s in starts])
    path = tmp_path / "shared.ipallow"
    al.save(path)
    size_kib = os.path.getsize(path) / 1024
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(8), context.Queue()
    workers = [context.Process(target=_worker, args=(str(path), barrier, results)) for _ in range(8)]
    for worker in workers:
        worker.start()
    growth = []
    while len(growth) < len(workers):
        try:
            growth.append(results.get(timeout=5))
        except Exception:                          # queue.Empty: is everyone still alive?
            if any(w.exitcode not in (None, 0) for w in workers):
                for worker in workers:
                    worker.terminate()
                pytest.fail("a worker process failed")
    for worker in workers:
        worker.join(timeout=60)
    assert all(worker.exitcode == 0 for worker in workers)
    # Each process's own (private) memory grows by far less than the snapshot: the pages are shared.
    assert max(growth) < 0.10 * size_kib, (growth, size_kib)


def test_opening_a_snapshot_loads_neither_the_writer_nor_the_lease(tmp_path):
    # Writing (the atomic write's tempfile and shutil) and page sharing (signal handling) are
    # imported on first use: a process that only opens snapshots pays for neither.
    path = tmp_path / "list.ipallow"
    ipallow.Allowlist(["203.0.113.0/24"]).save(path)
    probe = ("import json, sys, ipallow\n"
             f"assert '203.0.113.9' in ipallow.load({str(path)!r})\n"
             "print(json.dumps(sorted(sys.modules)))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                           timeout=120, check=True).stdout))
    assert "ipallow.snapshot" in loaded                  # the probe did open a snapshot
    assert loaded & {"ipallow._output", "tempfile", "ipallow.snapshot._write", "ipallow.snapshot._lease"} == set()
    # ... and they are there when asked for, under the names they always had.
    probe = ("import sys, ipallow.snapshot as s\n"
             "print(s.save.__name__, s.to_bytes.__name__, s.NotSharedWarning.__name__, s.LEASE_SIGNAL,\n"
             "      'ipallow._output' in sys.modules, 'save' in dir(s))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         check=True).stdout.split()
    assert out == ["save", "to_bytes", "NotSharedWarning", str(snapshot.LEASE_SIGNAL), "True", "True"]


IPALLOW = shutil.which("ipallow")


@pytest.mark.skipif(IPALLOW is None, reason="the ipallow executable is not installed")
def test_compile_and_info_commands(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("203.0.113.0/24\n2001:db8::/32\n")
    output = tmp_path / "list.ipallow"
    result = subprocess.run([IPALLOW, "compile", str(listing), "-o", str(output)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "2 registrations, 1 IPv4 and 1 IPv6 prefixes" in result.stdout
    info = subprocess.run([IPALLOW, "info", str(output)], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and f"format {snapshot.FORMAT_VERSION}," in info.stdout and "1 IPv4, 1 IPv6" in info.stdout
    check = subprocess.run([IPALLOW, "check", "--list", str(output), "203.0.113.9"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "allowed" in check.stdout
    output.write_bytes(output.read_bytes()[:-7])
    broken = subprocess.run([IPALLOW, "info", str(output)], capture_output=True, text=True, timeout=60)
    assert broken.returncode == 2 and "truncated" in broken.stderr


def test_pickled_registry_allowlist_keeps_its_registry_for_explain():
    al = ipallow.Allowlist.from_registry(ipallow.SAMPLE_LIST)
    for protocol in (2, 5):
        clone = pickle.loads(pickle.dumps(al, protocol=protocol))
        assert clone.explain("203.0.113.9") == al.explain("203.0.113.9")
        assert clone.lookup("203.0.113.9") == al.lookup("203.0.113.9")


def test_live_allowlist_follows_a_snapshot_file(tmp_path):
    path = tmp_path / "current.ipallow"
    first = ipallow.Allowlist(["203.0.113.0/24", "2001:db8::/32"])
    first.save(path)
    with ipallow.LiveAllowlist(path, poll=None, settle=0) as live:   # settle=0: failures recorded at once
        assert "203.0.113.9" in live and "198.51.100.1" not in live
        assert live.generation == 1 and live.registry is None
        assert live.counts["registrations"] == 2
        # Publish a new snapshot the normal way: write beside, rename over.
        ipallow.Allowlist(["198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"]).save(path)
        assert live.check() is True
        assert "198.51.100.1" in live and live.generation == 2
        # A corrupt snapshot is refused; the old list keeps serving.
        broken = tmp_path / "broken.ipallow"
        broken.write_bytes(path.read_bytes()[:-1])
        os.replace(broken, path)
        assert live.check() is False
        assert isinstance(live.last_error, SnapshotError) and live.failures == 1
        assert "198.51.100.1" in live and live.generation == 2
        # A snapshot that lost most registrations is refused by the loss guard.
        ipallow.Allowlist(["192.0.2.0/24"]).save(path)
        assert live.check() is False and live.failures == 2
        assert "192.0.2.1" not in live and "198.51.100.1" in live


def test_the_table_check_refuses_arrays_it_cannot_trust():
    """validate_table is reachable from Python: it checks the arrays' shape itself."""
    heap = np.zeros(8, np.uint32)
    with pytest.raises(ValueError, match="level-0 array does not match dir_bits"):
        ipallow._trie.validate_table("IPv4", np.zeros(2, np.uint32), heap, 24, 32, 1)
    with pytest.raises(TypeError, match="uint32"):
        ipallow._trie.validate_table("IPv4", np.zeros(4, np.int64), heap, 2, 32, 1)
    with pytest.raises(ValueError, match="key_bits"):
        ipallow._trie.validate_table("IPv4", np.zeros(4, np.uint32), heap, 2, 64, 1)
    assert ipallow._trie.validate_table("IPv4", np.zeros(4, np.uint32), heap, 2, 32, 1) == (0, 0)
