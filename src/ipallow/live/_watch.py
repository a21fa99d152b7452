"""Following a file for changes, and handing over its bytes only once they are complete.

A poll compares the file's identity (device, inode, size, mtime and ctime in
nanoseconds) and that of its checksum file ``<file>.sha256`` with the last
attempt's.  A changed file is read in one go (a read the file changed under
counts as no read) and is complete once it stayed exactly the same, identity
and content, for ``settle`` seconds, or at once when it proves itself
complete: its SHA-256 matches the checksum file, or it is a compiled snapshot
whose checksums all verify.  Content identical to the last attempt's is no
change.  A file modified within the last two seconds is read again on the
next poll, because a timestamp tick can hide a same-size rewrite.

The live list above deals only in what a poll found: complete bytes to
swap in, or a failure to record.  The waiting in between is kept here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat as stat_module
import time
from typing import Callable

from ipallow import snapshot
from ipallow.live._timed import TimedList, open_snapshot

log = logging.getLogger("ipallow.live")

_RACY_SECONDS = 2.0      # a file modified more recently than this is re-read on the next poll
_FIRST_LOAD_SETTLES = 10  # the first load waits about this many settle intervals for a stable file
CHECKSUM_SUFFIX = ".sha256"   # "<file>.sha256" beside the file: its SHA-256 in hex (sha256sum format)

# Module attributes, not direct calls, so that tests can drive time themselves.
_monotonic = time.monotonic
_sleep = time.sleep


class ReloadRefused(ValueError):
    """A reload was refused: the new file is empty, does not match its checksum file, or lost too
    many registrations."""


class _Unsettled(Exception):
    """The file changed while it was being read."""


class _Pending:
    """A changed file seen but not swapped in yet: what it was, and since when it has not changed."""

    __slots__ = ("key", "content", "since", "seen_at")

    def __init__(self, key: tuple, content: tuple, since: float, seen_at: float) -> None:
        self.key = key              # file identity (and the checksum file's)
        self.content = content      # (sha256 of the bytes, declared sha256 or None), or an error
        self.since = since          # monotonic seconds: first seen like this
        self.seen_at = seen_at      # the same instant by the injected clock, for status()


class Found:
    """What a look at the file found: complete bytes (and the list a snapshot already opened as),
    or the failure to record (``error``)."""

    __slots__ = ("raw", "opened", "error")

    def __init__(self, raw: bytes | None = None, opened: TimedList | None = None,
                 error: BaseException | None = None) -> None:
        self.raw = raw
        self.opened = opened
        self.error = error


def _file_key(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _stat_key(path: str) -> tuple:
    try:
        return _file_key(os.stat(path))
    except OSError as exc:
        return ("unreadable", type(exc).__name__, exc.errno)


def _declared_digest(path: str) -> str | None:
    """The SHA-256 the checksum file beside ``path`` declares ('' if unreadable or malformed), or None."""
    try:
        with open(path + CHECKSUM_SUFFIX, "rb") as handle:
            text = handle.read(4096)
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    fields = text.split()
    word = fields[0].decode("ascii", "replace").lower() if fields else ""
    return word if len(word) == 64 and all(c in "0123456789abcdef" for c in word) else ""


class WatchedFile:
    """A file followed by polls: what the last attempt read, and a change waiting to settle."""

    def __init__(self, path: str, settle: float) -> None:
        self.path = path
        self.settle = settle
        self.pending: _Pending | None = None     # a changed file waiting to settle
        self._seen_key: tuple | None = None      # file identity of the last attempt (success or failure)
        self._seen_content: tuple | None = None  # what that attempt read (see _Pending.content)
        self._racy = False

    def poll(self, *, first_load: bool, clock: Callable[[], float]) -> Found | None:
        """Read the file if it changed; what it found once the file is complete (or failed), else None.

        ``first_load``: a file that cannot be read fails at once (there is no
        old list to wait with).  ``clock`` stamps a change first seen, for status().
        """
        key = self._identity()
        if key == self._seen_key and not self._racy and self.pending is None:
            return None
        now = _monotonic()
        pending = self.pending
        if pending is not None and pending.key == key and now - pending.since < self.settle:
            return None             # settling: nothing to learn from reading it again yet
        try:
            raw, content, error = self._look(key)
        except _Unsettled:
            log.debug("%s changed while being read; looking again on the next poll", self.path)
            return None
        if content == self._seen_content:       # touched, or replaced by the same bytes: nothing to do
            self._seen_key, self.pending = key, None
            return None
        if pending is None or pending.key != key or pending.content != content:
            pending = self.pending = _Pending(key, content, now, clock())
        settled = now - pending.since >= self.settle

        if error is not None:
            # The first load cannot wait for a file that is not there; later ones give a
            # delete-and-recreate the settle interval before calling it a failure.
            if settled or first_load:
                self._tried(key, content)
                return Found(error=error)
            return None
        opened = None
        declared = content[1]
        if declared is not None:                # the writer said which bytes are complete
            if declared != content[0]:
                if settled:
                    self._tried(key, content)
                    return Found(error=ReloadRefused(
                        f"{self.path} does not match its checksum file {self.path}{CHECKSUM_SUFFIX} "
                        f"(still being written, or a stale checksum); not swapped in"))
                return None
        elif raw.startswith(snapshot.MAGIC) and not settled:
            try:                                 # a snapshot whose checksums all verify is complete
                opened = open_snapshot(raw, self.path)
            except Exception:                    # noqa: BLE001 - incomplete so far: let it settle
                return None
        elif not settled:
            return None
        self._tried(key, content)
        return Found(raw, opened)

    def read_now(self) -> Found:
        """The file as it is now, not waiting for it to settle nor skipping unchanged content.

        A checksum file that does not match is still a failure.  Raises
        OSError when the file changed while being read.
        """
        key = self._identity()
        try:
            raw, content, error = self._look(key)
        except _Unsettled:
            raise OSError(f"{self.path} changed while being read; try again") from None
        self._tried(key, content)
        if error is not None:
            return Found(error=error)
        declared = content[1]
        if declared is not None and declared != content[0]:
            return Found(error=ReloadRefused(f"{self.path} does not match its checksum file "
                                             f"{self.path}{CHECKSUM_SUFFIX}; not swapped in"))
        return Found(raw)

    def wait_for_first(self, attempt: Callable[[], bool]) -> None:
        """Call ``attempt()`` (a poll and what follows) until it loaded the file, sleeping until the
        changed file is due; at most _FIRST_LOAD_SETTLES settle intervals, then OSError."""
        patience = _FIRST_LOAD_SETTLES * self.settle + 1.0     # + a file replaced mid-read, settle=0
        deadline = _monotonic() + patience
        while not attempt():
            now = _monotonic()
            if now >= deadline:
                raise OSError(f"{self.path} kept changing for {patience:g} s "
                              f"(settle={self.settle:g} s); not loaded")
            pending = self.pending
            due = pending.since + self.settle if pending is not None else now + min(self.settle, 0.05)
            _sleep(max(min(due, deadline) - now, 0.001))

    def seconds_to_settle(self) -> float | None:
        """Until the changed file waiting to settle is due for its confirming read, or None."""
        pending = self.pending
        return None if pending is None else pending.since + self.settle - _monotonic()

    def _identity(self) -> tuple:
        """What a poll compares: the file's identity and its checksum file's."""
        return _stat_key(self.path), _stat_key(self.path + CHECKSUM_SUFFIX)

    def _look(self, key: tuple) -> tuple[bytes | None, tuple, OSError | None]:
        """Read the file: its bytes, what they are (see _Pending.content), or the error instead."""
        try:
            raw, st, declared = self._read(key)
        except OSError as exc:
            self._racy = False
            return None, ("error", type(exc).__name__, exc.errno), exc
        self._racy = time.time() - st.st_mtime_ns / 1e9 < _RACY_SECONDS
        return raw, (hashlib.sha256(raw).hexdigest(), declared), None

    def _read(self, key: tuple) -> tuple[bytes, os.stat_result, str | None]:
        """The file's bytes, its stat and the digest its checksum file declares.

        Raises _Unsettled when the file is not the one ``key`` describes or
        changed while being read.
        """
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            before = os.fstat(fd)
            if stat_module.S_ISDIR(before.st_mode):
                raise IsADirectoryError(21, "is a directory", self.path)
            with os.fdopen(os.dup(fd), "rb") as handle:
                raw = handle.read()
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if (_file_key(before) != _file_key(after) or _file_key(before) != key[0]
                or len(raw) != before.st_size):
            raise _Unsettled()
        return raw, before, _declared_digest(self.path)

    def _tried(self, key: tuple, content: tuple) -> None:
        """Remember what was tried, so that it is tried again only when the file changes."""
        self._seen_key, self._seen_content, self.pending = key, content, None
