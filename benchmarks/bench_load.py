"""Loading (issue #15): a registry against the plain list of the same networks, ranges against
the same space as CIDRs, and the peak memory of ``compile`` / ``validate`` per entry.

Goals: a registry loads within 2x the plain list of its networks; ``a - b`` ranges compile within
1.5x of the same space written as CIDRs; ``validate`` and ``compile`` peak at <= 150 bytes per
entry on world-sized lists.

The world-sized list is the one issue #15 measured: the IPFire location data Debian ships in
``tor-geoipdb`` (``apt-get install tor-geoipdb``: ``/usr/share/tor/geoip`` and ``geoip6``, country
ranges), cut into CIDRs (561,828 IPv4 and 595,148 IPv6 with the 2025 data), and as the ranges it
ships, ``a - b`` (662,228): the issue's world list of ranges against the same space as CIDRs.
Without the package the ``world`` cases are skipped, with that reason.

Every case is a whole process (its own imports, its own peak), timed by the kernel: user CPU and
peak RSS (``os.wait4``'s rusage), so the figures are the ones ``/usr/bin/time -f '%U %M'`` gives.
The inputs are generated with a fixed seed: N random IPv4 networks and N random IPv6 networks.

* as a script (interleaved rounds: a change in the machine's load hits every case alike)::

      python benchmarks/bench_load.py [--networks 100000] [--rounds 3] [--against /old/src]
                                      [--cases WORD,...]

  ``--against SRC`` runs the same cases from another source tree too (before/after);
  ``--cases`` keeps the cases whose names hold one of the words (``--cases world``).
* with pytest-benchmark, as the other benchmarks (``pytest benchmarks/bench_load.py``): the
  loads in-process at a small size.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SEED = 15
INPUTS = ("plain.txt", "registry.csv", "cidrs4.txt", "ranges4.txt", "ragged4.txt", "ragged_cidrs4.txt")


def make_inputs(folder: Path, count: int) -> dict[str, Path]:
    """plain.txt, registry.csv (the same networks), cidrs4.txt and ranges4.txt (the same space, each
    range one CIDR block), ragged4.txt and ragged_cidrs4.txt (ranges with ends anywhere, as merged
    lists have them, and the same space as the CIDRs that cover each range exactly)."""
    rng = random.Random(SEED)
    v4, v6 = [], []
    for _ in range(count):
        prefixlen = rng.randint(16, 28)
        v4.append(ipaddress.IPv4Network((rng.getrandbits(prefixlen) << (32 - prefixlen), prefixlen)))
        prefixlen = rng.randint(32, 64)
        v6.append(ipaddress.IPv6Network((rng.getrandbits(prefixlen) << (128 - prefixlen), prefixlen)))
    networks = v4 + v6
    paths = {name: folder / name for name in INPUTS}
    paths["plain.txt"].write_text("".join(f"{n}\n" for n in networks))
    categories = ("company_vpn", "freelancer_vpn", "call_center", "video_conference", "other")
    paths["registry.csv"].write_text("id,cidr,owner,category,status,expires_at\n" + "".join(
        f"PTA-{i},{n},Owner {i % 5000},{categories[i % 5]},{'active' if i % 10 else 'suspended'},"
        f"{2030 + i % 7}-01-01\n" for i, n in enumerate(networks)))
    paths["cidrs4.txt"].write_text("".join(f"{n}\n" for n in v4))
    paths["ranges4.txt"].write_text("".join(f"{n.network_address} - {n.broadcast_address}\n" for n in v4))
    ragged = []
    for n in v4:                             # each network, its ends moved by up to 1/4 of its size
        size = n.num_addresses
        first = int(n.network_address) + rng.randrange(0, max(size // 4, 1))
        ragged.append((ipaddress.IPv4Address(first),
                       ipaddress.IPv4Address(max(first, int(n.broadcast_address) - rng.randrange(0, max(size // 4, 1))))))
    paths["ragged4.txt"].write_text("".join(f"{a} - {b}\n" for a, b in ragged))
    paths["ragged_cidrs4.txt"].write_text("".join(
        f"{c}\n" for a, b in ragged for c in ipaddress.summarize_address_range(a, b)))
    return paths


WORLD = (Path("/usr/share/tor/geoip"), Path("/usr/share/tor/geoip6"))


def make_world(path: Path) -> int | None:
    """The world list (see the module docstring) as CIDR text at ``path``, and as the ranges it
    ships (``a - b`` text) at ``world_ranges.txt`` beside it: the CIDR count, or None when
    tor-geoipdb is not installed."""
    if not all(source.exists() for source in WORLD):
        return None
    import numpy as np
    from ipallow._blocks import cut_ranges
    from ipallow._prefixes import ipv4_strings, ipv6_strings
    texts: list[str] = []
    ranges: list[str] = []
    for version, source in zip((4, 6), WORLD):
        firsts, lasts = [], []
        for line in source.read_text().splitlines():
            if line and not line.startswith("#"):
                first, last = line.split(",")[:2]
                firsts.append(int(first) if version == 4 else int(ipaddress.IPv6Address(first)))
                lasts.append(int(last) if version == 4 else int(ipaddress.IPv6Address(last)))
        words = [np.array([v >> 64 for v in firsts], np.uint64), np.array([v & (2**64 - 1) for v in firsts], np.uint64),
                 np.array([v >> 64 for v in lasts], np.uint64), np.array([v & (2**64 - 1) for v in lasts], np.uint64)]
        _, hi, lo, plen = cut_ranges(version, *words)
        texts += ipv4_strings(lo, plen) if version == 4 else ipv6_strings(hi, lo, plen)
        ranges += [f"{ipaddress.ip_address(first)} - {ipaddress.ip_address(last)}" if version == 4 else
                   f"{ipaddress.IPv6Address(first)} - {ipaddress.IPv6Address(last)}"
                   for first, last in zip(firsts, lasts)]
    path.write_text("\n".join(texts) + "\n")
    path.with_name("world_ranges.txt").write_text("\n".join(ranges) + "\n")
    return len(texts)


def cases(paths: dict[str, Path], out: Path) -> dict[str, list[str]]:
    """Name -> command (each in its own process)."""
    python = [sys.executable, "-c"]
    load = "import sys; from ipallow import Allowlist; Allowlist.from_file(sys.argv[1])"
    cli = "import sys; from ipallow import cli; sys.exit(getattr(cli, 'console_main', cli.main)())"
    return {
        "import ipallow": python + ["import ipallow"],
        "load plain": python + [load, str(paths["plain.txt"])],
        "load registry": python + [load, str(paths["registry.csv"])],
        "compile plain": python + [cli, "compile", str(paths["plain.txt"]), "-o", str(out)],
        "compile registry": python + [cli, "compile", str(paths["registry.csv"]), "-o", str(out)],
        "compile cidrs4": python + [cli, "compile", str(paths["cidrs4.txt"]), "-o", str(out)],
        "compile ranges4": python + [cli, "compile", str(paths["ranges4.txt"]), "-o", str(out)],
        "compile ragged4": python + [cli, "compile", str(paths["ragged4.txt"]), "-o", str(out)],
        "compile ragged_cidrs4": python + [cli, "compile", str(paths["ragged_cidrs4.txt"]), "-o", str(out)],
        "validate plain": python + [cli, "validate", str(paths["plain.txt"])],
        **({"compile world": python + [cli, "compile", str(paths["world.txt"]), "-o", str(out)],
            "compile world_ranges": python + [cli, "compile", str(paths["world_ranges.txt"]), "-o", str(out)],
            "validate world": python + [cli, "validate", str(paths["world.txt"])]}
           if "world.txt" in paths else {}),
    }


def run_once(command: list[str], src: str | None) -> tuple[float, int]:
    """(user CPU seconds, peak RSS bytes) of one process."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    error = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if child.returncode not in (0, 1):       # validate exits 1 on warnings
        raise RuntimeError(f"{command[2:]} failed ({child.returncode}): {error[-2000:]}")
    return usage.ru_utime, usage.ru_maxrss * 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=int, default=100_000, help="IPv4 networks, as many IPv6")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", metavar="SRC", help="another source tree to run the same cases from")
    parser.add_argument("--cases", metavar="WORD,...",
                        help="only the cases whose names hold one of these words (e.g. 'ranges4,cidrs4')")
    parser.add_argument("--make-inputs", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make_inputs:
        make_inputs(Path(args.make_inputs), args.networks)
        make_world(Path(args.make_inputs) / "world.txt")
        return
    trees = {"": os.environ.get("PYTHONPATH") or None}
    if args.against:
        trees = {"new ": trees[""], "old ": args.against}
    with tempfile.TemporaryDirectory() as folder:
        # Made by a child: a process forked from a big parent starts with the parent's peak RSS.
        subprocess.run([sys.executable, __file__, "--make-inputs", folder, "--networks", str(args.networks)],
                       check=True)
        paths = {name: Path(folder) / name for name in INPUTS}
        world = world_ranges = None
        if (Path(folder) / "world.txt").exists():
            paths["world.txt"] = Path(folder) / "world.txt"
            paths["world_ranges.txt"] = Path(folder) / "world_ranges.txt"
            world = sum(1 for _ in paths["world.txt"].open())
            world_ranges = sum(1 for _ in paths["world_ranges.txt"].open())
        words = args.cases.split(",") if args.cases else [""]
        chosen = {name: command for name, command in cases(paths, Path(folder) / "out.ipallow").items()
                  if name == "import ipallow" or any(word in name for word in words)}
        runs = {(tree, name): [] for tree in trees for name in chosen}
        for _ in range(args.rounds):
            for tree, src in trees.items():
                for name, command in chosen.items():
                    runs[tree, name].append(run_once(command, src))
    entries = {"plain": 2 * args.networks, "registry": 2 * args.networks, "cidrs4": args.networks,
               "ranges4": args.networks, "ragged4": args.networks, "world": world,
               "world_ranges": world_ranges}
    print(f"{args.networks:,} IPv4 + {args.networks:,} IPv6 networks, {args.rounds} rounds "
          f"(median user CPU, median peak RSS)")
    print("(B/entry: peak RSS / entries; above import: (peak - the import's peak) / entries)")
    print(f"world list: {world:,} CIDRs ({world_ranges:,} ranges) from tor-geoipdb" if world else
          "world list: skipped (no /usr/share/tor/geoip{,6}: apt-get install tor-geoipdb)")
    for (tree, name), results in runs.items():
        user = statistics.median(r[0] for r in results)
        peak = statistics.median(r[1] for r in results)
        base = statistics.median(r[1] for r in runs[tree, "import ipallow"])
        count = entries.get(name.split()[-1])
        per_entry = f"{peak / count:6.0f} B/entry, {(peak - base) / count:6.0f} above import" if count else ""
        print(f"{tree}{name:18} {user:7.2f} s user {peak / 2**20:8.1f} MiB {per_entry}")
    ratios = {"registry / plain load": ("load registry", "load plain"),
              "registry / plain compile": ("compile registry", "compile plain"),
              "ranges / CIDRs compile": ("compile ranges4", "compile cidrs4"),
              "ragged ranges / CIDRs compile": ("compile ragged4", "compile ragged_cidrs4"),
              "world ranges / CIDRs compile": ("compile world_ranges", "compile world")}
    for tree in trees:
        median = {name: statistics.median(r[0] for r in results) for (t, name), results in runs.items()
                  if t == tree}
        print(tree + "; ".join(f"{label}: {median[top] / median[bottom]:.2f}x"
                               for label, (top, bottom) in ratios.items() if top in median and bottom in median))


# -- pytest-benchmark: the loads in-process, small ----------------------------------------------

@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("load"), 20_000)


@pytest.mark.parametrize("name", INPUTS)
def test_load(benchmark, inputs, name):
    from ipallow import Allowlist
    benchmark.pedantic(Allowlist.from_file, args=(str(inputs[name]),), rounds=3, iterations=1)


if __name__ == "__main__":
    main()
