"""Writing an output file the way an operator expects, whatever the name points at.

One rule for every writer (``ipallow export -o``, ``compile -o``, ``bench --plot``,
:meth:`Allowlist.save`):

* a regular file, or a name that does not exist yet: replaced atomically -- a
  temporary file in the same directory is written, fsynced, given the old
  file's mode (and owner, where permitted; a new file gets 0644), renamed over
  the name, and the directory is fsynced, so a reader (nft, ipset, a server
  mapping a snapshot) sees the old file or the new one, never half of one;
* a symbolic link: followed, and its *target* replaced as above (the link
  stays a link; a chain of links is followed to its end);
* a FIFO or a character device (``/dev/null``, a pipe made with ``mkfifo``,
  a terminal), or a name leading into ``/proc`` (``/dev/stdout``, ``/dev/fd/N``):
  written through, appending (nothing to rename; a FIFO waits for its reader);
* a directory, a block device or a socket: refused with an ``OSError`` and
  nothing written; so is a name ending in ``/`` that is not a directory.

``-`` is not special here: the command line maps it to stdout itself.
"""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False           # typing is 2 ms of a start-up; only type checkers read this
if TYPE_CHECKING:
    from typing import IO

NEW_FILE_MODE = 0o644


def resolve(path: str | os.PathLike) -> tuple[str, os.stat_result | None, bool]:
    """(the name to write, what is there now or None, whether to write through it).

    Symbolic links are followed hop by hop to the file they end at (created
    if missing).  A name that leads into ``/proc`` (``/dev/stdout``,
    ``/dev/fd/N``, ``/proc/self/fd/N``) is an open file descriptor, not a file
    to replace: it is written through, like a FIFO or a character device.

    Raises OSError for what must not be written: a directory, a block device
    or a socket (and a loop of links).
    """
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if name.endswith(_SEPARATORS) and not os.path.isdir(name):
        # As cp and install read it: 'NAME/' names a directory, never a file called NAME.
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", name)
    current = os.path.abspath(name)
    for _ in range(_MAX_LINKS):
        parent = os.path.realpath(os.path.dirname(current))
        current = os.path.join(parent, os.path.basename(current))
        if parent == "/proc" or parent.startswith("/proc/"):
            return name, _stat_or_none(name), True
        if not os.path.islink(current):
            break
        current = os.path.join(parent, os.readlink(current))
    else:
        raise OSError(errno.ELOOP, "too many levels of symbolic links", name)
    st = _stat_or_none(current)
    if st is None:
        return current, None, False
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", name)
    if stat.S_ISBLK(mode):
        raise OSError(errno.EINVAL, "is a block device; refusing to write to it", name)
    if stat.S_ISSOCK(mode):
        raise OSError(errno.EINVAL, "is a socket; cannot write to it", name)
    return current, st, stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


_MAX_LINKS = 40     # as Linux's own limit on following symbolic links
_SEPARATORS = tuple(s for s in (os.sep, os.altsep) if s)


def _stat_or_none(name: str) -> os.stat_result | None:
    try:
        return os.stat(name)
    except FileNotFoundError:
        return None


class open_output:
    """``with open_output(path, binary=False) as handle:`` a handle to write ``path`` through,
    by the rules in the module docstring.

    The file appears (or changes) only when the ``with`` block ends without an
    exception; on an exception the temporary file is removed and what was
    there is left as it was.

    A class, not a generator made a context manager: contextlib and functools are ~1 ms
    of a command's start-up, and `ipallow export` to stdout needs neither.
    """

    def __init__(self, path: str | os.PathLike, *, binary: bool = False) -> None:
        self._path = path
        self._binary = binary
        self._handle: IO | None = None
        self._temporary: str | None = None       # None: written through, nothing to rename

    def __enter__(self) -> IO:
        path, binary = self._path, self._binary
        self._target, self._st, through = resolve(path)
        encoding = None if binary else "utf-8"
        if through:
            # Append, never truncate: '-o /dev/stdout >> log' must not empty the log.
            self._handle = open(self._target, "ab" if binary else "a", encoding=encoding)
            return self._handle
        import tempfile         # here: `ipallow check` reads a snapshot and writes nothing
        self._directory = os.path.dirname(os.path.abspath(self._target))
        try:
            fd, temporary = tempfile.mkstemp(prefix=".ipallow-", suffix=".tmp", dir=self._directory)
        except OSError as exc:
            # The temporary name means nothing to the operator: name what they asked to write.
            raise type(exc)(exc.errno, exc.strerror, os.fspath(path)) from None
        self._temporary = temporary
        try:
            self._handle = os.fdopen(fd, "wb" if binary else "w", encoding=encoding)
        except BaseException:
            os.close(fd)
            _remove_quietly(temporary)
            raise
        return self._handle

    def __exit__(self, exc_type, exc, traceback) -> bool:
        handle, temporary = self._handle, self._temporary
        if temporary is None:
            handle.close()
            return False
        try:
            try:
                if exc_type is None:
                    handle.flush()
                    os.fsync(handle.fileno())
            finally:
                handle.close()
            if exc_type is not None:
                _remove_quietly(temporary)
                return False            # the with block's exception goes on
            _copy_identity(temporary, self._st)
            os.replace(temporary, self._target)
        except BaseException:
            _remove_quietly(temporary)
            raise
        _fsync_directory(self._directory)
        return False


def _remove_quietly(temporary: str) -> None:
    """Remove a temporary file that will not be renamed (already gone or not: nothing to say)."""
    try:
        os.unlink(temporary)
    except OSError:
        pass


def check_writable(path: str | os.PathLike) -> None:
    """Raise the OSError that writing ``path`` would raise, writing nothing.

    For the commands, which check their outputs before the work (loading a
    list, a benchmark) rather than fail after it: what :func:`resolve`
    refuses, a directory to create the file in that is missing or not a
    directory, or one (or a file written through) this process may not write.
    """
    target, st, through = resolve(path)
    name = os.fspath(path)
    if through:
        if not os.access(target, os.W_OK):
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return
    directory = os.path.dirname(os.path.abspath(target))
    try:
        parent = os.stat(directory)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, name) from None
    if not stat.S_ISDIR(parent.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", name)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "Permission denied", name)


def write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` by the rules in the module docstring."""
    with open_output(path, binary=True) as handle:
        handle.write(data)


def _copy_identity(temporary: str, st: os.stat_result | None) -> None:
    """Give the new file the mode (and, where permitted, owner) of the file it replaces."""
    if st is None:
        os.chmod(temporary, NEW_FILE_MODE)
        return
    mine = os.stat(temporary)
    if (mine.st_uid, mine.st_gid) != (st.st_uid, st.st_gid):
        # Only root (or the owner, for a group it belongs to) may; install(1) and
        # rsync do the same without privileges: keep going with our own ids.
        try:
            os.chown(temporary, st.st_uid, st.st_gid)
        except PermissionError:
            pass
    os.chmod(temporary, stat.S_IMODE(st.st_mode))    # after chown, which clears set-id bits


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (the directory entry is what a crash could lose)."""
    if not hasattr(os, "O_DIRECTORY"):      # pragma: no cover - not on Windows
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
