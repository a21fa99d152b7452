"""The data section and metadata of a MaxMind DB: Python values -> the format's typed fields.

MaxMind DB format 2.0, "Data Section Format": every field starts with a control
byte -- the type in its top three bits (0: an "extended" type whose number minus 7
is the next byte), the payload size in its low five (< 29 as is; 29, 30, 31: one,
two or three more bytes hold ``size - 29``, ``size - 285``, ``size - 65821``).
Maps and arrays count their entries, not bytes.  Only what ipallow writes is
encoded: no pointers or caches (each registration's record is written once and
every network of it points to it from the search tree).
"""

from __future__ import annotations

import struct
from datetime import date, datetime, timezone
from typing import Any

#: Type numbers (the spec's table).
UTF8, DOUBLE, BYTES, UINT16, UINT32, MAP, INT32, UINT64, UINT128, ARRAY, BOOLEAN = \
    2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14

#: Marks the start of the metadata map; the last occurrence in the file counts.
METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


def _control(kind: int, size: int) -> bytes:
    if size < 29:
        head, extra = size, b""
    elif size < 285:
        head, extra = 29, bytes((size - 29,))
    elif size < 65821:
        head, extra = 30, (size - 285).to_bytes(2, "big")
    elif size < 16843037:
        head, extra = 31, (size - 65821).to_bytes(3, "big")
    else:
        raise ValueError(f"a MaxMind DB field holds at most 16,843,036 bytes or entries, not {size:,}")
    if kind <= 7:
        return bytes(((kind << 5) | head,)) + extra
    return bytes((head, kind - 7)) + extra


def _unsigned(kind: int, value: int) -> bytes:
    # Big endian with the leading zero bytes left out (zero is a size-0 field).
    payload = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return _control(kind, len(payload)) + payload


def encode(value: Any, where: str = "record") -> bytes:
    """One value as a data field.

    str, int (negative: int32; else uint32 / uint64 / uint128 by size), float
    (double), bool, bytes, dict (str keys; ``None`` values left out: the format
    has no null), list / tuple, and date / datetime (ISO 8601 text, UTC for an
    aware datetime).

    Raises:
        TypeError: a value of another type, a non-str key, or None outside a map
            (``where`` says which field).
        ValueError: an int beyond the format's range; a non-finite float is fine.
    """
    if isinstance(value, bool):
        return _control(BOOLEAN, int(value))
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        return _control(UTF8, len(raw)) + raw
    if isinstance(value, int):
        if value < 0:
            if value < -(1 << 31):
                raise ValueError(f"{where}: {value} is below the smallest MaxMind DB integer (int32)")
            payload = struct.pack(">i", value)
            return _control(INT32, 4) + payload
        if value < 1 << 32:
            return _unsigned(UINT32, value)
        if value < 1 << 64:
            return _unsigned(UINT64, value)
        if value < 1 << 128:
            return _unsigned(UINT128, value)
        raise ValueError(f"{where}: {value} is beyond the largest MaxMind DB integer (uint128)")
    if isinstance(value, float):
        return _control(DOUBLE, 8) + struct.pack(">d", value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return _control(BYTES, len(raw)) + raw
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return encode(value.isoformat().replace("+00:00", "Z"), where)
    if isinstance(value, date):
        return encode(value.isoformat(), where)
    if isinstance(value, dict) or (hasattr(value, "keys") and hasattr(value, "__getitem__")):
        items = [(k, value[k]) for k in value.keys() if value[k] is not None]
        parts = [_control(MAP, len(items))]
        for key, item in items:
            if not isinstance(key, str):
                raise TypeError(f"{where}: map keys must be str, not {type(key).__name__} ({key!r})")
            parts.append(encode(key, where))
            parts.append(encode(item, f"{where}.{key}"))
        return b"".join(parts)
    if isinstance(value, (list, tuple)):
        return _control(ARRAY, len(value)) + b"".join(
            encode(item, f"{where}[{i}]") for i, item in enumerate(value))
    if value is None:
        raise TypeError(f"{where}: None has no MaxMind DB type (only map values may be None: they are left out)")
    raise TypeError(f"{where}: {type(value).__name__} has no MaxMind DB type "
                    f"(str, int, float, bool, bytes, dict, list, date)")


def metadata(*, node_count: int, record_size: int, ip_version: int, database_type: str,
             description: str, build_epoch: int, languages: tuple = ("en",)) -> bytes:
    """The metadata section: the marker, then its map (typed as the spec says)."""
    fields = [
        ("binary_format_major_version", _unsigned(UINT16, 2)),
        ("binary_format_minor_version", _unsigned(UINT16, 0)),
        ("build_epoch", _unsigned(UINT64, build_epoch)),
        ("database_type", encode(database_type)),
        ("description", encode({language: description for language in languages})),
        ("ip_version", _unsigned(UINT16, ip_version)),
        ("languages", encode(list(languages))),
        ("node_count", _unsigned(UINT32, node_count)),
        ("record_size", _unsigned(UINT16, record_size)),
    ]
    return METADATA_MARKER + _control(MAP, len(fields)) + b"".join(encode(k) + v for k, v in fields)



class RecordEncoder:
    """Encodes many records of the same shape: keys and repeated values are encoded once.

    A registry's owners, categories and statuses, or a CSV list's repeated column
    values, come back again and again; ``id`` values are unique, so they are not kept.
    """

    UNIQUE_KEYS = frozenset({"id"})

    def __init__(self) -> None:
        self._text: dict[str, bytes] = {}

    def _cached(self, text: str) -> bytes:
        raw = self._text.get(text)
        if raw is None:
            raw = self._text[text] = encode(text)
        return raw

    def record(self, mapping: dict, where: str) -> bytes:
        parts: list[bytes] = []
        append, cache, unique = parts.append, self._text, self.UNIQUE_KEYS
        count = 0
        for key, value in mapping.items():
            if value is None:
                continue
            count += 1
            raw = cache.get(key)
            if raw is None:
                if type(key) is not str:
                    raise TypeError(f"{where}: map keys must be str, not {type(key).__name__} ({key!r})")
                raw = cache[key] = encode(key)
            append(raw)
            if type(value) is not str:
                append(encode(value, f"{where}.{key}"))
            elif key in unique:
                append(text(value))
            else:
                raw = cache.get(value)
                if raw is None:
                    raw = cache[value] = encode(value)
                append(raw)
        return _control(MAP, count) + b"".join(parts)


def text(value: str) -> bytes:
    """A UTF-8 string field (the common short case without the general dispatch)."""
    raw = value.encode("utf-8", "surrogatepass")
    return (bytes((0x40 | len(raw),)) if len(raw) < 29 else _control(UTF8, len(raw))) + raw
