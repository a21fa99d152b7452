"""The IPv4 batch walk (``contains_many`` / ``lookup_many`` on a ``uint32`` array) against the oracles.

The walk takes a chunk of keys at a time, sorts the keys that reach a node by the node's
shape (leaf-only or inner) and writes each answer back at its key's position, so the
answers are checked position by position: for batch sizes around the chunk length (and 0
and 1), on a small table (12-bit level 0) and one past the big-table threshold (18-bit
level 0), whose prefixes reach every node depth down to /32.  The suite runs once per CPU
path (``IPALLOW_SCALAR=1``), so both variants of the walk are checked.
"""
from __future__ import annotations

import ipaddress
import random

import numpy as np
import pytest

import ipallow
from ipallow._compile import BIG_TABLE, DIR_BITS_4
from oracle import DictOracle, NetaddrOracle

CHUNK = 128     # keys per walk (IPALLOW_CHUNK in include/ipallow_node.h)
SIZES = [0, 1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3, 1000]


def seeded_nets(count: int, seed: int) -> list[ipaddress.IPv4Network]:
    """Nested and disjoint IPv4 prefixes of every length from /8 to /32, crowded into a few
    blocks (as routing tables are) so that nodes get children down to the last level."""
    rnd = random.Random(seed)
    blocks = [rnd.getrandbits(12) << 20 for _ in range(24)]
    nets = [ipaddress.IPv4Network((rnd.getrandbits(plen) << (32 - plen), plen)) for plen in [8] * 6 + [12] * 20]
    for _ in range(count - len(nets)):
        plen = rnd.choice([16, 18, 20, 22, 23, 24, 24, 24, 25, 26, 28, 30, 31, 32, 32])
        base = rnd.choice(blocks) | rnd.getrandbits(20)
        nets.append(ipaddress.IPv4Network((base >> (32 - plen) << (32 - plen), plen)))
    return nets


def seeded_queries(nets: list[ipaddress.IPv4Network], count: int, seed: int) -> np.ndarray:
    """Inside registered prefixes (their edges too) and anywhere, shuffled."""
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        net = rnd.choice(nets)
        first = int(net.network_address)
        roll = rnd.random()
        if roll < 0.15:
            out.append(first)
        elif roll < 0.3:
            out.append(int(net.broadcast_address))
        elif roll < 0.4:
            out.append((int(net.broadcast_address) + 1) & 0xFFFFFFFF)   # just past it
        elif roll < 0.75:
            out.append(first + rnd.randrange(net.num_addresses))
        else:
            out.append(rnd.getrandbits(32))
    rnd.shuffle(out)
    return np.array(out, dtype=np.uint32)


@pytest.fixture(scope="module", params=[(1500, 11), (BIG_TABLE + 4000, 12)],
                ids=[f"{DIR_BITS_4[0]}-bit-level-0", f"{DIR_BITS_4[1]}-bit-level-0"])
def table(request):
    count, seed = request.param
    nets = seeded_nets(count, seed)
    al = ipallow.Allowlist([(str(net), {"row": i}) for i, net in enumerate(nets)])
    queries = seeded_queries(nets, 4000, seed + 100)
    oracle = DictOracle([[net] for net in nets])
    expected = np.array([-1 if (hit := oracle.lookup(ipaddress.IPv4Address(int(q)))) is None else hit
                         for q in queries.tolist()], dtype=np.int32)
    return nets, al, queries, expected


def test_the_tables_are_the_shapes_under_test(table):
    nets, al, queries, expected = table
    stats = al._table_stats()[4]
    assert stats["dir_bits"] == DIR_BITS_4[len(nets) >= BIG_TABLE]
    assert stats["nodes"] > 100
    assert 0.25 < (expected >= 0).mean() < 0.95      # hits and misses both
    assert any(net.prefixlen == 32 for net in nets)  # the deepest level is reached


@pytest.mark.parametrize("size", SIZES)
def test_uint32_batches_match_the_oracle_at_every_position(table, size):
    nets, al, queries, expected = table
    # every batch size starting at several offsets, so chunk tails meet every kind of key
    for start in (0, 7, 1000, len(queries) - size):
        q = queries[start:start + size]
        want = expected[start:start + size]
        got = al.lookup_many(q)
        assert got.dtype == np.int32 and got.shape == (size,)
        assert got.tolist() == want.tolist(), f"size {size} from {start}"
        assert al.contains_many(q).tolist() == (want >= 0).tolist()


def test_uint32_batches_match_single_lookups(table):
    nets, al, queries, expected = table
    prefixes = al._match_many(queries)
    assert prefixes.tolist() == [al._match_index(int(q)) for q in queries.tolist()]


def test_uint32_batches_match_netaddr(table):
    nets, al, queries, expected = table
    if len(nets) > 5000:
        nets = [net for net in nets if net.prefixlen <= 16]     # building a big IPSet takes minutes
        al = ipallow.Allowlist([str(net) for net in nets])
    netaddr_oracle = NetaddrOracle([[net] for net in nets])
    got = al.contains_many(queries)
    assert got.tolist() == [netaddr_oracle.contains(ipaddress.IPv4Address(int(q))) for q in queries.tolist()]


def test_the_same_addresses_in_every_batch_form_agree(table):
    # the IPv4 walk also serves IPv4-mapped keys of (n, 2) uint64 batches and packed rows
    nets, al, queries, expected = table
    q = queries[:CHUNK * 3 + 5]
    mapped = np.column_stack((np.zeros(q.size, np.uint64), q.astype(np.uint64) | np.uint64(0xFFFF << 32)))
    packed = q.astype(">u4").view(np.uint8).reshape(-1, 4)
    want = expected[:q.size].tolist()
    assert al.lookup_many(mapped).tolist() == want
    assert al.lookup_many(packed).tolist() == want
    assert al.lookup_many(packed.reshape(-1).view("V4")).tolist() == want
