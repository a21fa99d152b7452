"""Agreement: a peer's answers against ipallow's, query by query."""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np

from ipallow.bench._defaults import MAX_EXAMPLES
from ipallow.bench._queries import FamilyQueries


def _describe(answer: int, longest: bool, family: int, text: str) -> str:
    """An answer in words: the matched network, or in / not in."""
    if not longest:
        return "in the list" if answer else "not in the list"
    if answer < 0:
        return "no match"
    bits = 32 if family == 4 else 128
    net = ipaddress.ip_network(f"{text}/{bits}").supernet(new_prefix=int(answer))
    return f"match {net}"


def compare(peer: str, family: int, queries: FamilyQueries, expected: np.ndarray, got: Any,
            *, longest_match: bool) -> dict | None:
    """``None`` when ``got`` agrees with ipallow's ``expected`` on every query, else a report.

    ``expected``: ipallow's matched prefix length per query (-1 = no match).  ``got``:
    the peer's answers, matched prefix lengths when ``longest_match``, else membership
    (compared with ``expected >= 0``).  A wrong number of answers is a disagreement
    too.  The report: ``{"peer", "family", "queries", "disagreements", "examples":
    [{"query", "ipallow", "peer"}, ...]}`` with at most ``MAX_EXAMPLES`` examples.
    """
    expected = np.asarray(expected).reshape(-1).astype(np.int64)
    got = np.asarray(got).reshape(-1)
    n = expected.size
    if got.size != n:
        return {"peer": peer, "family": family, "queries": n, "disagreements": n,
                "examples": [], "error": f"{got.size:,} answers for {n:,} queries"}
    if longest_match:
        got_v = got.astype(np.int64)
        bad = np.flatnonzero(got_v != expected)
    else:
        got_v = got.astype(bool)
        bad = np.flatnonzero(got_v != (expected >= 0))
    if bad.size == 0:
        return None
    examples = []
    for i in bad[:MAX_EXAMPLES].tolist():
        text = queries.texts[i]
        mine = int(expected[i]) if longest_match else int(expected[i] >= 0)
        examples.append({"query": queries.label(i),
                         "ipallow": _describe(mine, longest_match, family, text),
                         "peer": _describe(int(got_v[i]), longest_match, family, text)})
    return {"peer": peer, "family": family, "queries": n, "disagreements": int(bad.size),
            "examples": examples}
