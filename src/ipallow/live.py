"""LiveAllowlist: follow a registry file (and the clock) without ever dropping or tearing a lookup.

How it stays correct while it changes (docs/live-reload.md has the whole story):

* **One reference.**  Every answer comes from one immutable
  :class:`~ipallow.Allowlist` reached through one attribute.  A reload
  parses and compiles the new list completely, off to the side, then
  replaces that attribute: a reader sees the old list or the new one, never
  a mixture, and never waits for a build.
* **The file, only when complete.**  A daemon thread polls the file's
  identity (device, inode, size, mtime and ctime in nanoseconds).  A changed
  file is read, and swapped in only once it is *complete*: either it stayed
  exactly the same (identity and content) across ``settle`` seconds, or it
  proves itself complete -- a compiled snapshot whose checksums all verify,
  or a file whose SHA-256 matches the checksum file ``<file>.sha256`` beside
  it.  A writer flushing a half-written export (even one that ends on a line
  boundary and so parses) is therefore never served, whether it writes in
  place, deletes and recreates, or renames.  Content identical to what was
  last read swaps nothing.  A file modified within the last two seconds is
  re-read on the next poll as well, because a timestamp tick can hide a
  same-size rewrite.
* **The clock.**  Each list knows the interval ``[since, until)`` between
  two lifecycle boundaries (``valid_from`` / ``expires_at`` of active
  records) in which it is right.  The thread compiles the *next* list ahead
  of time; a reader that finds the clock past ``until`` switches to the
  prebuilt next list itself, so an expiry takes effect at its instant, not a
  poll later.  If the next list is not ready (boundaries closer together
  than a build, a clock step), the reader keeps answering from the current
  list, counts it in :attr:`LiveAllowlist.stale_answers`, and wakes the
  thread: readers never build.
* **Failures.**  A parse error, a missing, unreadable, empty or truncated
  file, a checksum file that does not match, or a list that lost more than
  ``max_loss`` of its registrations keeps the old list serving, once the file
  has stayed that way for ``settle`` seconds (a file being written is not a
  failure): it sets :attr:`~LiveAllowlist.last_error`, counts in
  :attr:`~LiveAllowlist.failures` and ``consecutive_failures``, is logged on
  the ``ipallow.live`` logger, and is retried when the file changes again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import stat as stat_module
import threading
import time
import weakref
from datetime import datetime, timezone
from typing import Any, Callable

from ipallow import snapshot
from ipallow.allowlist import Allowlist
from ipallow.registry import Registry, parse_registry

__all__ = ["LiveAllowlist", "ReloadRefused"]

log = logging.getLogger("ipallow.live")

UTC = timezone.utc
_RACY_SECONDS = 2.0      # a file modified more recently than this is re-read on the next poll
_JOIN_SECONDS = 10.0     # close() waits at most this long for a build in progress
_FIRST_LOAD_SETTLES = 10  # the constructor waits about this many settle intervals for a stable file
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


class _Snapshot:
    """One compiled list and the interval of time in which it is right."""

    __slots__ = ("allowlist", "registry", "since", "until", "next", "generation")

    def __init__(self, allowlist: Allowlist, registry: Registry, since: float, until: float) -> None:
        self.allowlist = allowlist
        self.registry = registry
        self.since = since          # POSIX seconds; -inf: no earlier boundary
        self.until = until          # +inf: no later boundary
        self.next: _Snapshot | None = None   # prebuilt list for [until, ...)
        self.generation = 0


def _registrations(snap: _Snapshot) -> int:
    """Registrations in the source a list came from (a snapshot source: its own count)."""
    return len(snap.registry) if snap.registry is not None else len(snap.allowlist)


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


def _stop_thread(stop: threading.Event, wake: threading.Event) -> None:
    stop.set()
    wake.set()


class LiveAllowlist:
    """The current allowlist of a registry that changes, reloaded and swapped atomically.

    Answers ``in``, :meth:`lookup`, :meth:`contains_many`, :meth:`lookup_many`
    and :meth:`explain` from the current compiled :class:`~ipallow.Allowlist`
    (see the module documentation for how reloads and lifecycle boundaries
    are handled).  ``lookup_many`` indices refer to the allowlist that
    answered; to use indices across calls, take ``al = live.current`` once
    and ask ``al``.

    Cost: each call reads the clock and goes through one Python method, about
    100-150 ns over the same call on an :class:`~ipallow.Allowlist`.  For a
    tight loop take ``al = live.current`` once per unit of work (it is
    immutable), or use the batch methods, which pay it once per array.

    Arguments:
        source: path of a registry file (CSV or JSON Lines, see
            :func:`ipallow.load_registry`) or of a compiled snapshot
            (``ipallow compile`` / :meth:`Allowlist.save`: memory-mapped, no
            lifecycle of its own), or a :class:`~ipallow.Registry` /
            iterable of :class:`~ipallow.Registration` (then only the clock
            changes the list).
        poll: seconds between file checks by the background thread; ``None``
            starts no thread (call :meth:`check` yourself).
        settle: seconds a changed file must stay exactly the same before it
            is swapped in (default: one poll interval, at least 1 s).  A
            compiled snapshot that verifies, or a file matching its
            ``<file>.sha256``, is complete at once and does not wait.  A
            writer that pauses longer than this in the middle of a file can
            fool it: such writers should publish by rename or with a
            checksum file.  ``0`` swaps in whatever one read finds (only for
            writers that publish by rename).  The first load waits for this
            too (at most ten intervals, then OSError).
        max_loss: refuse a reloaded registry with more than this share of the
            serving registry's registrations missing (0..1; 1 disables).
        clock: returns POSIX seconds (default :func:`time.time`); inject a
            fake one in tests.
        format: ``"csv"`` / ``"jsonl"`` to override format detection.

    Raises:
        ParseError / OSError / ReloadRefused / SnapshotError: the first load
            failed (there is no old list to keep serving).
        TypeError / ValueError: bad arguments.

    >>> with LiveAllowlist(ipallow.SAMPLE_LIST, poll=None) as live:
    ...     "203.0.113.9" in live, live.generation
    (True, 1)
    """

    def __init__(self, source: Any, *, poll: float | None = 1.0, max_loss: float = 0.5,
                 clock: Callable[[], float] = time.time, format: str | None = None,
                 settle: float | None = None) -> None:
        if source is None or isinstance(source, (bytes, bool)):
            raise TypeError(f"source must be a path, a Registry or an iterable of Registration, "
                            f"not {type(source).__name__}")
        if poll is not None:
            if isinstance(poll, bool) or not isinstance(poll, (int, float)):
                raise TypeError(f"poll must be seconds (a number) or None, not {type(poll).__name__}")
            if not (math.isfinite(poll) and poll > 0):
                raise ValueError(f"poll must be a positive number of seconds, got {poll!r}")
        if isinstance(max_loss, bool) or not isinstance(max_loss, (int, float)):
            raise TypeError(f"max_loss must be a number, not {type(max_loss).__name__}")
        if not 0 <= max_loss <= 1:
            raise ValueError(f"max_loss must be between 0 and 1, got {max_loss!r}")
        if not callable(clock):
            raise TypeError(f"clock must be callable, not {type(clock).__name__}")
        if settle is None:
            settle = max(1.0, poll or 0.0)
        elif isinstance(settle, bool) or not isinstance(settle, (int, float)):
            raise TypeError(f"settle must be seconds (a number) or None, not {type(settle).__name__}")
        elif not (math.isfinite(settle) and settle >= 0):
            raise ValueError(f"settle must be zero or a positive number of seconds, got {settle!r}")
        self._settle = float(settle)
        self._clock = clock
        self._now()   # a clock that does not return seconds fails here, not in a reader
        self._poll = poll
        self._max_loss = float(max_loss)
        self._format = format

        self._path: str | None = None
        self.source = source
        if isinstance(source, (str, os.PathLike)):
            self._path = os.fsdecode(os.fspath(source))
            self.source = self._path
            static = None
        elif isinstance(source, Registry):
            static = source
        else:
            static = Registry(source)

        self._lock = threading.RLock()        # loads, builds, swaps: one at a time (readers never take it)
        self._swap_lock = threading.Lock()    # the reference swap itself (readers take it at a boundary)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen_key: tuple | None = None   # file identity of the last attempt (success or failure)
        self._seen_content: tuple | None = None   # what that attempt read (see _Pending.content)
        self._pending: _Pending | None = None     # a changed file waiting to settle
        self._racy = False
        self.failures = 0
        self.consecutive_failures = 0
        self.reloads = 0
        self.stale_answers = 0
        self.last_error: BaseException | None = None
        self.last_error_at: datetime | None = None
        self.loaded_at: datetime | None = None

        if static is not None:
            self._snap = self._build(static, self._now())
            self._snap.generation = 1
            self.reloads = 1
            self.loaded_at = self._utc(self._now())
        else:
            self._snap = None  # type: ignore[assignment]
            self._first_load()
        self._prebuild()
        if poll is not None:
            self._thread = threading.Thread(
                target=_run, args=(weakref.ref(self), self._stop, self._wake),
                name=f"ipallow-live({self.source if self._path else 'registry'})", daemon=True)
            weakref.finalize(self, _stop_thread, self._stop, self._wake)
            self._thread.start()

    # -- answers --------------------------------------------------------------------

    def _current(self) -> Allowlist:
        snap = self._snap
        now = self._clock()
        if snap.since <= now < snap.until:
            return snap.allowlist
        return self._catch_up(snap, now)

    def _catch_up(self, snap: _Snapshot, now: float) -> Allowlist:
        """The clock left the current list's interval: switch to the prebuilt next list."""
        nxt = snap.next
        if nxt is not None and nxt.since <= now < nxt.until:
            with self._swap_lock:
                if self._snap is snap:
                    nxt.generation = snap.generation + 1
                    self._snap = nxt
            self._wake.set()          # the thread prebuilds the one after
            return nxt.allowlist
        current = self._snap
        if current is not snap and current.since <= now < current.until:
            return current.allowlist
        self.stale_answers += 1       # approximate under contention; for monitoring
        self._wake.set()
        return current.allowlist

    def __contains__(self, ip: Any) -> bool:
        # _current() inlined: this is the hot path (a Python method call is ~40 ns here).
        snap = self._snap
        now = self._clock()
        if snap.since <= now < snap.until:
            return ip in snap.allowlist
        return ip in self._catch_up(snap, now)

    def lookup(self, ip: Any):
        """The longest registration covering ``ip`` that counts now (see :meth:`Allowlist.lookup`)."""
        snap = self._snap
        now = self._clock()
        if snap.since <= now < snap.until:
            return snap.allowlist.lookup(ip)
        return self._catch_up(snap, now).lookup(ip)

    def contains_many(self, addresses: Any, out: Any = None):
        """Batch membership, all from one list (see :meth:`Allowlist.contains_many`)."""
        return self._current().contains_many(addresses, out)

    def lookup_many(self, addresses: Any, out: Any = None):
        """Batch registration indices, all from one list (see :meth:`Allowlist.lookup_many`)."""
        return self._current().lookup_many(addresses, out)

    def explain(self, ip: Any, at: Any = None) -> list:
        """Every registration covering ``ip`` and whether it counts at ``at`` (default: now).

        See :meth:`Allowlist.explain`.
        """
        if at is None:
            at = self._now()
        return self._current().explain(ip, at)

    @property
    def current(self) -> Allowlist:
        """The allowlist answering now (immutable: keep it to ask several questions of one list)."""
        return self._current()

    @property
    def registry(self) -> Registry | None:
        """The registry the current list was compiled from (every record, whatever its standing);
        None when the source is a compiled snapshot."""
        return getattr(self._current(), "_registry", None)

    def __len__(self) -> int:
        """Registrations that count now."""
        return len(self._current())

    # -- monitoring ------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Increases by one at every swap (a reload or a lifecycle boundary); 1 after the first load."""
        return self._snap.generation

    @property
    def next_boundary(self) -> datetime | None:
        """When the current list stops being right by the clock alone, or None."""
        until = self._snap.until
        return None if math.isinf(until) else self._utc(until)

    @property
    def counts(self) -> dict[str, int]:
        """``registrations`` (in the registry), ``active`` (counting now), ``ipv4_prefixes``, ``ipv6_prefixes``."""
        al = self._current()
        prefixes = al.prefix_count
        registry = getattr(al, "_registry", None)
        return {"registrations": len(registry) if registry is not None else len(al), "active": len(al),
                "ipv4_prefixes": prefixes[4], "ipv6_prefixes": prefixes[6]}

    def status(self) -> dict[str, Any]:
        """Everything a monitoring probe wants, as one dict (docs/live-reload.md describes each field).

        ``failures`` counts every failed reload since the start and
        ``consecutive_failures`` those since the last good one (0: healthy).
        ``last_error`` / ``last_error_at`` describe the most recent failure and
        are kept after a good reload, as history: the list recovered when
        ``last_error_at`` is before ``loaded_at``.  ``pending_since`` is when a
        changed file was first seen that is not complete yet (None: nothing
        waiting); a value that keeps ageing means a writer that never stops.
        """
        pending = self._pending
        return {
            "source": self.source,
            "generation": self.generation,
            "loaded_at": self.loaded_at,
            "reloads": self.reloads,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "last_error": None if self.last_error is None else str(self.last_error),
            "last_error_at": self.last_error_at,
            "pending_since": None if pending is None else self._utc(pending.seen_at),
            "settle": self._settle,
            "stale_answers": self.stale_answers,
            "next_boundary": self.next_boundary,
            "polling": self._thread is not None and self._thread.is_alive(),
            **self.counts,
        }

    def __repr__(self) -> str:
        c = self.counts
        return (f"<LiveAllowlist {self.source if self._path else 'registry'}: generation "
                f"{self.generation}, {c['active']:,} of {c['registrations']:,} registrations counting, "
                f"{self.failures} failed reloads>")

    # -- changing --------------------------------------------------------------------

    def reload(self, *, force: bool = False) -> int:
        """Re-read the file now, compile, swap; return the new generation.

        Unlike the background check, this neither waits for the file to
        settle (call it when you know the file is complete) nor skips content
        that is unchanged.  A checksum file that does not match is still
        refused.  ``force=True`` also skips the ``max_loss`` guard (for a
        registry that really shrank).  For a registry given as objects it
        recompiles for the current time.

        Raises:
            ParseError, SnapshotError, OSError, ReloadRefused: the reload
                failed; the old list keeps serving (and the failure is
                recorded as in the background).
        """
        with self._lock:
            if self._path is None:
                snap = self._build(self._snap.registry, self._now())
                self._swap_in(snap)
            else:
                self._load_now(guard=not force)
            self._prebuild()
            return self.generation

    def check(self) -> bool:
        """One round of what the background thread does: file, clock, prebuild.

        Reloads when the file changed and is complete, swaps when the clock
        passed a boundary, and compiles the next list ahead.  Failures are
        recorded, not raised.  Returns True when a new list was swapped in.
        """
        with self._lock:
            generation = self.generation
            if self._path is not None:
                self._follow_file(raise_errors=False)
            self._follow_clock()
            self._prebuild()
            return self.generation != generation

    def close(self) -> None:
        """Stop the background thread (the list keeps answering, frozen).  Idempotent."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_SECONDS)
            if thread.is_alive():
                log.warning("ipallow.live: the reload thread for %s did not stop within %.0f s",
                            self.source, _JOIN_SECONDS)

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def __enter__(self) -> "LiveAllowlist":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------

    def _now(self) -> float:
        now = self._clock()
        if isinstance(now, bool) or not isinstance(now, (int, float)) or math.isnan(now):
            raise TypeError(f"clock() must return POSIX seconds (a number), got {now!r}")
        return float(now)

    @staticmethod
    def _utc(t: float) -> datetime:
        return datetime.fromtimestamp(t, UTC)

    def _build(self, registry: Registry, t: float) -> _Snapshot:
        allowlist = Allowlist.from_registry(registry, at=t)
        return _Snapshot(allowlist, registry, registry._prev_boundary_ts(t), registry._next_boundary_ts(t))

    def _swap_in(self, snap: _Snapshot) -> None:
        with self._swap_lock:
            old = self._snap
            snap.generation = (old.generation if old is not None else 0) + 1
            self._snap = snap

    def _follow_clock(self) -> None:
        now = self._now()
        snap = self._snap
        if snap.since <= now < snap.until:
            return
        nxt = snap.next
        if nxt is None or not nxt.since <= now < nxt.until:
            nxt = self._build(snap.registry, now)
        with self._swap_lock:
            if self._snap is snap:
                nxt.generation = snap.generation + 1
                self._snap = nxt
        log.debug("lifecycle boundary passed: generation %d, %d registrations counting",
                  self._snap.generation, len(self._snap.allowlist))

    def _prebuild(self) -> None:
        snap = self._snap
        if snap.next is None and not math.isinf(snap.until):
            nxt = self._build(snap.registry, snap.until)
            snap.next = nxt

    # -- the file ----------------------------------------------------------------------

    def _identity(self) -> tuple:
        """What a poll compares: the file's identity and its checksum file's."""
        return _stat_key(self._path), _stat_key(self._path + CHECKSUM_SUFFIX)

    def _read(self, key: tuple) -> tuple[bytes, os.stat_result, str | None]:
        """The file's bytes, its stat and the digest its checksum file declares.

        Raises _Unsettled when the file is not the one ``key`` describes or
        changed while being read.
        """
        fd = os.open(self._path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            before = os.fstat(fd)
            if stat_module.S_ISDIR(before.st_mode):
                raise IsADirectoryError(21, "is a directory", self._path)
            with os.fdopen(os.dup(fd), "rb") as handle:
                raw = handle.read()
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if (_file_key(before) != _file_key(after) or _file_key(before) != key[0]
                or len(raw) != before.st_size):
            raise _Unsettled()
        return raw, before, _declared_digest(self._path)

    def _follow_file(self, *, raise_errors: bool) -> None:
        """Read the file if it changed; swap it in once it is complete (see the module documentation)."""
        key = self._identity()
        if key == self._seen_key and not self._racy and self._pending is None:
            return
        now = _monotonic()
        pending = self._pending
        if pending is not None and pending.key == key and now - pending.since < self._settle:
            return                  # settling: nothing to learn from reading it again yet
        error: OSError | None = None
        try:
            raw, st, declared = self._read(key)
        except _Unsettled:
            log.debug("%s changed while being read; looking again on the next poll", self._path)
            return
        except OSError as exc:
            error, self._racy = exc, False
            content: tuple = ("error", type(exc).__name__, exc.errno)
        else:
            content = (hashlib.sha256(raw).hexdigest(), declared)
            self._racy = time.time() - st.st_mtime_ns / 1e9 < _RACY_SECONDS
        if content == self._seen_content:       # touched, or replaced by the same bytes: nothing to do
            self._seen_key, self._pending = key, None
            return
        if pending is None or pending.key != key or pending.content != content:
            pending = self._pending = _Pending(key, content, now, self._now())
        settled = now - pending.since >= self._settle

        if error is not None:
            # The first load cannot wait for a file that is not there; later ones give a
            # delete-and-recreate the settle interval before calling it a failure.
            if settled or self._snap is None:
                self._tried(key, content)
                self._fail(error, raise_errors)
            return
        opened = None
        if declared is not None:                # the writer said which bytes are complete
            if declared != content[0]:
                if settled:
                    self._tried(key, content)
                    self._fail(ReloadRefused(
                        f"{self._path} does not match its checksum file {self._path}{CHECKSUM_SUFFIX} "
                        f"(still being written, or a stale checksum); not swapped in"), raise_errors)
                return
        elif raw.startswith(snapshot.MAGIC) and not settled:
            try:                                 # a snapshot whose checksums all verify is complete
                opened = self._open_snapshot(raw)
            except Exception:                    # noqa: BLE001 - incomplete so far: let it settle
                return
        elif not settled:
            return
        self._tried(key, content)
        self._take(raw, guard=True, raise_errors=raise_errors, opened=opened)

    def _tried(self, key: tuple, content: tuple) -> None:
        """Remember what was tried, so that it is tried again only when the file changes."""
        self._seen_key, self._seen_content, self._pending = key, content, None

    def _first_load(self) -> None:
        """Load the file once it is complete, waiting at most _FIRST_LOAD_SETTLES settle intervals."""
        patience = _FIRST_LOAD_SETTLES * self._settle + 1.0     # + a file replaced mid-read, settle=0
        deadline = _monotonic() + patience
        while True:
            self._follow_file(raise_errors=True)
            if self._snap is not None:
                return
            now = _monotonic()
            if now >= deadline:
                raise OSError(f"{self._path} kept changing for {patience:g} s "
                              f"(settle={self._settle:g} s); not loaded")
            pending = self._pending
            due = pending.since + self._settle if pending is not None else now + min(self._settle, 0.05)
            _sleep(max(min(due, deadline) - now, 0.001))

    def _load_now(self, *, guard: bool) -> None:
        """reload(): read the file as it is now and swap it in, raising what fails."""
        key = self._identity()
        try:
            raw, st, declared = self._read(key)
        except _Unsettled:
            raise OSError(f"{self._path} changed while being read; try again") from None
        except OSError as exc:
            self._tried(key, ("error", type(exc).__name__, exc.errno))
            self._racy = False
            self._fail(exc, True)
        content = (hashlib.sha256(raw).hexdigest(), declared)
        self._tried(key, content)
        self._racy = time.time() - st.st_mtime_ns / 1e9 < _RACY_SECONDS
        if declared is not None and declared != content[0]:
            self._fail(ReloadRefused(f"{self._path} does not match its checksum file "
                                     f"{self._path}{CHECKSUM_SUFFIX}; not swapped in"), True)
        self._take(raw, guard=guard, raise_errors=True)

    def _open_snapshot(self, raw: bytes) -> _Snapshot:
        """Serve a compiled snapshot from the bytes read (private memory: a later rewrite of the
        file cannot change or fault it), with every section verified now."""
        compiled = snapshot.from_buffer(raw, self._path)
        for name in (*snapshot.LAZY, "data", "lifecycle"):
            getattr(compiled, name, None)    # verifies the sections lookups do not read eagerly
        # A plain list's snapshot is right at all times; a registry's serves until its
        # next boundary, then follows the clock like the CSV.
        allowlist = Allowlist._from_compiled(compiled)
        return _Snapshot(allowlist, getattr(allowlist, "_registry", None), *allowlist._window())

    def _take(self, raw: bytes, *, guard: bool, raise_errors: bool, opened: _Snapshot | None = None) -> bool:
        """Parse and compile ``raw`` (a complete file) and swap it in; on failure keep the old list."""
        try:
            if not raw.strip():
                raise ReloadRefused(f"{self._path} is empty ({len(raw)} bytes); not loaded")
            if opened is not None or raw.startswith(snapshot.MAGIC):
                snap = opened if opened is not None else self._open_snapshot(raw)
                registry = snap.registry          # a registry's snapshot carries its registry
            else:
                snap = None
                registry = parse_registry(raw, self._path, format=self._format)
            count = len(registry) if registry is not None else len(snap.allowlist)
            old = self._snap
            old_count = 0 if old is None else _registrations(old)
            if guard and old_count:
                lost = (old_count - count) / old_count
                if lost > self._max_loss:
                    raise ReloadRefused(
                        f"{self._path} has {count:,} registrations where {old_count:,} "
                        f"are serving: {lost:.0%} lost, more than max_loss={self._max_loss:.0%}; "
                        f"not swapped in. reload(force=True) accepts it")
            if registry is not None and (snap is None or not snap.since <= self._now() < snap.until):
                snap = self._build(registry, self._now())
        except Exception as exc:
            return self._fail(exc, raise_errors)
        self._swap_in(snap)
        self.consecutive_failures = 0      # last_error / last_error_at stay: the latest failure, as history
        self.reloads += 1
        self.loaded_at = self._utc(self._now())
        log.info("loaded %s: generation %d, %d registrations, %d counting now",
                 self._path, snap.generation, count, len(snap.allowlist))
        return True

    def _note_failure(self, exc: BaseException) -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = exc
        try:
            self.last_error_at = self._utc(self._now())
        except Exception:         # the clock itself may be what failed
            self.last_error_at = datetime.now(UTC)

    def _fail(self, exc: BaseException, raise_errors: bool) -> bool:
        self._note_failure(exc)
        if self._snap is None:     # first load: nothing to keep serving
            raise exc
        log.warning("reload of %s failed (failure %d, %d in a row); still serving generation %d: %s",
                    self._path, self.failures, self.consecutive_failures, self.generation, exc)
        if raise_errors:
            raise exc
        return False

    def _seconds_to_settle(self) -> float | None:
        """Until the changed file waiting to settle is due for its confirming read, or None."""
        pending = self._pending
        return None if pending is None else pending.since + self._settle - _monotonic()


def _run(ref: "weakref.ref[LiveAllowlist]", stop: threading.Event, wake: threading.Event) -> None:
    """The background thread: check, then sleep until the next poll, boundary or settle, or a wake-up.

    Holds only a weak reference between rounds, so an abandoned LiveAllowlist
    is collected and its thread ends.
    """
    while not stop.is_set():
        live = ref()
        if live is None:
            return
        wake.clear()
        timeout = live._poll or 1.0
        try:
            live.check()
            remaining = live._snap.until - live._now()
            settle = live._seconds_to_settle()
            if settle is not None:
                remaining = min(remaining, settle)
            timeout = min(timeout, max(remaining, 0.001))
        except Exception as exc:     # never let the thread die; record and go on
            live._note_failure(exc)
            log.exception("ipallow.live: unexpected error while checking %s", live.source)
        del live
        wake.wait(timeout)
