"""Writing a snapshot: a Compiled (and a registry's lifecycle) to bytes, and to a file atomically.

The bytes are a pure function of the compiled tables, their data and the
``created`` stamp, so the same allowlist always gives the same file when
``created`` is fixed (``$SOURCE_DATE_EPOCH``).  :func:`save` writes them a section at a
time (:func:`write_to`) through :mod:`ipallow._output`, which replaces a file only once it
is complete.
"""

from __future__ import annotations

import numbers
import os
import time
from datetime import datetime
from typing import Any, BinaryIO

import numpy as np

from ipallow import _output, _trie
from ipallow._compile import Compiled
from ipallow.snapshot._layout import (BYTE_ORDER_MARK, FLAG_HAS_DATA, FORMAT_VERSION, HEADER, LAZY, MAGIC,
                                      SECTION, SECTION_ID, aligned)
from ipallow.snapshot._registration_data import encode_data


def _arrays_of(compiled: Compiled, lifecycle: Any = None) -> dict[str, np.ndarray]:
    dir4, heap4, _, dir6, heap6, _ = compiled.tables
    arrays = dict(dir4=dir4, heap4=heap4, dir6=dir6, heap6=heap6, prefix_reg=compiled.prefix_reg)
    for name in LAZY:
        arrays[name] = getattr(compiled, name)
    encoded = encode_data(compiled.data)
    if encoded is not None:
        arrays["data_offsets"], arrays["data_blob"] = encoded
    if lifecycle is not None:
        arrays["lifecycle"] = np.frombuffer(lifecycle, dtype=np.uint8)
    return arrays


def _plan(compiled: Compiled, created: int | datetime | None,
          lifecycle: Any) -> tuple[bytes, list[tuple[int, np.ndarray]], int]:
    """The snapshot's header (with its section table), each section's start and bytes (the
    arrays' own memory, not copies), and the file's size."""
    created = _created_seconds(created)
    arrays = _arrays_of(compiled, lifecycle)
    names = [name for name in SECTION_ID if name in arrays]
    header_size = HEADER.size + SECTION.size * len(names)
    offset = aligned(header_size)
    table, sections = [], []
    for name in names:
        array = np.ascontiguousarray(arrays[name])
        raw = array.view(np.uint8).reshape(-1)
        table.append(SECTION.pack(SECTION_ID[name], array.dtype.itemsize, offset, raw.nbytes, len(array),
                                  _trie.checksum(raw)))
        sections.append((offset, raw))
        offset = aligned(offset + raw.nbytes)
    file_size = offset
    flags = FLAG_HAS_DATA if "data_offsets" in arrays else 0
    dir_bits4, dir_bits6 = compiled.tables[2], compiled.tables[5]
    fields = [MAGIC, FORMAT_VERSION, BYTE_ORDER_MARK, flags, len(names), header_size, file_size,
              created, len(compiled.reg_first) - 1, len(compiled.prefix_reg), dir_bits4, dir_bits6, 0]
    table_bytes = b"".join(table)
    fields[-1] = _trie.checksum(HEADER.pack(*fields) + table_bytes)    # over the header with 0 here
    return HEADER.pack(*fields) + table_bytes, sections, file_size


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
    head, sections, file_size = _plan(compiled, created, lifecycle)
    buffer = bytearray(file_size)
    buffer[:len(head)] = head
    for start, raw in sections:
        buffer[start:start + raw.nbytes] = memoryview(raw)    # straight from the array (no bytes copy)
    return buffer


def write_to(handle: BinaryIO, compiled: Compiled, created: int | datetime | None = None,
             lifecycle: Any = None) -> None:
    """Write the bytes :func:`to_bytes` makes to the binary file ``handle``, a section at a
    time: the file is never also held in memory (for a world-sized list that was as much
    again as the tables, at the peak of ``ipallow compile``)."""
    _write_plan(handle, _plan(compiled, created, lifecycle))


def _write_plan(handle: BinaryIO, plan: tuple[bytes, list[tuple[int, np.ndarray]], int]) -> None:
    head, sections, file_size = plan
    handle.write(head)
    at = len(head)
    for start, raw in sections:
        handle.write(bytes(start - at))             # the padding that aligns the section
        if raw.nbytes:
            handle.write(memoryview(raw))
        at = start + raw.nbytes
    handle.write(bytes(file_size - at))


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


def save(compiled: Compiled, path: str | os.PathLike, created: int | datetime | None = None,
         lifecycle: Any = None) -> None:
    """Write a snapshot: a regular file atomically (temporary file beside it, fsync, rename),
    a symlink's target likewise, a FIFO or device written through (see :mod:`ipallow._output`)."""
    plan = _plan(compiled, created, lifecycle)      # a bad ``created`` or data: nothing opened yet
    with _output.open_output(path, binary=True) as handle:
        _write_plan(handle, plan)
