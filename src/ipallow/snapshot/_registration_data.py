"""Registration data in a snapshot: each registration's object as JSON, decoded on access.

A snapshot stores what each registration carries (a dict, a
:class:`~ipallow.Registration`, any type made known with
:func:`register_json_type`) as one JSON text per registration.  Encoding
happens once when a snapshot is written; decoding happens one registration
at a time, when a lookup's details ask for it, so opening a snapshot never
pays for data nobody reads.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

import numpy as np

from ipallow.errors import SnapshotError

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


def encode_data(data) -> tuple[np.ndarray, np.ndarray] | None:
    if data is None:
        return None
    import json                 # here, and in LazyData: ~4 ms of start-up, for lists with data only
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


class LazyData:
    """Registration data decoded one registration at a time, on access.

    The blob passed its checksum, but a crafted file can still hold bytes that
    are not UTF-8 JSON of a known type: any failure to decode is a SnapshotError
    naming the registration.
    """

    def __init__(self, offsets: np.ndarray, blob: np.ndarray, source: str) -> None:
        self._offsets = offsets
        self._blob = blob
        self._source = source
        import json
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
