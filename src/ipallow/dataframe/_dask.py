"""Getting the allowlist to where the rows are: shipped once per Dask worker process, or a
snapshot file mapped once per process (see :mod:`ipallow.dataframe`)."""

from __future__ import annotations

import collections
import os
import sys
import threading
import uuid
import weakref
from typing import Any, NamedTuple

from ipallow.allowlist import Allowlist, load

SNAPSHOT_CACHE_SIZE = 4   # snapshot files kept mapped per process


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


# -- per-process state ------------------------------------------------------------------

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
    not import ``distributed``; pickles find it as ``ipallow.dataframe._dask._InstallAllowlist``."""
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
