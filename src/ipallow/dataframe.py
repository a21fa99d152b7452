"""Columns in, columns out: classify the address columns of Arrow, pandas, numpy and Dask data.

Flow logs (NetFlow / IPFIX exports, connection logs) arrive as columns of address
text.  The functions here hand those columns to the compiled core without making
a Python object per row wherever the column's memory allows it:

=================================================  ====================================
column                                             how it is read
=================================================  ====================================
``pyarrow`` ``string`` / ``large_string`` /        the offsets and data buffers, in
``binary`` / ``large_binary`` (Array or            place (GIL released), chunk by chunk
ChunkedArray, any offset / slice)
``string_view`` / ``binary_view``                  cast to ``large_string`` first (a copy)
dictionary-encoded strings (Arrow dictionary,      the dictionary once, then a numpy
pandas ``category``)                               ``take`` by the indices
pandas ``str`` / ``string[pyarrow]`` /             its Arrow chunks, in place
``ArrowDtype(pa.string())`` Series
pandas ``object`` / ``string[python]`` Series,     the existing ``str`` objects (C loop)
numpy ``object`` arrays, lists
numpy ``U`` / ``S`` arrays                         in place (``S`` is address *text* here)
integer columns (numpy, pandas incl. nullable      IPv4 addresses as unsigned 32-bit
``Int64``/``UInt32``, Arrow ints)                  integers
=================================================  ====================================

Rows that are not an address never become a silent wrong answer.  Every row is
one of: a registration's match, no match, **null** (None, NaN, ``pd.NA``, an Arrow
null) or **unparseable** (text the strict parser refuses, e.g. ``" 1.2.3.4"``,
``"1.2.3.256"``, ``"fe80::1%eth0"``, ``""``, or a value of no address type).  The
column functions return a ``valid`` mask next to the answer (False for null and
unparseable rows, whose answer is ``False`` / ``-1``); with ``strict=True`` they
raise :class:`BadRowError` naming the first bad row instead.  :func:`match_codes`
gives the four cases as one int32 code per row.

``classify(df, column, allowlist)`` adds ``allowed`` (bool), ``registration``
(int32 registration index, -1 when not allowed) and ``valid`` (bool) columns to a
pandas or Dask DataFrame.

Dask: the allowlist reaches each worker process **once**, never once per
partition (nor once per job).  Pass either

* an :class:`~ipallow.Allowlist` -- with a ``dask.distributed`` client,
  :func:`ship` installs it in every worker process as a worker plugin: pickled
  once here (as its snapshot bytes), unpickled once per worker process, kept
  there for any number of jobs, and installed by workers that join later before
  they run a task.  The task graph carries only a token.  The shipment is
  cached per (allowlist, client), so classifying again re-uses it;
  ``Shipment.release()`` (or dropping the allowlist) frees the workers' copies;
* or the path of a snapshot file (``allowlist.save(path)``) on storage every
  worker can read: each worker process memory-maps it once (pages shared by all
  processes of a machine) and caches it.  The plan records the snapshot's
  header checksum, so a file replaced after planning is refused rather than
  mixed in.  Best for very large lists or clusters (no copy goes through the
  scheduler), and the way for Dask's local ``processes`` scheduler, which
  would otherwise pickle the allowlist into every task.

Without a distributed client (Dask's default threaded or the synchronous
scheduler) the allowlist sits in the graph once and every thread shares it.

:func:`worker_stats` (e.g. ``client.run(ipallow.dataframe.worker_stats)``) shows,
per worker process, how many shipped allowlists arrived and how many snapshot
files were mapped.

pandas, pyarrow and dask are optional: each is imported only when a column or a
frame of its kind is handed over (``pip install 'ipallow[dataframe]'``).
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import warnings
import uuid
import weakref
from typing import Any, NamedTuple

import numpy as np

from ipallow import _columns
from ipallow._columns import (NO_MATCH, NULL, UNPARSEABLE, BadRowError, ColumnMatch, pandas_or_none as _pandas_or_none,
                              prefix_codes as _prefix_codes, raise_first_bad as _raise_first_bad)
from ipallow.allowlist import Allowlist, load, registration_label

__all__ = [
    "contains_many",
    "lookup_many",
    "match_codes",
    "classify",
    "ship",
    "Shipment",
    "installed",
    "registration_labels",
    "worker_stats",
    "ColumnMatch",
    "BadRowError",
    "NO_MATCH",
    "UNPARSEABLE",
    "NULL",
]

SNAPSHOT_CACHE_SIZE = 4   # snapshot files kept mapped per process


# ---------------------------------------------------------------------------
# Public column functions
# ---------------------------------------------------------------------------

def match_codes(column: Any, allowlist: Any) -> np.ndarray:
    """One int32 code per row: the registration index, or ``NO_MATCH`` / ``UNPARSEABLE`` / ``NULL``.

    ``>= 0``: the registration of the longest matching prefix (``allowlist[i]``);
    ``NO_MATCH`` (-1): a valid address no registration covers; ``UNPARSEABLE``
    (-2); ``NULL`` (-3).  Never raises for a bad row.

    Arguments:
        column: see the module documentation for the accepted columns.
        allowlist: an :class:`~ipallow.Allowlist`; the path of a snapshot file
            (mapped once per process and cached); or, inside a Dask task, the
            :class:`Shipment` from :func:`ship` (the worker's installed copy).

    Raises:
        TypeError: a column of no supported type or dtype (float, bool, ...).

    >>> match_codes(["10.1.2.3", "8.8.8.8", "10.1.2", None], Allowlist(["10.0.0.0/8"])).tolist()
    [0, -1, -2, -3]
    """
    al = _as_allowlist(allowlist)
    return _columns.registration_codes(al, al.compiled.prefix_reg, _prefix_codes(column, al))


def contains_many(column: Any, allowlist: Any, *, strict: bool = False) -> ColumnMatch:
    """Membership of every row of an address column: ``(allowed, valid)`` numpy bool arrays.

    ``allowed`` is True where a registration covers the row's address; it is
    False for null and unparseable rows, which ``valid`` marks False.  Agrees
    with :meth:`Allowlist.contains_many` on every valid row (``::ffff:a.b.c.d``
    is looked up as ``a.b.c.d``; an IPv4 address never matches an IPv6 prefix).

    Arguments:
        column: a pyarrow (chunked) string / binary / dictionary / integer array,
            a pandas Series or Index, a numpy ``U`` / ``S`` / object / integer
            array, or a list.  ``bytes`` and ``S`` rows are ASCII address text
            (not packed addresses, unlike :meth:`Allowlist.contains_many`).
        allowlist: an :class:`~ipallow.Allowlist` or the path of a snapshot file.
        strict: raise :class:`BadRowError` for the first null or unparseable row.

    Raises:
        BadRowError: ``strict=True`` and a bad row (a ``ValueError``).
        TypeError: a column of no supported type or dtype.

    >>> allowed, valid = contains_many(["10.1.2.3", "8.8.8.8", None], Allowlist(["10.0.0.0/8"]))
    >>> allowed.tolist(), valid.tolist()
    ([True, False, False], [True, True, False])
    """
    return _columns.contains_many(column, _as_allowlist(allowlist), strict=strict)


def lookup_many(column: Any, allowlist: Any, *, strict: bool = False) -> ColumnMatch:
    """Registration index of the longest match of every row: ``(registrations, valid)``.

    ``registrations`` is int32, -1 where no registration covers the address and
    on invalid (null or unparseable) rows, which ``valid`` marks False.  Takes
    the same columns as :func:`contains_many`; agrees with
    :meth:`Allowlist.lookup_many` on every valid row.

    Raises:
        BadRowError: ``strict=True`` and a null or unparseable row.
        TypeError: a column of no supported type or dtype.

    >>> al = Allowlist(["10.0.0.0/8", "10.1.0.0/16"])
    >>> lookup_many(["10.1.2.3", "10.2.0.1", "bad"], al).values.tolist()
    [1, 0, -1]
    """
    al = _as_allowlist(allowlist)
    return _columns.lookup_many(column, al, al.compiled.prefix_reg, strict=strict)


def _is_allowlist_like(value: Any) -> bool:
    return isinstance(value, (Allowlist, str, os.PathLike, _Installed, Shipment))


def registration_labels(registrations: Any, allowlist: Any) -> list:
    """Short ids for registration indices, e.g. to label a summary grouped by ``registration``.

    Takes its arguments in the order of :func:`classify` and
    :func:`lookup_many`: the values first, then the allowlist (an
    :class:`~ipallow.Allowlist` or a snapshot path).  The id is the
    registration's ``id`` (a registry record, or an ``id`` /
    ``registration_id`` / ``name`` data field), else ``"#index"``; None for -1.
    Meant for the few distinct indices of a summary, not for every row.

    The old order ``registration_labels(allowlist, registrations)`` still
    works, with a :class:`DeprecationWarning` (an allowlist is never a
    column of indices, so the two cannot be confused).

    >>> registration_labels([0, 1, -1], Allowlist([("10.0.0.0/8", {"id": "PTA-7"}), "2001:db8::/32"]))
    ['PTA-7', '#1', None]
    """
    if _is_allowlist_like(registrations) and not _is_allowlist_like(allowlist):
        warnings.warn("registration_labels(allowlist, registrations) is deprecated: pass "
                      "registration_labels(registrations, allowlist), the order of classify() "
                      "and lookup_many()", DeprecationWarning, stacklevel=2)
        registrations, allowlist = allowlist, registrations
    al = _as_allowlist(allowlist)
    data = al.compiled.data
    labels = []
    for value in np.asarray(registrations).reshape(-1).tolist():
        index = int(value)
        if index < 0:
            labels.append(None)
        else:
            labels.append(registration_label(data[index] if data is not None else None, index)
                          if index < len(al) else _raise_index(index, len(al)))
    return labels


# ---------------------------------------------------------------------------
# DataFrames: pandas and Dask
# ---------------------------------------------------------------------------

def classify(df: Any, column: Any, allowlist: Any, *, registration: bool | str = True,
             valid: bool | str = True, strict: bool = False, allowed: str = "allowed",
             client: Any = None) -> Any:
    """``df`` with ``allowed``, ``registration`` and ``valid`` columns for its address ``column``.

    ``allowed`` (bool): a registration covers the address.  ``registration``
    (int32): the index of the longest matching registration, -1 when not
    allowed (``registration_labels`` turns indices into ids).  ``valid`` (bool):
    False where the address is null or unparseable -- such rows are
    ``allowed=False`` and ``registration=-1``, so ``~allowed & valid`` is the
    traffic from valid addresses no registration covers.  Index, row order and
    the other columns are kept; existing columns of the output names are
    replaced (as ``DataFrame.assign`` does).  The input frame is not modified.

    Arguments:
        df: a pandas DataFrame, or a ``dask.dataframe`` DataFrame (the result is
            then lazy, one task per partition).
        column: the name of the address column (any column type that
            :func:`contains_many` takes).
        allowlist: an :class:`~ipallow.Allowlist`; the path of a snapshot file
            (``allowlist.save(path)``) readable by every worker; or, for Dask,
            the :class:`Shipment` :func:`ship` returned.  See the module
            documentation for how each reaches the workers (once per worker
            process).
        registration, valid: True for the default column name, a string for
            another name, False to leave the column out.
        allowed: the name of the ``allowed`` column.
        strict: raise :class:`BadRowError` for a null or unparseable address
            instead of marking it invalid (for Dask: when computed, naming the
            partition; with several bad partitions, whichever fails first).
        client: the ``dask.distributed`` Client to ship the allowlist with
            (default: the current client, if any).

    Raises:
        KeyError: ``column`` is not a column of ``df``.
        ValueError: clashing output column names.
        BadRowError: ``strict=True`` and a bad row.
        TypeError: ``df`` is neither a pandas nor a Dask DataFrame; an
            unsupported column dtype; ``allowlist`` of no supported kind.

    >>> import pandas as pd
    >>> out = classify(pd.DataFrame({"src": ["10.1.2.3", "8.8.8.8", None]}), "src", Allowlist(["10.0.0.0/8"]))
    >>> out[["allowed", "registration", "valid"]].to_dict("list")
    {'allowed': [True, False, False], 'registration': [0, -1, -1], 'valid': [True, True, False]}
    """
    names = _output_names(column, allowed, registration, valid)
    if _is_dask_frame(df):
        return _classify_dask(df, column, allowlist, names, strict, client)
    pd = _pandas_or_none()
    if pd is None or not isinstance(df, pd.DataFrame):
        raise TypeError(f"classify takes a pandas or dask DataFrame, not {type(df).__name__}")
    if column not in df.columns:
        raise KeyError(f"no column {column!r} in the DataFrame")
    return _classify_frame(df, column, _as_allowlist(allowlist), names, strict, None)


def ship(allowlist: Allowlist, client: Any = None) -> "Shipment":
    """Install ``allowlist`` in every worker process of a ``dask.distributed`` cluster, once.

    The allowlist travels as a worker plugin: it is pickled once here (its
    snapshot bytes), the scheduler hands it to every worker process, and each
    worker process unpickles it once and keeps it for as long as the plugin is
    registered -- across any number of jobs.  Workers that join later, or are
    restarted, install it when they register, before they run a task.  Tasks
    carry only a token naming it.  (A plain ``client.scatter(...,
    broadcast=True)`` is not enough for that: the scheduler's active memory
    manager drops the extra replicas of a scattered key within seconds, and each
    worker then fetches it again for each later job.)

    Shipping the same allowlist to the same client again returns the same
    :class:`Shipment`.  Workers drop their copy on :meth:`Shipment.release`,
    which also happens (best effort) when the allowlist is garbage-collected
    here.

    Returns:
        a :class:`Shipment`, to pass as ``allowlist`` to :func:`classify`, or to
        your own ``map_partitions`` function, which gets the worker's copy with
        :func:`installed`.

    Raises:
        TypeError: ``allowlist`` is not an Allowlist.
        ValueError: no client given and none is current.
    """
    if not isinstance(allowlist, Allowlist):
        raise TypeError(f"ship takes an ipallow.Allowlist, not {type(allowlist).__name__}")
    if client is None:
        client = _current_client()
        if client is None:
            raise ValueError("no dask.distributed client: pass client= or create a Client first")
    with _LOCK:
        shipment = _SHIPPED.get(allowlist, {}).get(id(client))
    if shipment is not None and shipment.usable(client):
        return shipment
    token = f"ipallow-allowlist-{uuid.uuid4().hex}"
    client.register_plugin(_plugin_class()(token, allowlist), name=token)
    shipment = Shipment(token, client)
    with _LOCK:
        _SHIPPED.setdefault(allowlist, {})[id(client)] = shipment
    shipment._finalizer = weakref.finalize(allowlist, _release_quietly, weakref.ref(client), token)
    return shipment


class Shipment:
    """An allowlist installed in the worker processes of a Dask cluster by :func:`ship`.

    ``token`` names it on the workers; in a task graph a Shipment travels as
    that token alone, and :func:`installed` returns the worker's copy.
    """

    def __init__(self, token: str, client: Any) -> None:
        self.token = token
        self._client = weakref.ref(client)
        self._released = False
        self._finalizer: Any = None

    def usable(self, client: Any) -> bool:
        return (not self._released and self._client() is client
                and getattr(client, "status", "running") == "running")

    def release(self) -> None:
        """Remove the allowlist from every worker (unregisters the plugin).  Idempotent."""
        if self._released:
            return
        self._released = True
        if self._finalizer is not None:
            self._finalizer.detach()
        client = self._client()
        if client is not None and getattr(client, "status", None) == "running":
            client.unregister_worker_plugin(self.token)

    def __repr__(self) -> str:
        state = "released" if self._released else "installed"
        return f"<ipallow Shipment {self.token} ({state})>"

    def __reduce__(self):   # inside a task graph it is just the token
        return (_Installed, (self.token,))


def installed(shipment: Any) -> Allowlist:
    """Inside a Dask task: this worker process's copy of an allowlist :func:`ship` installed.

    For your own ``map_partitions`` functions: pass the :class:`Shipment` (or its
    ``token``) as an argument -- it travels as the token alone -- and call
    ``installed(it)`` in the function.

    Raises:
        LookupError: nothing is installed under that token in this process
            (released, or shipped through another scheduler).
    """
    token = shipment if isinstance(shipment, str) else shipment.token
    with _LOCK:
        al = _INSTALLED.get(token)
    if al is None:
        raise LookupError(f"no allowlist {token} is installed in this worker process "
                          f"(was its Shipment released?)")
    return al


def worker_stats() -> dict[str, Any]:
    """What this process has received, to check that allowlists arrive once per worker.

    ``{"pid": ..., "shipments": allowlists installed here by ship (ever),
    "installed": [tokens installed now], "snapshot_loads": snapshot files
    mapped here (ever), "snapshots": [paths cached now]}``.  Run it on the
    workers with ``client.run(ipallow.dataframe.worker_stats)``.
    """
    with _LOCK:
        return {"pid": os.getpid(), "shipments": _STATS["shipments"],
                "installed": sorted(_INSTALLED), "snapshot_loads": _STATS["snapshot_loads"],
                "snapshots": [path for path, _ in _SNAPSHOTS]}


def _output_names(column: Any, allowed: Any, registration: Any, valid: Any) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for kind, given, default in (("allowed", allowed, "allowed"),
                                 ("registration", registration, "registration"),
                                 ("valid", valid, "valid")):
        if given is True:
            given = default
        if given is False or given is None:
            if kind == "allowed":
                raise ValueError("the allowed column cannot be left out")
            continue
        if not isinstance(given, str) or not given:
            raise TypeError(f"{kind} must be True, False or a column name, not {given!r}")
        names[kind] = given
    chosen = list(names.values())
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"output column names clash: {chosen}")
    if column in chosen:
        raise ValueError(f"an output column would replace the address column {column!r}")
    return names


def _classify_frame(df: Any, column: Any, al: Allowlist, names: dict[str, Any], strict: bool,
                    partition: int | None) -> Any:
    series = df[column]
    if series.ndim != 1:
        raise ValueError(f"column name {column!r} is not unique in the DataFrame")
    codes = _prefix_codes(series, al)
    ok = codes >= NO_MATCH
    if strict:
        _raise_first_bad(series, codes, ok, partition=partition, name=column)
    out = df.copy(deep=False)
    out[names["allowed"]] = codes >= 0
    if "registration" in names:
        out[names["registration"]] = _columns.registration_codes(al, al.compiled.prefix_reg, codes, invalid_as_no_match=True)
    if "valid" in names:
        out[names["valid"]] = ok
    return out


def _is_dask_frame(df: Any) -> bool:
    if not type(df).__module__.startswith("dask"):
        return False
    import dask.dataframe as dd
    return isinstance(df, dd.DataFrame)


def _classify_dask(ddf: Any, column: Any, allowlist: Any, names: dict[str, Any], strict: bool,
                   client: Any) -> Any:
    if column not in ddf.columns:
        raise KeyError(f"no column {column!r} in the DataFrame")
    source = _dask_source(allowlist, client)
    meta = ddf._meta.copy(deep=False)
    meta[names["allowed"]] = np.zeros(0, dtype=bool)
    if "registration" in names:
        meta[names["registration"]] = np.zeros(0, dtype=np.int32)
    if "valid" in names:
        meta[names["valid"]] = np.zeros(0, dtype=bool)
    return ddf.map_partitions(_classify_partition, source, column, names, strict, meta=meta,
                              enforce_metadata=False, transform_divisions=False)


def _classify_partition(pdf: Any, source: Any, column: Any, names: dict[str, Any], strict: bool,
                        partition_info: dict | None = None) -> Any:
    """One Dask task: ``source`` is the worker's shipped copy or a snapshot reference."""
    partition = partition_info.get("number") if partition_info else None
    return _classify_frame(pdf, column, _resolve(source), names, strict, partition)


def _dask_source(allowlist: Any, client: Any) -> Any:
    """What the task graph carries: a Future, a snapshot reference, or a single Delayed."""
    if isinstance(allowlist, (str, os.PathLike)):
        return _SnapshotRef.of(allowlist)
    if isinstance(allowlist, Shipment):
        if allowlist._released:
            raise ValueError(f"{allowlist!r} was released")
        return _Installed(allowlist.token)
    if not isinstance(allowlist, Allowlist):
        raise TypeError(f"allowlist must be an ipallow.Allowlist, a snapshot path or a Shipment from "
                        f"ipallow.dataframe.ship, not {type(allowlist).__name__}")
    if client is None:
        client = _current_client()
    if client is not None:
        return _Installed(ship(allowlist, client).token)
    # No distributed client: the threaded (default) and synchronous schedulers
    # share this one object; Dask's "processes" scheduler would pickle it into
    # each task, so pass a snapshot path there.
    import dask
    return dask.delayed(allowlist, name=f"ipallow-allowlist-{uuid.uuid4().hex}", pure=False,
                        traverse=False)


def _current_client() -> Any:
    if "distributed" not in sys.modules:
        return None
    import dask
    scheduler = dask.config.get("scheduler", None)
    if scheduler not in (None, "dask.distributed", "distributed"):
        return None                      # the user chose another scheduler for now
    from distributed import default_client
    try:
        return default_client()
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# Getting the allowlist to where the rows are
# ---------------------------------------------------------------------------

_LOCK = threading.Lock()
_STATS = {"shipments": 0, "snapshot_loads": 0}
_SHIPPED: "weakref.WeakKeyDictionary[Allowlist, dict[int, Shipment]]" = weakref.WeakKeyDictionary()
_INSTALLED: dict[str, Allowlist] = {}        # in worker processes: token -> allowlist
_SNAPSHOTS: "collections.OrderedDict[tuple[str, int], Allowlist]" = collections.OrderedDict()


class _Installed(NamedTuple):
    """What a task carries for a shipped allowlist: the token it is installed under."""

    token: str


def _install(token: str, allowlist: Allowlist) -> None:
    with _LOCK:
        _INSTALLED[token] = allowlist
        _STATS["shipments"] += 1


def _uninstall(token: str) -> None:
    with _LOCK:
        _INSTALLED.pop(token, None)


def _plugin_class() -> type:
    """The worker plugin class, created on first use so that importing this module does
    not import ``distributed``; pickles find it as ``ipallow.dataframe._InstallAllowlist``."""
    cls = globals().get("_InstallAllowlist")
    if cls is None:
        from distributed.diagnostics.plugin import WorkerPlugin

        class _InstallAllowlist(WorkerPlugin):
            """Carries one allowlist (its snapshot bytes) to each worker process."""

            idempotent = True

            def __init__(self, token: str, allowlist: Allowlist) -> None:
                self.token = token
                self.allowlist = allowlist

            def setup(self, worker: Any) -> None:
                _install(self.token, self.allowlist)

            def teardown(self, worker: Any) -> None:
                _uninstall(self.token)

        _InstallAllowlist.__module__ = __name__
        _InstallAllowlist.__qualname__ = "_InstallAllowlist"
        cls = globals().setdefault("_InstallAllowlist", _InstallAllowlist)
    return cls


def __getattr__(name: str) -> Any:
    if name == "_InstallAllowlist":        # unpickling a plugin in a fresh worker process
        return _plugin_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _release_quietly(client_ref: Any, token: str) -> None:
    """Finalizer of a shipped allowlist: unregister its plugin without blocking (any thread)."""
    client = client_ref()
    if client is None or getattr(client, "status", None) != "running":
        return
    try:
        client.loop.add_callback(client._unregister_worker_plugin, token)
    except Exception:     # the client is closing: its cluster takes the plugin with it
        pass


class _SnapshotRef(NamedTuple):
    """A snapshot file as planned on the client: path and header checksum (content identity)."""

    path: str
    checksum: int

    @classmethod
    def of(cls, path: str | os.PathLike) -> "_SnapshotRef":
        name = os.path.abspath(os.fspath(path))
        return cls(name, _snapshot_checksum(name))


def _snapshot_checksum(path: str) -> int:
    """The header checksum of a snapshot file (covers every section's checksum)."""
    from ipallow import snapshot
    header, _ = snapshot.file_header(path)     # read, not mapped: a truncation cannot SIGBUS us
    return int(header.checksum)


def _load_snapshot(ref: _SnapshotRef) -> Allowlist:
    """The allowlist of ``ref``, memory-mapped once per process (LRU of a few files)."""
    key = (ref.path, ref.checksum)
    with _LOCK:
        al = _SNAPSHOTS.get(key)
        if al is not None:
            _SNAPSHOTS.move_to_end(key)
            return al
    from ipallow import snapshot
    al = load(ref.path)
    header, _ = snapshot.read_header(al.compiled.snapshot_buffer, ref.path)
    if int(header.checksum) != ref.checksum:
        raise snapshot.SnapshotError(ref.path, "the file was replaced after the job was planned "
                                               "(its checksum differs); plan the job again")
    with _LOCK:
        _STATS["snapshot_loads"] += 1
        _SNAPSHOTS[key] = al
        while len(_SNAPSHOTS) > SNAPSHOT_CACHE_SIZE:
            _SNAPSHOTS.popitem(last=False)
    return al


def _resolve(source: Any) -> Allowlist:
    if isinstance(source, Allowlist):
        return source
    if isinstance(source, _Installed):
        return installed(source.token)
    if isinstance(source, _SnapshotRef):
        return _load_snapshot(source)
    raise TypeError(f"expected an ipallow.Allowlist, got {type(source).__name__}")


def _as_allowlist(allowlist: Any) -> Allowlist:
    if isinstance(allowlist, Allowlist):
        return allowlist
    if isinstance(allowlist, (str, os.PathLike)):
        return _load_snapshot(_SnapshotRef.of(allowlist))
    if isinstance(allowlist, (_Installed, Shipment)):     # inside a Dask task
        return installed(allowlist)
    raise TypeError(f"allowlist must be an ipallow.Allowlist or a snapshot path, "
                    f"not {type(allowlist).__name__}")


def _raise_index(index: int, count: int):
    raise IndexError(f"registration index {index} out of range for {count} registrations")
