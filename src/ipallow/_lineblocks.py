"""Input read as blocks of whole lines, decompressed when it is gzip, bzip2, xz or zstd.

Compressed input is told by its magic bytes, whatever the file is called.  Reads
return what is there (a pipe: as soon as the writer wrote), so a reader of
``tail -F`` sees each line without waiting for a full block.
"""

from __future__ import annotations

import itertools
import os
from typing import Callable, Iterable, Iterator

__all__ = ["BadInput", "BLOCK_SIZE", "input_chunks", "line_blocks"]

BLOCK_SIZE = 1 << 18          # bytes read at a time: 256 KiB keeps a block's line objects in cache


class BadInput(Exception):
    """The input cannot be read as lines (corrupt or truncated compressed data)."""


def _zstd():
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard.ZstdDecompressor().decompressobj


# (name, magic bytes) of the compressed inputs read.  A codec's module is imported only when its
# magic is seen: zstandard alone took 10-40 ms of every filter's start-up.
CODECS = (("gzip", b"\x1f\x8b"), ("bzip2", b"BZh"), ("xz", b"\xfd7zXZ\x00"), ("zstd", b"\x28\xb5\x2f\xfd"))


def _decompressors(name: str):
    """A factory of decompressor objects for the codec ``name``, or None when its module is missing."""
    if name == "gzip":
        import zlib
        return lambda: zlib.decompressobj(wbits=31)
    if name == "bzip2":
        import bz2
        return bz2.BZ2Decompressor
    if name == "xz":
        import lzma
        return lzma.LZMADecompressor
    return _zstd()


MAGIC_SIZE = 6
COMPRESSED_READ = 1 << 16     # small reads of compressed input bound each decompressed piece


def _raw_chunks(fd: int, progress: Callable[[int], None], size: int) -> Iterator[bytes]:
    done = 0
    while True:
        chunk = os.read(fd, size)
        if not chunk:
            return
        done += len(chunk)
        progress(done)
        yield chunk


def input_chunks(fd: int, progress: Callable[[int], None]) -> Iterator[bytes]:
    """The bytes read from ``fd``, decompressed when they start with a gzip, bzip2, xz or zstd magic.

    ``progress`` is called with the number of (compressed) bytes read so far.

    Concatenated members (``cat a.gz b.gz``, rotated logs) are read one after
    another.  Raises BadInput for corrupt or truncated data, or zstd input
    without the ``zstandard`` module.
    """
    head = b""
    while len(head) < MAGIC_SIZE:
        chunk = os.read(fd, BLOCK_SIZE)
        if not chunk:
            break
        head += chunk
    progress(len(head))
    name = next((name for name, magic in CODECS if head.startswith(magic)), None)
    if name is None:
        if head:
            yield head
        yield from _raw_chunks(fd, progress, BLOCK_SIZE)
        return
    make = _decompressors(name)
    if make is None:
        raise BadInput(f"{name}-compressed input needs the zstandard module (pip install zstandard)")
    decompressor = make()
    fed = False
    try:
        for chunk in itertools.chain([head], _raw_chunks(fd, progress, COMPRESSED_READ)):
            while chunk:
                fed = True
                out = decompressor.decompress(chunk)
                if out:
                    yield out
                if decompressor.eof:        # the next member, if any, starts here
                    chunk, decompressor, fed = decompressor.unused_data, make(), False
                else:
                    chunk = b""
    except BadInput:
        raise
    except Exception as exc:    # zlib.error, OSError, LZMAError, ZstdError ...: all mean corrupt input
        raise BadInput(f"corrupt {name} input: {exc}") from None
    if fed:
        raise BadInput(f"truncated {name} input (the stream ends before its end marker)")


def line_blocks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Blocks of whole lines (each ending in a newline) from the input chunks, in order.

    ``os.read`` returns what is there (a pipe: as soon as the writer wrote), so
    ``tail -F | ipallow filter`` passes lines on without waiting for a full block.
    """
    carry = b""
    for chunk in chunks:
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        carry = data[cut:]
        yield data[:cut] if cut < len(data) else data
    if carry:
        yield carry + b"\n"
