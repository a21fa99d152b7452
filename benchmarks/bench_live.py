"""What counting lookups would cost ``q in live`` (a LiveAllowlist): the measurement behind
ipallow.live.metrics not exporting a lookups counter (docs/live-reload.md, "Metrics").

How to run (from the repository root, ipallow installed)::

    pytest benchmarks/bench_live.py --benchmark-only --benchmark-group-by=group
    python benchmarks/bench_live.py [--rounds 15]      # the same rows, interleaved, per-call ns
    python benchmarks/bench_live.py --scrape 200000    # and a metrics scrape of that many registrations

Group ``live-in-v4-str``: each round makes 10,000 ``q in x`` calls over seeded IPv4 strings,
half inside a registration of the bundled sample list (3,004 registrations):

``allowlist``      the immutable Allowlist itself (no clock, no swap check)
``live``           LiveAllowlist as shipped
``live-copy``      the control: its ``__contains__`` copied into a subclass, no counter
``live+attr``      the same ``__contains__`` with ``self.lookups += 1`` first (not atomic
                   under free threading: it would also lose counts)
``live+count``     the same with ``next(self._served)`` on an ``itertools.count`` (atomic)

The counting variants are subclasses defined here, so the shipped class is measured as is
and the rows differ by the counter alone.  Answers are asserted equal after timing.

``--scrape N`` (script mode, needs prometheus-client) also times ``generate_latest`` of a list of
N seeded registrations (a sixth of them expiring, a third not active): the first scrape after a
swap counts the registrations by standing, the following ones reuse those counts.
"""
from __future__ import annotations

import argparse
import gc
import itertools
import ipaddress
import random
import time

import pytest

import ipallow
from ipallow import LiveAllowlist

N_CALLS = 10_000
SEED = 13


class LiveCopy(LiveAllowlist):
    """The control: the shipped ``__contains__`` copied into a subclass, no counter."""

    def __contains__(self, ip):
        snap = self._snap
        now = self._clock()
        if snap.since <= now < snap.until:
            return ip in snap.allowlist
        return ip in self._catch_up(snap, now)


class LiveWithAttributeCounter(LiveAllowlist):
    lookups = 0

    def __contains__(self, ip):
        self.lookups += 1
        snap = self._snap
        now = self._clock()
        if snap.since <= now < snap.until:
            return ip in snap.allowlist
        return ip in self._catch_up(snap, now)


class LiveWithCountObject(LiveAllowlist):
    def __contains__(self, ip, _next=next):
        _next(self._served)
        snap = self._snap
        now = self._clock()
        if snap.since <= now < snap.until:
            return ip in snap.allowlist
        return ip in self._catch_up(snap, now)


def queries() -> list[str]:
    """Seeded IPv4 strings, half inside a registered network of the sample list."""
    rng = random.Random(SEED)
    nets = [n for r in ipallow.load_registry(ipallow.SAMPLE_LIST) for n in r.networks if n.version == 4]
    out = []
    for i in range(N_CALLS):
        if i % 2:
            net = rng.choice(nets)
            out.append(str(net.network_address + rng.randrange(net.num_addresses)))
        else:
            out.append(str(ipaddress.IPv4Address(rng.getrandbits(32))))
    return out


def subjects() -> dict:
    counted = LiveWithCountObject(ipallow.SAMPLE_LIST, poll=None)
    counted._served = itertools.count()
    live = LiveAllowlist(ipallow.SAMPLE_LIST, poll=None)
    return {"allowlist": live.current, "live": live, "live-copy": LiveCopy(ipallow.SAMPLE_LIST, poll=None),
            "live+attr": LiveWithAttributeCounter(ipallow.SAMPLE_LIST, poll=None), "live+count": counted}


QUERIES = queries()
SUBJECTS = subjects()
EXPECTED = [q in SUBJECTS["allowlist"] for q in QUERIES]


@pytest.mark.parametrize("name", list(SUBJECTS))
def test_live_in(benchmark, name):
    subject = SUBJECTS[name]
    benchmark.group = "live-in-v4-str"
    got = benchmark(lambda: [q in subject for q in QUERIES])
    assert got == EXPECTED


def time_scrapes(count: int) -> None:
    from datetime import datetime, timezone

    from prometheus_client import CollectorRegistry, generate_latest

    from ipallow.live import metrics

    rng = random.Random(SEED)
    statuses = ["active"] * 6 + ["pending", "suspended", "revoked"]
    registry = ipallow.Registry(
        ipallow.Registration(f"R{i}", f"{10 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24",
                             status=rng.choice(statuses),
                             expires_at=datetime(2090, 1, 1 + i % 28, tzinfo=timezone.utc) if i % 6 == 0 else None)
        for i in range(count))
    with LiveAllowlist(registry, poll=None) as live:
        scrapes = CollectorRegistry()
        metrics.register(live, scrapes, name="bench")
        for k in range(5):
            t0 = time.perf_counter()
            generate_latest(scrapes)
            print(f"scrape {k + 1} of a {count:,}-registration list: {(time.perf_counter() - t0) * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--scrape", type=int, metavar="N", help="also time metrics scrapes of N registrations")
    args = parser.parse_args()
    if args.scrape:
        time_scrapes(args.scrape)
    best: dict[str, list[float]] = {name: [] for name in SUBJECTS}
    gc.disable()
    for _ in range(args.rounds):                 # rows interleaved: a slow minute hits them all
        for name, subject in SUBJECTS.items():
            t0 = time.process_time()
            got = [q in subject for q in QUERIES]
            best[name].append((time.process_time() - t0) / N_CALLS * 1e9)
            assert got == EXPECTED
    gc.enable()
    control = sorted(best["live-copy"])[len(best["live-copy"]) // 2]
    for name, times in best.items():
        median = sorted(times)[len(times) // 2]
        print(f"{name:12} median {median:6.1f} ns  best {min(times):6.1f} ns  "
              f"({median - control:+.1f} ns against live-copy)")


if __name__ == "__main__":
    main()
