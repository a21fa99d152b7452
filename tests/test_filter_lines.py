"""`ipallow filter`'s plain-line paths in the core (``line_rows``, ``filter_lines``) against
``bytes.split`` / ``bytes.strip`` and a slow ``ipaddress`` reading, and the command's output
against an ``ipaddress`` oracle."""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from ipallow import _trie

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz"))
from fuzz_lines import slow_reading  # noqa: E402 - the fuzz harness's slow reading, shared

BLANKS = [b"", b" ", b"\t", b"\r", b"\x0b", b"\x0c", b"  \t"]


def random_block(rng: random.Random, lines: int) -> bytes:
    out = []
    for _ in range(lines):
        kind = rng.random()
        if kind < 0.6:
            text = str(ipaddress.IPv4Address(rng.getrandbits(32))).encode()
        elif kind < 0.75:
            text = str(ipaddress.IPv6Address(rng.getrandbits(128))).encode()
        elif kind < 0.85:
            text = b""
        else:
            text = rng.choice([b"1.2.3", b"300.1.1.1", b"x", b"1.2.3.4\x00", "é".encode(), b"1.2.3.4 5"])
        out.append(rng.choice(BLANKS) + text + rng.choice(BLANKS) + b"\n")
    return b"".join(out)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("strip", [True, False])
def test_line_rows_is_split_and_strip(seed, strip):
    data = random_block(random.Random(seed), 300)
    packed, rows, starts, ends = _trie.line_rows(data, strip)
    lines = data.split(b"\n")[:-1]
    texts = [packed[rows[i]:rows[i + 1]] for i in range(len(lines))]
    assert texts == ([line.strip() for line in lines] if strip else lines)
    assert [data[s:s + len(t)] for s, t in zip(starts, texts)] == texts
    assert ends.tolist() == [i for i, c in enumerate(data) if c == 10]
    assert rows[0] == 0 and rows[-1] == len(packed) and (np.diff(rows) >= 0).all()


def test_line_rows_edges():
    assert _trie.line_rows(b"", True)[0] == b"" and _trie.line_rows(b"", True)[1].tolist() == [0]
    packed, rows, starts, ends = _trie.line_rows(b"no newline", True)
    assert (packed, rows.tolist(), starts.tolist(), ends.tolist()) == (b"", [0], [], [])
    packed, rows, starts, ends = _trie.line_rows(b"\n  \n x \n", True)
    assert (packed, rows.tolist(), starts.tolist(), ends.tolist()) == (b"x", [0, 0, 0, 1], [0, 3, 5], [0, 3, 7])
    with pytest.raises(TypeError):
        _trie.line_rows("1.2.3.4\n", True)


def test_filter_plain_lines_against_ipaddress(tmp_path):
    rng = random.Random(7)
    nets = [ipaddress.ip_network(t) for t in ("0.0.0.0/2", "128.0.0.0/4", "2000::/3")]
    data = random_block(rng, 3000)
    # A block with CR/space/tab somewhere strips every line; one without them strips none
    # (a lone \x0b or \x0c then stays part of the text): both as before the core did the split.
    for name, content in (("mixed", data), ("vt-only", b"1.2.3.4\x0b\n1.2.3.5\n\x0c9.9.9.9\n")):
        path, cidrs = tmp_path / f"{name}.txt", tmp_path / "cidrs.txt"
        path.write_bytes(content)
        cidrs.write_text("".join(f"{n}\n" for n in nets))
        strip = any(c in content for c in (b"\r", b" ", b"\t"))
        want = []
        for line in content.split(b"\n")[:-1]:
            text = line.strip() if strip else line
            try:
                address = ipaddress.ip_address(text.decode("ascii"))
            except (ValueError, UnicodeDecodeError):
                continue
            if any(address in n for n in nets):
                want.append(line + b"\n")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        done = subprocess.run([sys.executable, "-c", "import sys; from ipallow.cli import main; sys.exit(main())", "filter", "-q", "--report-limit", "0",
                               "--list", str(cidrs), str(path)], capture_output=True, env=env)
        assert done.returncode == (0 if want else 1), done.stderr
        assert b"Traceback" not in done.stderr
        assert done.stdout == b"".join(want)


@pytest.mark.parametrize("seed", range(8))
def test_filter_lines_is_the_slow_reading(seed):
    import ipallow

    rng = random.Random(300 + seed)
    nets = [ipaddress.ip_network(t) for t in ("0.0.0.0/2", "128.0.0.0/4", "192.0.2.7/32", "2000::/3")]
    index = ipallow.Allowlist([str(net) for net in nets])

    def allowed(text: bytes) -> bool:
        try:
            address = ipaddress.ip_address(text.decode("ascii"))
        except UnicodeDecodeError as exc:
            raise ValueError(text) from exc
        return any(address in net for net in nets)

    # 128 lines a chunk in the core: sizes around it, and past several chunks.
    data = random_block(rng, rng.choice([0, 1, 127, 128, 129, 700]))
    if rng.random() < 0.5:
        data += b"1.2.3.4"                          # no newline after it: not a line
    for keep_allowed in (True, False):
        for strip in (True, False):
            for stop_at_bad, report in ((False, 0), (False, 3), (False, 10**6), (True, 0)):
                got = _trie.filter_lines(index, data, keep_allowed, strip, stop_at_bad, report)
                want = slow_reading(data, keep_allowed, strip, stop_at_bad, report, allowed)
                assert (bytes(got[0]), *got[1:]) == want


def test_filter_lines_refuses_what_it_cannot_read():
    import ipallow

    index = ipallow.Allowlist(["1.0.0.0/8"])
    with pytest.raises(TypeError):
        _trie.filter_lines(index, "1.2.3.4\n", True, True, False, 0)
    with pytest.raises(TypeError):
        _trie.filter_lines(index, bytearray(b"1.2.3.4\n"), True, True, False, 0)
    with pytest.raises(TypeError):
        _trie.filter_lines(None, b"1.2.3.4\n", True, True, False, 0)
    with pytest.raises(ValueError):
        _trie.filter_lines(index, b"1.2.3.4\n", True, True, False, -1)
    assert _trie.filter_lines(index, b"", True, True, False, 0) == (bytearray(), 0, 0, 0, 0, [])


def test_filter_reports_and_stops_across_blocks(tmp_path):
    # Input read in several blocks: line numbers run on across them, the report limit is for
    # the whole input, and --strict stops at the first bad line of a later block.
    from ipallow._lineblocks import BLOCK_SIZE

    lines = [f"10.{i % 256}.{i // 256 % 256}.1" for i in range(3 * BLOCK_SIZE // 11)]
    bad_at = [5, len(lines) // 2, len(lines) // 2 + 1, len(lines) - 3]       # 0-based
    for i in bad_at:
        lines[i] = f"bad-{i}"
    path, cidrs = tmp_path / "in.txt", tmp_path / "cidrs.txt"
    path.write_text("".join(line + "\n" for line in lines))
    cidrs.write_text("10.0.0.0/9\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    command = [sys.executable, "-c", "import sys; from ipallow.cli import main; sys.exit(main())",
               "filter", "--list", str(cidrs)]
    allowed = [line + "\n" for line in lines if not line.startswith("bad")
               and int(line.split(".")[1]) < 128]

    done = subprocess.run(command + ["--report-limit", "3", str(path)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "".join(allowed)
    reported = [line for line in done.stderr.splitlines() if "invalid IP address" in line]
    assert reported == [f"{path}:{i + 1}:1: invalid IP address 'bad-{i}': unexpected character 'b'"
                        for i in bad_at[:3]]
    assert f"{len(lines):,} lines: {len(allowed):,} allowed" in done.stderr
    assert "4 unparseable (first 3 shown)" in done.stderr

    done = subprocess.run(command + ["--strict", "--report-limit", "0", str(path)],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2
    lines[5] = "10.0.0.1"
    path.write_text("".join(line + "\n" for line in lines))
    done = subprocess.run(command + ["--strict", str(path)], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    stop = bad_at[1]
    assert f"stopped at line {stop + 1}" in done.stderr
    assert done.stdout == "".join(line + "\n" for line in lines[:stop] if int(line.split(".")[1]) < 128)
