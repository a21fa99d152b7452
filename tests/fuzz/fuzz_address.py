"""Address text, differential against ``ipaddress``: every lookup path accepts exactly what
ipaddress accepts (except zone indexes, refused on purpose), reads the same value, and answers
the longest match the oracle finds; a refusal is an AddressError naming the text, the same on
every path; the fast IPv6 reader reads only what ipaddress reads, and as it does.

    python tests/fuzz/fuzz_address.py [libFuzzer options] [corpus dirs]   (see tests/fuzz/README.md)
"""

from __future__ import annotations

import numpy as np

from fuzz_support import (ALLOWLIST, Zone, _trie, index_key, ipallow, main, outcome,
                          reference_address, reference_lookup, text_of)


def check_refusal(text: str, result, path: str) -> str:
    kind, value = result
    assert kind == "raised", f"{path} accepted {text!r}, which ipaddress refuses"
    assert type(value) is ipallow.AddressError, f"{path}({text!r}) raised {value!r}"
    assert value.text == text, (path, text, value.text)
    assert value.column is None or 1 <= value.column <= len(text) + 1, (path, text, value.column)
    return str(value)


def test_one_input(data: bytes) -> None:
    text = text_of(data)
    try:
        expected = reference_address(text)
    except (ValueError, Zone):
        expected = None

    parsed = outcome(_trie.parse_address, text)
    # The fast IPv6 reader alone, on the raw bytes: it may leave any text to the exact
    # parser, but what it reads it must read as ipaddress does.
    fast = _trie._parse_ipv6_fast(data)
    if fast is not None:
        assert expected == (6, fast) and text == data.decode("ascii"), (data, fast, expected)
    paths = {
        "in": outcome(lambda: text in ALLOWLIST),
        "lookup": outcome(ALLOWLIST.lookup, text),
        "lookup_many(list)": outcome(ALLOWLIST.lookup_many, [text]),
        "contains_many(U)": outcome(ALLOWLIST.contains_many, np.array([text], dtype=str)),
    }

    if expected is None:
        message = check_refusal(text, parsed, "parse_address")
        for path, result in paths.items():
            # A U array cannot hold trailing NULs (numpy strips them), so its text may differ.
            if path == "contains_many(U)" and text.endswith("\0"):
                continue
            assert check_refusal(text, result, path) == message, (path, text)
        return

    assert parsed == ("ok", expected), (text, parsed, expected)
    assert _trie.address_key(text) == index_key(*expected), text
    best = reference_lookup(*expected)
    assert paths["in"] == ("ok", best is not None), (text, paths["in"])
    kind, match = paths["lookup"]
    assert kind == "ok", (text, match)
    if best is None:
        assert match is None, (text, match)
    else:
        assert (match.index, match.network) == best, (text, match, best)
        assert match.data == ALLOWLIST[best[0]].data
    assert paths["lookup_many(list)"][1].tolist() == [best[0] if best else -1], text
    if not text.endswith("\0"):
        assert paths["contains_many(U)"][1].tolist() == [best is not None], text


if __name__ == "__main__":
    main(test_one_input)
