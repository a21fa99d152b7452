"""Reading a snapshot into tables: from a buffer, a private copy of a file, or a shared mapping.

Opening validates the header (:mod:`._header`), then verifies the checksums
and structure of the sections lookups read, before any lookup is served.
The sections only ``lookup()``'s details and iteration read (prefix table,
registration data) are verified on first use, once, under a lock
(:class:`_SnapshotCompiled`), so opening costs one read of the file plus a
few milliseconds.  :func:`read_file` reads a file into private memory, where
no writer can reach what was validated; :func:`map_file` with
``share=True`` maps it under a read lease instead (:mod:`._lease`).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ipallow import _hugepages
from ipallow._compile import Compiled
from ipallow.errors import SnapshotError
from ipallow.snapshot._header import check_prefix_table, read_header, verify_section
from ipallow.snapshot._layout import EAGER, FLAG_HAS_DATA, LAZY, Header, file_size
from ipallow.snapshot._registration_data import LazyData

if TYPE_CHECKING:
    from ipallow.snapshot._lease import SharedFile


def _section(buffer, sections, name, source, verify=True) -> np.ndarray:
    offset, nbytes, count, checksum, dtype = sections[name]
    raw = np.frombuffer(buffer, dtype=np.uint8, count=nbytes, offset=offset)
    if verify:
        verify_section(raw, sections, name, source)
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

    def __init__(self, buffer, header: Header, sections: dict, source: str, tables: tuple,
                 prefix_reg: np.ndarray, file: "SharedFile | None") -> None:
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
        check_prefix_table(arrays, self.prefix_reg, self._header, self._source)
        return arrays

    def _verify_data(self) -> dict[str, Any]:
        if not self._header.flags & FLAG_HAS_DATA:
            return {"data": None}
        offsets, blob = self._section("data_offsets"), self._section("data_blob")
        if offsets[0] != 0 or np.any(np.diff(offsets.astype(np.int64)) < 0) or offsets[-1] != len(blob):
            raise SnapshotError(self._source, "section data_offsets is not a valid index into the data")
        return {"data": LazyData(offsets, blob, self._source)}

    def _lifecycle_section(self) -> dict[str, Any]:
        # Its JSON is checked by whoever decodes it (ipallow.registry.decode_lifecycle).
        return {"lifecycle": self._section("lifecycle") if "lifecycle" in self._sections else None}


def from_buffer(buffer, source: str = "<buffer>", *, _file: "SharedFile | None" = None) -> Compiled:
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
        size = file_size(handle.fileno(), name)
        # in transparent huge pages where the platform has them: fewer page faults, and
        # the tables read in place by every batch need fewer TLB entries
        buffer = _hugepages.empty(size)
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
    :class:`SharedFile`); where no lease can be taken it warns
    (:class:`NotSharedWarning`) and reads a private copy instead.
    """
    if not isinstance(share, bool):
        raise TypeError(f"share must be a bool, not {type(share).__name__}")
    if share:
        from ipallow.snapshot._lease import SharedFile   # signals and mappings: only for share=True
        shared = SharedFile.open(path)
        if shared is not None:
            try:
                return from_buffer(shared.buffer(), shared.name, _file=shared)
            except BaseException:
                shared.release()
                raise
    return read_file(path)
