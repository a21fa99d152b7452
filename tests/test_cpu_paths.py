"""The core chooses its popcount and text-scanning code once, at import, from the CPU it runs on;
IPALLOW_SCALAR=1 forces the portable scalar paths (so the whole suite can run on each path).

Both paths must give the same answers, and the right ones: checked against the DictOracle on a
seeded table, in subprocesses started with and without the switch.
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import random
import subprocess
import sys

import pytest

from ipallow import _trie
from oracle import DictOracle

PATHS = {"popcnt", "scalar", "native"}


def forced_scalar(env) -> bool:
    return env.get("IPALLOW_SCALAR", "") not in ("", "0")


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags as the kernel reports them (independent of the core's own check)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def expected_default_path() -> str | None:
    """The path an unforced import must pick here, or None where this test cannot tell."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        flags = cpu_flags()
        if flags is None:
            return None
        return "popcnt" if "popcnt" in flags else "scalar"
    if machine in ("aarch64", "arm64") and sys.platform != "win32":
        return "native"
    return None


def test_the_active_path_is_reported_and_fits_this_cpu():
    path = _trie.cpu_path()
    assert path in PATHS
    if forced_scalar(os.environ):
        assert path == "scalar"
        return
    expected = expected_default_path()
    if expected is None:
        pytest.skip(f"no independent way to know the expected path on {platform.machine()}")
    assert path == expected


# Run in a subprocess: reads a table and queries as JSON on stdin, answers every way the core
# answers, as JSON on stdout.
ANSWER = r"""
import json, sys
import numpy as np
import ipallow
from ipallow import _trie

job = json.load(sys.stdin)
al = ipallow.Allowlist([(net, {"reg": i}) for i, net in enumerate(job["nets"])])
texts = job["texts"]
v4 = np.array(job["ints4"], dtype=np.uint32)
v6 = np.array(job["pairs6"], dtype=np.uint64).reshape(-1, 2)

def parsed(text):
    try:
        return list(_trie.parse_address(text))
    except ValueError:
        return None

print(json.dumps({
    "path": _trie.cpu_path(),
    "list": al.lookup_many(texts).tolist(),
    "U": al.lookup_many(np.array(texts, dtype="U")).tolist(),
    "match_text": al._match_text(texts).tolist(),
    "in": [t in al for t in texts],
    "ints4": al.lookup_many(v4).tolist(),
    "pairs6": al.lookup_many(v6).tolist(),
    "quads": [parsed(t) for t in job["quads"]],
}))
"""


def seeded_job(seed: int = 7) -> dict:
    rnd = random.Random(seed)
    nets: list[str] = []
    for _ in range(1500):                   # nested and disjoint prefixes at every depth
        plen = rnd.randint(6, 32)
        nets.append(str(ipaddress.IPv4Network((rnd.getrandbits(32) >> (32 - plen) << (32 - plen), plen))))
    for _ in range(1500):
        plen = rnd.randint(12, 128)
        base = (0x2001 << 112) | rnd.getrandbits(112)
        nets.append(str(ipaddress.IPv6Network((base >> (128 - plen) << (128 - plen), plen))))
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for net in map(ipaddress.ip_network, nets[::3]):    # inside registered prefixes, and anywhere
        addresses.append(net.network_address + rnd.randrange(net.num_addresses))
    addresses += [ipaddress.IPv4Address(rnd.getrandbits(32)) for _ in range(500)]
    addresses += [ipaddress.IPv6Address((0x2001 << 112) | rnd.getrandbits(112)) for _ in range(500)]
    quads = [".".join(str(rnd.choice([0, 1, 9, 10, 99, 100, 199, 255, 256, 999])) for _ in range(4))
             for _ in range(300)]
    quads += ["01.2.3.4", "1.2.3.04", "1..2.3", "1.2.3.4.", ".1.2.3", "1.2.3", "1.2.3.4.5",
              "255.255.255.255", "0.0.0.0", "1.2.3.a", "1.2.3.4/8", " 1.2.3.4", "1.2.3.4 "]
    return {
        "nets": nets,
        "texts": [str(a) for a in addresses],
        "ints4": [int(a) for a in addresses if a.version == 4],
        "pairs6": [[int(a) >> 64, int(a) & (2**64 - 1)] for a in addresses if a.version == 6],
        "quads": quads,
        "addresses": addresses,
    }


def answer(job: dict, scalar: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "IPALLOW_SCALAR"}
    if scalar is not None:
        env["IPALLOW_SCALAR"] = scalar
    payload = json.dumps({k: v for k, v in job.items() if k != "addresses"})
    result = subprocess.run([sys.executable, "-c", ANSWER], input=payload, capture_output=True,
                            text=True, env=env, timeout=120, check=True)
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def job():
    return seeded_job()


@pytest.fixture(scope="module")
def scalar_answers(job):
    return answer(job, "1")


@pytest.fixture(scope="module")
def default_answers(job):
    return answer(job, None)


def test_the_switch_forces_the_scalar_path(scalar_answers):
    assert scalar_answers["path"] == "scalar"


@pytest.mark.parametrize("value", [None, "0", ""])
def test_without_the_switch_the_cpu_decides(job, value, default_answers):
    path = answer({**job, "texts": [], "ints4": [], "pairs6": [], "quads": []}, value)["path"]
    assert path == default_answers["path"]
    expected = expected_default_path()
    if expected is not None:
        assert path == expected


def test_both_paths_give_the_oracle_answers(job, scalar_answers, default_answers):
    oracle = DictOracle([[ipaddress.ip_network(net)] for net in job["nets"]])
    expected = [-1 if (hit := oracle.lookup(a)) is None else hit for a in job["addresses"]]
    expected4 = [e for e, a in zip(expected, job["addresses"]) if a.version == 4]
    expected6 = [e for e, a in zip(expected, job["addresses"]) if a.version == 6]
    assert sum(e >= 0 for e in expected) > len(expected) // 4       # the table is really used
    for answers in (scalar_answers, default_answers):
        assert answers["list"] == expected
        assert answers["U"] == expected
        assert answers["in"] == [e >= 0 for e in expected]
        assert answers["ints4"] == expected4
        assert answers["pairs6"] == expected6
        assert [m >= 0 for m in answers["match_text"]] == [e >= 0 for e in expected]
    # _match_text answers with prefix indices (duplicates share one): the paths agree on them.
    assert scalar_answers["match_text"] == default_answers["match_text"]


def test_both_paths_parse_dotted_quads_like_the_standard_library(job, scalar_answers, default_answers):
    def stdlib(text):
        try:
            return [4, int(ipaddress.IPv4Address(text))]
        except ValueError:
            return None

    expected = [stdlib(t) for t in job["quads"]]
    assert any(expected) and not all(expected)
    assert scalar_answers["quads"] == expected
    assert default_answers["quads"] == expected
