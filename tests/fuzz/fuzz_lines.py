"""`ipallow filter`'s one pass over plain lines (``_trie.filter_lines``) on arbitrary bytes.

The oracle reads the block the slow way: ``bytes.split`` at newlines (text after the last one
is no line), ``bytes.strip`` when asked, ``ipaddress`` for each text and the longest match over
the registered networks.  The kept bytes, the counts, where it stopped and the reported lines
(number and offsets) must be exactly the oracle's.

Input layout: byte 0 = flags (bit 0 keep the allowed lines, else the denied; bit 1 strip;
bit 2 stop at the first unparseable line; bits 3-5 how many unparseable lines to report);
the rest is the block.
"""

from __future__ import annotations

from fuzz_support import ALLOWLIST, Zone, main, reference_address, reference_lookup

from ipallow import _trie


def slow_reading(block: bytes, keep_allowed: bool, strip: bool, stop_at_bad: bool, report: int,
                 allowed) -> tuple:
    """What filter_lines returns, read the slow way; ``allowed(text)`` says whether the address
    text is allowed (True) or denied (False), and raises ValueError when it is no address."""
    kept, bad = [], []
    lines = n_allowed = denied = blank = 0
    line_start = 0
    for number, line in enumerate(block.split(b"\n")[:-1]):
        text = line.strip() if strip else line
        text_start = line_start + (len(line) - len(line.lstrip()) if strip else 0)
        if not text:
            blank += 1
        else:
            try:
                verdict = allowed(text)
            except ValueError:
                if stop_at_bad or len(bad) < report:
                    bad.append((number, line_start, text_start, text_start + len(text)))
                if stop_at_bad:
                    break
            else:
                n_allowed += verdict
                denied += not verdict
                if verdict == keep_allowed:
                    kept.append(line + b"\n")
        lines += 1
        line_start += len(line) + 1
    return b"".join(kept), lines, n_allowed, denied, blank, bad


def registered(text: bytes) -> bool:
    """The harness's verdict: the longest match over the fixed allowlist's networks."""
    try:
        version, value = reference_address(text.decode("ascii"))
    except (Zone, UnicodeDecodeError) as exc:
        raise ValueError(text) from exc
    return reference_lookup(version, value) is not None


def test_one_input(data: bytes) -> None:
    if not data:
        return
    flags, block = data[0], data[1:]
    keep_allowed, strip, stop_at_bad, report = bool(flags & 1), bool(flags & 2), bool(flags & 4), flags >> 3 & 7
    kept, *rest = _trie.filter_lines(ALLOWLIST, block, keep_allowed, strip, stop_at_bad, report)
    assert type(kept) is bytearray
    assert (bytes(kept), *rest) == slow_reading(block, keep_allowed, strip, stop_at_bad, report, registered)


if __name__ == "__main__":
    main(test_one_input)
