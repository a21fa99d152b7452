"""LiveAllowlist: atomic swaps under load, lifecycle boundaries on a simulated clock, failed reloads,
and files that are swapped in only when complete.

Every wait here is bounded; nothing sleeps for long.  The clock is a fake one unless a test
says otherwise, so boundaries are crossed by setting it, not by waiting; the settle interval is
driven the same way (the ``ticks`` fixture).  Tests of something other than settling publish by
rename and pass ``settle=0``.  tests/test_live_stress.py has the hostile-writer stress test.
"""

from __future__ import annotations

import gc
import ipaddress
import json
import logging
import os
import random
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import ipallow
from ipallow import Allowlist, LiveAllowlist, ParseError, Registration, ReloadRefused, SnapshotError
from ipallow.live import _watch as file_watch   # the settle clock and the file reads live there
from lifecycle_reference import Reference

UTC = timezone.utc
T0 = datetime(2025, 1, 1, tzinfo=UTC)
S0 = T0.timestamp()
N = ipaddress.ip_network
WAIT = 10.0          # upper bound for anything the background thread must do


class FakeClock:
    def __init__(self, t: float = S0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Ticks:
    """A fake monotonic clock for the settle interval; LiveAllowlist's own sleeps advance it."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.on_sleep = None          # called at each sleep: a writer acting while the constructor waits

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        if self.on_sleep is not None:
            self.on_sleep()


@pytest.fixture
def ticks(monkeypatch):
    t = Ticks()
    monkeypatch.setattr(file_watch, "_monotonic", t)
    monkeypatch.setattr(file_watch, "_sleep", t.sleep)
    return t


def wait_for(condition, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def jsonl(records) -> str:
    return "".join(json.dumps(r.to_dict()) + "\n" for r in records)


def csv_text(rows) -> str:
    return "id,cidr,status\n" + "".join(f"{i},{c},{s}\n" for i, c, s in rows)


def publish(path, text: str | bytes) -> None:
    """Replace the file the way exports are published: write aside, then rename over it."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(text.encode() if isinstance(text, str) else text)
    os.replace(tmp, path)


def random_records(rng: random.Random, count: int, instants=(), prefix="R") -> list[Registration]:
    out = []
    for i in range(count):
        if rng.random() < 0.75:
            plen = rng.choice([12, 16, 20, 24, 24, 24, 28, 32])
            value = (10 << 24) | rng.getrandbits(24)
            net = ipaddress.IPv4Network((value >> (32 - plen) << (32 - plen), plen))
        else:
            plen = rng.choice([32, 40, 48, 48, 56, 64, 128])
            value = (0x20010DB8 << 96) | rng.getrandbits(96)
            net = ipaddress.IPv6Network((value >> (128 - plen) << (128 - plen), plen))
        status = rng.choices(["active", "pending", "suspended", "revoked"], [8, 1, 1, 1])[0]
        vf = ea = None
        if instants and rng.random() < 0.6:
            vf = rng.choice(instants)
        if instants and rng.random() < 0.6:
            later = [t for t in instants if vf is None or t > vf]
            ea = rng.choice(later) if later else None
        out.append(Registration(f"{prefix}{i:05d}", net, status=status,
                                valid_from=None if vf is None else datetime.fromtimestamp(vf, UTC),
                                expires_at=None if ea is None else datetime.fromtimestamp(ea, UTC)))
    return out


def probes_for(records, rng: random.Random) -> list:
    addrs = set()
    for r in records:
        for net in r.networks:
            first, last = int(net.network_address), int(net.broadcast_address)
            top = 2**32 - 1 if net.version == 4 else 2**128 - 1
            for v in (first, last, rng.randint(first, last), first - 1, last + 1):
                if 0 <= v <= top:
                    addrs.add((net.version, v))
    return [ipaddress.IPv4Address(v) if ver == 4 else ipaddress.IPv6Address(v) for ver, v in sorted(addrs)]


# ---------------------------------------------------------------------------------------------
# basics


def test_serves_the_registry_and_reports_its_state(tmp_path, caplog, ticks):
    path = tmp_path / "reg.csv"
    publish(path, csv_text([("A", "192.0.2.0/24", "active"), ("B", "198.51.100.0/24", "suspended"),
                            ("C", "2001:db8::/32", "active")]))
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="ipallow.live")
    with LiveAllowlist(path, poll=None, clock=clock) as live:
        assert "192.0.2.7" in live and "198.51.100.7" not in live and "2001:db8::1" in live
        match = live.lookup("192.0.2.7")
        assert isinstance(match.data, Registration) and match.data.id == "A"
        assert live.contains_many(["192.0.2.1", "8.8.8.8"]).tolist() == [True, False]
        assert live.lookup_many(["2001:db8::1", "8.8.8.8"]).tolist() == [1, -1]
        assert [(e.registration.id, e.code) for e in live.explain("198.51.100.9")] == [("B", "suspended")]
        assert live.generation == 1 and live.reloads == 1 and live.failures == 0
        assert live.source == str(path) and live.loaded_at == T0 and live.last_error is None
        assert live.counts == {"registrations": 3, "active": 2, "ipv4_prefixes": 1, "ipv6_prefixes": 1}
        assert len(live) == 2 and isinstance(live.current, Allowlist) and len(live.registry) == 3
        assert live.next_boundary is None
        status = live.status()
        assert status["generation"] == 1 and status["polling"] is False and status["active"] == 2
        assert status["failures"] == status["consecutive_failures"] == 0 and status["last_error"] is None
        assert status["settle"] == 1.0 and status["pending_since"] is None
        assert "generation 1" in repr(live)
    assert live.closed
    live.close()                                  # idempotent
    assert "192.0.2.7" in live                    # a closed live list still answers (frozen)
    assert any("loaded" in r.getMessage() for r in caplog.records if r.name == "ipallow.live")


@pytest.mark.parametrize("kwargs,exc", [
    (dict(source=None), TypeError),
    (dict(source=b"reg.csv"), TypeError),
    (dict(source=[None]), TypeError),
    (dict(source=[], poll=0), ValueError),
    (dict(source=[], poll=-1), ValueError),
    (dict(source=[], poll=float("inf")), ValueError),
    (dict(source=[], poll="1"), TypeError),
    (dict(source=[], poll=True), TypeError),
    (dict(source=[], max_loss=1.5), ValueError),
    (dict(source=[], max_loss=None), TypeError),
    (dict(source=[], clock=None), TypeError),
    (dict(source=[], clock=lambda: "now"), TypeError),
    (dict(source=[], settle=-1), ValueError),
    (dict(source=[], settle=float("nan")), ValueError),
    (dict(source=[], settle=float("inf")), ValueError),
    (dict(source=[], settle="1"), TypeError),
    (dict(source=[], settle=True), TypeError),
], ids=repr)
def test_bad_arguments(kwargs, exc):
    with pytest.raises(exc):
        LiveAllowlist(**{"poll": None, **kwargs})


def test_first_load_failures_raise(tmp_path, ticks):
    start = ticks.t
    with pytest.raises(FileNotFoundError):
        LiveAllowlist(tmp_path / "missing.csv", poll=None)
    assert ticks.t == start                       # a missing file is not waited for
    bad = tmp_path / "bad.csv"
    publish(bad, "id,cidr\nA,10.0.0.1/8\n")
    with pytest.raises(ParseError):
        LiveAllowlist(bad, poll=None)
    empty = tmp_path / "empty.csv"
    publish(empty, "")
    with pytest.raises(ReloadRefused):
        LiveAllowlist(empty, poll=None)
    assert ticks.t >= start + 2.0                 # the two bad files were each given settle=1 s first


def test_none_to_methods_raises_type_error():
    with LiveAllowlist([Registration("A", "10.0.0.0/8")], poll=None) as live:
        for call in (lambda: None in live, lambda: live.lookup(None), lambda: live.contains_many(None),
                     lambda: live.lookup_many(None), lambda: live.explain(None)):
            with pytest.raises(TypeError):
                call()


# ---------------------------------------------------------------------------------------------
# following the file


def test_check_reloads_on_rename_replace_and_ignores_unchanged_content(tmp_path):
    path = tmp_path / "reg.csv"
    publish(path, csv_text([("A", "192.0.2.0/24", "active")]))
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), settle=0)
    assert live.check() is False and live.generation == 1
    publish(path, csv_text([("A", "192.0.2.0/24", "active"), ("B", "198.51.100.0/24", "active")]))
    assert live.check() is True and live.generation == 2 and "198.51.100.1" in live
    # the same content published again (new inode, new mtime): nothing to swap
    publish(path, csv_text([("A", "192.0.2.0/24", "active"), ("B", "198.51.100.0/24", "active")]))
    assert live.check() is False and live.generation == 2 and live.reloads == 2
    # an in-place rewrite of the same size right after the last read: caught by the content check
    with open(path, "r+b") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(0)
        handle.write(csv_text([("A", "192.0.2.0/24", "active"), ("B", "198.51.100.0/24", "revoked")])
                     [:size].encode().ljust(size, b"\n"))
    assert live.check() is True and "198.51.100.1" not in live and live.generation == 3
    # reload() rebuilds even when nothing changed
    assert live.reload() == 4


def test_background_thread_follows_the_file(tmp_path):
    path = tmp_path / "reg.jsonl"
    publish(path, jsonl([Registration("A", "192.0.2.0/24")]))
    with LiveAllowlist(path, poll=0.01, settle=0.05) as live:
        assert live.status()["polling"] is True
        publish(path, jsonl([Registration("A", "192.0.2.0/24"), Registration("B", "203.0.113.0/24")]))
        assert wait_for(lambda: live.generation == 2), "the thread did not pick up the new file"
        assert "203.0.113.9" in live and live.reloads == 2
        thread = live._thread
    assert not thread.is_alive()


def test_background_thread_swaps_at_the_boundary_without_any_reader(tmp_path):
    clock = FakeClock(S0 - 10)
    records = [Registration("A", "192.0.2.0/24", expires_at=T0),
               Registration("B", "198.51.100.0/24", valid_from=T0)]
    with LiveAllowlist(records, poll=0.01, clock=clock) as live:
        assert live.next_boundary == T0
        assert wait_for(lambda: live._snap.next is not None)          # next list prebuilt
        clock.t = S0
        assert wait_for(lambda: live.generation == 2), "the thread did not swap at the boundary"
        assert live._snap.allowlist.lookup("198.51.100.1").data.id == "B"
        assert "192.0.2.1" not in live and live.stale_answers == 0


def test_an_abandoned_live_list_stops_its_thread():
    live = LiveAllowlist([Registration("A", "10.0.0.0/8")], poll=0.01)
    thread = live._thread
    del live
    gc.collect()
    thread.join(WAIT)
    assert not thread.is_alive()


# ---------------------------------------------------------------------------------------------
# (3) every failure injected: the old list keeps serving


GOOD_ROWS = [(f"R{i:03d}", f"10.{i}.0.0/16", "active") for i in range(20)]
GOOD = csv_text(GOOD_ROWS)
PROBES = [f"10.{i}.1.1" for i in range(25)] + ["192.0.2.1"]


def _truncated_mid_record(path):
    publish(path, GOOD[: GOOD.index("R010") + 8])          # "...R010,10.1" : a half-written line


def _truncated_at_a_line(path):
    publish(path, csv_text(GOOD_ROWS[:8]))                  # 60% of the registrations lost


def _directory(path):
    os.remove(path)
    os.mkdir(path)


INJECTIONS = {
    "parse error": (lambda p: publish(p, GOOD + "X,10.99.0.1/16,active\n"), ParseError),
    "unknown status": (lambda p: publish(p, GOOD + "X,10.99.0.0/16,paused\n"), ParseError),
    "bad timestamp": (lambda p: publish(p, GOOD.replace("id,cidr,status", "id,cidr,status,expires_at")
                                        .replace(",active\n", ",active,soon\n")), ParseError),
    "duplicate id, other data": (lambda p: publish(p, GOOD + "R001,10.1.0.0/16,revoked\n"), ParseError),
    "invalid UTF-8": (lambda p: publish(p, GOOD.encode() + b"X,10.99.0.0/16,act\xffive\n"), ParseError),
    "missing file": (lambda p: os.remove(p), FileNotFoundError),
    "a directory": (_directory, IsADirectoryError),
    "truncated mid-record": (_truncated_mid_record, ParseError),
    "truncated at a line (loss)": (_truncated_at_a_line, ReloadRefused),
    "header only (all lost)": (lambda p: publish(p, "id,cidr,status\n"), ReloadRefused),
    "empty file": (lambda p: publish(p, ""), ReloadRefused),
    "whitespace only": (lambda p: publish(p, "\n \n"), ReloadRefused),
}


@pytest.mark.parametrize("settle", [0, 5.0])
@pytest.mark.parametrize("name", sorted(INJECTIONS))
def test_failed_reload_keeps_the_old_list_serving(tmp_path, caplog, ticks, name, settle):
    inject, error = INJECTIONS[name]
    path = tmp_path / "reg.csv"
    publish(path, GOOD)
    clock = FakeClock()
    live = LiveAllowlist(path, poll=None, clock=clock, settle=settle)
    before = live.lookup_many(PROBES).tolist()
    assert sum(i >= 0 for i in before) == 20
    caplog.set_level(logging.WARNING, logger="ipallow.live")

    clock.t += 60
    inject(path)
    if settle:
        # Not a failure yet: a file being written (or deleted and recreated) is given settle seconds.
        assert live.check() is False and live.failures == 0 and live.last_error is None
        assert live.status()["pending_since"] == T0 + timedelta(seconds=60)
        ticks.t += settle
    assert live.check() is False
    assert live.generation == 1 and live.lookup_many(PROBES).tolist() == before
    assert all(p in live for p in PROBES[:20])
    assert isinstance(live.last_error, error), repr(live.last_error)
    assert live.failures == live.consecutive_failures == 1 and live.last_error_at == T0 + timedelta(seconds=60)
    assert live.status()["pending_since"] is None
    warnings = [r for r in caplog.records if r.name == "ipallow.live" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "still serving generation 1" in warnings[0].getMessage()

    # not retried while nothing changes
    assert live.check() is False and live.failures == 1
    # an explicit reload raises, records, and still keeps the old list
    with pytest.raises(error):
        live.reload()
    assert live.failures == 2 and live.generation == 1 and live.lookup_many(PROBES).tolist() == before

    # the next change is tried again: a good export is swapped in
    if os.path.isdir(path):
        os.rmdir(path)
    clock.t += 1
    publish(path, csv_text(GOOD_ROWS + [("NEW", "192.0.2.0/24", "active")]))
    if settle:
        assert live.check() is False
        ticks.t += settle
    assert live.check() is True and live.generation == 2 and "192.0.2.1" in live
    # healthy again; the latest failure stays on record, older than the load (issue #12)
    assert live.consecutive_failures == 0 and live.failures == 2 and isinstance(live.last_error, error)
    assert live.last_error_at < live.loaded_at == T0 + timedelta(seconds=61)


def test_max_loss_is_configurable_and_force_overrides_it(tmp_path):
    path = tmp_path / "reg.csv"
    publish(path, GOOD)
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), max_loss=0.25, settle=0)
    publish(path, csv_text(GOOD_ROWS[:15]))                 # 25% lost: allowed
    assert live.check() is True and live.counts["registrations"] == 15
    publish(path, csv_text(GOOD_ROWS[:11]))                 # 4 of 15 = 26.7% lost: refused
    assert live.check() is False and isinstance(live.last_error, ReloadRefused)
    assert "max_loss=25%" in str(live.last_error) and live.counts["registrations"] == 15
    assert live.reload(force=True) == 3 and live.counts["registrations"] == 11
    loose = LiveAllowlist(path, poll=None, max_loss=1.0, settle=0)
    publish(path, csv_text(GOOD_ROWS[:1]))
    assert loose.check() is True and len(loose) == 1


# ---------------------------------------------------------------------------------------------
# (1) readers hammer lookups while reloads swap lists as fast as they can


def test_readers_only_ever_see_the_old_or_the_new_list(tmp_path):
    rng = random.Random(1234)
    a_records = random_records(rng, 500, prefix="A")
    b_records = [r for r in a_records if rng.random() < 0.85] + random_records(rng, 120, prefix="B")
    b_records = [Registration(r.id, r.networks, status=rng.choice(["active", "suspended"]))
                 if rng.random() < 0.3 else r for r in b_records]
    probes = probes_for(a_records + b_records, rng)
    texts = {"A": jsonl(a_records), "B": jsonl(b_records)}
    expected = {}
    for name, records in (("A", a_records), ("B", b_records)):
        ref = Reference(records, probes)
        positions = ref.answers(S0)
        al = Allowlist.from_registry(records, at=S0)
        ids = [records[p].id if p >= 0 else None for p in positions]
        # the library agrees with the reference for each list on its own
        got = al.lookup_many(probes)
        assert [al[i].data.id if i >= 0 else None for i in got.tolist()] == ids
        expected[name] = {"ids": ids, "in": positions >= 0, "idx": got}
    differ = [k for k in range(len(probes)) if expected["A"]["ids"][k] != expected["B"]["ids"][k]]
    assert len(differ) > 100
    strs = [str(p) for p in probes]

    path = tmp_path / "live.jsonl"
    publish(path, texts["A"])
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), max_loss=0.5, settle=0)
    errors: list[BaseException] = []
    stats = {"reads": 0, "batches": 0, "seen_a": 0, "seen_b": 0, "swaps": 0}
    stop = threading.Event()

    def reader(seed: int) -> None:
        r = random.Random(seed)
        try:
            while not stop.is_set():
                k = r.choice(differ) if r.random() < 0.7 else r.randrange(len(probes))
                ip = strs[k] if r.random() < 0.5 else probes[k]
                m = live.lookup(ip)
                got = m.data.id if m is not None else None
                a, b = expected["A"]["ids"][k], expected["B"]["ids"][k]
                assert got in (a, b), (strs[k], got, a, b)
                if a != b:
                    stats["seen_a" if got == a else "seen_b"] += 1
                assert (ip in live) in (a is not None, b is not None)
                stats["reads"] += 1
                if r.random() < 0.05:
                    lo = r.randrange(len(probes) - 200)
                    batch = probes[lo:lo + 200] if r.random() < 0.5 else np.array(strs[lo:lo + 200])
                    inside = live.contains_many(batch)
                    assert (np.array_equal(inside, expected["A"]["in"][lo:lo + 200])
                            or np.array_equal(inside, expected["B"]["in"][lo:lo + 200])), "mixed batch"
                    idx = live.lookup_many(batch)
                    assert (np.array_equal(idx, expected["A"]["idx"][lo:lo + 200])
                            or np.array_equal(idx, expected["B"]["idx"][lo:lo + 200])), "mixed batch"
                    stats["batches"] += 1
        except BaseException as exc:      # noqa: BLE001 - collected and asserted below
            errors.append(exc)
            stop.set()

    def writer() -> None:
        try:
            turn = "B"
            while not stop.is_set():
                publish(path, texts[turn])
                assert live.check() is True          # every publish is a new file: always swapped
                stats["swaps"] += 1
                turn = "A" if turn == "B" else "B"
        except BaseException as exc:      # noqa: BLE001
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in (1, 2, 3)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    stop.wait(2.0)                        # the fixed hammering time ...
    deadline = time.monotonic() + 60      # ... stretched on a loaded machine until enough swaps
    while not stop.is_set() and stats["swaps"] < 6 and time.monotonic() < deadline:
        stop.wait(0.05)
    stop.set()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    assert errors == [], errors[:3]
    assert live.failures == 0 and live.generation == stats["swaps"] + 1
    assert stats["swaps"] >= 5 and stats["reads"] >= 1000 and stats["batches"] >= 10, stats
    assert stats["seen_a"] > 0 and stats["seen_b"] > 0, stats     # both lists really served


# ---------------------------------------------------------------------------------------------
# (2) a simulated clock: zero wrong answers at t-1, t, t+1 around every boundary


def test_no_wrong_answer_around_any_boundary(tmp_path):
    rng = random.Random(99)
    instants = sorted({S0 + rng.randrange(0, 30 * 86400) for _ in range(150)})
    records = random_records(rng, 2500, instants)
    path = tmp_path / "reg.jsonl"
    publish(path, jsonl(records))
    probes = probes_for(records, rng)
    ref = Reference(records, probes)
    boundaries = sorted({b for r in records if r.status == "active"
                         for b in (r.valid_from, r.expires_at) if b is not None})
    times = sorted({b.timestamp() + d for b in boundaries for d in (-1, 0, 1)})
    assert len(boundaries) >= 100 and len(times) >= 300

    # batches in the core's native layouts (probes are sorted: all IPv4 first)
    v4 = np.array([int(p) for p in probes if p.version == 4], dtype=np.uint32)
    v6 = np.array([[int(p) >> 64, int(p) & (2**64 - 1)] for p in probes if p.version == 6], dtype=np.uint64)

    clock = FakeClock(times[0] - 3600)
    live = LiveAllowlist(path, poll=None, clock=clock, settle=0)
    position = {r.id: i for i, r in enumerate(records)}
    mapping: dict[int, np.ndarray] = {}
    wrong = checked = 0
    for t in times:
        clock.t = t
        al = live.current             # the reader crosses the boundary itself, onto the prebuilt list
        if id(al) not in mapping:
            mapping.clear()
            mapping[id(al)] = np.array([position[r.id] for r in al._compiled.data] + [-1])
        got = mapping[id(al)][np.concatenate([al.lookup_many(v4), al.lookup_many(v6)])]
        want = ref.answers(t)
        wrong += int(np.count_nonzero(got != want))
        checked += len(probes)
        for k in rng.sample(range(len(probes)), 25):      # the scalar paths of the live list itself
            m = live.lookup(probes[k])
            wrong += (position[m.data.id] if m else -1) != want[k]
            wrong += (probes[k] in live) != (want[k] >= 0)
        live.check()                  # what the thread does between boundaries: prebuild the next list
    assert wrong == 0
    assert checked > 1_000_000
    assert live.stale_answers == 0   # every crossing was served from a prebuilt list, on time
    assert live.generation >= len(boundaries)


def test_sub_second_boundaries_and_the_half_open_window():
    edge = S0 + 0.25
    records = [Registration("OLD", "192.0.2.0/24", expires_at=datetime.fromtimestamp(edge, UTC)),
               Registration("NEW", "192.0.2.0/24", valid_from=datetime.fromtimestamp(edge, UTC))]
    clock = FakeClock(S0)
    live = LiveAllowlist(records, poll=None, clock=clock)
    clock.t = edge - 1e-6
    assert live.lookup("192.0.2.1").data.id == "OLD"
    clock.t = edge
    assert live.lookup("192.0.2.1").data.id == "NEW"
    assert live.generation == 2 and live.stale_answers == 0


def test_clock_jumps_serve_the_current_list_until_the_thread_catches_up():
    records = [Registration(f"R{k}", f"10.{k}.0.0/16", valid_from=T0 + timedelta(hours=k)) for k in range(5)]
    clock = FakeClock(S0 - 1)
    live = LiveAllowlist(records, poll=None, clock=clock)
    assert len(live) == 0
    clock.t = S0 + 3 * 3600 + 1                # past four boundaries at once: no prebuilt list fits
    assert "10.0.0.1" not in live               # served from the current list, never built by a reader
    assert live.stale_answers >= 1
    assert live.check() is True and len(live) == 4 and "10.3.0.1" in live
    clock.t = S0 - 100                          # the clock steps back
    live.check()
    assert len(live) == 0 and "10.0.0.1" not in live


def test_static_registry_source_follows_the_clock():
    clock = FakeClock(S0 - 1)
    with LiveAllowlist([Registration("A", "10.0.0.0/8", valid_from=T0)], poll=None, clock=clock) as live:
        assert live.source is not None and "10.1.1.1" not in live and live.reloads == 1
        clock.t = S0
        assert "10.1.1.1" in live
        assert live.reload() == 3
        assert live.check() is False


def test_a_file_changing_while_read_is_left_for_the_next_poll(tmp_path, monkeypatch):
    path = tmp_path / "reg.csv"
    publish(path, GOOD)
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), settle=0)
    publish(path, csv_text(GOOD_ROWS + [("NEW", "192.0.2.0/24", "active")]))
    real_read = file_watch.WatchedFile._read
    calls = []

    def unsettled_once(self, key):
        calls.append(1)
        if len(calls) == 1:
            raise file_watch._Unsettled()
        return real_read(self, key)

    monkeypatch.setattr(file_watch.WatchedFile, "_read", unsettled_once)
    assert live.check() is False                        # mid-write: not a failure, nothing swapped
    assert live.failures == 0 and live.last_error is None and live.generation == 1
    assert live.check() is True and "192.0.2.1" in live   # tried again on the next poll
    assert len(calls) == 2


def test_the_thread_survives_an_unexpected_error(tmp_path, caplog):
    path = tmp_path / "reg.csv"
    publish(path, GOOD)
    caplog.set_level(logging.ERROR, logger="ipallow.live")
    with LiveAllowlist(path, poll=0.01, settle=0.05) as live:
        real_check = live.check
        boom = threading.Event()

        def check_once_broken():
            if not boom.is_set():
                boom.set()
                raise RuntimeError("injected")
            return real_check()

        live.check = check_once_broken                  # type: ignore[method-assign]
        assert wait_for(boom.is_set)
        publish(path, csv_text(GOOD_ROWS + [("NEW", "192.0.2.0/24", "active")]))
        assert wait_for(lambda: live.generation == 2), "the thread stopped after the error"
        assert live._thread.is_alive() and live.failures >= 1
    assert any("unexpected error" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# (issue #16, defect 6) a file is swapped in only when complete: stable across `settle`, or
# complete by a checksum file / its own snapshot checksums


def write_in_place(path, data: str | bytes) -> None:
    """What a slow exporter does: truncate the same file (same inode) and write, flushed."""
    with open(path, "r+b") as handle:
        handle.truncate(0)
        handle.write(data.encode() if isinstance(data, str) else data)


def test_a_half_written_file_cut_at_a_line_is_never_swapped_in(tmp_path, ticks):
    path = tmp_path / "reg.csv"
    publish(path, GOOD)
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), settle=1.0)
    full = csv_text(GOOD_ROWS + [("NEW", "192.0.2.0/24", "active")])
    inode = os.stat(path).st_ino
    write_in_place(path, csv_text(GOOD_ROWS[:14]))     # the first flush: 14 of 20 rows, a whole line
    assert os.stat(path).st_ino == inode
    for _ in range(3):                                 # re-checked within the interval: still held back
        assert live.check() is False
        ticks.t += 0.3
    assert live.counts["registrations"] == 20 and live.failures == 0 and live.last_error is None
    assert live.status()["pending_since"] is not None
    write_in_place(path, full)                         # the writer goes on: the interval starts again
    assert live.check() is False
    ticks.t += 0.9
    assert live.check() is False and live.generation == 1
    ticks.t += 0.1
    assert live.check() is True and live.generation == 2 and live.counts["registrations"] == 21
    assert "192.0.2.1" in live and live.status()["pending_since"] is None and live.failures == 0


def test_settle_zero_swaps_in_what_one_read_finds(tmp_path):
    """The documented opt-out (writers that publish by rename): the cut file is served at once."""
    path = tmp_path / "reg.csv"
    publish(path, GOOD)
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), settle=0)
    write_in_place(path, csv_text(GOOD_ROWS[:14]))
    assert live.check() is True and live.counts["registrations"] == 14


def test_a_deleted_file_keeps_serving_and_is_recorded_once_it_stays_deleted(tmp_path, ticks):
    path = tmp_path / "reg.csv"
    publish(path, GOOD)
    clock = FakeClock()
    live = LiveAllowlist(path, poll=None, clock=clock, settle=2.0)
    os.remove(path)
    assert live.check() is False and live.failures == 0          # deleted and maybe being recreated
    ticks.t += 2.0
    assert live.check() is False and isinstance(live.last_error, FileNotFoundError)
    assert live.failures == live.consecutive_failures == 1 and "10.1.1.1" in live
    assert live.check() is False and live.failures == 1          # recorded once
    with open(path, "w") as handle:                              # recreated (a new inode), slowly
        handle.write(csv_text(GOOD_ROWS[:12]))
        handle.flush()
        assert live.check() is False
        ticks.t += 1.0
        handle.seek(0)
        handle.truncate()
        handle.write(GOOD)
    assert live.check() is False and live.generation == 1 and live.counts["registrations"] == 20
    ticks.t += 2.0
    # back, complete: loaded (the same rows as before), and healthy again
    assert live.check() is True and live.generation == 2 and live.counts["registrations"] == 20
    assert live.consecutive_failures == 0 and live.failures == 1


def sha256_file(path, data: bytes, name: str = "reg.csv") -> None:
    import hashlib
    publish(f"{path}.sha256", f"{hashlib.sha256(data).hexdigest()}  {name}\n")


def test_a_file_matching_its_checksum_file_is_complete_at_once(tmp_path, ticks):
    path = tmp_path / "reg.csv"
    publish(path, GOOD)
    sha256_file(path, GOOD.encode())
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), settle=5.0)
    start = ticks.t
    assert ticks.t == start and live.generation == 1
    full = csv_text(GOOD_ROWS + [("NEW", "192.0.2.0/24", "active")])
    # mid-write: the checksum file still names the old bytes -> held back, and refused once it
    # stays that way for settle
    write_in_place(path, csv_text(GOOD_ROWS[:15]))
    assert live.check() is False and live.failures == 0
    ticks.t += 5.0
    assert live.check() is False and isinstance(live.last_error, ReloadRefused)
    assert "checksum file" in str(live.last_error) and live.counts["registrations"] == 20
    # the writer finishes and then publishes the checksum: swapped in at once, no settle wait
    write_in_place(path, full)
    assert live.check() is False                                  # stale checksum: not complete
    sha256_file(path, full.encode())
    assert live.check() is True and "192.0.2.1" in live and live.consecutive_failures == 0
    # reload() reads at once but still refuses bytes the checksum file does not name
    write_in_place(path, GOOD)
    with pytest.raises(ReloadRefused, match="checksum file"):
        live.reload()
    assert "192.0.2.1" in live
    # without a checksum file the settle rule applies again
    os.remove(f"{path}.sha256")
    assert live.check() is False
    ticks.t += 5.0
    assert live.check() is True and "192.0.2.1" not in live


def test_a_malformed_checksum_file_never_lets_a_file_through(tmp_path, ticks):
    path = tmp_path / "reg.csv"
    publish(path, GOOD)
    publish(f"{path}.sha256", "not a checksum\n")
    with pytest.raises(ReloadRefused, match="checksum file"):
        LiveAllowlist(path, poll=None, settle=1.0)


def test_a_snapshot_is_complete_by_its_own_checksums(tmp_path, ticks):
    path = tmp_path / "list.ipallow"
    Allowlist(["203.0.113.0/24"]).save(path)
    live = LiveAllowlist(path, poll=None, settle=5.0)
    assert ticks.t == 1000.0                         # verified complete: no settle wait at all
    new = tmp_path / "new.ipallow"
    Allowlist(["198.51.100.0/24", "203.0.113.0/24"]).save(new)
    data = new.read_bytes()
    write_in_place(path, data[: len(data) // 2])    # half of it, in place
    assert live.check() is False and live.failures == 0 and "203.0.113.9" in live
    ticks.t += 5.0
    assert live.check() is False and isinstance(live.last_error, SnapshotError)
    write_in_place(path, data)
    assert live.check() is True and "198.51.100.1" in live   # complete: swapped in without waiting
    # served from the bytes that were verified: emptying the file in place changes nothing served
    write_in_place(path, b"")
    assert "198.51.100.1" in live and live.lookup("203.0.113.9") is not None


def test_the_first_load_waits_for_the_file_to_settle(tmp_path, ticks):
    path = tmp_path / "reg.csv"
    publish(path, csv_text(GOOD_ROWS[:3]))           # a writer's first flush when the service starts
    steps = iter([lambda: write_in_place(path, csv_text(GOOD_ROWS[:10])), lambda: write_in_place(path, GOOD)])
    ticks.on_sleep = lambda: next(steps, lambda: None)()
    live = LiveAllowlist(path, poll=None, settle=1.0)
    assert live.counts["registrations"] == 20 and live.generation == 1
    assert ticks.t >= 1000.0 + 3.0                   # three intervals: two changes, then a quiet one

    # a file that never stops changing is refused after about ten intervals
    count = iter(range(1000))
    ticks.on_sleep = lambda: write_in_place(path, csv_text(GOOD_ROWS[: 1 + next(count) % 19]))
    with pytest.raises(OSError, match="kept changing"):
        LiveAllowlist(path, poll=None, settle=1.0)


# ---------------------------------------------------------------------------------------------
# (issue #12) status() never contradicts itself


def test_status_is_consistent_through_failures_and_recovery(tmp_path):
    path = tmp_path / "reg.csv"
    publish(path, GOOD)
    clock = FakeClock()
    live = LiveAllowlist(path, poll=None, clock=clock, settle=0)

    def consistent(status):
        assert status["failures"] >= status["consecutive_failures"] >= 0
        assert (status["last_error"] is None) == (status["last_error_at"] is None) == (status["failures"] == 0)
        if status["consecutive_failures"]:
            assert status["last_error_at"] >= status["loaded_at"]
        elif status["failures"]:
            assert status["last_error_at"] < status["loaded_at"]
        return status

    consistent(live.status())
    for k in range(6):
        clock.t += 1
        publish(path, GOOD + f"X{k},10.99.0.1/16,active\n")      # host bits set: a parse error
        live.check()
        s = consistent(live.status())
        assert s["failures"] == s["consecutive_failures"] == k + 1 and "10.99.0.1/16" in s["last_error"]
    clock.t += 1
    publish(path, csv_text(GOOD_ROWS + [("NEW", "192.0.2.0/24", "active")]))
    assert live.check() is True
    s = consistent(live.status())
    assert s["failures"] == 6 and s["consecutive_failures"] == 0
    assert "10.99.0.1/16" in s["last_error"] and s["last_error_at"] == T0 + timedelta(seconds=6)
    assert s["loaded_at"] == T0 + timedelta(seconds=7)


# -- every format the one loader reads (Allowlist.from_file) serves live too -----------------

PLAIN_FORMATS = {
    "plain.txt": ("192.0.2.0/24\n# a comment\n198.51.100.7\n", "192.0.2.0/24\n203.0.113.0/24\n"),
    "plain.csv": ("cidr,owner\n192.0.2.0/24,Acme\n198.51.100.7/32,Bolan\n",
                  "cidr,owner\n192.0.2.0/24,Acme\n203.0.113.0/24,Indus\n"),
    "reg.jsonl": ('{"id": "A", "networks": ["192.0.2.0/24", "198.51.100.7/32"]}\n',
                  '{"id": "A", "networks": ["192.0.2.0/24", "203.0.113.0/24"]}\n'),
    "reg.csv": (csv_text([("A", "192.0.2.0/24", "active"), ("B", "198.51.100.7/32", "active")]),
                csv_text([("A", "192.0.2.0/24", "active"), ("C", "203.0.113.0/24", "active")])),
}


def _oracle(text_path) -> set:
    """What Allowlist.from_file (the one loader) says of each probe, the reference for the live list."""
    al = Allowlist.from_file(text_path)
    return {ip for ip in ("192.0.2.9", "198.51.100.7", "203.0.113.9", "10.0.0.1") if ip in al}


@pytest.mark.parametrize("name", sorted(PLAIN_FORMATS))
def test_every_loader_format_serves_and_reloads(tmp_path, name):
    first, second = PLAIN_FORMATS[name]
    path = tmp_path / name
    publish(path, first)
    expected_first = _oracle(path)
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), settle=0)
    probes = ("192.0.2.9", "198.51.100.7", "203.0.113.9", "10.0.0.1")
    assert {ip for ip in probes if ip in live} == expected_first == {"192.0.2.9", "198.51.100.7"}
    assert len(live) == len(Allowlist.from_file(path))
    publish(path, second)
    assert live.check() is True and live.generation == 2
    assert {ip for ip in probes if ip in live} == _oracle(path) == {"192.0.2.9", "203.0.113.9"}
    # a plain list has no lifecycle: the clock moving on changes nothing
    live._clock.t += 10 * 365 * 86400
    assert "203.0.113.9" in live and live.generation == 2 and live.next_boundary is None


def test_a_plain_snapshot_serves_and_reloads(tmp_path):
    text = tmp_path / "plain.txt"
    text.write_text("192.0.2.0/24\n")
    path = tmp_path / "plain.ipallow"
    Allowlist.from_file(text).save(path)
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), settle=0)
    assert "192.0.2.9" in live and "203.0.113.9" not in live
    text.write_text("192.0.2.0/24\n203.0.113.0/24\n")
    Allowlist.from_file(text).save(path)
    assert live.check() is True and "203.0.113.9" in live


def test_a_bad_plain_list_fails_as_the_loader_does_and_a_failed_reload_changes_nothing(tmp_path):
    path = tmp_path / "plain.txt"
    publish(path, "192.0.2.0/24\nnot-an-address\n")
    with pytest.raises(ParseError) as from_file:
        Allowlist.from_file(path)
    with pytest.raises(ParseError) as live_error:
        LiveAllowlist(path, poll=None, settle=0)
    assert str(live_error.value) == str(from_file.value)
    publish(path, "192.0.2.0/24\n")
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), settle=0)
    publish(path, "192.0.2.0/24\n203.0.113.0/24\nbad line\n")
    assert live.check() is False
    assert isinstance(live.last_error, ParseError)
    assert "192.0.2.9" in live and "203.0.113.9" not in live and live.generation == 1


def test_a_plain_list_that_loses_most_entries_is_refused_like_a_registry(tmp_path):
    path = tmp_path / "plain.txt"
    publish(path, "".join(f"10.0.{i}.0/24\n" for i in range(10)))
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), settle=0, max_loss=0.5)
    publish(path, "10.0.0.0/24\n")
    with pytest.raises(ReloadRefused):
        live.reload()
    assert "10.0.9.1" in live and live.generation == 1
    assert live.reload(force=True) == 2 and "10.0.9.1" not in live


def test_format_names_the_loaders_formats(tmp_path):
    path = tmp_path / "list.data"
    publish(path, "cidr\n192.0.2.0/24\n")
    live = LiveAllowlist(path, poll=None, clock=FakeClock(), settle=0, format="csv")
    assert "192.0.2.9" in live
    # "csv" keeps reading a registry CSV, as it did before plain lists were served
    registry = tmp_path / "reg.data"
    publish(registry, csv_text([("A", "192.0.2.0/24", "active")]))
    assert "192.0.2.9" in LiveAllowlist(registry, poll=None, clock=FakeClock(), settle=0, format="csv")
    with pytest.raises(ValueError):
        LiveAllowlist(path, poll=None, settle=0, format="xml")
