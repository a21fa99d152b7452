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
