"""Start-up: `ipallow check ADDRESS --list SNAPSHOT` against `python -c "import numpy"`, side by side.

The goal (issue #11): a check from a shell script costs within ~60 ms of importing numpy, because a
traffic-shaping script may run it once per address; `ipallow --version` and `--help` import no
numpy at all.  Every case is a whole process, timed the same way.

Two ways to run it:

* with pytest-benchmark, as the other benchmarks (``pytest benchmarks/bench_startup.py``);
* as a script, which runs the cases interleaved (one round = every case once, so a change in the
  machine's load hits them all alike) and prints each case's median and its difference from
  ``import numpy``; ``--against SRC`` adds the same cases run from another source tree (e.g. an
  older checkout's ``src``) for a before/after table::

      python benchmarks/bench_startup.py --rounds 20 [--against /path/to/old/src]

The children get the byte-code cache an installed package has: PYTHONDONTWRITEBYTECODE is dropped
from their environment (the first round writes the cache and is not counted).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import ipallow

ADDRESS = "203.0.113.9"


def make_snapshots(folder: Path) -> dict[str, str]:
    """The bundled sample compiled twice: as a plain list and as a registry (which carries its records)."""
    plain, registry = folder / "plain.ipallow", folder / "registry.ipallow"
    ipallow.Allowlist.from_file(ipallow.SAMPLE_LIST, format="csv").save(plain)
    ipallow.Allowlist.from_registry(ipallow.SAMPLE_LIST).save(registry)
    return {"plain": str(plain), "registry": str(registry)}


def cases(snapshots: dict[str, str]) -> dict[str, list[str]]:
    """name -> the arguments after the interpreter."""
    cli = ["-c", "import sys; from ipallow import cli; sys.exit(getattr(cli, 'console_main', cli.main)())"]   # what the console script runs
    return {
        "python -c 'import numpy'": ["-c", "import numpy"],
        "ipallow check (plain list snapshot)": [*cli, "check", ADDRESS, "--list", snapshots["plain"]],
        "ipallow check (registry snapshot)": [*cli, "check", ADDRESS, "--list", snapshots["registry"]],
        "ipallow --version": [*cli, "--version"],
        "ipallow --help": [*cli, "--help"],
    }


def child_env(source: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if source is not None:
        env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process.  CPU time (user + system, from wait4)
    moves less than wall time when other work shares the machine."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, *argv], stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode > 1:         # check exits 1 for a denied address; anything above is a failure
        raise RuntimeError(f"{argv} exited {child.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime


# -- pytest-benchmark ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def startup_cases(tmp_path_factory):
    return cases(make_snapshots(tmp_path_factory.mktemp("startup")))


@pytest.mark.parametrize("name", list(cases({"plain": "", "registry": ""})))
@pytest.mark.benchmark(group="start-up: whole process", min_rounds=10)
def test_startup(benchmark, startup_cases, name):
    env = child_env(str(Path(ipallow.__file__).parent.parent))
    _run(startup_cases[name], env)            # writes the byte-code cache
    benchmark(_run, startup_cases[name], env)          # pytest-benchmark times the wall clock


# -- the interleaved side-by-side run ------------------------------------------------------------

def interleaved(runs: dict[str, tuple[list[str], dict[str, str]]],
                rounds: int) -> dict[str, list[tuple[float, float]]]:
    for argv, env in runs.values():           # warm-up round: byte-code caches, page cache
        _run(argv, env)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (argv, env) in runs.items():
            times[name].append(_run(argv, env))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--against", metavar="SRC", help="also run the cases from this source tree")
    args = parser.parse_args(argv)
    here = str(Path(ipallow.__file__).parent.parent)
    with tempfile.TemporaryDirectory() as folder:
        named = cases(make_snapshots(Path(folder)))
        runs = {name: (a, child_env(here)) for name, a in named.items()}
        if args.against:
            runs.update({f"{name} [against]": (a, child_env(args.against))
                         for name, a in named.items() if "numpy" not in name})
        times = interleaved(runs, args.rounds)
    def medians(name: str) -> tuple[float, float]:
        return (statistics.median(t[0] for t in times[name]) * 1e3,
                statistics.median(t[1] for t in times[name]) * 1e3)

    numpy_wall, numpy_cpu = medians("python -c 'import numpy'")
    try:
        load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    print(f"{args.rounds} interleaved rounds, medians in ms; load average {load}; ipallow from {here}")
    width = max(map(len, times))
    print(f"{'':<{width}}  {'wall':>7} {'vs numpy':>9}  {'CPU':>7} {'vs numpy':>9}")
    for name in times:
        wall, cpu = medians(name)
        print(f"{name:<{width}}  {wall:7.1f} {wall - numpy_wall:+9.1f}  {cpu:7.1f} {cpu - numpy_cpu:+9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
