"""Allowlist: the public face of one compiled, immutable snapshot."""

from __future__ import annotations

import math
import os
import pickle
import sys
from typing import TYPE_CHECKING, Any, Iterable, Iterator, NamedTuple

import numpy as np

from ipallow import _parse, _trie, snapshot
from ipallow._compile import Compiled, compile_entries
from ipallow._prefixes import host_masks
from ipallow.setops import SetAlgebra

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["Allowlist", "Match", "Entry", "load", "loads", "registration_label"]

NETWORK_CACHE_SIZE = _trie.NETWORK_CACHE_SIZE   # ipaddress networks kept per allowlist

# The longest registered prefix covering an address, as lookup() returns it: built by
# the compiled core, its ipaddress network made only when read (see _match.pxi).
Match = _trie.Match



class Entry(NamedTuple):
    """One registration: the networks it covers and its data."""

    index: int          #: position in the allowlist, in input order
    networks: tuple     #: ``ipaddress`` networks (a range gives several)
    data: Any           #: the data given with it, or None


class _LazyLifecycle:
    """``Allowlist._registry`` / ``._registry_at`` of a registry snapshot, decoded at first
    read and then kept in the instance ``__dict__`` (which, this being a non-data
    descriptor, answers every later read; ``from_registry`` sets them there directly).
    Absent (AttributeError) on an allowlist that has no registry."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, allowlist: Any, owner: Any = None) -> Any:
        if allowlist is None:
            return self
        raw = allowlist._lifecycle_raw()
        if raw is None:
            raise AttributeError(f"{type(allowlist).__name__!r} object has no attribute {self.name!r}")
        from ipallow.registry import decode_lifecycle, lifecycle_head
        try:
            if self.name == "_registry_at":
                return lifecycle_head(raw)["evaluated_at"]
            registry, at = decode_lifecycle(raw, allowlist._compiled.data)
        except ValueError as exc:
            raise snapshot.SnapshotError("<snapshot>", str(exc)) from None
        allowlist.__dict__["_registry"], allowlist.__dict__["_registry_at"] = registry, at
        return registry


class Allowlist(SetAlgebra, _trie.Index):
    """Registered IPv4/IPv6 ranges compiled into a Poptrie-style index.

    ``ip in allowlist`` is true when at least one registration covers ``ip``;
    :meth:`lookup` returns the longest matching registration.  Immutable:
    build a new one to change it (compiling a million prefixes takes well
    under a second), so it is safe to share between threads.

    Arguments:
        entries: iterable of entries or ``(entry, data)`` pairs.  An entry is a
            CIDR or address string, a range ``"a - b"``, an int, 4/16 packed
            bytes, or an ``ipaddress`` / ``netaddr`` address, network or range.
        strict: host bits set in a CIDR (``10.0.0.1/8``) raise
            :class:`~ipallow.AddressError`; with ``strict=False`` they are
            cleared and one :class:`~ipallow.HostBitsWarning` says how many.

    Raises:
        TypeError: an entry of no accepted type.
        AddressError: a malformed entry (a ``ValueError``).

    >>> al = Allowlist(["203.0.113.0/24", ("2001:db8::/32", {"id": "PTA-7"})])
    >>> "203.0.113.9" in al, al.lookup("2001:db8::1").data
    (True, {'id': 'PTA-7'})
    """

    def __init__(self, entries: Iterable[Any] = (), *, strict: bool = True) -> None:
        self._install(compile_entries(entries, strict))

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, strict: bool = True, format: str | None = None,
                  at: Any = None) -> "Allowlist":
        """Load a list, registry or snapshot file (told apart by content; see :mod:`ipallow.loaders`).

        Text files: one entry per line (CIDR, address or range ``a - b``);
        ``#`` starts a comment; blank lines are ignored.  CSV lists: a header
        row with a ``cidr`` (or ``network`` / ``ip``) column; every other
        column becomes the registration's data (a dict).  Registries (CSV
        whose header has an ``id`` column, or JSON Lines): the registrations
        that count at ``at`` (default: now), as :meth:`from_registry` gives
        them.  Snapshots: read into private memory (see :func:`ipallow.load` for shared pages).

        Arguments:
            format: one of ``txt``, ``csv``, ``jsonl``, ``registry-csv``,
                ``snapshot`` to override the recognition (``csv`` reads a
                registry CSV as a plain list: every row counts).
            at: for a registry: the instant whose registrations count.

        Raises:
            ParseError: listing every bad line as ``path:line:col: message``;
                nothing is loaded.
            SnapshotError: a snapshot (or ``format="snapshot"``) that is not valid.
            OSError: the file cannot be read.

        >>> Allowlist.from_file(ipallow.SAMPLE_LIST).lookup("203.0.113.9").data.id
        'PTA-0003'
        """
        from ipallow import loaders
        return cls._from_loaded(loaders.load(path, format=format, strict=strict), at)

    @classmethod
    def _from_loaded(cls, loaded: Any, at: Any = None) -> "Allowlist":
        """An allowlist of what :func:`ipallow.loaders.load` read: for a registry, the
        registrations counting at ``at``."""
        if loaded.registry is not None:
            return cls.from_registry(loaded.registry, at=at)
        assert loaded.compiled is not None        # one of the two is always set
        return cls._from_compiled(loaded.compiled)

    @classmethod
    def from_registry(cls, source: Any, at: Any = None) -> "Allowlist":
        """Compile the registrations of a registry that count at ``at`` (default: now).

        A registration counts when its status is ``active`` and
        ``valid_from <= at < expires_at``.  :meth:`lookup` returns the
        :class:`~ipallow.Registration` as ``data``; indices refer to the
        counting registrations only, in natural id order (``PTA-9`` before
        ``PTA-10``, see :func:`ipallow.registry.id_key`), so the same registry
        in any row order compiles identically and, of several registrations
        of the same prefix, the lowest id answers.  The full registry is
        kept for :meth:`explain`.

        Arguments:
            source: a registry file (CSV or JSON Lines, see
                :func:`ipallow.load_registry`), a :class:`~ipallow.Registry`, or
                an iterable of :class:`~ipallow.Registration`.
            at: an aware datetime, a date, POSIX seconds, or None for now.

        Raises:
            ParseError: the file has bad records (all listed; nothing loaded).
            OSError: the file cannot be read.
            TypeError / ValueError: a bad ``source`` or ``at``.

        >>> Allowlist.from_registry(ipallow.SAMPLE_LIST).lookup("203.0.113.9").data.id
        'PTA-0003'
        """
        from ipallow.registry import Registry, load_registry, to_timestamp
        t = to_timestamp(at)
        if isinstance(source, (str, os.PathLike)):
            registry = load_registry(source)
        elif isinstance(source, Registry):
            registry = source
        else:
            registry = Registry(source)
        self = cls._from_compiled(registry._compile(t))
        self._registry = registry
        self._registry_at = t
        return self

    @classmethod
    def from_mmdb(cls, path: str | os.PathLike, where: Any = None) -> "Allowlist":
        """Every network of a MaxMind DB (``.mmdb``) whose record matches ``where``.

        One registration per network, the record (a dict) as its data; IPv4
        networks of an IPv6 database are IPv4 networks.  See docs/mmdb.md.

        Arguments:
            where: a callable taking a record (true: keep its networks), a
                ``--where`` expression such as ``'country.iso_code == "PK"'``
                (see :func:`ipallow.mmdb.where`), or None for every network.

        Raises:
            TypeError: ``where`` is neither callable, str nor None.
            WhereError: a bad expression (a ``ValueError`` naming the column).
            ValueError: the file is not a valid MaxMind DB.
            OSError: the file cannot be read.
        """
        from ipallow import mmdb
        if isinstance(where, str):
            where = mmdb.where(where)
        return cls._from_compiled(mmdb.read(path, where))

    # -- lifecycle: a registry's allowlist is right between two boundaries ----------

    # A snapshot of a registry carries the full registry and the instant it was evaluated
    # at; they are decoded only when asked (explain, --at, live, diff).  Descriptors, not a
    # __getattr__: a class with __getattr__ loses CPython's fast attribute path, and every
    # ``al.lookup(q)`` paid for it (~40% of the call on a big table).
    _registry = _LazyLifecycle("_registry")
    _registry_at = _LazyLifecycle("_registry_at")

    def _lifecycle_raw(self):
        compiled = self.__dict__.get("_compiled")
        return getattr(compiled, "lifecycle", None) if compiled is not None else None

    @property
    def evaluated_at(self):
        """For an allowlist of a registry (:meth:`from_registry`, or a snapshot of one):
        the instant (aware UTC datetime) whose counting registrations it holds; else None."""
        at = getattr(self, "_registry_at", None)
        if at is None:
            return None
        from datetime import datetime, timezone
        return datetime.fromtimestamp(at, timezone.utc)

    def _window(self) -> tuple[float, float]:
        """POSIX ``[since, until)`` around :attr:`evaluated_at` in which no registration
        starts or stops counting (``(-inf, inf)`` for a plain list)."""
        registry = self.__dict__.get("_registry")
        if registry is None:
            raw = self._lifecycle_raw()
            if raw is None:
                return -math.inf, math.inf
            from ipallow.registry import lifecycle_head
            head = lifecycle_head(raw)
            return head["since"], head["until"]
        at = self._registry_at
        return registry._prev_boundary_ts(at), registry._next_boundary_ts(at)

    def reevaluated(self, at: Any = None) -> "Allowlist":
        """This allowlist as it stands at ``at`` (default: now).

        For an allowlist of a registry (:meth:`from_registry`, or a snapshot of
        one): itself when no registration starts or stops counting between
        :attr:`evaluated_at` and ``at``, else the registry compiled at ``at``.
        A plain list has no lifecycle: it is returned as is.

        Raises:
            ValueError: the allowlist holds registry records but not their
                lifecycle (a snapshot written by an older ipallow, or built
                from Registration pairs by hand), so it cannot answer for
                another instant.
            TypeError / ValueError: a bad ``at`` (see :meth:`from_registry`).
        """
        from ipallow.registry import Registration, to_timestamp
        t = to_timestamp(at)
        if "_registry" not in self.__dict__ and self._lifecycle_raw() is None:
            data = self._compiled.data
            if data is not None and len(data) and isinstance(data[0], Registration):
                raise ValueError("its registrations were compiled without their validity windows "
                                 "(a snapshot written by an older ipallow?), so it can only answer "
                                 "for the instant it was compiled at; compile the registry again")
            return self
        since, until = self._window()
        if since <= t < until:
            return self
        return type(self).from_registry(self._registry, at=t)

    def explain(self, ip: Any, at: Any = None) -> list:
        """Every registration covering ``ip``, longest first, each with whether it counts and why not.

        For an allowlist built by :meth:`from_registry` this includes the
        registrations that do not count (suspended, revoked, pending, expired,
        not yet valid), judged at ``at`` (default: the instant the allowlist
        was compiled for, so it agrees with :meth:`lookup`).  For other
        allowlists every covering entry counts.  Returns a list of
        :class:`~ipallow.Explanation` ``(registration, network, counts, code,
        reason)``.

        Raises:
            TypeError / AddressError: as :meth:`lookup`.

        >>> [e.code for e in Allowlist(["10.0.0.0/8"]).explain("10.1.2.3")]
        ['listed']
        """
        from ipallow.registry import Explanation, explain_matches, to_timestamp
        registry = getattr(self, "_registry", None)
        if registry is None:
            if at is not None:
                to_timestamp(at)   # validate anyway
            return [Explanation(m.data, m.network, True, "listed", "listed in this allowlist")
                    for m in self.covering(ip)]
        t = self._registry_at if at is None else to_timestamp(at)
        # The whole registry (suspended, expired, pending ... records included), each
        # record judged at t: the first that counts is the one lookup returns.
        everything = self.__dict__.get("_every_record")
        if everything is None:
            everything = self.__dict__["_every_record"] = type(self)._from_compiled(registry._every_record())
        return explain_matches(everything.covering(ip), t)

    @classmethod
    def _from_compiled(cls, compiled: Compiled) -> "Allowlist":
        self = cls.__new__(cls)
        self._install(compiled)
        return self

    @property
    def compiled(self) -> Compiled:
        """The compiled snapshot this allowlist serves: its prefix table (``version``, ``hi``,
        ``lo``, ``prefixlen``, one row a prefix), the registration of each prefix
        (``prefix_reg``), the registrations' ``data`` and the trie tables.

        The interface ipallow's own modules (export, diff, bench, the commands) read the
        tables through; treat every array as read-only: the allowlist is immutable and
        shared.
        """
        return self._compiled

    def _install(self, compiled: Compiled) -> None:
        # Tables first: they refuse a second install (and corrupt arrays), and the
        # registrations must not change unless the tables that answer for them do.
        self._set_tables(*compiled.tables, compiled.prefix_reg)
        self._network_cache: dict = {}
        self._compiled = compiled

    def _load_answers(self) -> None:
        # Called by the core at the first lookup(), not at install: a snapshot reads and
        # checks its prefix table only when something first needs it.
        c = self._compiled
        self._set_answers(c.version, c.hi, c.lo, c.prefixlen, c.data, self._network_cache)

    # -- single lookups ------------------------------------------------------

    def contains_many(self, addresses: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Membership of every address: a numpy ``bool`` array.

        Arguments:
            addresses: a numpy ``uint32`` array (IPv4); an ``(n, 2)`` ``uint64``
                array (IPv6 high, low words); an ``(n, 16)`` / ``(n, 4)`` ``uint8``
                or ``S16`` / ``V16`` / ``S4`` / ``V4`` array of packed addresses; a
                numpy ``U`` / ``S`` array of address text; a list of addresses in any
                accepted form; or a pyarrow string array / chunked array or a
                pandas Series / Index of address text, read from its Arrow
                buffers in place (see :mod:`ipallow.dataframe` for a mask of
                null and unparseable rows instead of an error).
            out: optional preallocated C-contiguous ``bool`` array of length n.

        ``S4`` / ``S16`` arrays are packed bytes only when they cannot be text:
        one with a row of valid address text, or with only printable or empty
        rows (text with missing values), raises ValueError instead of being read
        either way; ``.astype(str)`` says text, ``.view("V16")`` packed bytes.

        Raises:
            TypeError: an unsupported container, dtype or element type.
            ValueError: a bad shape or integer; an ``S4`` / ``S16`` array that may be
                text; ``AddressError`` for an unparseable element,
                ``dataframe.BadRowError`` for a null or unparseable row of a
                pyarrow / pandas column (both name the row).

        >>> Allowlist(["10.0.0.0/8"]).contains_many(["10.1.2.3", "8.8.8.8"]).tolist()
        [True, False]
        """
        if _is_column(addresses):
            from ipallow import _columns
            return _into(out, _columns.contains_many(addresses, self, strict=True).values)
        return super().contains_many(addresses, out)

    def lookup_many(self, addresses: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Registration index of the longest match of every address, ``-1`` where none.

        Takes the same inputs as :meth:`contains_many`; returns ``int32``.

        >>> Allowlist(["10.0.0.0/8", "10.1.0.0/16"]).lookup_many(["10.1.2.3", "11.0.0.1"]).tolist()
        [1, -1]
        """
        if _is_column(addresses):
            from ipallow import _columns
            return _into(out, _columns.lookup_many(addresses, self, self._compiled.prefix_reg,
                                                   strict=True).values)
        return super().lookup_many(addresses, out)

    def covering(self, ip: Any) -> list[Match]:
        """Every registered prefix covering ``ip``, longest first (ties: input order).

        Unlike :meth:`lookup` this scans the prefix table (vectorised, O(n)):
        meant for explaining a verdict, not for the hot path.

        >>> [m.network for m in Allowlist(["10.0.0.0/8", "10.1.0.0/16"]).covering("10.1.2.3")]
        [IPv4Network('10.1.0.0/16'), IPv4Network('10.0.0.0/8')]
        """
        version, value = _trie.address_key(ip)
        c = self._compiled
        # A prefix covers ip when they agree outside its host bits, word by word.
        host_hi, host_lo = host_masks(_parse.MAX_BITS[version], c.prefixlen)
        hi_q, lo_q = np.uint64(value >> 64), np.uint64(value & 0xFFFFFFFFFFFFFFFF)
        hit = ((c.version == version) & (((c.hi ^ hi_q) & ~host_hi) == 0)
               & (((c.lo ^ lo_q) & ~host_lo) == 0))
        # Rows in input order (reg_rows lists them so), then longest first, stably.
        prefixes = c.reg_rows[np.flatnonzero(hit[c.reg_rows])]
        prefixes = prefixes[np.argsort(-c.prefixlen[prefixes].astype(np.int64), kind="stable")]
        return [Match(self._network(int(p)), int(c.prefix_reg[p]),
                      c.data[int(c.prefix_reg[p])] if c.data is not None else None)
                for p in prefixes]

    # -- network queries and set algebra (docs/set-algebra.md) -------------------

    def _network(self, prefix: int):
        # Building an ipaddress network costs microseconds, far more than the
        # lookup; gateways ask about the same few networks again and again.
        c = self._compiled
        value = (int(c.hi[prefix]) << 64) | int(c.lo[prefix])
        return _trie.network_of(self._network_cache, prefix, int(c.version[prefix]), value,
                                int(c.prefixlen[prefix]))

    # -- the registrations -----------------------------------------------------

    def __len__(self) -> int:
        return len(self._compiled.reg_first) - 1

    def __getitem__(self, index: int) -> Entry:
        """The registration at ``index`` (negative counts from the end)."""
        count = len(self)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"registration index must be an int, not {type(index).__name__}")
        index = int(index)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("registration index out of range")
        c = self._compiled
        networks = tuple(self._network(int(p)) for p in c.rows_of(index))
        return Entry(index, networks, c.data[index] if c.data is not None else None)

    def __iter__(self) -> Iterator[Entry]:
        for index in range(len(self)):
            yield self[index]

    @property
    def prefix_count(self) -> dict[int, int]:
        """Number of compiled prefixes per IP version, e.g. ``{4: 1000, 6: 12}``."""
        version = self._compiled.version
        return {4: int(np.count_nonzero(version == 4)), 6: int(np.count_nonzero(version == 6))}

    def __repr__(self) -> str:
        counts = self.prefix_count
        return (f"<{type(self).__name__}: {len(self):,} registrations, "
                f"{counts[4]:,} IPv4 and {counts[6]:,} IPv6 prefixes>")

    # -- snapshots and pickling ----------------------------------------------------

    def save(self, path: str | os.PathLike, *, created: int | datetime | None = None) -> None:
        """Write a snapshot file that :func:`ipallow.load` opens back in milliseconds.

        A file is replaced atomically (temporary file, fsync, rename); a
        symlink's target is replaced the same way; a FIFO or character device
        is written through (see :mod:`ipallow._output`).  The str ``"-"``
        writes the snapshot to standard output (``sys.stdout.buffer``), as
        ``-o -`` does on the command line; ``pathlib.Path("-")`` or ``"./-"``
        is a file named ``-``.  The
        same allowlist always gives the same bytes for the same ``created``
        (Unix seconds or an aware datetime; default ``$SOURCE_DATE_EPOCH`` if
        set, else now).  Registration data must be JSON (or a type registered
        with :func:`ipallow.snapshot.register_json_type`).

        Raises:
            TypeError: registration data that cannot be saved; ``created`` of
                another type than int or datetime; ``"-"`` when ``sys.stdout``
                has no binary ``buffer`` (a text stream such as io.StringIO).
            ValueError: ``created`` negative, out of range or a naive datetime.
            OSError: the file cannot be written (nothing is replaced then), or
                ``path`` is a directory, a block device or a socket.
        """
        if isinstance(path, str) and path == "-":
            self._save_to_stdout(created)
            return
        snapshot.save(self._compiled, path, created, lifecycle=self._lifecycle_section())

    def _save_to_stdout(self, created: int | datetime | None) -> None:
        out = getattr(sys.stdout, "buffer", None)
        if out is None:
            raise TypeError(f"save('-') writes bytes to sys.stdout.buffer, but sys.stdout "
                            f"({type(sys.stdout).__name__}) has none; pass a file path")
        sys.stdout.flush()          # text already printed goes out before the snapshot
        snapshot.write_to(out, self._compiled, created, self._lifecycle_section())
        out.flush()

    def _lifecycle_section(self) -> bytes | None:
        """A registry's lifecycle for its snapshot (see :meth:`reevaluated`), or None."""
        raw = getattr(self._compiled, "lifecycle", None)
        if raw is not None:                  # a snapshot of a registry: keep its section as is
            return raw
        registry = self.__dict__.get("_registry")
        if registry is None:
            return None
        from ipallow.registry import encode_lifecycle
        return encode_lifecycle(registry, self._registry_at, self._compiled.data or ())

    def export_mmdb(self, path: str | os.PathLike, *, family: str = "inet", description: str | None = None,
                    build_epoch: int | None = None) -> dict:
        """Write the registrations as a MaxMind DB (``.mmdb``) for nginx's geoip2 module and
        every MaxMind reader; returns a summary (``node_count``, ``record_size``, ...).

        Each address answers with the record of the registration :meth:`lookup`
        returns (longest match, exactly): ``id``, ``owner``, ``category``,
        ``status``, ``expires_at`` for a registry, the columns of a CSV list
        (see :func:`ipallow.mmdb.record_of`).  ``family="inet"``: IPv4 and IPv6 in
        one file, IPv4 under ``::/96`` and ``::ffff:0:0/96``; ``"ip"`` / ``"ip6"``:
        one family.  The file is replaced atomically, as :meth:`save` does.
        See docs/mmdb.md.

        Raises:
            TypeError / ValueError: registration data with no MaxMind DB form; a bad ``family``.
            OSError: the file cannot be written (nothing is replaced then).
        """
        from ipallow import _output, mmdb
        os.fspath(path)                  # a wrong type fails before the work
        data, summary = mmdb.to_bytes(self._compiled, family=family, description=description,
                                      build_epoch=build_epoch)
        _output.write_bytes(path, data)
        return summary

    @property
    def shared(self) -> bool:
        """True while this allowlist serves from a snapshot file's own pages (``load(share=True)``).

        False for compiled lists, private copies (the default) and shared ones
        that a writer or :meth:`close` moved into private memory.
        """
        file = getattr(self._compiled, "file", None)
        return file is not None and file.shared

    def close(self) -> None:
        """Let go of the snapshot file: its lease and descriptor (``load(share=True)``).

        The pages are first copied into private memory in place, so the
        allowlist keeps answering, from the same bytes; its memory goes when the
        last reference does.  Nothing to do for other allowlists; closing twice
        is harmless.
        """
        file = getattr(self._compiled, "file", None)
        if file is not None:
            file.release()

    def __enter__(self) -> "Allowlist":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __reduce_ex__(self, protocol: int):
        # Pickles carry the snapshot bytes: unpickling maps them, rebuilding nothing.
        # With protocol 5 the bytes can travel out of band (no copy into the pickle).
        buffer = getattr(self._compiled, "snapshot_buffer", None)
        if buffer is None:
            # Built once: the allowlist is immutable.  Racing threads build the same bytes.
            buffer = self.__dict__.get("_snapshot_bytes")
            if buffer is None:
                        buffer = self.__dict__["_snapshot_bytes"] = bytes(snapshot.to_bytes(self._compiled, created=0))
        # A registry-built allowlist also carries its full registry, for explain().
        state = {key: self.__dict__[key] for key in ("_registry", "_registry_at") if key in self.__dict__}
        if protocol >= 5:
            return (_from_snapshot, (type(self), pickle.PickleBuffer(buffer)), state or None)
        return (_from_snapshot, (type(self), bytes(buffer)), state or None)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


# Allowlist.lookup is the compiled core's Index.lookup itself (documented there): a Python
# method around it would double the cost of the call gateways make per flow.  It is
# described as a method of Allowlist, not taken from Index, so that CPython's specialized
# call serves ``al.lookup(q)`` (see _trie.method_of_subclass).
Allowlist.lookup = _trie.method_of_subclass(Allowlist, "lookup")


def load(path: str | os.PathLike, *, share: bool = False) -> Allowlist:
    """Open a snapshot file as an :class:`~ipallow.Allowlist` (no parsing, no rebuild).

    By default the file is read into private memory: one read, then nothing a
    writer does to the file can affect the allowlist.  ``share=True`` serves from
    the file's pages, one copy for every process on the machine, protected by a
    read lease: a writer is held by the kernel until this process has copied the
    pages into private memory.  See docs/snapshots.md for the trade-off.

    Raises:
        SnapshotError: the file is not a valid snapshot (the message says why).
        OSError: the file cannot be opened.
        TypeError: ``share`` is not a bool.
    Warns:
        NotSharedWarning: ``share=True`` but no lease could be taken (not Linux,
            not the file's owner, a network file system, the file open for
            writing, not called from the main thread the first time ...); the
            allowlist is a private copy then (``al.shared`` is False).
    """
    return Allowlist._from_compiled(snapshot.map_file(path, share=share))


def loads(buffer: Any, source: str = "<buffer>") -> Allowlist:
    """An :class:`~ipallow.Allowlist` serving from ``buffer`` (a snapshot in memory), no copy.

    The buffer must not change while the allowlist is in use.

    Raises:
        SnapshotError: the buffer is not a valid snapshot.
    """
    return Allowlist._from_compiled(snapshot.from_buffer(buffer, source))


def registration_label(data: Any, index: int) -> str:
    """The short id of a registration: its ``id`` (registry record or data column), else ``#index``."""
    rid = getattr(data, "id", None)
    if isinstance(rid, str) and rid:
        return rid
    if isinstance(data, dict):
        for key in ("id", "registration_id", "name"):
            value = data.get(key)
            if value not in (None, ""):
                return str(value)
    return f"#{index}"


def _is_column(addresses: Any) -> bool:
    """A pyarrow array or a pandas Series / Index (told apart without importing either)."""
    return type(addresses).__module__.partition(".")[0] in ("pyarrow", "pandas")


def _into(out: np.ndarray | None, values: np.ndarray) -> np.ndarray:
    if out is None:
        return values
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, not {type(out).__name__}")
    if out.dtype != values.dtype or out.shape != values.shape or not out.flags.c_contiguous \
            or not out.flags.writeable:
        raise ValueError(f"out must be a writeable C-contiguous {values.dtype} array of shape "
                         f"{values.shape}, got {out.dtype} with shape {out.shape}")
    out[...] = values
    return out


def _from_snapshot(cls, buffer) -> "Allowlist":
    if isinstance(buffer, pickle.PickleBuffer):
        buffer = buffer.raw()
    return cls._from_compiled(snapshot.from_buffer(buffer, "<pickle>"))  # validated on install
