"""`ipallow filter`'s plain-line path in the core (``line_rows``, ``selected_lines``) against
``bytes.split`` / ``bytes.strip``, and the command's output against an ``ipaddress`` oracle."""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from ipallow import _trie

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


@pytest.mark.parametrize("seed", range(4))
def test_selected_lines_is_compress(seed):
    rng = random.Random(50 + seed)
    data = random_block(rng, 200)
    *_, ends = _trie.line_rows(data, False)
    pick = np.array([rng.random() < 0.5 for _ in range(len(ends))])
    lines = data.split(b"\n")[:-1]
    assert _trie.selected_lines(data, ends, pick) == b"".join(l + b"\n" for l, p in zip(lines, pick) if p)
    half = len(ends) // 2
    assert _trie.selected_lines(data, ends[:half], pick[:half]) == \
        b"".join(l + b"\n" for l, p in zip(lines[:half], pick[:half]) if p)


@pytest.mark.parametrize("ends, select, message", [
    ([1, 3], [True, True], "not the newline"),               # 3 is no newline in b"a\nbb\nc\n"
    ([1, 1], [True, True], "not the newline"),               # not increasing
    ([1, 9], [True, True], "not the newline"),               # outside the data
    ([-1], [True], "not the newline"),
    ([1], [True, True], "more selected rows"),
])
def test_selected_lines_refuses_bad_ends(ends, select, message):
    with pytest.raises(ValueError, match=message):
        _trie.selected_lines(b"a\nbb\nc\n", np.array(ends), np.array(select))


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
        assert done.returncode in (0, 1), done.stderr
        assert done.stdout == b"".join(want)
