"""MaxMind DB (``.mmdb``) out and in: the format nginx's geoip2 module, HAProxy, Envoy, Suricata
and the MaxMind readers of every language load.

* :func:`to_bytes` writes the registrations of a compiled allowlist as a MaxMind DB
  (our own writer: the search tree is built from the prefix table with numpy, see
  :mod:`ipallow.mmdb._tree`; docs/mmdb.md says why and how fast);
* :func:`read` turns the networks of a MaxMind DB whose record passes a predicate
  into a compiled table (the record kept as each network's data);
* :func:`where` compiles the small, safe expression language of
  ``ipallow compile --from-mmdb FILE --where EXPR`` into such a predicate.

Both directions are our own code (no dependency): the search tree is walked with
numpy and each value the file shares is decoded once (:mod:`ipallow.mmdb._decode`);
the tests check every file against the ``maxminddb`` package and ``mmdblookup``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np

from ipallow.mmdb import _decode, _encode, _tree
from ipallow.mmdb._decode import FormatError
from ipallow.mmdb._encode import METADATA_MARKER
from ipallow.mmdb._where import WhereError, where
from ipallow.registry import Registration

__all__ = ["to_bytes", "read", "where", "WhereError", "FormatError", "record_of", "DATABASE_TYPE",
           "RECORD_FIELDS", "METADATA_MARKER"]

#: ``database_type`` of the files ipallow writes (nginx and the readers ignore it).
DATABASE_TYPE = "ipallow-allowlist"
#: The fields of a registry registration written into its record.
RECORD_FIELDS = ("id", "owner", "category", "status", "expires_at")

_V4_IN_V6 = (0, 0)                   # ::/96: IPv4 lives under it, as in MaxMind's databases
_V4_MAPPED = (0, 0xFFFF00000000)     # ::ffff:0:0/96: the IPv4-mapped alias of the same subtree
_ALIAS_LEN = 96


def record_of(data: Any, index: int) -> dict:
    """The MaxMind DB record of one registration.

    A registry :class:`~ipallow.Registration`: its ``id``, ``owner``,
    ``category``, ``status`` and ``expires_at`` (ISO 8601 UTC text; left out when
    it never expires).  A dict (a CSV list's columns): as is, with ``id`` added
    as ``#INDEX`` when it has none.  No data: ``{"id": "#INDEX"}``.  Anything
    else: ``{"id": "#INDEX", "data": value}``.  Every record has an ``id``, so a
    reader (nginx's ``$var default=`` included) tells "listed" from "not listed"
    by one field.
    """
    if isinstance(data, Registration):
        record = {name: getattr(data, name) for name in RECORD_FIELDS}
        return {k: v for k, v in record.items() if v is not None}
    if isinstance(data, dict):
        return data if "id" in data else {"id": f"#{index}", **data}
    if data is None:
        return {"id": f"#{index}"}
    return {"id": f"#{index}", "data": data}


def _encoded_records(data: Any, count: int) -> tuple[bytes, np.ndarray]:
    """The data section and the offset of each registration's record in it."""
    encoder = _encode.RecordEncoder()
    if data is None:
        # {"id": "#INDEX"} for each: a one-entry map, the key, the text.
        head = _encode.encode({"id": ""})[:-1]
        parts = [head + _encode.text(f"#{index}") for index in range(count)]
    else:
        parts = [encoder.record(record_of(data[index], index), f"registration #{index}")
                 for index in range(count)]
    sizes = np.fromiter(map(len, parts), dtype=np.int64, count=count)
    offsets = np.zeros(count, dtype=np.int64)
    np.cumsum(sizes[:-1], out=offsets[1:])
    return b"".join(parts), offsets


def _family_rows(compiled, version: int):
    """The prefixes of one IP version sorted by (address, length), duplicates resolved
    as the allowlist resolves them (the lowest registration number answers)."""
    rows = np.flatnonzero(compiled.version == version)
    hi, lo, plen = compiled.hi[rows], compiled.lo[rows], compiled.prefixlen[rows]
    reg = compiled.prefix_reg[rows].astype(np.int64)
    order = np.lexsort((reg, plen, lo, hi))
    hi, lo, plen, reg = hi[order], lo[order], plen[order], reg[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1]) | (plen[1:] != plen[:-1])
    return hi[first], lo[first], plen[first], reg[first]


def _inside(hi, lo, plen, network: tuple[int, int], length: int) -> np.ndarray:
    """Rows of length >= ``length`` lying inside the /length IPv6 ``network`` (length 96)."""
    net_hi, net_lo = network
    mask_lo = np.uint64(((1 << 64) - 1) ^ ((1 << (128 - length)) - 1))
    return (plen >= length) & (hi == np.uint64(net_hi)) & ((lo & mask_lo) == np.uint64(net_lo))


def to_bytes(compiled, *, family: str = "inet", database_type: str = DATABASE_TYPE,
             description: str | None = None, build_epoch: int | None = None) -> tuple[bytes, dict]:
    """A MaxMind DB of a compiled allowlist, and what went into it.

    Arguments:
        compiled: an :class:`~ipallow.Allowlist`'s ``compiled`` tables.
        family: ``inet`` (IPv4 and IPv6 in one IPv6 database, IPv4 under ``::/96``
            and its ``::ffff:0:0/96`` alias, as MaxMind's own databases), ``ip``
            (an IPv4 database) or ``ip6`` (IPv6 only).
        build_epoch: Unix seconds (default ``$SOURCE_DATE_EPOCH``, else now).

    Returns:
        ``(bytes, summary)``; summary: ``node_count``, ``record_size``,
        ``ip_version`` and ``left_out``, the IPv6 prefixes inside ``::/96`` or
        ``::ffff:0:0/96`` that the file cannot hold (those /96 are the IPv4
        space in a MaxMind DB).

    Raises:
        TypeError / ValueError: registration data with no MaxMind DB form (see
            :func:`record_of`); the tree beyond 32-bit records.
    """
    if family not in ("inet", "ip", "ip6"):
        raise ValueError(f"family must be 'inet', 'ip' or 'ip6', not {family!r}")
    if build_epoch is None:
        build_epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or time.time())
    count = len(compiled.reg_first) - 1
    section, offsets = _encoded_records(compiled.data, count)

    left_out = 0
    if family == "ip":
        hi, lo, plen, reg = _family_rows(compiled, 4)
        left, right = _tree.build(hi, lo, plen, _tree.answer_code(reg), 32, 0)
        ip_version, v4_root = 4, None
    else:
        hi, lo, plen, reg = _family_rows(compiled, 6)
        unstorable = _inside(hi, lo, plen, _V4_IN_V6, _ALIAS_LEN) | _inside(hi, lo, plen, _V4_MAPPED, _ALIAS_LEN)
        left_out = int(unstorable.sum())
        keep = ~unstorable
        answer = _tree.answer_code(reg[keep])
        # Two leaves that link to the IPv4 tree, merged into the table in address order.
        hi = np.concatenate((hi[keep], np.zeros(2, np.uint64)))
        lo = np.concatenate((lo[keep], np.array([_V4_IN_V6[1], _V4_MAPPED[1]], np.uint64)))
        plen = np.concatenate((plen[keep], np.full(2, _ALIAS_LEN, np.uint8)))
        answer = np.concatenate((answer, np.full(2, _tree.LINK_V4, np.int64)))
        order = np.lexsort((plen, lo, hi))
        left6, right6 = _tree.build(hi[order], lo[order], plen[order], answer[order], 128, 0)
        v4_root = len(left6)
        if family == "inet":
            hi4, lo4, plen4, reg4 = _family_rows(compiled, 4)
        else:
            hi4 = lo4 = np.empty(0, np.uint64)
            plen4, reg4 = np.empty(0, np.uint8), np.empty(0, np.int64)
        left4, right4 = _tree.build(hi4, lo4, plen4, _tree.answer_code(reg4), 32, v4_root)
        left, right = np.concatenate((left6, left4)), np.concatenate((right6, right4))
        ip_version = 6

    node_count = len(left)
    largest = node_count + 16 + len(section)
    record_size = next((size for size in (24, 28, 32) if largest < 1 << size), None)
    if record_size is None:
        raise ValueError(f"{node_count:,} nodes and {len(section):,} bytes of records do not fit "
                         f"the format's 32-bit records")

    def resolved(records: np.ndarray) -> np.ndarray:
        out = records.copy()
        out[records == _tree.EMPTY] = node_count
        if v4_root is not None:
            out[records == _tree.LINK_V4] = v4_root
        data = records <= _tree.FIRST_ANSWER
        out[data] = node_count + 16 + offsets[_tree.FIRST_ANSWER - records[data]]
        return out

    tree = _tree.pack(resolved(left), resolved(right), record_size)
    meta = _encode.metadata(
        node_count=node_count, record_size=record_size, ip_version=ip_version,
        database_type=database_type, build_epoch=build_epoch,
        description=description or f"ipallow allowlist: {count:,} registrations")
    summary = {"node_count": node_count, "record_size": record_size, "ip_version": ip_version,
               "registrations": count, "left_out": left_out, "bytes": len(tree) + 16 + len(section) + len(meta)}
    return b"".join((tree, bytes(16), section, meta)), summary


def read(path: str | os.PathLike, where: Callable[[Any], Any] | None = None):
    """The networks of a MaxMind DB whose record passes ``where``, as a compiled table.

    One registration per network, its data the record (a dict, as the
    ``maxminddb`` package decodes it; values the file shares are shared Python
    objects: treat them as read-only).  Networks under ``::/96`` of an IPv6
    database are IPv4 networks; the ``::ffff:0:0/96`` and 6to4 aliases of that
    subtree are not repeated (as ``maxminddb``'s ``Reader.__iter__``).

    Arguments:
        where: called once per distinct record; its networks are kept when it
            returns a true value.  None keeps every network.

    Raises:
        TypeError: ``where`` is not callable.
        FormatError: the file is not a valid MaxMind DB (a ``ValueError``).
        OSError: the file cannot be read.
    """
    from ipallow._compile import assemble

    if where is not None and not callable(where):
        raise TypeError(f"where must be callable or None, not {type(where).__name__}")
    source = os.fspath(path)
    with open(source, "rb") as handle:
        buffer = handle.read()
    meta = _decode.metadata(buffer, source)
    node_count, record_size, ip_version = meta["node_count"], meta["record_size"], meta["ip_version"]
    tree_size = node_count * record_size // 4
    left, right = _tree.unpack(memoryview(buffer)[:tree_size], node_count, record_size)
    hi, lo, depth, record = _tree.leaves(left, right, node_count, ip_version)
    distinct = np.unique(record)
    inverse = np.searchsorted(distinct, record)            # (faster than unique's return_inverse)
    if len(distinct) and int(distinct[0]) < node_count + 16:
        raise _decode.FormatError(f"{source}: a search tree record ({int(distinct[0])}) points into "
                                  f"the 16-byte separator")
    decoder = _decode.Decoder(buffer, tree_size + 16, source)
    records = []
    keep_record = np.empty(len(distinct), dtype=bool)
    # A --where expression says which top-level fields it reads: only those are decoded
    # to judge a record, and only the records kept are decoded whole.
    wanted = getattr(where, "fields", None)
    wanted = wanted if isinstance(wanted, frozenset) else None
    for i, pointer in enumerate((distinct - (node_count + 16)).tolist()):
        if wanted is not None:
            keep_record[i] = bool(where(decoder.fields(pointer, wanted)))
            records.append(decoder.record(pointer) if keep_record[i] else None)
        else:
            value = decoder.record(pointer)
            records.append(value)
            keep_record[i] = True if where is None else bool(where(value))
    keep = keep_record[inverse]
    version, hi, lo, plen, which = _networks(hi[keep], lo[keep], depth[keep], inverse[keep], ip_version)
    data = [records[i] for i in which.tolist()]
    return assemble(version, hi, lo, plen, np.arange(len(plen) + 1, dtype=np.int64), data or None)


def _networks(hi, lo, depth, which, ip_version):
    """Leaves -> (version, hi, lo, prefixlen, record) rows; IPv4 under ::/96 of an IPv6 tree."""
    if ip_version == 4:
        return np.full(len(hi), 4, np.uint8), np.zeros(len(hi), np.uint64), lo, depth, which
    v4 = (depth >= _ALIAS_LEN) & (hi == 0) & ((lo >> np.uint64(32)) == 0)
    version = np.where(v4, 4, 6).astype(np.uint8)
    plen = np.where(v4, depth - _ALIAS_LEN, depth).astype(np.uint8)
    # A leaf above ::/96 that holds all of it is where every IPv4 lookup ends too.
    whole = np.flatnonzero((depth < _ALIAS_LEN) & (hi == 0) & (lo == 0))
    if len(whole):
        n = len(whole)
        version = np.concatenate((version, np.full(n, 4, np.uint8)))
        hi = np.concatenate((hi, np.zeros(n, np.uint64)))
        lo = np.concatenate((lo, np.zeros(n, np.uint64)))
        plen = np.concatenate((plen, np.zeros(n, np.uint8)))
        which = np.concatenate((which, which[whole]))
    return version, hi, lo, plen, which
