"""Snapshot files: a compiled Allowlist written once, opened in milliseconds by every process.

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
one read of the file plus a few milliseconds; a registration's data is decoded
(and any fault in it reported as SnapshotError) when it is asked for.

A file is read into private memory unless sharing its pages is asked for
(``share=True``): then it is mapped under a Linux read lease (``_SharedFile``),
so that no writer can change or truncate pages a lookup may read.  See
docs/snapshots.md.
"""

from __future__ import annotations

import ctypes
import errno
import importlib
import json
import mmap
import numbers
import os
import signal
import struct
import sys
import threading
import time
import warnings
import weakref
from datetime import datetime
from typing import Any, Callable

import numpy as np

from ipallow import _output, _trie
from ipallow.errors import SnapshotError  # defined with the other exceptions; re-exported here
from ipallow._compile import Compiled

try:
    import fcntl                 # POSIX only; leases (share=True) are Linux-only
except ImportError:              # pragma: no cover - Windows
    fcntl = None                 # type: ignore[assignment]

__all__ = ["save", "map_file", "to_bytes", "from_buffer", "SnapshotError", "NotSharedWarning",
           "register_json_type", "FORMAT_VERSION"]

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
    16: ("lifecycle", np.dtype(np.uint8)),
}   # ids 3 and 6 were format 1's leaf arrays; ids are never reused
# Optional: "lifecycle" (a registry's instant, ids and non-counting records, JSON;
# see ipallow.registry.encode_lifecycle).  A reader that does not know it refuses
# the file (unknown section id) rather than serve a registry frozen in time.
SECTION_ID = {name: sid for sid, (name, _) in SECTIONS.items()}
EAGER = ("dir4", "heap4", "dir6", "heap6", "prefix_reg")
LAZY = ("version", "hi", "lo", "prefixlen", "reg_first", "reg_rows")
PER_PREFIX = ("prefix_reg", "version", "hi", "lo", "prefixlen", "reg_rows")
DATA = ("data_offsets", "data_blob")




# -- registration data as JSON ----------------------------------------------------

# Types that are not JSON natively but may be registration data (e.g. ipallow's
# Registration records): tag -> (type, to_json, from_json).
_JSON_TYPES: dict[str, tuple[type, Callable[[Any], Any], Callable[[Any], Any]]] = {}


# ipallow's own record types live in layers above this one, so they are named here
# and resolved when first met (the module is surely imported already when one of its
# objects is saved; when one is read, importing it is what makes the type known).
# Each type has to_dict / from_dict.
_OWN_TYPES = {"ipallow.Registration": ("ipallow.registry", "Registration")}


def register_json_type(tag: str, cls: type, to_json: Callable[[Any], Any],
                       from_json: Callable[[Any], Any]) -> None:
    """Let registration data of type ``cls`` be saved in snapshots (as tagged JSON)."""
    _JSON_TYPES[tag] = (cls, to_json, from_json)


def _resolve_own_type(tag: str) -> None:
    module, name = _OWN_TYPES[tag]
    cls = getattr(importlib.import_module(module), name)
    register_json_type(tag, cls, cls.to_dict, cls.from_dict)


def _encode_default(obj: Any) -> Any:
    for tag, (module, _) in _OWN_TYPES.items():
        if tag not in _JSON_TYPES and module in sys.modules:
            _resolve_own_type(tag)
    for tag, (cls, to_json, _) in _JSON_TYPES.items():
        if isinstance(obj, cls):
            return {"__ipallow_type__": tag, "value": to_json(obj)}
    raise TypeError(f"registration data of type {type(obj).__name__} cannot be saved in a "
                    f"snapshot (JSON types only, or ipallow.snapshot.register_json_type)")


def _decode_hook(obj: dict) -> Any:
    tag = obj.get("__ipallow_type__")
    if tag is not None and len(obj) == 2 and "value" in obj:
        if tag not in _JSON_TYPES and tag in _OWN_TYPES:
            _resolve_own_type(tag)
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
    """Registration data decoded one registration at a time, on access.

    The blob passed its checksum, but a crafted file can still hold bytes that
    are not UTF-8 JSON of a known type: any failure to decode is a SnapshotError
    naming the registration.
    """

    def __init__(self, offsets: np.ndarray, blob: np.ndarray, source: str) -> None:
        self._offsets = offsets
        self._blob = blob
        self._source = source
        self._decoder = json.JSONDecoder(object_hook=_decode_hook)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("registration index out of range")
        start, end = int(self._offsets[index]), int(self._offsets[index + 1])
        try:
            return self._decoder.decode(self._blob[start:end].tobytes().decode("utf-8"))
        except Exception as exc:     # a registered type's from_json may raise anything
            raise SnapshotError(self._source, f"registration {index}'s data cannot be decoded: "
                                              f"{type(exc).__name__}: {exc}") from exc


# -- writing ----------------------------------------------------------------------

def _arrays_of(compiled: Compiled, lifecycle: Any = None) -> dict[str, np.ndarray]:
    dir4, heap4, _, dir6, heap6, _ = compiled.tables
    arrays = dict(dir4=dir4, heap4=heap4, dir6=dir6, heap6=heap6, prefix_reg=compiled.prefix_reg)
    for name in LAZY:
        arrays[name] = getattr(compiled, name)
    encoded = _encode_data(compiled.data)
    if encoded is not None:
        arrays["data_offsets"], arrays["data_blob"] = encoded
    if lifecycle is not None:
        arrays["lifecycle"] = np.frombuffer(lifecycle, dtype=np.uint8)
    return arrays


def to_bytes(compiled: Compiled, created: int | datetime | None = None,
             lifecycle: Any = None) -> bytearray:
    """The snapshot of ``compiled`` as one buffer.

    ``created`` (Unix seconds, or an aware datetime) defaults to
    ``$SOURCE_DATE_EPOCH`` when set, else now; with a fixed value the same
    allowlist always gives the same bytes.

    Raises:
        TypeError: ``created`` is not an int or a datetime (bool included).
        ValueError: ``created`` is negative, beyond the format's 63 bits, a naive
            datetime, or ``$SOURCE_DATE_EPOCH`` is not a non-negative integer.
    """
    created = _created_seconds(created)
    arrays = _arrays_of(compiled, lifecycle)
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


MAX_CREATED = (1 << 63) - 1     # the header field is a signed 64-bit integer


def _created_seconds(created: Any) -> int:
    """``created`` as whole Unix seconds, checked (see to_bytes)."""
    if created is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
        if not epoch:
            return int(time.time())
        if not (epoch.isascii() and epoch.isdigit()):
            raise ValueError(f"SOURCE_DATE_EPOCH={epoch!r} is not a non-negative integer of seconds")
        created = int(epoch)
    elif isinstance(created, datetime):
        if created.tzinfo is None or created.utcoffset() is None:
            # As registry times: local time read as UTC would shift it silently.
            raise ValueError(f"created: naive datetime {created.isoformat()!r}; give a timezone "
                             f"(e.g. datetime.now(timezone.utc)) or Unix seconds")
        created = int(created.timestamp() // 1)
    elif isinstance(created, bool) or not isinstance(created, numbers.Integral):
        raise TypeError(f"created must be Unix seconds (int) or an aware datetime, "
                        f"not {type(created).__name__}")
    created = int(created)
    if created < 0:
        raise ValueError(f"created must not be negative (before 1970), got {created}")
    if created > MAX_CREATED:
        raise ValueError(f"created {created} is out of range (at most 2**63 - 1 seconds)")
    return created


def _aligned(offset: int) -> int:
    return (offset + ALIGN - 1) // ALIGN * ALIGN


def save(compiled: Compiled, path: str | os.PathLike, created: int | datetime | None = None,
         lifecycle: Any = None) -> None:
    """Write a snapshot: a regular file atomically (temporary file beside it, fsync, rename),
    a symlink's target likewise, a FIFO or device written through (see :mod:`ipallow._output`)."""
    _output.write_bytes(path, to_bytes(compiled, created, lifecycle))


# -- reading ----------------------------------------------------------------------

class _Header:
    FIELDS = ("magic", "version", "byte_order", "flags", "n_sections", "header_size",
              "file_size", "created", "n_registrations", "n_prefixes", "dir_bits4", "dir_bits6",
              "checksum")

    def __init__(self, values: tuple) -> None:
        for name, value in zip(self.FIELDS, values):
            setattr(self, name, value)


def read_header(buffer, source: str = "<buffer>",
                size: int | None = None) -> tuple[_Header, dict[str, tuple]]:
    """Validate the header and section table; return them (no section is read).

    ``size`` is the whole snapshot's size when ``buffer`` holds only its start.
    """
    available = _length(buffer)
    size = available if size is None else size
    if min(size, available) < HEADER.size:
        raise SnapshotError(source, f"truncated: {min(size, available)} bytes, smaller than the "
                                    f"{HEADER.size}-byte header")
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
    if available < header.header_size:
        raise SnapshotError(source, "truncated: the section table is cut short")
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


class _SnapshotCompiled(Compiled):
    """A Compiled viewing a snapshot buffer: tables verified when made, the rest on first use.

    The prefix table and the data are verified once, under a lock, by whichever
    thread asks first (the checksums run with the GIL released, so others may ask
    meanwhile); they appear as attributes only once all of them passed.  Nothing
    here refers back to the instance (no closures), so it is freed by reference
    counting the moment its last user lets go.
    """

    def __init__(self, buffer, header: _Header, sections: dict, source: str, tables: tuple,
                 prefix_reg: np.ndarray, file: "_SharedFile | None") -> None:
        # Deliberately not calling Compiled.__init__: the lazy fields arrive via __getattr__.
        self.tables = tables
        self.prefix_reg = prefix_reg
        self.created = header.created
        self.snapshot_buffer = buffer
        self.file = file                 # the shared mapping and its lease (share=True), else None
        self._header = header
        self._sections = sections
        self._source = source
        self._lock = threading.Lock()
        self._refused: dict[str, str] = {}    # group -> reason, so a bad section fails the same way twice

    def __getattr__(self, name: str) -> Any:
        if name in LAZY:
            self._load("prefix table", self._verify_prefix_table)
        elif name == "data":
            self._load("data", self._verify_data)
        elif name == "lifecycle":
            self._load("lifecycle", self._lifecycle_section)
        else:
            raise AttributeError(name)
        return self.__dict__[name]

    def _load(self, group: str, verify: Callable[[], dict[str, Any]]) -> None:
        with self._lock:
            if group in self._refused:
                raise SnapshotError(self._source, self._refused[group])
            if ("version" if group == "prefix table" else group) in self.__dict__:
                return                   # another thread verified it while this one waited
            try:
                values = verify()
            except SnapshotError as exc:
                self._refused[group] = exc.reason
                raise
            self.__dict__.update(values)

    def _section(self, name: str) -> np.ndarray:
        return _section(self.snapshot_buffer, self._sections, name, self._source)

    def _verify_prefix_table(self) -> dict[str, Any]:
        arrays = {name: self._section(name) for name in LAZY}
        problem = _trie.check_prefix_table(arrays["version"], arrays["hi"], arrays["lo"],
                                           arrays["prefixlen"], arrays["reg_first"], arrays["reg_rows"],
                                           self.prefix_reg, self._header.n_prefixes)
        if problem:
            raise SnapshotError(self._source, f"prefix table: {problem}")
        return arrays

    def _verify_data(self) -> dict[str, Any]:
        if not self._header.flags & FLAG_HAS_DATA:
            return {"data": None}
        offsets, blob = self._section("data_offsets"), self._section("data_blob")
        if offsets[0] != 0 or np.any(np.diff(offsets.astype(np.int64)) < 0) or offsets[-1] != len(blob):
            raise SnapshotError(self._source, "section data_offsets is not a valid index into the data")
        return {"data": _LazyData(offsets, blob, self._source)}

    def _lifecycle_section(self) -> dict[str, Any]:
        # Its JSON is checked by whoever decodes it (ipallow.registry.decode_lifecycle).
        return {"lifecycle": self._section("lifecycle") if "lifecycle" in self._sections else None}


def from_buffer(buffer, source: str = "<buffer>", *, _file: "_SharedFile | None" = None) -> Compiled:
    """A Compiled viewing ``buffer`` (bytes, bytearray, a numpy ``uint8`` array) without copying it.

    The buffer must not change afterwards: lookups read it in place.
    """
    header, sections = read_header(buffer, source)
    arrays = {name: _section(buffer, sections, name, source) for name in EAGER}
    prefix_reg = arrays["prefix_reg"]
    if len(prefix_reg) and (int(prefix_reg.min()) < 0 or
                            int(prefix_reg.max()) >= header.n_registrations):
        raise SnapshotError(source, "a prefix names a registration that does not exist")
    tables = (arrays["dir4"], arrays["heap4"], header.dir_bits4,
              arrays["dir6"], arrays["heap6"], header.dir_bits6)
    return _SnapshotCompiled(buffer, header, sections, source, tables, prefix_reg, _file)


def read_file(path: str | os.PathLike) -> Compiled:
    """Read a snapshot file into private memory (one read) and view it there.

    Nothing a writer does to the file afterwards (rewrite, truncate) can reach
    the copy, so what is served is always what was validated.
    """
    name = os.fspath(path)
    with open(name, "rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise SnapshotError(name, "empty file")
        # numpy asks for transparent huge pages on big arrays: fewer page faults than bytes
        buffer = np.empty(size, dtype=np.uint8)
        filled = 0
        while filled < size:
            got = handle.readinto(memoryview(buffer)[filled:])
            if not got:          # shrank while being read: the header check names it truncated
                buffer = buffer[:filled].copy()
                break
            filled += got
    buffer.flags.writeable = False
    return from_buffer(buffer, name)


def map_file(path: str | os.PathLike, *, share: bool = False) -> Compiled:
    """Open a snapshot file: a private copy, or with ``share=True`` the file's own pages.

    ``share=True`` maps the file read-only so that every process serving it
    shares one copy of its pages, under a Linux read lease (see
    :class:`_SharedFile`); where no lease can be taken it warns
    (:class:`NotSharedWarning`) and reads a private copy instead.
    """
    if not isinstance(share, bool):
        raise TypeError(f"share must be a bool, not {type(share).__name__}")
    if share:
        shared = _SharedFile.open(path)
        if shared is not None:
            try:
                return from_buffer(shared.buffer(), shared.name, _file=shared)
            except BaseException:
                shared.release()
                raise
    return read_file(path)


# -- sharing the file's pages under a lease ------------------------------------------

class NotSharedWarning(RuntimeWarning):
    """``share=True`` could not be honoured safely; the snapshot was read into private memory."""


#: The signal the kernel sends when a writer opens a leased snapshot (F_SETSIG).
LEASE_SIGNAL = getattr(signal, "SIGRTMIN", 0) + 6 if hasattr(signal, "SIGRTMIN") else None

_SHARED: "weakref.WeakSet[_SharedFile]" = weakref.WeakSet()
_libc = None


def _c_library():
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.mremap.restype = ctypes.c_void_p
        libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int,
                                ctypes.c_void_p]
        _libc = libc
    return _libc


_MAP_FAILED = ctypes.c_void_p(-1).value
_MREMAP_MAYMOVE, _MREMAP_FIXED = 1, 2      # linux/mman.h


def _checked(address: int | None, what: str) -> int:
    if address is None or address == _MAP_FAILED:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
    return address


class _SharedFile:
    """A snapshot file mapped read-only (pages shared between processes) under a read lease.

    Linux holds any open of the file for writing, and any truncate, until the
    lease holder gives the lease up (or ``/proc/sys/fs/lease-break-time``
    seconds, 45 by default, pass).  When that happens the kernel sends
    :data:`LEASE_SIGNAL`; its handler (Python runs signal handlers on the main
    thread) copies the mapped pages into anonymous private memory, moves that
    memory over the mapping in one ``mremap`` -- so a lookup running at that
    moment in any thread reads the same bytes before and after -- and only then
    releases the lease and the descriptor.  ``release()`` (``Allowlist.close()``)
    does the same without waiting for a writer.
    """

    def __init__(self, name: str, fd: int, size: int, address: int) -> None:
        self.name = name
        self.size = size
        self._fd: int | None = fd
        self._address = address
        self._busy = threading.Lock()

    @property
    def shared(self) -> bool:
        """True while the pages are the file's (the lease is held)."""
        return self._fd is not None

    @classmethod
    def open(cls, path: str | os.PathLike) -> "_SharedFile | None":
        """Map ``path`` under a lease, or warn and return None when no lease can be had."""
        name = os.fspath(path)
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            why = _take_lease(fd)
            if why is not None:
                warnings.warn(NotSharedWarning(f"{name}: not shared ({why}); reading a private copy"),
                              stacklevel=4)
                os.close(fd)
                return None
            size = os.fstat(fd).st_size
            if size == 0:
                raise SnapshotError(name, "empty file")
            libc = _c_library()
            address = _checked(libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0), "mmap")
        except BaseException:
            _drop_lease(fd)
            os.close(fd)
            raise
        shared = cls(name, fd, size, address)
        _SHARED.add(shared)
        # A writer that came before the line above sent its signal to a handler
        # that did not know this file yet: the kernel will not send it again.
        if shared._lease_breaking():
            shared.release()
        return shared

    def buffer(self) -> np.ndarray:
        """The mapping as a read-only ``uint8`` array that keeps this object alive."""
        window = (ctypes.c_ubyte * self.size).from_address(self._address)
        window.owner = self          # the views keep the mapping; the mapping refers to no view
        array = np.frombuffer(window, dtype=np.uint8)
        array.flags.writeable = False
        return array

    def release(self, *, from_signal: bool = False, keep_lease: bool = False) -> None:
        """Copy the pages into private memory in place, then let go of the lease and the file."""
        if not self._busy.acquire(blocking=not from_signal):
            return                   # a signal arrived during a release on this thread: it is under way
        try:
            if self._fd is None:
                return
            self._privatize()
            fd, self._fd = self._fd, None
            if not keep_lease:
                _drop_lease(fd)
            os.close(fd)
        finally:
            self._busy.release()

    def _privatize(self) -> None:
        libc = _c_library()
        size, address = self.size, self._address
        copy = _checked(libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE,
                                  mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0), "mmap")
        try:
            ctypes.memmove(copy, address, size)
            if libc.mprotect(copy, size, mmap.PROT_READ) != 0:
                _checked(None, "mprotect")
            _checked(libc.mremap(copy, size, size, _MREMAP_MAYMOVE | _MREMAP_FIXED, address), "mremap")
        except BaseException:
            libc.munmap(copy, size)
            raise

    def _lease_breaking(self) -> bool:
        fd = self._fd
        if fd is None:
            return False
        try:
            return fcntl.fcntl(fd, fcntl.F_GETLEASE) != fcntl.F_RDLCK
        except OSError:
            return True

    def __del__(self) -> None:
        # Runs once no view of the mapping is left.
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            _drop_lease(fd)
            os.close(fd)
        if getattr(self, "_address", None):
            _c_library().munmap(self._address, self.size)
            self._address = 0


def _take_lease(fd: int) -> str | None:
    """Take a read lease on ``fd``; None on success, else why not."""
    if fcntl is None or not hasattr(fcntl, "F_SETLEASE") or LEASE_SIGNAL is None \
            or not hasattr(mmap, "MAP_ANONYMOUS"):
        return "file leases are Linux-only"
    why = _install_lease_handler()
    if why is not None:
        return why
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, LEASE_SIGNAL)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        reasons = {errno.EAGAIN: "the file is open for writing",
                   errno.EACCES: "only the file's owner (or CAP_LEASE) may lease it",
                   errno.EINVAL: "its file system has no leases"}
        return f"no read lease: {reasons.get(exc.errno, exc.strerror)}"
    return None


def _drop_lease(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    except (OSError, AttributeError):
        pass


def _install_lease_handler() -> str | None:
    current = signal.getsignal(LEASE_SIGNAL)
    if current is _on_lease_break:
        return None
    if current is not signal.SIG_DFL:           # None: a handler installed outside Python
        return f"signal {LEASE_SIGNAL} (ipallow.snapshot.LEASE_SIGNAL) already has a handler"
    if threading.current_thread() is not threading.main_thread():
        return ("the lease-break handler can only be installed from the main thread "
                "(load one snapshot with share=True there first)")
    try:
        signal.signal(LEASE_SIGNAL, _on_lease_break)
    except ValueError as exc:     # e.g. a sub-interpreter
        return f"cannot handle the lease-break signal here: {exc}"
    return None


def _on_lease_break(signum, frame) -> None:
    """A writer waits for a lease: give up every lease being broken (after copying its pages)."""
    for shared in list(_SHARED):
        if shared._lease_breaking():
            try:
                shared.release(from_signal=True)
            except OSError as exc:   # no memory for the copy: the writer waits out lease-break-time
                warnings.warn(NotSharedWarning(f"{shared.name}: could not copy the snapshot out of "
                                               f"the file before a writer: {exc}"))


def _after_fork_in_child() -> None:
    # The child shares the parent's lease, which the parent alone will give up
    # when a writer comes; the child's mapping must not depend on it.
    for shared in list(_SHARED):
        shared._busy = threading.Lock()        # another parent thread may have held it at the fork
        shared.release(keep_lease=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def file_header(path: str | os.PathLike) -> tuple[_Header, dict[str, tuple]]:
    """The validated header and section table of a snapshot file; no section is read."""
    name = os.fspath(path)
    with open(name, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise SnapshotError(name, "empty file")
        # Only the header and the section table, read (not mapped: a file
        # truncated meanwhile must not kill the process).
        start = handle.read(HEADER.size + SECTION.size * MAX_SECTIONS)
    return read_header(start, name, size)


def info(path: str | os.PathLike) -> dict[str, Any]:
    """Header facts of a snapshot (validated) without loading its sections."""
    name = os.fspath(path)
    header, sections = file_header(name)
    return {
        "path": name, "format_version": header.version, "byte_order": sys.byteorder,
        "size": header.file_size, "created": header.created,
        "registrations": header.n_registrations, "prefixes": header.n_prefixes,
        "has_data": bool(header.flags & FLAG_HAS_DATA), "has_lifecycle": "lifecycle" in sections,
        "dir_bits": {4: header.dir_bits4, 6: header.dir_bits6},
        "sections": {n: {"offset": s[0], "bytes": s[1], "rows": s[2]} for n, s in sections.items()},
    }
