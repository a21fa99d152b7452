"""Write the seed corpus, tests/fuzz/corpus/<harness>/<name>: run it again after changing a
harness's input layout or the snapshot format (the files are committed; fuzzing runs only add
to a scratch corpus under build/fuzz/, never here).

    python tests/fuzz/make_corpus.py
"""

from __future__ import annotations

import ast
import json
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
TEST_DATA = HERE.parent / "data"

VALID_ADDRESSES = [
    "0.0.0.0", "10.1.2.3", "192.0.2.200", "255.255.255.255", "172.16.7.1", "1.2.3.4",
    "::", "::1", "1::", "2001:db8::1", "2001:DB8:1:2::10", "2001:db8:1:2:3:4:5:6",
    "fe80::1", "::ffff:10.1.2.3", "::ffff:172.20.3.4", "64:ff9b::192.0.2.1", "::1.2.3.4",
    "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "0000:0000:0000:0000:0000:0000:0000:0001",
    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "fe80::1%eth0",
]

VALID_NETWORKS = [
    "10.0.0.0/8", "10.1.2.3/8", "10.1.2.3", "192.0.2.0/255.255.255.0", "10.0.0.0/0.255.255.255",
    "0.0.0.0/0", "0.0.0.0/1.2.3.4", "0.0.0.0/0.0.0.1", "1.2.3.4/32", "1.2.3.0/08",
    "2001:db8::/32", "2001:db8::1/32", "::/0", "::ffff:10.0.0.0/104", "::ffff:1.2.3.4/128",
    "fe80::%1/64", "192.0.2.1 - 192.0.2.77", "10.0.0.0-10.255.255.255", "2001:db8::1 - 2001:db8::ff",
    "::ffff:1.2.3.4 - ::ffff:1.2.3.9", "1.2.3.4 - ::1",
]


# Inputs fuzzing found that once failed a harness (an oracle mistake or a defect), kept as seeds.
FOUND = {
    # ipaddress's strict=False network drops the scope id: the zone must be told from the text.
    "network": {"found-zone-non-strict": b"fe80::1%eth0\xce\xce\xce/127"},
    # Striding can leave only text-like rows of an S4 array: the refusal is judged after it.
    "batch": {"found-strided-s4-text": bytes.fromhex("0301") + b":d\0\0" + b"\x80" * 4,
              # S16 rows that are all NULs read as empty: every row empty is refused as text.
              "found-s16-all-empty": bytes.fromhex('030000000000000000000000000000000000000000000000000000000000000000000000000a010203c00002c808080808')},
    # A .txt list whose first line names a cidr column: the harness names the format it checks.
    "listfile": {"found-txt-with-csv-header": bytes.fromhex('00efbbbf3139322e302e322e302f32353a3a666666663a3531302e302e302e302f016f776e65722c636964720a780a792c31302e302e302e312f016f776e65722c636964720a780a792c31302e302e30783130340a7472610a382c65787472610a'),
                 # An empty field at a CSV row's start: positions once lost it (IndexError).
                 "found-csv-empty-first-field": bytes.fromhex('016f2c776e65142c636964720a780a792c31302e320a2c7931302e322e302c31720a')},
    # A year before 1000: strftime wrote '851', which to_dict / from_dict could not read back.
    "registry": {"found-year-851": b"\0id,cidr,status,valid_from\nPTA-3,198.51.100.0/24,pending,0851-01-01\n"},
}


def cases(name: str) -> list[str]:
    """The texts of tests/data/malformed_*.txt ('<category> | <Python literal>' lines)."""
    texts = []
    for line in (TEST_DATA / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            texts.append(ast.literal_eval(line.partition(" | ")[2]))
    return texts


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def batch_seeds() -> dict[str, bytes]:
    v4 = [0x0A010203, 0xC00002C8, 0x08080808, 0xFFFFFFFF]
    v6 = [(0x20010DB800000000, 1), (0, 0xFFFF0A010203), (0xFE80000000000000, 1), (0, 1)]
    packed4 = b"".join(v.to_bytes(4, "big") for v in v4)
    packed16 = b"".join(((h << 64) | lo).to_bytes(16, "big") for h, lo in v6)
    text = "10.1.2.3\n2001:db8::1\n8.8.8.8\n::ffff:192.0.2.1\nfe80::1"

    def token(tag: int, chunk: bytes) -> bytes:
        return bytes([tag | (len(chunk) << 3)]) + chunk

    objects = (token(0, b"10.1.2.3") + token(1, (0x0A010203).to_bytes(4, "big")) +
               token(2, (0x20010DB8 << 96 | 1).to_bytes(16, "big")) + token(4, packed4[:4]) +
               token(5, (0xC0000201).to_bytes(4, "big")) + token(0, b"2001:db8:1:2::10"))
    return {
        "u32": bytes([0, 0]) + struct.pack("<4I", *v4),
        "u32-big-endian": bytes([0, 1]) + struct.pack(">4I", *v4) + b"\0",
        "u64x2": bytes([1, 0]) + b"".join(struct.pack("<2Q", h, lo) for h, lo in v6),
        "uint8-rows-4": bytes([2, 2]) + packed4,
        "uint8-rows-16": bytes([2, 4]) + packed16 + b"\0",
        "V4": bytes([3, 0]) + packed4[:12],
        "S16": bytes([3, 1]) + packed16 + b"\0\0",
        "int64": bytes([4, 0]) + struct.pack("<4q", *v4),
        "int8-rows": bytes([4, 0]) + bytes([10, 1, 2, 3]) + b"\0\0\0",
        "unicode": bytes([5, 0]) + utf8(text),
        "unicode-strided-out": bytes([5, 5]) + utf8(text),
        "bytes-text": bytes([6, 2]) + text.encode(),
        "list": bytes([7, 0]) + objects,
        "object-array": bytes([8, 4]) + objects,
    }


def list_seeds() -> dict[str, bytes]:
    sample = (HERE.parent.parent / "src" / "ipallow" / "data" / "sample.csv").read_bytes()
    head = b"\n".join(sample.split(b"\n")[:12]) + b"\n"
    return {
        "text": b"\0" + b"# registered\n10.0.0.0/8\n192.0.2.1 - 192.0.2.9  # a range\n\n2001:db8::/32\r\n",
        "text-bom-netmask": b"\0\xef\xbb\xbf192.0.2.0/255.255.255.0\n::ffff:10.0.0.0/104\n",
        "text-bad-lines": b"\0" + b"10.0.0.1/8\n1.2.3.256\nfe80::1%eth0\n  ::1\n",
        # ranges the core's one-pass reader cuts itself: both versions, IPv4-mapped, the widest
        "text-ranges": b"\0" + b"0.0.0.1 - 255.255.255.254\n2001:db8::1-2001:db8::ff\n"
                              b"::ffff:1.2.3.0 - ::ffff:1.2.4.9\n:: - ::1:0:0:0\n10.0.0.0/8\n",
        "csv": b"\1" + head,
        "csv-quoted": b"\1" + b'ip,owner,note\n10.0.0.0/8,"Acme, Inc","multi\nline"\n::1,x,\n',
        "csv-bad": b"\1" + b"owner,cidr\nx\ny,10.0.0.1/8,extra\n",
    }


def lines_seeds() -> dict[str, bytes]:
    """Blocks for filter_lines; byte 0: bit 0 keep the allowed, bit 1 strip, bit 2 stop at the
    first unparseable line, bits 3-5 how many to report."""
    plain = b"10.1.2.3\n192.0.2.200\n8.8.8.8\n2001:db8::1\n::1\n::ffff:10.1.2.3\n3fff::1\n"
    messy = (b" 10.1.2.3\r\n\t::1 \n\n  \n\x0b192.0.2.1\x0c\n1.2.3\n300.1.1.1\n"
             b"fe80::1%eth0\n1.2.3.4\x00\n\xc3\xa9\n10.0.0.1 5\n10.0.0.0/8\n")
    many = b"".join(b"%d.%d.0.1\n" % (i % 256, i // 256) for i in range(300)) + b"x\n" * 3
    return {
        "plain-allowed": bytes([0b00001011]) + plain,
        "plain-denied": bytes([0b00001010]) + plain,
        "messy-strip": bytes([0b00111011]) + messy,
        "messy-no-strip": bytes([0b00111001]) + messy,
        "messy-stop": bytes([0b00000111]) + messy,
        "past-two-chunks": bytes([0b00010011]) + many + b"no newline at the end",
        "empty-lines": bytes([0b00000011]) + b"\n" * 200,
    }


def registry_seeds() -> dict[str, bytes]:
    csv = (b"id,cidr,owner,category,status,valid_from,expires_at,tags\n"
           b"PTA-1,192.0.2.0/24,Acme,company_vpn,active,2024-11-01,,a;b\n"
           b"PTA-2,10.0.0.0/8;2001:db8::/32,B,freelancer_vpn,suspended,,2030-01-01T00:00:00Z,\n"
           b"PTA-3,198.51.100.1 - 198.51.100.9,C,call_center,pending,2026-01-01,,\n"
           b"PTA-1,203.0.113.0/24,Acme,company_vpn,active,2024-11-01,,a;b\n")
    records = [
        {"id": "PTA-1", "networks": ["192.0.2.0/24", "2001:db8::/48"], "owner": "Acme",
         "status": "active", "valid_from": "2024-11-01T00:00:00Z", "tags": ["x"]},
        {"id": 42, "cidr": "10.0.0.0/8", "category": "other", "expires_at": "2025-01-01", "note": "n"},
        {"id": "PTA-3", "ip": "::ffff:10.1.2.3", "status": "revoked"},
    ]
    jsonl = "\n".join(json.dumps(r) for r in records).encode() + b"\n"
    return {
        "csv": b"\0" + csv,
        "csv-bad": b"\0" + b"id,cidr,status\n,10.0.0.0/8,active\nX,1.2.3.4/8,sleeping\nX,::1,active\n",
        "jsonl": b"\1" + jsonl,
        "jsonl-bad": b"\1" + b'{"id": "A", "cidr": "10.0.0.0/8"}\n{"id": "A", "cidr": \n[1]\n{"id":"B"}\n',
    }


def snapshot_seeds() -> dict[str, bytes]:
    import ipallow
    from ipallow import registry, snapshot
    from fuzz_support import ALLOWLIST
    registered = ipallow.Allowlist.from_registry(
        registry.parse_registry(registry_seeds()["csv"][1:], "seed.csv"), at=1_750_000_000)
    lists = {
        "with-data": ALLOWLIST,
        "no-data": ipallow.Allowlist(["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "::1"]),
        "registry": registered,
        "empty": ipallow.Allowlist(),
    }
    seeds = {name: bytes(snapshot.to_bytes(al._compiled, created=0)) for name, al in lists.items()}
    # Found: registration data that is not JSON (the harness reseals the checksums) once escaped
    # lookup() as JSONDecodeError instead of SnapshotError (tests/test_fuzz_regressions.py).
    corrupt = bytearray(seeds["with-data"])
    offset = snapshot.read_header(bytes(corrupt))[1]["data_blob"][0]
    corrupt[offset] = ord("@")
    seeds["found-undecodable-data"] = bytes(corrupt)
    # Found: a prefix row with bits past its length (0.10.0.0/8) escaped lookup() as ipaddress's
    # ValueError instead of SnapshotError.
    stray = bytearray(seeds["no-data"])
    offset = snapshot.read_header(bytes(stray))[1]["lo"][0]
    stray[offset + 2] ^= 0x0A                 # row 0 (10.0.0.0/8) becomes 10.10.0.0/8
    seeds["found-stray-host-bits"] = bytes(stray)
    return seeds


def main() -> None:
    seeds = {
        "address": {f"valid-{i:02d}": utf8(t) for i, t in enumerate(VALID_ADDRESSES)}
        | {f"malformed-{i:03d}": utf8(t) for i, t in enumerate(cases("malformed_addresses.txt"))},
        "network": {f"valid-{i:02d}": utf8(t) for i, t in enumerate(VALID_NETWORKS)}
        | {f"malformed-{i:03d}": utf8(t) for i, t in enumerate(cases("malformed_networks.txt"))},
        "batch": batch_seeds(),
        "listfile": list_seeds(),
        "lines": lines_seeds(),
        "registry": registry_seeds(),
        "snapshot": snapshot_seeds(),
    }
    for harness, found in FOUND.items():
        seeds[harness] |= found
    for harness, files in seeds.items():
        directory = CORPUS / harness
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
        for name, data in files.items():
            (directory / name).write_bytes(data)
        print(f"{directory.relative_to(HERE.parent.parent)}: {len(files)} seeds")


if __name__ == "__main__":
    main()
