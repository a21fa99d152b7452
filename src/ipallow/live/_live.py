"""LiveAllowlist: the serving object -- answers from one reference, reloads, swaps, failures.

Every answer comes from one immutable :class:`~ipallow.Allowlist` reached
through one attribute (``_snap``, a :class:`TimedList`); a reload or a
lifecycle boundary builds the next list off to the side and replaces that
attribute.  When a file is complete is :mod:`._watch`'s business, what list
is right when is :mod:`._timed`'s, and the thread is :mod:`._poller`'s; this
module decides what is swapped in (the ``max_loss`` guard), keeps the
counters and serves.  The package documentation has the whole story.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

from ipallow import loaders, snapshot
from ipallow.allowlist import Allowlist
from ipallow.live._poller import start as start_poller
from ipallow.live._timed import TimedList, build_at, open_snapshot
from ipallow.live._watch import ReloadRefused, WatchedFile
from ipallow.registry import Registry

log = logging.getLogger("ipallow.live")

UTC = timezone.utc
_JOIN_SECONDS = 10.0     # close() waits at most this long for a build in progress


class LiveAllowlist:
    """The current allowlist of a registry that changes, reloaded and swapped atomically.

    Answers ``in``, :meth:`lookup`, :meth:`contains_many`, :meth:`lookup_many`
    and :meth:`explain` from the current compiled :class:`~ipallow.Allowlist`
    (see :mod:`ipallow.live` for how reloads and lifecycle boundaries
    are handled).  ``lookup_many`` indices refer to the allowlist that
    answered; to use indices across calls, take ``al = live.current`` once
    and ask ``al``.

    Cost: each call reads the clock and goes through one Python method, about
    100-150 ns over the same call on an :class:`~ipallow.Allowlist`.  For a
    tight loop take ``al = live.current`` once per unit of work (it is
    immutable), or use the batch methods, which pay it once per array.

    Arguments:
        source: path of any file :meth:`Allowlist.from_file` reads, read by
            the same loader with the same errors: a registry (CSV with an
            ``id`` column, or JSON Lines, see :func:`ipallow.load_registry`),
            a plain list (one entry a line, or CSV with a ``cidr`` column: no
            lifecycle, served as it is until the file changes) or a compiled
            snapshot (``ipallow compile`` / :meth:`Allowlist.save`), or a
            :class:`~ipallow.Registry` /
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
        format: one of :data:`ipallow.loaders.FORMATS` to override format
            detection, as for :meth:`Allowlist.from_file`; ``"csv"`` reads a
            CSV with an ``id`` column as a registry (as it always did) and
            any other CSV as a plain list.

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
        if format is not None and not isinstance(format, str):
            raise TypeError(f"format must be a str or None, not {type(format).__name__}")
        if format is not None and format not in loaders.FORMATS:
            raise ValueError(f"format must be one of {', '.join(loaders.FORMATS)}, not {format!r}")
        self._format = format

        self._path: str | None = None
        self._file: WatchedFile | None = None
        self.source = source
        if isinstance(source, (str, os.PathLike)):
            self._path = os.fsdecode(os.fspath(source))
            self._file = WatchedFile(self._path, self._settle)
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
        self.failures = 0
        self.consecutive_failures = 0
        self.reloads = 0
        self.stale_answers = 0
        self.last_error: BaseException | None = None
        self.last_error_at: datetime | None = None
        self.loaded_at: datetime | None = None

        if static is not None:
            self._snap = build_at(static, self._now())
            self._snap.generation = 1
            self.reloads = 1
            self.loaded_at = self._utc(self._now())
        else:
            self._snap = None  # type: ignore[assignment]
            self._file.wait_for_first(self._first_attempt)
        self._prebuild()
        if poll is not None:
            self._thread = start_poller(
                self, LiveAllowlist._poll_round, self._stop, self._wake,
                name=f"ipallow-live({self.source if self._path else 'registry'})")

    # -- answers --------------------------------------------------------------------

    def _current(self) -> Allowlist:
        snap = self._snap
        now = self._clock()
        if snap.since <= now < snap.until:
            return snap.allowlist
        return self._catch_up(snap, now)

    def _catch_up(self, snap: TimedList, now: float) -> Allowlist:
        """The clock left the current list's interval: switch to the prebuilt next list."""
        nxt = snap.next
        if nxt is not None and nxt.since <= now < nxt.until:
            self._advance(snap, nxt)
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
        pending = self._file.pending if self._file is not None else None
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
                snap = build_at(self._snap.registry, self._now())
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

    def _swap_in(self, snap: TimedList) -> None:
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
            nxt = build_at(snap.registry, now)
        self._advance(snap, nxt)
        log.debug("lifecycle boundary passed: generation %d, %d registrations counting",
                  self._snap.generation, len(self._snap.allowlist))

    def _advance(self, snap: TimedList, nxt: TimedList) -> None:
        """A boundary passed: ``nxt`` follows ``snap``, unless another thread moved on already."""
        with self._swap_lock:
            if self._snap is snap:
                nxt.generation = snap.generation + 1
                self._snap = nxt

    def _prebuild(self) -> None:
        snap = self._snap
        if snap.next is None and not math.isinf(snap.until):
            nxt = build_at(snap.registry, snap.until)
            snap.next = nxt

    # -- the file ----------------------------------------------------------------------

    def _follow_file(self, *, raise_errors: bool) -> None:
        """Swap in the file once a poll finds it changed and complete (see :mod:`ipallow.live._watch`)."""
        found = self._file.poll(first_load=self._snap is None, clock=self._now)
        if found is None:
            return
        if found.error is not None:
            self._fail(found.error, raise_errors)
            return
        self._take(found.raw, guard=True, raise_errors=raise_errors, opened=found.opened)

    def _first_attempt(self) -> bool:
        """One try at the first load (raising what fails); True once a list is serving."""
        self._follow_file(raise_errors=True)
        return self._snap is not None

    def _load_now(self, *, guard: bool) -> None:
        """reload(): read the file as it is now and swap it in, raising what fails."""
        found = self._file.read_now()
        if found.error is not None:
            self._fail(found.error, True)
        self._take(found.raw, guard=guard, raise_errors=True)

    def _take(self, raw: bytes, *, guard: bool, raise_errors: bool, opened: TimedList | None = None) -> bool:
        """Parse and compile ``raw`` (a complete file) and swap it in; on failure keep the old list."""
        try:
            if not raw.strip():
                raise ReloadRefused(f"{self._path} is empty ({len(raw)} bytes); not loaded")
            if opened is not None or raw.startswith(snapshot.MAGIC):
                snap = opened if opened is not None else open_snapshot(raw, self._path)
                registry = snap.registry          # a registry's snapshot carries its registry
            else:
                snap, registry = self._parse(raw)
            count = len(registry) if registry is not None else len(snap.allowlist)
            old = self._snap
            old_count = 0 if old is None else old.registrations
            if guard and old_count:
                lost = (old_count - count) / old_count
                if lost > self._max_loss:
                    raise ReloadRefused(
                        f"{self._path} has {count:,} registrations where {old_count:,} "
                        f"are serving: {lost:.0%} lost, more than max_loss={self._max_loss:.0%}; "
                        f"not swapped in. reload(force=True) accepts it")
            if registry is not None and (snap is None or not snap.since <= self._now() < snap.until):
                snap = build_at(registry, self._now())
        except Exception as exc:
            return self._fail(exc, raise_errors)
        self._swap_in(snap)
        self.consecutive_failures = 0      # last_error / last_error_at stay: the latest failure, as history
        self.reloads += 1
        self.loaded_at = self._utc(self._now())
        log.info("loaded %s: generation %d, %d registrations, %d counting now",
                 self._path, snap.generation, count, len(snap.allowlist))
        return True

    def _parse(self, raw: bytes) -> tuple[TimedList | None, Registry | None]:
        """Read ``raw`` with the one loader (as :meth:`Allowlist.from_file` does): a registry to
        build from, or a plain list, right at all times (it has no lifecycle)."""
        loaded = loaders.load_bytes(raw, self._path, format=self._loader_format(raw))
        if loaded.registry is not None:
            return None, loaded.registry
        # (a snapshot never gets here: _take opens content starting with the magic itself)
        return TimedList(Allowlist._from_compiled(loaded.compiled), None, -math.inf, math.inf), None

    def _loader_format(self, raw: bytes) -> str | None:
        # "csv" meant a registry CSV before plain lists were served live; it still
        # does when the header says so (an id column), else it is a plain CSV list.
        if self._format == "csv" and loaders.detect_format(self._path, raw[:65536]) == "registry-csv":
            return "registry-csv"
        return self._format

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

    def _poll_round(self) -> float:
        """One round of the background thread: :meth:`check`; then the seconds until the next
        poll, lifecycle boundary or settled file, whichever comes first."""
        timeout = self._poll or 1.0
        try:
            self.check()
            remaining = self._snap.until - self._now()
            settle = self._file.seconds_to_settle() if self._file is not None else None
            if settle is not None:
                remaining = min(remaining, settle)
            timeout = min(timeout, max(remaining, 0.001))
        except Exception as exc:     # never let the thread die; record and go on
            self._note_failure(exc)
            log.exception("ipallow.live: unexpected error while checking %s", self.source)
        return timeout

