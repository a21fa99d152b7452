"""Snapshot files: a compiled Allowlist written once, memory-mapped by every process.

Layout (all integers in the writer's byte order, which the header records)::

    header      magic, format version, byte-order mark, flags, counts, created,
                dir bits, header checksum           (HEADER, 80 bytes)
    sections    one row per section: id, item size, offset, size, count,
                checksum                            (SECTION, 40 bytes each)
    data        each section 64-byte aligned: the two Poptrie tables, the
                prefix table, registration offsets, registration data (JSON)

Opening validates, before any lookup is served: magic, version, byte order,
sizes, the header checksum (which covers the section table and so every
section's checksum), the checksums of the sections lookups read, and the
structure of both tables (the core refuses tables whose indices could leave
their arrays).  The sections only ``lookup()``'s details and iteration read
(prefix table, registration data) are verified on first use, so opening costs
the same few milliseconds whatever the list size.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

from ipallow import _trie
from ipallow._compile import Compiled

__all__ = ["save", "load", "loads", "to_bytes", "from_buffer", "SnapshotError", "register_json_type",
           "FORMAT_VERSION"]

MAGIC = b"IPALLOW\x00"
FORMAT_VERSION = 2      # 2: one node heap per family, prefix rows in answer order
BYTE_ORDER_MARK = 0x01020304
FLAG_HAS_DATA = 1
ALIGN = 64

HEADER = struct.Struct("=8sIIIIQQqQQIIQ")     # see _Header below for the field order
SECTION = struct.Struct("=IIQQQQ")            # id, item size, offset, nbytes, count, checksum
MAX_SECTIONS = 64

# Section ids -> (name, dtype).  Names are Compiled attributes (tables by position).
SECTIONS = {
    1: ("dir4", np.dtype(np.uint32)),
    2: ("heap4", np.dtype(np.uint32)),
    4: ("dir6", np.dtype(np.uint32)),
    5: ("heap6", np.dtype(np.uint32)),
    7: ("prefix_reg", np.dtype(np.int32)),
    8: ("version", np.dtype(np.uint8)),
    9: ("hi", np.dtype(np.uint64)),
    10: ("lo", np.dtype(np.uint64)),
    11: ("prefixlen", np.dtype(np.uint8)),
    12: ("reg_first", np.dtype(np.int64)),
    13: ("data_offsets", np.dtype(np.uint64)),
    14: ("data_blob", np.dtype(np.uint8)),
    15: ("reg_rows", np.dtype(np.int32)),
}   # ids 3 and 6 were format 1's leaf arrays; ids are never reused
SECTION_ID = {name: sid for sid, (name, _) in SECTIONS.items()}
EAGER = ("dir4", "heap4", "dir6", "heap6", "prefix_reg")
LAZY = ("version", "hi", "lo", "prefixlen", "reg_first", "reg_rows")
PER_PREFIX = ("prefix_reg", "version", "hi", "lo", "prefixlen", "reg_rows")
DATA = ("data_offsets", "data_blob")


class SnapshotError(ValueError):
    """A snapshot file or buffer that cannot be used; the message names the reason."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: not a usable ipallow snapshot: {reason}")


# -- registration data as JSON ----------------------------------------------------

# Types that are not JSON natively but may be registration data (e.g. ipallow's
# Registration records): tag -> (type, to_json, from_json).
_JSON_TYPES: dict[str, tuple[type, Callable[[Any], Any], Callable[[Any], Any]]] = {}


def register_json_type(tag: str, cls: type, to_json: Callable[[Any], Any],
                       from_json: Callable[[Any], Any]) -> None:
    """Let registration data of type ``cls`` be saved in snapshots (as tagged JSON)."""
    _JSON_TYPES[tag] = (cls, to_json, from_json)


def _encode_default(obj: Any) -> Any:
    for tag, (cls, to_json, _) in _JSON_TYPES.items():
        if isinstance(obj, cls):
            return {"__ipallow_type__": tag, "value": to_json(obj)}
    raise TypeError(f"registration data of type {type(obj).__name__} cannot be saved in a "
                    f"snapshot (JSON types only, or ipallow.snapshot.register_json_type)")


def _decode_hook(obj: dict) -> Any:
    tag = obj.get("__ipallow_type__")
    if tag is not None and len(obj) == 2 and "value" in obj:
        if tag not in _JSON_TYPES:
            raise ValueError(f"snapshot data of unknown type {tag!r}")
        return _JSON_TYPES[tag][2](obj["value"])
    return obj


def _encode_data(data) -> tuple[np.ndarray, np.ndarray] | None:
    if data is None:
        return None
    encoder = json.JSONEncoder(default=_encode_default, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False, allow_nan=False)
    chunks, offsets, total = [], [0], 0
    for index, item in enumerate(data):
        try:
            chunk = encoder.encode(item).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise TypeError(f"registration #{index}: {exc}") from None
        chunks.append(chunk)
        total += len(chunk)
        offsets.append(total)
    return np.array(offsets, dtype=np.uint64), np.frombuffer(b"".join(chunks), dtype=np.uint8)


class _LazyData:
    """Registration data decoded one registration at a time, on access."""

    def __init__(self, offsets: np.ndarray, blob: np.ndarray, source: str) -> None:
        self._offsets = offsets
        self._blob = blob
        self._source = source
        self._decoder = json.JSONDecoder(object_hook=_decode_hook)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> Any:
        start, end = int(self._offsets[index]), int(self._offsets[index + 1])
        try:
            return self._decoder.decode(self._blob[start:end].tobytes().decode("utf-8"))
        except (ValueError, TypeError, KeyError) as exc:
            # Not UTF-8, not JSON, an unknown type tag, or a tagged value its decoder refuses:
            # checksums only say the bytes are as written, not that they were written by us.
            raise SnapshotError(self._source, f"registration data #{index} cannot be decoded: "
                                              f"{exc}") from None


# -- writing ----------------------------------------------------------------------

def _arrays_of(compiled: Compiled) -> dict[str, np.ndarray]:
    dir4, heap4, _, dir6, heap6, _ = compiled.tables
    arrays = dict(dir4=dir4, heap4=heap4, dir6=dir6, heap6=heap6, prefix_reg=compiled.prefix_reg)
    for name in LAZY:
        arrays[name] = getattr(compiled, name)
    encoded = _encode_data(compiled.data)
    if encoded is not None:
        arrays["data_offsets"], arrays["data_blob"] = encoded
    return arrays


def to_bytes(compiled: Compiled, created: int | None = None) -> bytearray:
    """The snapshot of ``compiled`` as one buffer.

    ``created`` (Unix seconds) defaults to ``$SOURCE_DATE_EPOCH`` when set, else
    now; with a fixed value the same allowlist always gives the same bytes.
    """
    if created is None:
        created = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
    arrays = _arrays_of(compiled)
    names = [name for name in SECTION_ID if name in arrays]
    header_size = HEADER.size + SECTION.size * len(names)
    offset = _aligned(header_size)
    rows = []
    for name in names:
        array = np.ascontiguousarray(arrays[name])
        raw = array.view(np.uint8).reshape(-1)
        rows.append((SECTION_ID[name], array.dtype.itemsize, offset, raw.nbytes, len(array),
                     _trie.checksum(raw), raw))
        offset = _aligned(offset + raw.nbytes)
    file_size = offset
    buffer = bytearray(file_size)
    table = b"".join(SECTION.pack(*row[:6]) for row in rows)
    flags = FLAG_HAS_DATA if "data_offsets" in arrays else 0
    dir_bits4, dir_bits6 = compiled.tables[2], compiled.tables[5]
    fields = [MAGIC, FORMAT_VERSION, BYTE_ORDER_MARK, flags, len(names), header_size, file_size,
              created, len(compiled.reg_first) - 1, len(compiled.prefix_reg), dir_bits4, dir_bits6, 0]
    fields[-1] = _trie.checksum(HEADER.pack(*fields) + table)
    buffer[:HEADER.size] = HEADER.pack(*fields)
    buffer[HEADER.size:header_size] = table
    for _, _, start, nbytes, _, _, raw in rows:
        buffer[start:start + nbytes] = raw.tobytes() if nbytes else b""
    return buffer


def _aligned(offset: int) -> int:
    return (offset + ALIGN - 1) // ALIGN * ALIGN


def save(compiled: Compiled, path: str | os.PathLike, created: int | None = None) -> None:
    """Write a snapshot atomically: a temporary file beside ``path``, fsync, rename."""
    target = os.fspath(path)
    data = to_bytes(compiled, created)
    directory = os.path.dirname(os.path.abspath(target))
    fd, temporary = tempfile.mkstemp(prefix=".ipallow-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    if hasattr(os, "O_DIRECTORY"):   # make the rename itself durable
        dir_fd = os.open(directory, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# -- reading ----------------------------------------------------------------------

class _Header:
    FIELDS = ("magic", "version", "byte_order", "flags", "n_sections", "header_size",
              "file_size", "created", "n_registrations", "n_prefixes", "dir_bits4", "dir_bits6",
              "checksum")

    def __init__(self, values: tuple) -> None:
        for name, value in zip(self.FIELDS, values):
            setattr(self, name, value)


def read_header(buffer, source: str = "<buffer>") -> tuple[_Header, dict[str, tuple]]:
    """Validate the header and section table; return them (no section is read)."""
    size = _length(buffer)
    if size < HEADER.size:
        raise SnapshotError(source, f"truncated: {size} bytes, smaller than the {HEADER.size}-byte header")
    header = _Header(HEADER.unpack(_copy(buffer, 0, HEADER.size)))
    if header.magic != MAGIC:
        raise SnapshotError(source, "bad magic (not an ipallow snapshot)")
    if header.byte_order != BYTE_ORDER_MARK:
        if header.byte_order == int.from_bytes(BYTE_ORDER_MARK.to_bytes(4, "little"), "big"):
            raise SnapshotError(source, f"written on a machine of the other byte order "
                                        f"(this one is {sys.byteorder}-endian); recompile it here")
        raise SnapshotError(source, "corrupt byte-order mark")
    if header.version > FORMAT_VERSION:
        raise SnapshotError(source, f"format version {header.version} is newer than this ipallow "
                                    f"supports ({FORMAT_VERSION}); upgrade ipallow")
    if header.version < FORMAT_VERSION:
        raise SnapshotError(source, f"format version {header.version} was written by an older ipallow "
                                    f"(this one reads {FORMAT_VERSION}); compile the list again")
    if not 0 < header.n_sections <= MAX_SECTIONS or \
            header.header_size != HEADER.size + SECTION.size * header.n_sections:
        raise SnapshotError(source, "corrupt header (section count)")
    if header.file_size != size:
        what = "truncated" if size < header.file_size else "has trailing bytes"
        raise SnapshotError(source, f"{what}: expected {header.file_size} bytes, found {size}")
    table = _copy(buffer, HEADER.size, header.header_size)
    zeroed = HEADER.pack(*[getattr(header, f) for f in _Header.FIELDS[:-1]], 0)
    if _trie.checksum(zeroed + table) != header.checksum:
        raise SnapshotError(source, "header checksum mismatch (corrupt header or section table)")
    sections: dict[str, tuple] = {}
    for row in SECTION.iter_unpack(table):
        sid, item_size, offset, nbytes, count, checksum = row
        if sid not in SECTIONS:
            raise SnapshotError(source, f"unknown section id {sid}")
        name, dtype = SECTIONS[sid]
        if name in sections:
            raise SnapshotError(source, f"section {name} appears twice")
        if item_size != dtype.itemsize or nbytes != count * item_size:
            raise SnapshotError(source, f"section {name} has a wrong item size or length")
        if offset % ALIGN or offset < header.header_size or offset + nbytes > size:
            raise SnapshotError(source, f"section {name} lies outside the file or is misaligned")
        sections[name] = (offset, nbytes, count, checksum, dtype)
    _check_layout(header, sections, source)
    return header, sections


def _length(buffer) -> int:
    with memoryview(buffer) as view:
        return view.nbytes


def _copy(buffer, start: int, end: int) -> bytes:
    # Copies, and releases the view at once: a live view would keep an mmap
    # from closing (even from an exception's traceback).
    with memoryview(buffer) as view, view.cast("B") as raw:
        return bytes(raw[start:end])


def _check_layout(header: _Header, sections: dict, source: str) -> None:
    required = EAGER + LAZY + (DATA if header.flags & FLAG_HAS_DATA else ())
    missing = [name for name in required if name not in sections]
    if missing:
        raise SnapshotError(source, f"missing section(s) {', '.join(missing)}")
    spans = sorted((offset, offset + nbytes, name) for name, (offset, nbytes, *_) in sections.items())
    for (_, end, name), (start, _, following) in zip(spans, spans[1:]):
        if start < end:
            raise SnapshotError(source, f"sections {name} and {following} overlap")
    for family, bits in (("4", header.dir_bits4), ("6", header.dir_bits6)):
        if not 1 <= bits <= 24 or sections["dir" + family][2] != 1 << bits:
            raise SnapshotError(source, f"IPv{family} level-0 size does not match its bit count")
    for name in PER_PREFIX:
        if sections[name][2] != header.n_prefixes:
            raise SnapshotError(source, f"section {name} does not have one row per prefix")
    if sections["reg_first"][2] != header.n_registrations + 1:
        raise SnapshotError(source, "section reg_first does not have one row per registration")
    if "data_offsets" in sections and sections["data_offsets"][2] != header.n_registrations + 1:
        raise SnapshotError(source, "section data_offsets does not have one row per registration")


def _section(buffer, sections, name, source, verify=True) -> np.ndarray:
    offset, nbytes, count, checksum, dtype = sections[name]
    raw = np.frombuffer(buffer, dtype=np.uint8, count=nbytes, offset=offset)
    if verify and _trie.checksum(raw) != checksum:
        raise SnapshotError(source, f"checksum mismatch in section {name}")
    array = raw.view(dtype)
    if not array.flags.aligned:
        # A buffer handed in at an odd address (a slice of a larger one): the core reads the
        # tables through uint32_t / int32_t pointers, which must be aligned. Copy this section.
        array = array.copy()
    array.flags.writeable = False
    return array


def _stray_bits_row(version, hi, lo, prefixlen) -> int | None:
    """The first prefix row whose value has bits set past its length (for IPv4, any bit above the
    low 32), or None. No network has such a value: lookup() could not even build its network.
    Lengths and versions are already known valid (check_prefix_table)."""
    one, ones = np.uint64(1), np.uint64(0xFFFFFFFFFFFFFFFF)
    is4 = version == 4
    host = np.where(is4, 32, 128) - prefixlen.astype(np.int64)       # host bits, 0..128
    # numpy, like C, cannot shift a uint64 by 64: a word that is all host bits gets all ones.
    lo_bits, hi_bits = np.minimum(host, 64), np.clip(host - 64, 0, 64)
    lo_mask = np.where(lo_bits == 64, ones, (one << np.minimum(lo_bits, 63).astype(np.uint64)) - one)
    hi_mask = np.where(hi_bits == 64, ones, (one << np.minimum(hi_bits, 63).astype(np.uint64)) - one)
    stray = ((lo & lo_mask) != 0) | ((hi & hi_mask) != 0)
    stray |= is4 & ((hi != 0) | ((lo >> np.uint64(32)) != 0))
    rows = np.flatnonzero(stray)
    return int(rows[0]) if len(rows) else None


class _MappedCompiled(Compiled):
    """A Compiled whose prefix table and data are verified and viewed on first use."""

    def __init__(self, tables, prefix_reg, loaders: dict[str, Callable[[], Any]]) -> None:
        # Deliberately not calling Compiled.__init__: the lazy fields arrive via __getattr__.
        self.tables = tables
        self.prefix_reg = prefix_reg
        self._loaders = loaders

    def __getattr__(self, name: str) -> Any:
        loaders = self.__dict__.get("_loaders", {})
        if name not in loaders:
            raise AttributeError(name)
        value = loaders.pop(name)()
        setattr(self, name, value)
        return value


def from_buffer(buffer, source: str = "<buffer>") -> Compiled:
    """A Compiled viewing ``buffer`` (bytes, bytearray, mmap) without copying it."""
    header, sections = read_header(buffer, source)
    arrays = {name: _section(buffer, sections, name, source) for name in EAGER}
    prefix_reg = arrays["prefix_reg"]
    if len(prefix_reg) and (int(prefix_reg.min()) < 0 or
                            int(prefix_reg.max()) >= header.n_registrations):
        raise SnapshotError(source, "a prefix names a registration that does not exist")
    tables = (arrays["dir4"], arrays["heap4"], header.dir_bits4,
              arrays["dir6"], arrays["heap6"], header.dir_bits6)

    def data() -> Any:
        if not header.flags & FLAG_HAS_DATA:
            return None
        offsets = _section(buffer, sections, "data_offsets", source)
        blob = _section(buffer, sections, "data_blob", source)
        if offsets[0] != 0 or np.any(np.diff(offsets.astype(np.int64)) < 0) or offsets[-1] != len(blob):
            raise SnapshotError(source, "section data_offsets is not a valid index into the data")
        return _LazyData(offsets, blob, source)

    def prefix_table() -> None:
        # The prefix-table sections are checked together, once, on first use.
        arrays = {name: _section(buffer, sections, name, source) for name in LAZY}
        problem = _trie.check_prefix_table(arrays["version"], arrays["prefixlen"], arrays["reg_first"],
                                           arrays["reg_rows"], prefix_reg, header.n_prefixes)
        if problem:
            raise SnapshotError(source, f"prefix table: {problem}")
        row = _stray_bits_row(arrays["version"], arrays["hi"], arrays["lo"], arrays["prefixlen"])
        if row is not None:
            raise SnapshotError(source, f"prefix table: row {row} has bits set past its prefix length")
        for name, array in arrays.items():
            setattr(compiled, name, array)

    def lazy(name: str) -> Callable[[], np.ndarray]:
        def load() -> np.ndarray:
            for other in LAZY:
                compiled._loaders.pop(other, None)
            prefix_table()
            return getattr(compiled, name)
        return load

    loaders: dict[str, Callable[[], Any]] = {name: lazy(name) for name in LAZY}
    loaders["data"] = data
    compiled = _MappedCompiled(tables, prefix_reg, loaders)
    compiled.created = header.created
    compiled.snapshot_buffer = buffer
    return compiled


def map_file(path: str | os.PathLike) -> Compiled:
    """Memory-map a snapshot file read-only and view it (pages shared between processes)."""
    name = os.fspath(path)
    with open(name, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise SnapshotError(name, "empty file")
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    return from_buffer(mapped, name)


def load(path: str | os.PathLike):
    """Open a snapshot file as an :class:`~ipallow.Allowlist` (memory-mapped, no rebuild).

    Raises:
        SnapshotError: the file is not a valid snapshot (the message says why).
        OSError: the file cannot be opened.
    """
    from ipallow.allowlist import Allowlist
    return Allowlist._from_compiled(map_file(path))


def loads(buffer, source: str = "<buffer>"):
    """An :class:`~ipallow.Allowlist` serving from ``buffer`` (a snapshot in memory), no copy.

    Raises:
        SnapshotError: the buffer is not a valid snapshot.
    """
    from ipallow.allowlist import Allowlist
    return Allowlist._from_compiled(from_buffer(buffer, source))


def info(path: str | os.PathLike) -> dict[str, Any]:
    """Header facts of a snapshot (validated) without loading its sections."""
    name = os.fspath(path)
    with open(name, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise SnapshotError(name, "empty file")
        buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        header, sections = read_header(buffer, name)
        return {
            "path": name, "format_version": header.version, "byte_order": sys.byteorder,
            "size": header.file_size, "created": header.created,
            "registrations": header.n_registrations, "prefixes": header.n_prefixes,
            "has_data": bool(header.flags & FLAG_HAS_DATA),
            "dir_bits": {4: header.dir_bits4, 6: header.dir_bits6},
            "sections": {n: {"offset": s[0], "bytes": s[1], "rows": s[2]} for n, s in sections.items()},
        }
    finally:
        buffer.close()
