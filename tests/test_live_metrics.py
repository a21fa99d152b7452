"""LiveAllowlist's Prometheus metrics (ipallow.live.metrics): scraped from a real
``prometheus_client.start_http_server`` on loopback and parsed with prometheus_client's parser,
through a good reload, a failed reload and a lifecycle boundary on a fake clock.

The scrape tests skip when prometheus-client is not installed (it is in the test extra); the
import-isolation tests and the standing counts need nothing.
"""

from __future__ import annotations

import gc
import os
import random
import subprocess
import sys
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from ipallow import LiveAllowlist, ParseError, Registration, Registry
from ipallow.live import metrics

UTC = timezone.utc
T0 = datetime(2025, 1, 1, tzinfo=UTC)
S0 = T0.timestamp()
HEADER = "id,cidr,status,expires_at\n"


class FakeClock:
    def __init__(self, t: float = S0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def publish(path, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


@pytest.fixture
def prometheus():
    return pytest.importorskip("prometheus_client", reason="prometheus-client is not installed "
                               "(pip install 'ipallow[metrics]'; the test extra has it)")


@pytest.fixture(scope="module")
def endpoint():
    """A real metrics endpoint on a free loopback port, serving its own registry, for the module
    (stopping one waits for its half-second poll); yields (registry, scrape) where scrape() GETs
    /metrics and parses it into {(name, labels): value}."""
    prometheus = pytest.importorskip("prometheus_client", reason="prometheus-client is not installed "
                                     "(pip install 'ipallow[metrics]'; the test extra has it)")
    from prometheus_client.parser import text_string_to_metric_families
    registry = prometheus.CollectorRegistry()
    httpd, thread = prometheus.start_http_server(0, addr="127.0.0.1", registry=registry)
    port = httpd.server_port

    def scrape() -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert response.status == 200
            text = response.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                assert key not in samples, f"duplicate series {key}"
                samples[key] = sample.value
        return samples

    try:
        yield registry, scrape
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture
def server(endpoint):
    """The endpoint, with every list a test registered on it unregistered afterwards."""
    registry, scrape = endpoint
    assert scrape() == {}
    yield registry, scrape
    collector = metrics._collectors.get(registry)
    for live in list(collector._lists.values()) if collector is not None else []:
        metrics.unregister(live, registry)


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def standings(samples: dict, list_name: str) -> dict[str, float]:
    return {dict(labels)["status"]: v for (name, labels), v in samples.items()
            if name == "ipallow_live_registrations" and dict(labels)["list"] == list_name}


# ---------------------------------------------------------------------------------------------
# optional dependency


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_prometheus_client_is_imported_only_when_metrics_are_used_and_its_absence_names_the_extra():
    # One interpreter for both checks (each costs an import of ipallow).  After the imports,
    # None in sys.modules makes `import prometheus_client` fail as when it is not installed.
    done = _run("import sys, ipallow, ipallow.live, ipallow.live.metrics\n"
                "live = ipallow.LiveAllowlist(ipallow.SAMPLE_LIST, poll=None)\n"
                "print(sorted(m for m in sys.modules if m.startswith('prometheus_client')))\n"
                "sys.modules['prometheus_client'] = None\n"
                "try:\n    ipallow.live.metrics.register(live)\n"
                "except ImportError as exc:\n    print('ImportError:', exc)\n")
    assert done.returncode == 0, done.stderr
    imported, error = done.stdout.splitlines()
    assert imported == "[]"
    assert error.startswith("ImportError: ipallow.live.metrics needs the prometheus-client package")
    assert "pip install 'ipallow[metrics]'" in error


# ---------------------------------------------------------------------------------------------
# registrations by standing: array operations against Registration.counts_at, one record at a time


def test_standing_counts_agree_with_counts_at_around_every_boundary():
    rng = random.Random(13)
    instants = [S0 + 3600 * k for k in range(8)]
    records = []
    for i in range(400):
        vf = rng.choice(instants) if rng.random() < 0.5 else None
        later = [t for t in instants if vf is None or t > vf]
        ea = rng.choice(later) if later and rng.random() < 0.5 else None
        records.append(Registration(
            f"R{i}", f"10.{i // 256}.{i % 256}.0/24",
            status=rng.choices(["active", "pending", "suspended", "revoked"], [6, 1, 1, 1])[0],
            valid_from=None if vf is None else datetime.fromtimestamp(vf, UTC),
            expires_at=None if ea is None else datetime.fromtimestamp(ea, UTC)))
    registry = Registry(records)
    for t in sorted({S0 - 1, *instants, *(b + d for b in instants for d in (-0.5, 0.5))}):
        want = dict.fromkeys(metrics.STANDINGS, 0)
        for record in records:
            want[record.counts_at(t).code] += 1
        assert registry._standing_counts(t) == want, t


# ---------------------------------------------------------------------------------------------
# scraped over HTTP


def test_scrape_follows_a_good_reload_a_failed_reload_and_a_lifecycle_boundary(tmp_path, server):
    registry, scrape = server
    path = tmp_path / "reg.csv"
    expiry = S0 + 60
    rows = HEADER + "A,192.0.2.0/24,active,\nB,198.51.100.0/24,active,2025-01-01T00:01:00Z\n" \
                    "C,203.0.113.0/24,suspended,\nD,2001:db8::/32,active,\n"
    publish(path, rows)
    clock = FakeClock()
    with LiveAllowlist(path, poll=None, clock=clock, settle=0) as live:
        assert metrics.register(live, registry, name="partners") is metrics.register(
            live, registry, name="partners")      # the same list again: one collector, no error
        s = scrape()
        lbl = {"list": "partners"}
        assert value(s, "ipallow_live_generation", **lbl) == 1
        assert value(s, "ipallow_live_reloads_total", **lbl) == 1
        assert value(s, "ipallow_live_reload_failures_total", **lbl) == 0
        assert value(s, "ipallow_live_consecutive_reload_failures", **lbl) == 0
        assert value(s, "ipallow_live_last_reload_failure_timestamp_seconds", **lbl) == 0
        assert value(s, "ipallow_live_last_reload_success_timestamp_seconds", **lbl) == S0
        assert value(s, "ipallow_live_next_boundary_seconds", **lbl) == 60
        assert value(s, "ipallow_live_polling", **lbl) == 0
        assert standings(s, "partners") == {"active": 3, "pending": 0, "suspended": 1, "revoked": 0,
                                            "expired": 0, "not_yet_valid": 0}
        assert value(s, "ipallow_live_prefixes", version="4", **lbl) == 2
        assert value(s, "ipallow_live_prefixes", version="6", **lbl) == 1

        # a good reload: one more registration, a new generation, a later success time
        clock.t = S0 + 10
        publish(path, rows + "E,100.64.0.0/10,pending,\n")
        live.reload()
        s = scrape()
        assert value(s, "ipallow_live_generation", **lbl) == 2
        assert value(s, "ipallow_live_reloads_total", **lbl) == 2
        assert value(s, "ipallow_live_last_reload_success_timestamp_seconds", **lbl) == S0 + 10
        assert value(s, "ipallow_live_next_boundary_seconds", **lbl) == 50
        assert standings(s, "partners")["pending"] == 1

        # a failed reload: counted, timed, and the list serving does not change
        clock.t = S0 + 20
        publish(path, rows + "X,10.99.0.1/16,active,\n")          # host bits set
        with pytest.raises(ParseError):
            live.reload()
        s = scrape()
        assert value(s, "ipallow_live_generation", **lbl) == 2
        assert value(s, "ipallow_live_reload_failures_total", **lbl) == 1
        assert value(s, "ipallow_live_consecutive_reload_failures", **lbl) == 1
        assert value(s, "ipallow_live_last_reload_failure_timestamp_seconds", **lbl) == S0 + 20
        assert value(s, "ipallow_live_last_reload_success_timestamp_seconds", **lbl) == S0 + 10
        assert standings(s, "partners")["pending"] == 1

        # the clock passes B's expiry: a new generation, B expired, no boundary left
        clock.t = expiry + 1
        assert "198.51.100.1" not in live
        s = scrape()
        assert value(s, "ipallow_live_generation", **lbl) == 3
        assert value(s, "ipallow_live_reloads_total", **lbl) == 2             # not a reload
        assert value(s, "ipallow_live_consecutive_reload_failures", **lbl) == 1
        assert value(s, "ipallow_live_next_boundary_seconds", **lbl) == float("inf")
        assert standings(s, "partners") == {"active": 2, "pending": 1, "suspended": 1, "revoked": 0,
                                            "expired": 1, "not_yet_valid": 0}
        assert value(s, "ipallow_live_prefixes", version="4", **lbl) == 1

        # the file is fixed: the failure streak ends, its time stays as history
        clock.t = expiry + 2
        publish(path, rows)
        live.reload()
        s = scrape()
        assert value(s, "ipallow_live_consecutive_reload_failures", **lbl) == 0
        assert value(s, "ipallow_live_reload_failures_total", **lbl) == 1
        assert value(s, "ipallow_live_last_reload_failure_timestamp_seconds", **lbl) == S0 + 20
        assert value(s, "ipallow_live_generation", **lbl) == 4


def test_several_lists_share_one_registry_each_under_its_own_name(tmp_path, server):
    registry, scrape = server
    clock = FakeClock()
    path = tmp_path / "one.csv"
    publish(path, HEADER + "A,192.0.2.0/24,active,\n")
    first = LiveAllowlist(path, poll=None, clock=clock, settle=0)
    second = LiveAllowlist(Registry([Registration("B", "198.51.100.0/24", status="revoked"),
                                     Registration("C", "203.0.113.0/24", expires_at=T0 + timedelta(hours=1))]),
                           poll=None, clock=clock)
    metrics.register(first, registry)                 # named by its path
    metrics.register(second, registry, name="static")
    s = scrape()
    assert standings(s, str(path)) == {"active": 1, "pending": 0, "suspended": 0, "revoked": 0,
                                       "expired": 0, "not_yet_valid": 0}
    assert standings(s, "static")["revoked"] == 1
    assert value(s, "ipallow_live_next_boundary_seconds", list="static") == 3600
    assert value(s, "ipallow_live_next_boundary_seconds", list=str(path)) == float("inf")

    with pytest.raises(ValueError, match="already registered"):
        metrics.register(first, registry, name="static")
    with pytest.raises(TypeError):
        metrics.register(first, registry, name=7)
    with pytest.raises(TypeError):
        metrics.register(path, registry)
    with pytest.raises(TypeError, match="CollectorRegistry"):
        metrics.register(first, {})
    with pytest.raises(ValueError):
        metrics.register(first, registry, name="")

    assert metrics.unregister(second, registry) is True
    assert metrics.unregister(second, registry) is False
    assert {dict(labels)["list"] for _, labels in scrape()} == {str(path)}

    # held weakly: a list dropped by its owner disappears from the next scrape
    del first
    gc.collect()
    assert scrape() == {}


def test_the_last_list_removed_takes_the_collector_off_the_registry(server, prometheus):
    registry, scrape = server
    live = LiveAllowlist(Registry([Registration("A", "192.0.2.0/24")]), poll=None)
    metrics.register(live, registry, name="a")
    assert "ipallow_live_generation" in prometheus.generate_latest(registry).decode()
    metrics.unregister(live, registry)
    assert prometheus.generate_latest(registry).decode() == ""
    metrics.register(live, registry, name="a")    # and can come back (no "duplicated timeseries")
    assert value(scrape(), "ipallow_live_generation", list="a") == 1
