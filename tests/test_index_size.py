"""The compiled index stays within DESIGN.md's memory figure (<= 8 bytes a prefix for
1,000,000 IPv4 prefixes).  The size is a deterministic property of the layout for a
seeded table, so this is a test; speed is left to benchmarks/."""

import numpy as np

import ipallow
from ipallow import synth


def test_a_million_bgp_like_ipv4_prefixes_take_at_most_8_bytes_each():
    keys, plens = synth.ipv4_table(1_000_000, seed=1)
    al = ipallow.Allowlist(synth.ipv4_strings(keys, plens))
    stats = al._table_stats()[4]
    assert al.nbytes <= 8 * len(keys), f"{al.nbytes / len(keys):.2f} bytes a prefix"
    assert stats["nbytes"] == al.nbytes - al._table_stats()[6]["nbytes"]
    # The answers are right on the table's own prefix boundaries (first and last address).
    sample = np.random.default_rng(0).choice(len(keys), 2_000, replace=False)
    first = keys[sample].astype(np.uint64)
    last = first + (np.uint64(1) << (32 - plens[sample]).astype(np.uint64)) - np.uint64(1)
    assert al.contains_many(np.concatenate([first, last]).astype(np.uint32)).all()
