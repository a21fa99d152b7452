#!/usr/bin/env python3
"""Regenerate ``src/ipallow/data/sample.csv``, the small registry bundled with ipallow.

    python tools/make_sample.py            # rewrite the file
    python tools/make_sample.py --check    # exit 1 if the committed file is out of date

The file is a made-up registry export with the columns ``cidr,id,owner,category``:

* four hand-written rows for the documentation ranges (RFC 5737 / RFC 3849), ids
  PTA-0001 .. PTA-0004, so README examples such as ``203.0.113.9`` and ``2001:db8::1`` hit;
* about 3,000 synthetic rows drawn from ``ipallow.synth`` (fixed seeds): IPv4 /24-/32
  carved out of distinct /24s of a BGP-like table, and IPv6 /48-/64, ids PTA-10001 and up,
  owned by a few hundred invented organisations, each with one category.

Output is deterministic: the same script always writes the same bytes.  The script
checks that 8.8.8.8 and 1.1.1.1 stay uncovered (the README uses them as denied examples)
and that the file stays under 200 KB.
"""
from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "ipallow" / "data" / "sample.csv"

# Loaded by path so the script works before the compiled extension is built
# (importing the package would import ipallow._trie).
_spec = importlib.util.spec_from_file_location("_ipallow_synth", ROOT / "src" / "ipallow" / "synth.py")
synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synth)

SEED = 20240501
N_V4 = 2_700
N_V6 = 300
MAX_BYTES = 200_000

DOC_ROWS = [
    ("192.0.2.0/24", "PTA-0001", "Acme Soft", "company_vpn"),
    ("198.51.100.0/24", "PTA-0002", "Lahore Freelancers 12", "freelancer_vpn"),
    ("203.0.113.0/24", "PTA-0003", "Indus Call Center", "call_center"),
    ("2001:db8::/32", "PTA-0004", "Margalla Video Conferencing", "video_conference"),
]
MUST_COVER = ["203.0.113.9", "198.51.100.7", "2001:db8::1", "192.0.2.1"]
MUST_NOT_COVER = ["8.8.8.8", "1.1.1.1"]

CATEGORIES = ["company_vpn", "freelancer_vpn", "call_center", "video_conference", "other"]
CATEGORY_WEIGHTS = [0.40, 0.25, 0.15, 0.10, 0.10]

CITIES = [
    "Lahore", "Karachi", "Islamabad", "Rawalpindi", "Faisalabad", "Multan", "Peshawar",
    "Quetta", "Sialkot", "Hyderabad", "Gujranwala", "Abbottabad",
]
STEMS = [
    "Acme", "Indus", "Ravi", "Chenab", "Jhelum", "Karakoram", "Blue Fin", "Crescent",
    "Falcon", "Orbit", "Zephyr", "Nimbus", "Cedar", "Saffron", "Kestrel", "Monsoon",
    "Silk Route", "Deodar", "Pinewood", "Northstar", "Greenline", "Tundra", "Lotus",
    "Copperleaf", "Bluebird", "Harbor", "Summit", "Quartz", "Meridian", "Sapphire",
]
COMPANY_SUFFIX = ["Soft", "Systems", "Tech", "Labs", "Solutions", "Digital", "Analytics", "Data"]
OTHER_SUFFIX = ["Trust", "Foundation", "Hospital", "College", "Logistics", "Traders", "Textiles"]


def owner_name(rng: np.random.Generator, category: str) -> str:
    stem = STEMS[rng.integers(len(STEMS))]
    city = CITIES[rng.integers(len(CITIES))]
    num = int(rng.integers(1, 40))
    if category == "company_vpn":
        return f"{stem} {COMPANY_SUFFIX[rng.integers(len(COMPANY_SUFFIX))]}"
    if category == "freelancer_vpn":
        return f"{city} Freelancers {num}"
    if category == "call_center":
        return f"{city} Call Center {num}" if rng.random() < 0.6 else f"{stem} Contact Services"
    if category == "video_conference":
        return f"{stem} Meet" if rng.random() < 0.5 else f"{stem} Video {city}"
    return f"{stem} {OTHER_SUFFIX[rng.integers(len(OTHER_SUFFIX))]}"


def make_owners(rng: np.random.Generator, count: int) -> list[tuple[str, str]]:
    """``count`` distinct (owner, category) pairs."""
    seen: set[str] = set()
    owners: list[tuple[str, str]] = []
    while len(owners) < count:
        cat = CATEGORIES[rng.choice(len(CATEGORIES), p=CATEGORY_WEIGHTS)]
        name = owner_name(rng, cat)
        if name not in seen:
            seen.add(name)
            owners.append((name, cat))
    return owners


def v4_rows(rng: np.random.Generator) -> list[str]:
    """IPv4 registrations: /24 .. /32 cut from distinct /24s of a synthetic BGP table."""
    keys, plens = synth.ipv4_table(20 * N_V4, seed=SEED)
    # every table prefix of /24 or longer names one /24; keep each /24 once so that no two
    # sample rows nest (a registry rarely registers the same block twice)
    slash24 = np.unique(keys[plens >= 24] & np.uint32(0xFFFFFF00))
    deny = [int(ipaddress.IPv4Address(a)) for a in MUST_NOT_COVER]
    slash24 = slash24[~np.isin(slash24, np.array([d & 0xFFFFFF00 for d in deny], np.uint32))]
    slash24 = rng.permutation(slash24)[:N_V4]
    # a registry's mix: whole /24s, small office blocks, single VPN endpoints
    plen = rng.choice(np.arange(24, 33), size=slash24.size,
                      p=np.array([40, 4, 5, 6, 8, 10, 2, 1, 24]) / 100.0)
    offset = rng.integers(0, 256, size=slash24.size, dtype=np.uint32)
    host = (np.uint32(1) << (32 - plen).astype(np.uint32)) - np.uint32(1)
    keys = (slash24 | offset) & ~host
    return synth.ipv4_strings(keys, plen.astype(np.uint8))


def v6_rows(rng: np.random.Generator) -> list[str]:
    """IPv6 registrations: distinct /48 .. /64 from a synthetic table."""
    hi, lo, plens = synth.ipv6_table(40 * N_V6, seed=SEED + 1)
    keep = (plens >= 48) & (plens <= 64)
    rows = sorted(set(synth.ipv6_strings(hi[keep], lo[keep], plens[keep])))
    return [rows[i] for i in rng.permutation(len(rows))[:N_V6]]


def build() -> str:
    rng = np.random.default_rng(SEED)
    cidrs = v4_rows(rng) + v6_rows(rng)
    order = rng.permutation(len(cidrs))
    owners = make_owners(rng, 400)
    # a few large owners and a long tail, as in a real registry
    weights = 1.0 / np.arange(1, len(owners) + 1) ** 0.8
    owner_of = rng.choice(len(owners), size=len(cidrs), p=weights / weights.sum())
    lines = ["cidr,id,owner,category"]
    lines += [",".join(row) for row in DOC_ROWS]
    for n, (i, o) in enumerate(zip(order.tolist(), owner_of.tolist())):
        name, cat = owners[o]
        lines.append(f"{cidrs[i]},PTA-{10001 + n},{name},{cat}")
    text = "\n".join(lines) + "\n"
    check(text)
    return text


def check(text: str) -> None:
    nets = [ipaddress.ip_network(line.split(",", 1)[0]) for line in text.splitlines()[1:]]
    for a in MUST_COVER:
        ip = ipaddress.ip_address(a)
        assert any(ip in n for n in nets if n.version == ip.version), f"{a} not covered"
    for a in MUST_NOT_COVER:
        ip = ipaddress.ip_address(a)
        assert not any(ip in n for n in nets if n.version == ip.version), f"{a} covered"
    assert len(set(nets)) == len(nets), "duplicate cidr"
    size = len(text.encode())
    assert size < MAX_BYTES, f"sample is {size} bytes"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed file")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    text = build()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date; run tools/make_sample.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, newline="\n")
    n_rows = text.count("\n") - 1
    print(f"wrote {args.out} ({n_rows} rows, {len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
