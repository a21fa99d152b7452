"""Prometheus metrics for :class:`~ipallow.LiveAllowlist`: its :meth:`status` read at scrape time.

Usage (docs/live-reload.md, "Metrics", has a complete example and every metric)::

    from prometheus_client import start_http_server
    from ipallow.live import metrics

    metrics.register(live, name="partners")   # on prometheus_client's global REGISTRY
    start_http_server(9108, addr="127.0.0.1")

This needs ``prometheus-client`` (``pip install 'ipallow[metrics]'``).  It is
imported when metrics are first used (:func:`register`), not when this module
or ``ipallow`` is imported, so programs that do not export metrics never load
it.

One collector per :class:`~prometheus_client.CollectorRegistry` serves every
list registered on it, each under its own ``list`` label: the registry refuses
two collectors that expose the same metric names, and one family per name is
what Prometheus expects.  ``collect()`` reads each list's :meth:`status` when
scraped; there is no thread and nothing is updated between scrapes, so
lookups pay nothing for the metrics.  Lists are held weakly, as the reload
thread holds them: a list that is no longer used elsewhere is garbage
collected and its series disappear from the next scrape.

Lookups served are not counted: a counter in ``in`` costs 28-56 ns, 10-20 % of
a lookup (docs/live-reload.md, "Metrics for Prometheus", gives the measurement).
"""

from __future__ import annotations

import math
import threading
import weakref
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterator

from ipallow.live._live import LiveAllowlist

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["LiveAllowlistCollector", "register", "unregister"]


def _prometheus() -> ModuleType:
    """prometheus_client, imported on first use (the [metrics] extra)."""
    try:
        import prometheus_client
        import prometheus_client.core
    except ImportError as exc:
        raise ImportError(f"ipallow.live.metrics needs the prometheus-client package: "
                          f"pip install 'ipallow[metrics]' ({exc})") from exc
    return prometheus_client


LABEL = "list"
#: Standing codes reported by ``ipallow_live_registrations`` (see :meth:`Registration.counts_at`).
STANDINGS = ("active", "pending", "suspended", "revoked", "expired", "not_yet_valid")


def _timestamp(moment: Any) -> float:
    """A status() datetime as POSIX seconds; 0 for "never" (a series that is always present
    is easier to alert on than one that appears with the first event)."""
    return 0.0 if moment is None else moment.timestamp()


class LiveAllowlistCollector:
    """Exposes the status of one or more live lists, by name, as Prometheus metrics.

    A prometheus_client collector (``collect`` / ``describe``; prometheus_client's
    ``Collector`` is a protocol, so no base class is needed and this class is
    defined without importing it).  Use :func:`register` rather than building
    one: it keeps one collector per Prometheus registry.
    """

    def __init__(self) -> None:
        self._lists: weakref.WeakValueDictionary[str, LiveAllowlist] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()        # add / remove against scrapes in the server's threads
        # name -> (generation, registry, counts by standing): counts change only when the list
        # does (a lifecycle boundary or a reload swaps it), so a scrape does not count again.
        self._standings: dict[str, tuple[int, Any, dict[str, int]]] = {}

    def add(self, live: LiveAllowlist, name: str) -> None:
        if not isinstance(live, LiveAllowlist):
            raise TypeError(f"expected a LiveAllowlist, not {type(live).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if not name:
            raise ValueError("name must not be empty (it is the value of the 'list' label)")
        with self._lock:
            other = self._lists.get(name)
            if other is not None and other is not live:
                raise ValueError(f"a list named {name!r} is already registered on this registry; "
                                 f"give each list its own name=")
            self._lists[name] = live

    def remove(self, live: LiveAllowlist) -> bool:
        """Stop serving ``live``; True if it was served."""
        with self._lock:
            names = [name for name, other in self._lists.items() if other is live]
            for name in names:
                del self._lists[name]
                self._standings.pop(name, None)
            return bool(names)

    def __len__(self) -> int:
        return len(self._lists)

    def describe(self) -> list:
        # The metric names without reading any list: the registry checks them for clashes at
        # register() time instead of running a first collect().
        return list(self._families({}))

    def collect(self) -> Iterator:
        with self._lock:
            lists = dict(self._lists)           # strong references for the duration of the scrape
            for gone in self._standings.keys() - lists.keys():
                self._standings.pop(gone, None)     # a list garbage collected since the last scrape
        yield from self._families({name: self._read(name, live) for name, live in sorted(lists.items())})

    def _read(self, name: str, live: LiveAllowlist) -> dict[str, Any]:
        status = live.status()
        now = live._now()            # the list's own clock: a test's fake clock and the list agree
        boundary = status["next_boundary"]
        status["next_boundary_seconds"] = math.inf if boundary is None else max(boundary.timestamp() - now, 0.0)
        status["standings"] = self._standings_of(name, live, status, now)
        return status

    def _standings_of(self, name: str, live: LiveAllowlist, status: dict, now: float) -> dict[str, int]:
        registry = live.registry
        if registry is None:             # a plain list's snapshot: its entries all count
            return {"active": status["active"]}
        cached = self._standings.get(name)
        if cached is not None and cached[0] == status["generation"] and cached[1] is registry:
            return cached[2]
        counts = registry._standing_counts(now)
        self._standings[name] = (status["generation"], registry, counts)
        return counts

    @staticmethod
    def _families(statuses: dict[str, dict[str, Any]]) -> Iterator:
        def family(kind, metric, documentation, field, unit="", value=lambda v: v):
            """One metric family: ``status[field]`` of every list, under its name."""
            made = kind(metric, documentation, labels=[LABEL], unit=unit)
            for name, status in statuses.items():
                made.add_metric([name], float(value(status[field])))
            return made

        core = _prometheus().core
        gauge, counter = core.GaugeMetricFamily, core.CounterMetricFamily
        yield family(gauge, "ipallow_live_generation",
                     "Increases by one at every swap of the serving list (a reload or a lifecycle boundary)",
                     "generation")
        yield family(counter, "ipallow_live_reloads",
                     "Good loads swapped in since the start, the first load included", "reloads")
        yield family(counter, "ipallow_live_reload_failures",
                     "Failed reloads since the start (the old list kept serving)", "failures")
        yield family(gauge, "ipallow_live_consecutive_reload_failures",
                     "Failed reloads since the last good one; 0 means healthy", "consecutive_failures")
        yield family(gauge, "ipallow_live_last_reload_failure_timestamp_seconds",
                     "When the most recent failed reload was recorded (POSIX seconds); 0: never",
                     "last_error_at", "seconds", _timestamp)
        yield family(gauge, "ipallow_live_last_reload_success_timestamp_seconds",
                     "When the serving file was last loaded successfully (POSIX seconds)",
                     "loaded_at", "seconds", _timestamp)
        yield family(gauge, "ipallow_live_pending_since_timestamp_seconds",
                     "Since when a changed file has been waiting to settle (POSIX seconds); 0: nothing waiting",
                     "pending_since", "seconds", _timestamp)
        yield family(gauge, "ipallow_live_next_boundary_seconds",
                     "Seconds until the serving list changes by the clock alone (a lifecycle boundary); "
                     "+Inf: never", "next_boundary_seconds", "seconds")
        yield family(counter, "ipallow_live_stale_answers",
                     "Answers served past a lifecycle boundary because the next list was not ready",
                     "stale_answers")
        yield family(gauge, "ipallow_live_polling", "1 while the background reload thread runs", "polling")

        standings = gauge(
            "ipallow_live_registrations",
            "Registrations of the registry by standing now: active (counting), pending, suspended, "
            "revoked, expired, not_yet_valid", labels=[LABEL, "status"])
        prefixes = gauge("ipallow_live_prefixes", "Prefixes of the list serving now, by IP version",
                         labels=[LABEL, "version"])
        for name, status in statuses.items():
            for code in STANDINGS:
                if code in status["standings"]:
                    standings.add_metric([name, code], float(status["standings"][code]))
            prefixes.add_metric([name, "4"], float(status["ipv4_prefixes"]))
            prefixes.add_metric([name, "6"], float(status["ipv6_prefixes"]))
        yield standings
        yield prefixes


# One collector per Prometheus registry, created on first use (the registries are the keys,
# held weakly: a registry dropped by its owner takes its collector with it).
_collectors: weakref.WeakKeyDictionary[CollectorRegistry, LiveAllowlistCollector] = weakref.WeakKeyDictionary()
_collectors_lock = threading.Lock()


def _registry(registry: Any) -> CollectorRegistry:
    prometheus = _prometheus()
    if registry is None:
        return prometheus.REGISTRY
    if not isinstance(registry, prometheus.CollectorRegistry):
        raise TypeError(f"registry must be a prometheus_client CollectorRegistry or None, "
                        f"not {type(registry).__name__}")
    return registry


def _default_name(live: LiveAllowlist) -> str:
    return live.source if isinstance(live.source, str) else "registry"


def register(live: LiveAllowlist, registry: CollectorRegistry | None = None, *,
             name: str | None = None) -> LiveAllowlistCollector:
    """Expose ``live``'s status on ``registry`` (default: prometheus_client's global ``REGISTRY``,
    the one ``start_http_server`` serves), under ``list="<name>"``.

    ``name`` defaults to the followed file's path (``"registry"`` for a list built
    from Registration objects).  Several lists can share a registry, each with
    its own name.  Returns the registry's collector (the same one for every list
    registered on it).

    Raises:
        TypeError: ``live`` is not a LiveAllowlist, ``registry`` not a
            CollectorRegistry, or ``name`` not a str.
        ValueError: another list is registered under ``name`` on this registry.
        ImportError: prometheus-client is not installed.
    """
    if not isinstance(live, LiveAllowlist):
        raise TypeError(f"expected a LiveAllowlist, not {type(live).__name__}")
    target = _registry(registry)
    with _collectors_lock:
        collector = _collectors.get(target)
        if collector is None:
            collector = LiveAllowlistCollector()
            collector.add(live, _default_name(live) if name is None else name)
            target.register(collector)
            _collectors[target] = collector
        else:
            collector.add(live, _default_name(live) if name is None else name)
    return collector


def unregister(live: LiveAllowlist, registry: CollectorRegistry | None = None) -> bool:
    """Stop exposing ``live`` on ``registry`` (default: ``REGISTRY``); True if it was exposed.
    The last list removed takes the collector off the registry."""
    target = _registry(registry)
    with _collectors_lock:
        collector = _collectors.get(target)
        if collector is None or not collector.remove(live):
            return False
        if not len(collector):
            target.unregister(collector)
            del _collectors[target]
        return True
