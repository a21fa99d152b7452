"""Start-up: `ipallow check ADDRESS --list SNAPSHOT` against `python -c "import numpy"`, side by side.

The goal (DESIGN.md): a check from a shell script costs within ~60 ms of importing numpy, because a
traffic-shaping script may run it once per address.  Both are whole processes, timed the same way;
report.py-style ratios come from comparing the two groups' medians in one run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import ipallow

IPALLOW = shutil.which("ipallow")


@pytest.fixture(scope="module")
def snapshot_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("startup") / "sample.ipallow"
    ipallow.Allowlist.from_file(ipallow.SAMPLE_LIST).save(path)
    return str(path)


def _run(argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ))


@pytest.mark.benchmark(group="start-up: whole process", min_rounds=10)
def test_python_import_numpy(benchmark):
    benchmark(_run, [sys.executable, "-c", "import numpy"])


@pytest.mark.benchmark(group="start-up: whole process", min_rounds=10)
def test_ipallow_check_on_a_snapshot(benchmark, snapshot_path):
    if IPALLOW is None:
        pytest.skip("the ipallow command is not on PATH (activate the virtualenv)")
    benchmark(_run, [IPALLOW, "check", "203.0.113.9", "--list", snapshot_path])


@pytest.mark.benchmark(group="start-up: whole process", min_rounds=10)
def test_ipallow_version(benchmark):
    if IPALLOW is None:
        pytest.skip("the ipallow command is not on PATH (activate the virtualenv)")
    benchmark(_run, [IPALLOW, "--version"])
