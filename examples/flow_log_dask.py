"""Classify a flow log on a local Dask cluster, then summarize traffic by registration and verdict.

    python examples/flow_log_dask.py                     # 2,000,000 flows, 2 worker processes
    python examples/flow_log_dask.py --rows 200000 --workers 1 --keep /tmp/flows

What it does:

1. Loads the registered list (the sample bundled with ipallow unless ``--list FILE``)
   and saves it as a snapshot file, ``registry.ipallow``.
2. Writes a synthetic flow log as Parquet files: NetFlow-like records whose
   source address is inside a registered range (60%), anywhere else (35%,
   IPv4 and IPv6), an IPv4-mapped IPv6 form (3%), missing (1%) or garbage (1%),
   as real exports have.
3. Starts a ``dask.distributed.LocalCluster`` with worker *processes* (one
   thread each), reads the Parquet files with ``dask.dataframe`` and runs
   ``ipallow.dataframe.classify(flows, "src_addr", "registry.ipallow")``.  Each
   worker process memory-maps the snapshot file once (the task graph carries
   only its path and checksum); on a real cluster put it on shared storage.
   Passing the Allowlist object instead broadcasts it once to every worker.
4. Prints traffic by verdict (allowed / denied / invalid) and the top
   registrations by bytes, their ids looked up with
   ``ipallow.dataframe.registration_labels`` on the small aggregated result.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import ipallow
from ipallow import synth
from ipallow.dataframe import classify, registration_labels, worker_stats

FLOW_COLUMNS = ["ts", "src_addr", "dst_addr", "src_port", "dst_port", "proto", "packets", "bytes"]


def _text4(values: np.ndarray) -> list[str]:
    """Dotted quads for uint32 addresses (vectorised by ipallow.synth)."""
    return [t[:-3] for t in synth.ipv4_strings(values, np.full(values.size, 32, np.uint8))]


def _text6(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    return [t[:-4] for t in synth.ipv6_strings(hi, lo, np.full(hi.size, 128, np.uint8))]


def _host_bits(rng: np.random.Generator, bits: np.ndarray) -> np.ndarray:
    """Random uint64 values below 2**bits (bits in 0..64)."""
    raw = rng.integers(0, 1 << 64, size=bits.size, dtype=np.uint64, endpoint=False)
    keep = np.where(bits >= 64, np.uint64(0xFFFFFFFFFFFFFFFF),
                    (np.uint64(1) << np.minimum(bits, 63).astype(np.uint64)) - np.uint64(1))
    return raw & keep


def _inside(al: ipallow.Allowlist, rng: np.random.Generator, n: int, v4_only: bool = False) -> list[str]:
    """n addresses inside randomly chosen registered networks."""
    networks = [net for entry in al for net in entry.networks if net.version == 4 or not v4_only]
    pick = rng.integers(0, len(networks), size=n)
    chosen = [networks[k] for k in pick.tolist()]
    base = np.array([int(net.network_address) for net in chosen], dtype=object)
    plen = np.array([net.prefixlen for net in chosen], dtype=np.int64)
    is4 = np.array([net.version == 4 for net in chosen], dtype=bool)
    out = np.empty(n, dtype=object)
    if is4.any():
        b4 = base[is4].astype(np.uint64)
        out[is4] = _text4((b4 | _host_bits(rng, 32 - plen[is4])).astype(np.uint32))
    if (~is4).any():
        b6 = base[~is4]
        hi = np.array([b >> 64 for b in b6], dtype=np.uint64)
        lo = np.array([b & 0xFFFFFFFFFFFFFFFF for b in b6], dtype=np.uint64)
        p6 = plen[~is4]
        hi |= _host_bits(rng, np.clip(64 - p6, 0, 64))
        lo |= _host_bits(rng, np.clip(128 - p6, 0, 64))
        out[~is4] = _text6(hi, lo)
    return out.tolist()


def _random_public(rng: np.random.Generator, n: int) -> list[str]:
    """n addresses anywhere: 80% IPv4 (1.0.0.0 - 223.255.255.255), 20% IPv6 in 2000::/3."""
    is4 = rng.random(n) < 0.8
    out = np.empty(n, dtype=object)
    out[is4] = _text4(rng.integers(1 << 24, 224 << 24, size=int(is4.sum())).astype(np.uint32))
    n6 = int((~is4).sum())
    hi = (np.uint64(1) << np.uint64(61)) | _host_bits(rng, np.full(n6, 61))
    out[~is4] = _text6(hi, _host_bits(rng, np.full(n6, 64)))
    return out.tolist()


GARBAGE = ["-", "0.0.0.0.0", "10.1.2", "unknown", " 203.0.113.9", "203.0.113.09", "fe80::1%eth0", "::g"]


def make_flows(al: ipallow.Allowlist, rows: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic flow log of ``rows`` records (pandas), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(5, size=rows, p=[0.60, 0.35, 0.03, 0.01, 0.01])
    src = np.empty(rows, dtype=object)
    where = np.flatnonzero(kind == 0)
    src[where] = _inside(al, rng, where.size)
    where = np.flatnonzero(kind == 1)
    src[where] = _random_public(rng, where.size)
    where = np.flatnonzero(kind == 2)
    src[where] = [f"::ffff:{a}" for a in _inside(al, rng, where.size, v4_only=True)]
    src[kind == 3] = None
    where = np.flatnonzero(kind == 4)
    src[where] = [GARBAGE[i % len(GARBAGE)] for i in range(where.size)]
    dst = _random_public(rng, rows)
    packets = rng.geometric(0.05, size=rows).astype(np.int64)
    return pd.DataFrame({
        "ts": pd.Timestamp("2026-11-01") + pd.to_timedelta(np.sort(rng.integers(0, 86_400_000, rows)), "ms"),
        "src_addr": src,
        "dst_addr": dst,
        "src_port": rng.integers(1024, 65536, size=rows).astype(np.int32),
        "dst_port": rng.choice([443, 80, 53, 1194, 51820, 500, 4500, 22], size=rows).astype(np.int32),
        "proto": rng.choice(np.array(["tcp", "udp"]), size=rows),
        "packets": packets,
        "bytes": packets * rng.integers(60, 1500, size=rows),
    }, columns=FLOW_COLUMNS)


def write_flow_log(directory: str | Path, al: ipallow.Allowlist, rows: int, files: int = 8,
                   seed: int = 0) -> list[Path]:
    """Write ``rows`` flows as ``files`` Parquet files under ``directory``; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    flows = make_flows(al, rows, seed)
    paths = []
    for i, part in enumerate(np.array_split(np.arange(rows), files)):
        path = directory / f"flows-{i:03d}.parquet"
        flows.iloc[part].to_parquet(path, index=False)
        paths.append(path)
    return paths


VERDICTS = ["invalid", "denied", "allowed"]


def _with_verdict(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``verdict``: a categorical, allowed / denied / invalid (null or unparseable address)."""
    code = frame["valid"].to_numpy().astype(np.int8) * (1 + frame["allowed"].to_numpy())
    return frame.assign(verdict=pd.Categorical.from_codes(code, VERDICTS))


def summarize(classified, al: ipallow.Allowlist, top: int = 10):
    """(by_verdict, by_registration) pandas frames from a classified pandas or Dask frame.

    by_verdict: index allowed / denied / invalid; columns flows, packets, bytes, share.
    by_registration: the ``top`` registrations by bytes: registration, id (and owner,
    when the list has that column), flows, bytes.
    Both aggregate where the data is (Dask: on the workers); only the small
    results come back.
    """
    import dask

    if isinstance(classified, pd.DataFrame):
        frame = _with_verdict(classified)
    else:
        frame = classified.map_partitions(_with_verdict)
    by_verdict = frame.groupby("verdict", observed=False).agg({"bytes": ["size", "sum"], "packets": "sum"})
    allowed = frame[frame["allowed"]]
    by_registration = allowed.groupby("registration").agg({"bytes": ["size", "sum"]})
    by_verdict, by_registration = dask.compute(by_verdict, by_registration)
    by_verdict.columns = ["flows", "bytes", "packets"]
    by_registration.columns = ["flows", "bytes"]
    by_verdict = by_verdict[["flows", "packets", "bytes"]].reindex(["allowed", "denied", "invalid"], fill_value=0)
    by_verdict["share"] = (by_verdict["bytes"] / max(int(by_verdict["bytes"].sum()), 1)).round(4)
    by_registration = by_registration.nlargest(top, "bytes").reset_index()
    by_registration.insert(1, "id", registration_labels(by_registration["registration"], al))
    data = [al[int(r)].data for r in by_registration["registration"]]
    if any(isinstance(d, dict) and "owner" in d for d in data):
        by_registration.insert(2, "owner", [d.get("owner") if isinstance(d, dict) else None for d in data])
    return by_verdict, by_registration


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--list", help="list file, .csv or text (default: the sample bundled with ipallow)")
    parser.add_argument("--keep", help="write the snapshot and flow log here and keep them")
    args = parser.parse_args(argv)

    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory(prefix="ipallow-flows-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        al = ipallow.Allowlist.from_file(args.list or ipallow.SAMPLE_LIST)
        snapshot = work / "registry.ipallow"
        al.save(snapshot)
        t0 = time.perf_counter()
        paths = write_flow_log(work / "flows", al, args.rows, args.files)
        print(f"{len(al):,} registrations; {args.rows:,} flows in {len(paths)} Parquet files "
              f"({time.perf_counter() - t0:.1f} s to generate)")

        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as client:
            flows = dd.read_parquet(str(work / "flows"))
            classified = classify(flows, "src_addr", snapshot)      # lazy: one task per partition
            t0 = time.perf_counter()
            by_verdict, by_registration = summarize(classified, al)
            took = time.perf_counter() - t0
            mapped = sum(s["snapshot_loads"] for s in client.run(worker_stats).values())
        print(f"read from Parquet, classified and summarized on {args.workers} worker processes in "
              f"{took:.1f} s; the snapshot was mapped {mapped}x (once per worker process)\n")
        pd.set_option("display.width", 120)
        print("traffic by verdict")
        print(by_verdict.to_string(), "\n")
        print(f"top {len(by_registration)} registrations by bytes")
        print(by_registration.to_string(index=False))


if __name__ == "__main__":
    main()
