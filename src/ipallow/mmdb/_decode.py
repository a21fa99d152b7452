"""Reading a MaxMind DB's metadata and data section, each shared value decoded once.

MaxMind's writers store every repeated value once and point to it (a City
database's country, continent and city-name maps are shared by hundreds of
thousands of networks), yet the readers decode each record in full every time:
walking GeoLite2 City with ``maxminddb``'s ``Reader.__iter__`` decodes 3.4
million records.  Here a value reached through a pointer is decoded once and the
same Python object is reused, so a record costs its few top-level fields and
records share their sub-maps (treat them as read-only).
"""

from __future__ import annotations

import struct
from typing import Any, NoReturn

from ipallow.mmdb._encode import METADATA_MARKER

METADATA_MAX = 128 * 1024        # the spec bounds the metadata section


class FormatError(ValueError):
    """The file is not a valid MaxMind DB; the message says where and why."""


#: What decoding a damaged data section raises before the decoder can say why (see Decoder.damaged).
DAMAGE = (RecursionError, IndexError, struct.error, TypeError)


def _target(b: bytes, control: int, position: int) -> tuple[int, int]:
    """A pointer of 11, 19 or 27 bits: (its target, the position after it)."""
    size = control & 0x18
    if size == 0:
        return ((control & 7) << 8) | b[position + 1], position + 2
    if size == 0x08:
        return (((control & 7) << 16) | (b[position + 1] << 8) | b[position + 2]) + 2048, position + 3
    return (((control & 7) << 24) | (b[position + 1] << 16) | (b[position + 2] << 8)
            | b[position + 3]) + 526336, position + 4


class Decoder:
    """Values of one data section (``buffer[start:]``), pointer targets memoised."""

    def __init__(self, buffer: bytes, start: int, source: str) -> None:
        self.buffer, self.start, self.source = buffer, start, source
        self._shared: dict[int, Any] = {}

    def fail(self, offset: int, message: str) -> NoReturn:
        raise FormatError(f"{self.source}: data section offset {offset}: {message}")

    def value(self, offset: int) -> Any:
        """The value at ``offset`` (relative to the data section)."""
        return self._decode(self.start + offset)[0]

    def record(self, offset: int) -> Any:
        """:meth:`value`, with a damaged file's every failure a :class:`FormatError`."""
        try:
            return self._decode(self.start + offset)[0]
        except DAMAGE as exc:
            self.damaged(offset, exc)

    def damaged(self, offset: int, exc: BaseException) -> NoReturn:
        """Raise the :class:`FormatError` that says what ``exc``, raised while decoding the
        value at ``offset``, means about the file."""
        if isinstance(exc, RecursionError):
            self.fail(offset, "data nested too deeply, or pointers in a cycle")
        if isinstance(exc, TypeError):                     # a map or an array as a map key
            self.fail(offset, f"a map key that is not a string ({exc})")
        self.fail(offset, "a value runs past the end of the file")

    def fields(self, offset: int, wanted: frozenset) -> Any:
        """The record at ``offset`` with only its top-level ``wanted`` fields decoded: what a
        ``--where`` expression reads.  The other values are stepped over, not built.  A
        record that is not a map is decoded whole."""
        try:
            b = self.buffer
            position = self.start + offset
            control = b[position]
            if control >> 5 == 1:                          # the record itself shared
                target, _ = _target(b, control, position) if control & 0x18 != 0x18 else \
                    (int.from_bytes(b[position + 1:position + 5], "big"), 0)
                position = self.start + target
                control = b[position]
            if control >> 5 != 7:
                return self.record(position - self.start)
            size, position = self._size(position + 1, control & 0x1F)
            result = {}
            shared, missing = self._shared, self
            for _ in range(size):
                control = b[position]
                key = missing
                if control >> 5 == 1 and control & 0x18 != 0x18:     # keys: shared strings
                    target, after = _target(b, control, position)
                    key = shared.get(target, missing)
                    if key is not missing:
                        position = after
                if key is missing:
                    key, position = self._decode(position)
                if key in wanted:
                    result[key], position = self._decode(position)
                else:
                    position = self._skip(position)
            return result
        except DAMAGE as exc:
            self.damaged(offset, exc)

    def _skip(self, position: int) -> int:
        """The position after the field at ``position``, building nothing."""
        b = self.buffer
        control = b[position]
        kind = control >> 5
        if kind == 1:
            return position + 2 + ((control >> 3) & 3)
        position += 1
        if kind == 0:
            kind = 7 + b[position]
            position += 1
        size, position = self._size(position, control & 0x1F)
        if kind == 7:
            for _ in range(2 * size):
                position = self._skip(position)
            return position
        if kind == 11:
            for _ in range(size):
                position = self._skip(position)
            return position
        if kind == 14:                      # a boolean's value is its size: no payload
            return position
        if position > len(b):
            raise IndexError("past the end")
        return position + size

    def _size(self, position: int, size: int) -> tuple[int, int]:
        b = self.buffer
        if size < 29:
            return size, position
        if size == 29:
            return 29 + b[position], position + 1
        if size == 30:
            return 285 + int.from_bytes(b[position:position + 2], "big"), position + 2
        return 65821 + int.from_bytes(b[position:position + 3], "big"), position + 3

    def _decode(self, position: int) -> tuple[Any, int]:
        """(value, position after it) for the field at absolute ``position``."""
        b = self.buffer
        if position >= len(b):
            self.fail(position - self.start, "past the end of the file")
        control = b[position]
        kind = control >> 5
        position += 1
        if kind == 1:                                   # pointer: decoded once, then shared
            size = (control >> 3) & 3
            raw = int.from_bytes(b[position:position + size + 1], "big")
            if size == 0:
                target = ((control & 7) << 8) | raw
            elif size == 1:
                target = (((control & 7) << 16) | raw) + 2048
            elif size == 2:
                target = (((control & 7) << 24) | raw) + 526336
            else:
                target = raw
            after = position + size + 1
            value = self._shared.get(target, self)
            if value is self:
                if target + self.start >= len(b):
                    self.fail(target, "pointer past the end of the file")
                value = self._shared[target] = self._decode(self.start + target)[0]
            return value, after
        if kind == 0:                                   # extended type: the next byte + 7
            kind = 7 + b[position]
            position += 1
        size, position = self._size(position, control & 0x1F)
        end = position + size
        if kind == 2:
            return b[position:end].decode("utf-8", "surrogateescape"), end
        if kind == 7:
            shared, decode, missing = self._shared, self._decode, self
            items = []
            for _ in range(2 * size):                   # key, value, key, value, ...
                # Keys and shared values are mostly two-byte pointers to values already
                # decoded: take those without a call (the general path memoises them).
                control = b[position]
                if control >> 5 == 1 and control & 0x18 != 0x18:
                    target, after = _target(b, control, position)
                    item = shared.get(target, missing)
                    if item is missing:
                        item, position = decode(position)
                    else:
                        position = after
                else:
                    item, position = decode(position)
                items.append(item)
            return dict(zip(items[::2], items[1::2])), position
        if kind == 11:
            items = []
            for _ in range(size):
                item, position = self._decode(position)
                items.append(item)
            return items, position
        if kind in (5, 6, 9, 10):
            return int.from_bytes(b[position:end], "big"), end
        if kind == 3:
            if size != 8:
                self.fail(position - self.start, f"a double of {size} bytes")
            return struct.unpack(">d", b[position:end])[0], end
        if kind == 15:
            if size != 4:
                self.fail(position - self.start, f"a float of {size} bytes")
            return struct.unpack(">f", b[position:end])[0], end
        if kind == 8:
            return int.from_bytes(b[position:end].rjust(4, b"\0"), "big", signed=True), end
        if kind == 14:
            return bool(size), position
        if kind == 4:
            return bytes(b[position:end]), end
        self.fail(position - self.start, f"unknown data type {kind}")


def metadata(buffer: bytes, source: str) -> dict:
    """The metadata map, found at the last marker in the file's last 128 KiB."""
    at = buffer.rfind(METADATA_MARKER, max(0, len(buffer) - METADATA_MAX))
    if at < 0:
        raise FormatError(f"{source}: not a MaxMind DB (no metadata marker)")
    start = at + len(METADATA_MARKER)
    meta = Decoder(buffer, start, source).record(0)
    if not isinstance(meta, dict):
        raise FormatError(f"{source}: the metadata is not a map")
    for key in ("node_count", "record_size", "ip_version"):
        if not isinstance(meta.get(key), int):
            raise FormatError(f"{source}: metadata without {key}")
    if meta["record_size"] not in (24, 28, 32):
        raise FormatError(f"{source}: record_size {meta['record_size']} (24, 28 or 32 expected)")
    if meta["ip_version"] not in (4, 6):
        raise FormatError(f"{source}: ip_version {meta['ip_version']} (4 or 6 expected)")
    tree_end = meta["node_count"] * meta["record_size"] // 4
    if tree_end + 16 > at:
        raise FormatError(f"{source}: the search tree of {meta['node_count']:,} nodes does not fit before the metadata")
    return meta
