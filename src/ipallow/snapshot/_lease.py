"""Sharing a snapshot file's pages between processes, under a Linux read lease (``share=True``).

Mapping the file itself lets every process serving it share one copy of its
pages, but a writer could then change or truncate pages a lookup is reading.
A read lease (``F_SETLEASE``) makes the kernel hold any such writer and tell
this process first (signal :data:`LEASE_SIGNAL`, ``SIGRTMIN + 6``); a
private copy of the pages is then moved over the mapping in one ``mremap``
and only then is the writer let through.  The signal is aimed at one
watcher thread (``F_SETOWN_EX``) that waits for it with ``sigwaitinfo``: a
Python signal handler runs on the main thread only, between bytecodes, so
a main thread blocked in a C call would keep the writer waiting until the
kernel gives up on the lease and exposes the pages.  A forked child gets its
own copy at once: the lease stays the parent's.  Where no lease can be had
(not Linux, not the file's owner, a handler already installed, ...) the
caller is warned with :class:`NotSharedWarning` and reads a private copy
instead.  See docs/snapshots.md.

This is the one part of ipallow that handles signals and raw memory
mappings, kept apart so that the rest of the snapshot code never meets them.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import signal
import struct
import threading
import warnings
import weakref

import numpy as np

from ipallow.snapshot._layout import file_size

try:
    import fcntl                 # POSIX only; leases (share=True) are Linux-only
except ImportError:              # pragma: no cover - Windows
    fcntl = None                 # type: ignore[assignment]


class NotSharedWarning(RuntimeWarning):
    """``share=True`` could not be honoured safely; the snapshot was read into private memory."""

    __module__ = "ipallow.snapshot"     # where users name it: -W error::ipallow.snapshot.NotSharedWarning


#: The signal the kernel sends when a writer opens a leased snapshot (F_SETSIG).
LEASE_SIGNAL = getattr(signal, "SIGRTMIN", 0) + 6 if hasattr(signal, "SIGRTMIN") else None

_SHARED: "weakref.WeakSet[SharedFile]" = weakref.WeakSet()
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
_F_SETOWN_EX, _F_OWNER_TID = 15, 0        # linux/fcntl.h; Python's fcntl lacks them
_MREMAP_MAYMOVE, _MREMAP_FIXED = 1, 2      # linux/mman.h


def _checked(address: int | None, what: str) -> int:
    if address is None or address == _MAP_FAILED:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
    return address


class SharedFile:
    """A snapshot file mapped read-only (pages shared between processes) under a read lease.

    Linux holds any open of the file for writing, and any truncate, until the
    lease holder gives the lease up (or ``/proc/sys/fs/lease-break-time``
    seconds, 45 by default, pass).  When that happens the kernel sends
    :data:`LEASE_SIGNAL` to the watcher thread, which copies the mapped pages
    into anonymous private memory, moves that memory over the mapping in one
    ``mremap`` -- so a lookup running at that moment in any thread reads the
    same bytes before and after -- and only then releases the lease and the
    descriptor.  ``release()`` (``Allowlist.close()``)
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
    def open(cls, path: str | os.PathLike) -> "SharedFile | None":
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
            size = file_size(fd, name)
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
        watcher = _watcher_thread_id()
    except RuntimeError as exc:                 # no thread can be started
        return f"no thread to take the lease-break signal: {exc}"
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, LEASE_SIGNAL)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        reasons = {errno.EAGAIN: "the file is open for writing",
                   errno.EACCES: "only the file's owner (or CAP_LEASE) may lease it",
                   errno.EINVAL: "its file system has no leases"}
        return f"no read lease: {reasons.get(exc.errno, exc.strerror)}"
    try:
        # F_SETLEASE made the whole process the signal's target; aim it at the watcher.  A writer
        # in between signals the process: the fallback handler and SharedFile.open's own check
        # after registering the file cover that moment.
        fcntl.fcntl(fd, _F_SETOWN_EX, struct.pack("ii", _F_OWNER_TID, watcher))
    except OSError as exc:
        _drop_lease(fd)
        return f"cannot aim the lease-break signal at a thread: {exc.strerror}"
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


def _release_breaking_leases(*, from_signal: bool) -> None:
    """Give up every lease a writer waits for, each after copying its pages out."""
    for shared in list(_SHARED):
        if shared._lease_breaking():
            try:
                shared.release(from_signal=from_signal)
            except OSError as exc:   # no memory for the copy: the writer waits out lease-break-time
                warnings.warn(NotSharedWarning(f"{shared.name}: could not copy the snapshot out of "
                                               f"the file before a writer: {exc}"))


def _on_lease_break(signum, frame) -> None:
    """The process-wide handler: only a writer that came between a lease and its F_SETOWN_EX
    signals the process rather than the watcher (and without a handler the signal would kill it)."""
    _release_breaking_leases(from_signal=True)


_watcher_lock = threading.Lock()
_watcher_id: int | None = None         # native id of this process's watcher thread, once started


def _watcher_thread_id() -> int:
    """The watcher thread's native id (what F_SETOWN_EX names), starting the thread on first use."""
    global _watcher_id
    with _watcher_lock:
        if _watcher_id is None:
            started = threading.Event()
            found: list[int] = []
            threading.Thread(target=_watch_lease_breaks, args=(started, found),
                             name="ipallow-lease-breaks", daemon=True).start()
            started.wait()
            _watcher_id = found[0]
        return _watcher_id


def _watch_lease_breaks(started: threading.Event, found: list[int]) -> None:
    # Blocked here, the signal aimed at this thread stays pending until sigwaitinfo takes it; no
    # handler runs, and nothing depends on what the main thread is doing.
    signal.pthread_sigmask(signal.SIG_BLOCK, {LEASE_SIGNAL})
    found.append(threading.get_native_id())
    started.set()
    while True:
        signal.sigwaitinfo({LEASE_SIGNAL})
        try:
            _release_breaking_leases(from_signal=False)
        except Exception as exc:       # pragma: no cover - keep watching whatever one release did
            warnings.warn(NotSharedWarning(f"releasing a snapshot lease failed: {exc!r}"))


def _after_fork_in_child() -> None:
    # The child shares the parent's lease, which the parent alone will give up
    # when a writer comes; the child's mapping must not depend on it.  The
    # parent's watcher thread did not come along: a share=True load here starts one.
    global _watcher_lock, _watcher_id
    _watcher_lock, _watcher_id = threading.Lock(), None
    for shared in list(_SHARED):
        shared._busy = threading.Lock()        # another parent thread may have held it at the fork
        shared.release(keep_lease=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
