"""Issue 12: the command line and registries never surprise a gateway.

Every behaviour is driven through the installed ``ipallow`` executable in a
subprocess (with PYTHONPATH exported it runs this checkout's code).  Lists are
always passed with --list: no test relies on the bundled sample.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest

import ipallow
from ipallow.registry import id_key, natural_order

IPALLOW = shutil.which("ipallow")
pytestmark = pytest.mark.skipif(IPALLOW is None, reason="the ipallow executable is not installed")


def run(*args, stdin=None, env=None):
    return subprocess.run([IPALLOW, *map(str, args)], capture_output=True, text=True, input=stdin,
                          timeout=120, env=env)


# ---------------------------------------------------------------------------
# one rule for a prefix registered by several registrations
# ---------------------------------------------------------------------------

DUPLICATE_ROWS = ["PTA-9,192.0.2.0/24,Nine", "PTA-10,192.0.2.0/24,Ten", "PTA-1,198.51.100.0/24,One"]


def _registry(tmp_path, rows, name="reg.csv"):
    path = tmp_path / name
    path.write_text("id,cidr,owner\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("rows", [DUPLICATE_ROWS, DUPLICATE_ROWS[::-1]], ids=["file-order", "reversed"])
def test_duplicate_prefix_lowest_natural_id_answers_in_check_and_explain(tmp_path, rows):
    path = _registry(tmp_path, rows)
    checked = run("check", "--list", path, "192.0.2.1")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.split()[:4] == ["192.0.2.1", "allowed", "192.0.2.0/24", "PTA-9"]
    explained = run("check", "--list", path, "--explain", "--json", "192.0.2.1")
    record = json.loads(explained.stdout)
    assert record["id"] == "PTA-9"
    assert [(e["id"], e["decides"]) for e in record["explain"]] == [("PTA-9", True), ("PTA-10", False)]
    text = run("check", "--list", path, "--explain", "192.0.2.1").stdout.splitlines()
    decided = [line for line in text if line.startswith("  * ")]
    assert len(decided) == 1 and "PTA-9 " in decided[0]
    other = next(line for line in text if "PTA-10" in line and line.startswith("    "))
    assert "lowest id" in other


@pytest.mark.parametrize("rows", [DUPLICATE_ROWS, DUPLICATE_ROWS[::-1]], ids=["file-order", "reversed"])
def test_duplicate_prefix_validate_names_the_registration_that_answers(tmp_path, rows):
    path = _registry(tmp_path, rows)
    result = run("validate", "--json", path)
    warning, = json.loads(result.stdout)["warnings"]
    assert (warning["kind"], warning["id"], warning["other_id"]) == ("duplicate", "PTA-10", "PTA-9")
    assert warning["line"] == 2 + rows.index(DUPLICATE_ROWS[1])          # PTA-10's row is flagged
    assert "PTA-9 answers lookups" in warning["message"]
    text = run("validate", path).stdout
    assert "first registration wins" not in text and "PTA-9 answers lookups" in text


def test_duplicate_prefix_lookup_agrees_with_the_command_line(tmp_path):
    for rows in (DUPLICATE_ROWS, DUPLICATE_ROWS[::-1]):
        al = ipallow.Allowlist.from_registry(_registry(tmp_path, rows))
        assert al.lookup("192.0.2.1").data.id == "PTA-9"
        assert [e.registration.id for e in al.explain("192.0.2.1")] == ["PTA-9", "PTA-10"]


def test_plain_list_duplicate_first_line_answers_and_validate_says_so(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("192.0.2.0/24\n10.0.0.0/8\n192.0.2.0/24\n")
    checked = run("check", "--list", path, "--json", "192.0.2.1")
    assert json.loads(checked.stdout)["registration"] == 0
    warning, = json.loads(run("validate", "--json", path).stdout)["warnings"]
    assert warning["line"] == 3 and "the first (line 1) answers lookups" in warning["message"]


def test_natural_order_agrees_with_id_key_on_random_ids():
    rng = random.Random(12)
    alphabet = ["PTA-", "pta-", "X", "-", "0", "1", "9", "10", "007", "a", "Z9"]
    for _ in range(200):
        ids = list({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(30)})
        order = natural_order(np.array(ids, dtype=str)).tolist()
        assert [ids[i] for i in order] == sorted(ids, key=id_key)
    shaped = [f"PTA-{n}" for n in rng.sample(range(100000), 500)] + ["PTA-", "PTA-0", "PTA-00", "OTHER-3"]
    order = natural_order(np.array(shaped, dtype=str)).tolist()
    assert [shaped[i] for i in order] == sorted(shaped, key=id_key)


# ---------------------------------------------------------------------------
# registry snapshots keep their lifecycle
# ---------------------------------------------------------------------------

LIFECYCLE_REGISTRY = """\
id,cidr,owner,status,valid_from,expires_at
PTA-1,198.51.100.0/24,Expires 2027,active,2024-01-01,2027-06-01
PTA-2,203.0.113.0/24,Starts 2028,active,2028-01-01,
PTA-3,192.0.2.0/24,Revoked,revoked,2024-01-01,
PTA-4,2001:db8::/32,Open,active,,
"""


@pytest.fixture
def lifecycle(tmp_path):
    registry = tmp_path / "reg.csv"
    registry.write_text(LIFECYCLE_REGISTRY)
    snap = tmp_path / "reg.ipallow"
    result = run("compile", registry, "-o", snap, "--at", "2026-01-01")
    assert result.returncode == 0, result.stderr
    return registry, snap


def _verdicts(*args):
    result = run("check", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return [(r["verdict"], r.get("id")) for r in map(json.loads, result.stdout.splitlines())], result


ADDRESSES = ("198.51.100.1", "203.0.113.1", "192.0.2.1", "2001:db8::1")


@pytest.mark.parametrize("at", ["2026-01-01", "2027-06-01", "2028-01-01T00:00:00Z", "2023-01-01"])
def test_check_at_on_a_registry_snapshot_answers_as_the_registry(lifecycle, at):
    registry, snap = lifecycle
    from_registry, _ = _verdicts("--list", registry, "--at", at, *ADDRESSES)
    from_snapshot, result = _verdicts("--list", snap, "--at", at, *ADDRESSES)
    assert from_snapshot == from_registry
    assert len(from_snapshot) == len(ADDRESSES)


def test_check_at_2028_on_a_snapshot_does_not_answer_with_an_expired_registration(lifecycle):
    _, snap = lifecycle
    verdicts, _ = _verdicts("--list", snap, "--at", "2028-01-01", *ADDRESSES)
    assert verdicts == [("denied", None), ("allowed", "PTA-2"), ("denied", None), ("allowed", "PTA-4")]
    explained = run("check", "--list", snap, "--at", "2028-01-01", "--explain", "198.51.100.1")
    assert "does not count: expired on 2027-06-01T00:00:00Z" in explained.stdout


def test_compile_applies_the_registry_lifecycle(lifecycle):
    _, snap = lifecycle          # compiled for 2026-01-01: PTA-1 and PTA-4 count, the revoked PTA-3 not
    verdicts, _ = _verdicts("--list", snap, "--at", "2026-01-01", *ADDRESSES)
    assert verdicts == [("allowed", "PTA-1"), ("denied", None), ("denied", None), ("allowed", "PTA-4")]


def test_info_shows_when_a_registry_snapshot_was_evaluated_and_the_next_boundary(lifecycle):
    _, snap = lifecycle
    text = run("info", snap)
    assert text.returncode == 0, text.stderr
    assert "evaluated at   2026-01-01T00:00:00Z" in text.stdout
    assert "next boundary  2027-06-01T00:00:00Z" in text.stdout
    facts = json.loads(run("info", "--json", snap).stdout)
    assert facts["lifecycle"] == {"evaluated_at": "2026-01-01T00:00:00Z",
                                  "next_boundary": "2027-06-01T00:00:00Z",
                                  "registry_registrations": 4, "counting": 2}


def test_info_of_a_plain_list_snapshot_has_no_lifecycle(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("192.0.2.0/24\n")
    snap = tmp_path / "plain.ipallow"
    assert run("compile", plain, "-o", snap).returncode == 0
    facts = json.loads(run("info", "--json", snap).stdout)
    assert facts["lifecycle"] is None
    assert "evaluated at" not in run("info", snap).stdout


def test_check_without_at_on_a_snapshot_past_its_boundary_answers_for_now(tmp_path):
    registry = tmp_path / "reg.csv"
    registry.write_text("id,cidr,status,valid_from,expires_at\n"
                        "OLD-1,198.51.100.0/24,active,2020-01-01,2021-01-01\n"
                        "NOW-1,203.0.113.0/24,active,2020-06-01,\n")
    snap = tmp_path / "reg.ipallow"
    assert run("compile", registry, "-o", snap, "--at", "2020-03-01").returncode == 0
    verdicts, result = _verdicts("--list", snap, "198.51.100.1", "203.0.113.1")
    assert verdicts == [("denied", None), ("allowed", "NOW-1")]
    assert "evaluated at 2020-03-01T00:00:00Z" in result.stderr


def test_check_at_on_a_snapshot_without_lifecycle_is_refused(tmp_path):
    # What an older ipallow wrote: the counting registrations only, no lifecycle section.
    registry = tmp_path / "reg.csv"
    registry.write_text(LIFECYCLE_REGISTRY)
    al = ipallow.Allowlist.from_registry(registry, at=1767225600)
    snap = tmp_path / "old.ipallow"
    ipallow.snapshot.save(al._compiled, snap)
    result = run("check", "--list", snap, "--at", "2028-01-01", "198.51.100.1")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "without their validity windows" in result.stderr and "compile" in result.stderr


def test_check_at_on_a_plain_list_says_it_changes_nothing(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("192.0.2.0/24\n")
    result = run("check", "--list", plain, "--at", "2028-01-01", "192.0.2.1")
    assert result.returncode == 0
    assert "--at does not change" in result.stderr


def test_live_allowlist_on_a_registry_snapshot_follows_the_clock(lifecycle):
    _, snap = lifecycle
    now = [1767225600.0]                                    # 2026-01-01
    live = ipallow.LiveAllowlist(str(snap), poll=None, clock=lambda: now[0])
    try:
        assert "198.51.100.1" in live and "203.0.113.1" not in live
        assert live.current._compiled.lifecycle is not None   # served from the mapped file
        assert live.next_boundary.isoformat() == "2027-06-01T00:00:00+00:00"
        now[0] = 1830297600.0                               # 2028-01-01
        live.check()                                        # what the polling thread does
        assert "198.51.100.1" not in live and "203.0.113.1" in live
        assert live.next_boundary is None
    finally:
        live.close()


def test_registry_snapshot_round_trips_the_registry(lifecycle):
    registry, snap = lifecycle
    loaded = ipallow.load(snap)
    assert loaded.evaluated_at.isoformat() == "2026-01-01T00:00:00+00:00"
    assert sorted(loaded._registry, key=lambda r: id_key(r.id)) == list(loaded._registry)
    assert set(loaded._registry) == set(ipallow.load_registry(registry))
    assert ipallow.Allowlist(["10.0.0.0/8"]).evaluated_at is None
