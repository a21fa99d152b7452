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

from terminal import drain

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


@pytest.mark.parametrize("rows", [DUPLICATE_ROWS, DUPLICATE_ROWS[::-1]], ids=["file-order", "reversed"])
def test_duplicate_prefix_in_a_snapshot_validate_names_the_answer_and_no_line(tmp_path, rows):
    # A snapshot has no lines: the warning must not point at "line 0" of it.
    snap = tmp_path / "reg.ipallow"
    assert run("compile", _registry(tmp_path, rows), "-o", snap).returncode == 0
    result = run("validate", "--json", snap)
    assert result.returncode == 0, result.stderr
    warning, = json.loads(result.stdout)["warnings"]
    assert (warning["id"], warning["other_id"]) == ("PTA-10", "PTA-9")
    assert warning["message"] == "192.0.2.0/24 is registered again (PTA-9); PTA-9 answers lookups (the lowest id)"
    assert "line 0" not in run("validate", snap).stdout


def test_duplicate_prefix_in_a_plain_list_snapshot_names_the_registration_that_answers(tmp_path):
    snap = tmp_path / "plain.ipallow"
    ipallow.Allowlist(["192.0.2.0/24", "10.0.0.0/8", "192.0.2.0/24"]).save(snap)
    result = run("validate", snap)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"{snap}: warning: 192.0.2.0/24 is registered again (registration #0); "
                             f"registration #0 answers lookups (the first)\n")
    assert json.loads(run("check", "--list", snap, "--json", "192.0.2.1").stdout)["registration"] == 0


def test_duplicate_prefix_diff_ignores_row_order_and_lists_ids_naturally(tmp_path):
    old = _registry(tmp_path, DUPLICATE_ROWS, "old.csv")
    shuffled = _registry(tmp_path, DUPLICATE_ROWS[::-1], "shuffled.csv")
    same = run("diff", old, shuffled)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "registrations: 0 added, 0 removed, 0 changed, 3 unchanged" in same.stdout
    gone = _registry(tmp_path, DUPLICATE_ROWS[2:], "gone.csv")
    removed = run("diff", old, gone)
    assert [line.split()[:2] for line in removed.stdout.splitlines() if line.startswith("- ")] == \
        [["-", "PTA-9"], ["-", "PTA-10"]]


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


# ---------------------------------------------------------------------------
# filter: long bad lines, compressed input, missing columns, counts per registration
# ---------------------------------------------------------------------------

def _plain_list(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("cidr,id\n192.0.2.0/24,PTA-1\n198.51.100.0/24,PTA-2\n2001:db8::/32,PTA-10\n")
    return path


def test_filter_cuts_a_long_bad_line_and_gives_its_length(tmp_path):
    listing = _plain_list(tmp_path)
    bad = "x" * 1_000_000
    data = tmp_path / "in.txt"
    data.write_text(f"192.0.2.1\n{bad}\n8.8.8.8\n")
    result = run("filter", "--list", listing, data)
    assert result.returncode == 0
    assert result.stdout == "192.0.2.1\n"
    report = next(line for line in result.stderr.splitlines() if ":2:" in line)
    assert len(report) < 400 and "1,000,000 characters" in report
    assert "x" * 150 in report                      # the start of the line is still shown
    as_json = json.loads(run("filter", "--list", listing, "--json", data).stderr)
    reported, = as_json["unparseable_lines"]
    assert len(reported["message"]) < 400 and len(reported["text"]) <= 200
    assert reported["length"] == 1_000_000


def test_filter_cuts_a_long_bad_field_in_a_column_too(tmp_path):
    listing = _plain_list(tmp_path)
    data = tmp_path / "flows.csv"
    data.write_text("src,bytes\n192.0.2.1,10\n" + "1" * 50_000 + ",20\n")
    result = run("filter", "--list", listing, "--column", "src", data)
    report = next(line for line in result.stderr.splitlines() if ":3:" in line)
    assert len(report) < 400 and "50,000 characters" in report


FLOWS = "src,bytes\n192.0.2.1,100\n8.8.8.8,5\n2001:db8::7,40\n198.51.100.9,1\n192.0.2.200,50\nbogus,9\n"


def _compressors():
    import bz2
    import gzip
    import lzma
    out = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}
    try:
        import zstandard
        out["zstd"] = zstandard.ZstdCompressor().compress
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zstd"])
@pytest.mark.parametrize("via", ["file", "stdin"])
def test_filter_reads_compressed_input(tmp_path, kind, via):
    compress = _compressors().get(kind)
    if compress is None:
        pytest.skip("zstandard is not installed")
    listing = _plain_list(tmp_path)
    raw = FLOWS.encode()
    packed = compress(raw[:40]) + compress(raw[40:])         # two members / frames, as logrotate makes
    plain = run("filter", "--list", listing, "--column", "src", "--annotate", "-", stdin=FLOWS)
    assert plain.returncode == 0, plain.stderr
    path = tmp_path / f"flows.{kind}"
    path.write_bytes(packed)
    if via == "file":
        result = run("filter", "--list", listing, "--column", "src", "--annotate", path)
    else:
        result = subprocess.run([IPALLOW, "filter", "--list", str(listing), "--column", "src", "--annotate", "-"],
                                input=packed, capture_output=True, timeout=60)
        result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, result.stderr
    assert result.stdout == plain.stdout


def test_filter_zstd_without_zstandard_says_what_to_install(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "zstandard.py").write_text("raise ImportError('blocked for the test')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), env.get("PYTHONPATH", "")])
    path = tmp_path / "flows.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(FLOWS.encode()))
    result = run("filter", "--list", _plain_list(tmp_path), "--column", "src", path, env=env)
    assert result.returncode == 2
    assert "zstd" in result.stderr and "pip install zstandard" in result.stderr
    assert result.stdout == ""


def test_filter_missing_column_name_on_compressed_input_prints_no_binary(tmp_path):
    import gzip
    path = tmp_path / "flows.gz"
    path.write_bytes(gzip.compress(FLOWS.encode()))
    result = run("filter", "--list", _plain_list(tmp_path), "--column", "dst", path)
    assert result.returncode == 2
    assert "no column 'dst'" in result.stderr and "src, bytes" in result.stderr


def test_filter_header_names_in_a_message_are_cut(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join("c" * 5000 for _ in range(3)) + "\n1.2.3.4,1,2\n")
    result = run("filter", "--list", _plain_list(tmp_path), "--column", "dst", path)
    assert result.returncode == 2
    assert max(len(line) for line in result.stderr.splitlines()) < 600


def test_filter_column_missing_on_every_line_is_exit_2(tmp_path):
    data = tmp_path / "flows.txt"
    data.write_text("192.0.2.1 10\n8.8.8.8 20\n")
    result = run("filter", "--list", _plain_list(tmp_path), "--column", "9", data)
    assert result.returncode == 2
    assert "field 9" in result.stderr and "no line" in result.stderr
    # Missing on some lines only: those are reported, the rest filtered as usual.
    data.write_text("192.0.2.1 10 x x x x x x 192.0.2.9\n8.8.8.8 20\n")
    some = run("filter", "--list", _plain_list(tmp_path), "--column", "9", data)
    assert some.returncode == 0 and some.stdout.startswith("192.0.2.1 10")
    assert "no field 9" in some.stderr


def _count_rows(text):
    rows = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        rows[parts[0]] = parts[1:]
    return rows


def test_filter_count_by_registration_table_and_json(tmp_path):
    listing = _plain_list(tmp_path)
    data = tmp_path / "flows.csv"
    data.write_text(FLOWS)
    table = run("filter", "--list", listing, "--column", "src", "--count-by", "registration", data)
    assert table.returncode == 0, table.stderr
    rows = _count_rows(table.stdout)
    assert rows["PTA-1"] == ["2"] and rows["PTA-2"] == ["1"] and rows["PTA-10"] == ["1"]
    assert rows["(denied)"] == ["1"] and rows["(invalid)"] == ["1"]
    ids = [line.split()[0] for line in table.stdout.splitlines()[1:]]
    assert ids[:3] == ["PTA-1", "PTA-2", "PTA-10"]            # natural id order
    with_bytes = run("filter", "--list", listing, "--column", "src", "--count-by", "registration",
                     "--bytes", "bytes", "--json", data)
    assert with_bytes.returncode == 0, with_bytes.stderr
    counts = json.loads(with_bytes.stdout)
    by_id = {r["id"]: (r["lines"], r["bytes"]) for r in counts["registrations"]}
    assert by_id == {"PTA-1": (2, 150), "PTA-2": (1, 1), "PTA-10": (1, 40)}
    assert (counts["denied"], counts["invalid"]) == ({"lines": 1, "bytes": 5}, {"lines": 1, "bytes": 9})


def test_filter_count_by_registration_agrees_with_lookup(tmp_path):
    rng = np.random.default_rng(7)
    listing = tmp_path / "list.txt"
    nets = [f"10.{i}.0.0/16" for i in range(20)] + ["10.3.4.0/24"]
    listing.write_text("\n".join(nets) + "\n")
    addresses = [f"10.{rng.integers(0, 30)}.{rng.integers(0, 8)}.{rng.integers(0, 256)}" for _ in range(3000)]
    sizes = rng.integers(1, 1500, len(addresses))
    data = tmp_path / "flows.tsv"
    data.write_text("src\tbytes\n" + "".join(f"{a}\t{b}\n" for a, b in zip(addresses, sizes)))
    result = run("filter", "--list", listing, "--column", "src", "--count-by", "registration",
                 "--bytes", "bytes", "--json", data)
    assert result.returncode == 0, result.stderr
    import ipaddress
    expected: dict = {}
    for address, size in zip(addresses, sizes.tolist()):
        ip = ipaddress.ip_address(address)
        covering = [i for i, n in enumerate(nets) if ip in ipaddress.ip_network(n)]
        key = f"#{max(covering, key=lambda i: ipaddress.ip_network(nets[i]).prefixlen)}" if covering else None
        lines, total = expected.get(key, (0, 0))
        expected[key] = (lines + 1, total + size)
    counts = json.loads(result.stdout)
    got = {r["id"]: (r["lines"], r["bytes"]) for r in counts["registrations"]}
    got[None] = (counts["denied"]["lines"], counts["denied"]["bytes"])
    assert got == expected


def test_filter_count_by_needs_nothing_else_and_bytes_needs_count_by(tmp_path):
    listing = _plain_list(tmp_path)
    data = tmp_path / "flows.csv"
    data.write_text(FLOWS)
    assert run("filter", "--list", listing, "--column", "src", "--bytes", "bytes", data).returncode == 2
    assert run("filter", "--list", listing, "--column", "src", "--count-by", "registration",
               "--bytes", "nope", data).returncode == 2


def test_filter_count_by_bytes_strict_stop_before_a_quoted_line(tmp_path):
    # --strict stops at line 2; a quoted field after it (line 3) once sent the --bytes column's
    # quote handling past the lines it had: IndexError and a traceback instead of exit 2.
    listing = tmp_path / "list.txt"
    listing.write_text("10.0.0.0/8\n")
    data = tmp_path / "flows.csv"
    data.write_text('10.0.0.1,5\nbad,3\n"10.0.0.2",4\n')
    result = run("filter", "--list", listing, "--column", "1", "--bytes", "2", "--count-by", "registration",
                 "--strict", "--json", data)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stderr)
    assert summary["stopped"] and [r["line"] for r in summary["unparseable_lines"]] == [2]
    assert (summary["lines"], summary["allowed"]) == (2, 1)


# ---------------------------------------------------------------------------
# a hostmask is read as ipaddress reads it, in every format and command
# ---------------------------------------------------------------------------

HOSTMASKED = ["192.0.2.0/0.0.0.255", "10.0.0.0/0.255.255.255", "198.51.100.0/255.255.255.128"]


@pytest.mark.parametrize("kind", ["txt", "registry-csv"])
def test_hostmask_is_read_as_ipaddress_reads_it(tmp_path, kind):
    import ipaddress
    expected = [str(ipaddress.ip_network(text)) for text in HOSTMASKED]
    path = tmp_path / "masks"
    if kind == "txt":
        path.write_text("\n".join(HOSTMASKED) + "\n")
    else:
        path.write_text("id,networks\n" + "".join(f"M{k},{t}\n" for k, t in enumerate(HOSTMASKED)))
    validated = run("validate", path)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "host bits" not in validated.stdout + validated.stderr
    probes = [str(ipaddress.ip_network(n)[-1]) for n in expected]
    checked = run("check", "--list", path, "--json", *probes)
    assert checked.returncode == 0, checked.stderr
    assert [json.loads(line)["network"] for line in checked.stdout.splitlines()] == expected
    exported = run("export", "--format", "cidr", "-q", path)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.split() == sorted(expected, key=lambda n: ipaddress.ip_network(n))
    refused = tmp_path / "bad.txt"
    refused.write_text("192.0.2.0/0.255.0.255\n")        # neither a netmask nor a hostmask
    bad = run("check", "--list", refused, "192.0.2.1")
    assert bad.returncode == 2 and f"{refused}:1:" in bad.stderr


# ---------------------------------------------------------------------------
# diff: listed by id; IPv6 sizes people can read
# ---------------------------------------------------------------------------

def test_diff_lists_registrations_in_natural_id_order(tmp_path):
    old = _registry(tmp_path, ["PTA-10,10.0.10.0/24,a", "PTA-2,10.0.2.0/24,a", "PTA-30,10.0.30.0/24,a",
                               "PTA-4,10.0.4.0/24,a"], "old.csv")
    new = _registry(tmp_path, ["PTA-30,10.0.30.0/24,b", "PTA-4,10.0.4.0/24,b", "PTA-100,10.1.0.0/24,n",
                               "PTA-9,10.0.9.0/24,n", "PTA-11,10.0.11.0/24,n"], "new.csv")
    result = run("diff", old, new)
    assert result.returncode == 1, result.stderr
    marks = [line.split()[:2] for line in result.stdout.splitlines() if line[:2] in ("+ ", "- ", "~ ")]
    assert marks == [["+", "PTA-9"], ["+", "PTA-11"], ["+", "PTA-100"], ["-", "PTA-2"], ["-", "PTA-10"],
                     ["~", "PTA-4"], ["~", "PTA-30"]]
    as_json = json.loads(run("diff", "--json", old, new).stdout)
    assert [r["id"] for r in as_json["added"]] == ["PTA-9", "PTA-11", "PTA-100"]
    assert [r["id"] for r in as_json["removed"]] == ["PTA-2", "PTA-10"]
    assert [c["id"] for c in as_json["changed"]] == ["PTA-4", "PTA-30"]


def test_diff_ipv6_coverage_reads_as_a_number_and_in_64s(tmp_path):
    old = tmp_path / "old.txt"
    old.write_text("2001:db8::/32\n")
    new = tmp_path / "new.txt"
    new.write_text("2001:db8::/32\n2001:dba::/31\n2001:dbc::/38\n")
    result = run("diff", old, new)
    line = next(line for line in result.stdout.splitlines() if line.startswith("coverage IPv6"))
    assert "2^" not in line
    gained = (1 << 97) + (1 << 90)
    assert f"+{gained >> 64:,} /64s = {gained:.3e} addresses (2 CIDRs)" in line
    assert json.loads(run("diff", "--json", old, new).stdout)["coverage"]["ipv6"]["gained_addresses"] == str(gained)


# ---------------------------------------------------------------------------
# progress on a terminal, and only there
# ---------------------------------------------------------------------------

def _run_on_a_terminal(args, env):
    """Run ipallow with stderr on a pseudo-terminal; (exit status, stdout, what the terminal got)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([IPALLOW, *map(str, args)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=slave, env=env)
        os.close(slave)
        slave = -1
        terminal = drain(master)
        out = proc.stdout.read()
        status = proc.wait(timeout=120)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return status, out.decode(), terminal.decode("utf-8", "replace")


def _progress_commands(tmp_path):
    registry = tmp_path / "reg.csv"
    registry.write_text(LIFECYCLE_REGISTRY)
    other = tmp_path / "other.csv"
    other.write_text(LIFECYCLE_REGISTRY.replace("PTA-4,", "PTA-5,"))
    return {
        "compile": (["compile", registry, "-o", tmp_path / "out.ipallow"], "compiling"),
        "diff": (["diff", registry, other], "comparing"),
        "stats": (["stats", registry], "counting"),
        "export": (["export", "--format", "cidr", registry], "aggregating"),
        "validate": (["validate", registry], "checking overlaps"),
    }


@pytest.mark.parametrize("command", ["compile", "diff", "stats", "export", "validate"])
def test_progress_is_drawn_on_a_terminal(tmp_path, command):
    args, label = _progress_commands(tmp_path)[command]
    env = dict(os.environ, IPALLOW_PROGRESS_DELAY="0", TERM="xterm")
    status, _, terminal = _run_on_a_terminal(args, env)
    assert status in (0, 1), terminal
    assert f"\r\x1b[K{label}" in terminal


@pytest.mark.parametrize("command", ["compile", "diff", "stats", "export", "validate"])
def test_no_progress_when_stderr_is_not_a_terminal(tmp_path, command):
    args, label = _progress_commands(tmp_path)[command]
    result = run(*args, env=dict(os.environ, IPALLOW_PROGRESS_DELAY="0", TERM="xterm"))
    assert result.returncode in (0, 1), result.stderr
    assert "\x1b[K" not in result.stderr and label not in result.stderr


def _frames(terminal, label):
    """Positions of the progress frames drawn with ``label`` (each frame starts '\\r\\x1b[K')."""
    frames = terminal.split("\r\x1b[K")
    return frames, [k for k, frame in enumerate(frames) if frame.startswith(label)]


def test_nested_progress_lines_do_not_take_turns(tmp_path):
    # compile shows 'compiling FILE' around the loader's own 'loading FILE': while the inner
    # line is up the outer one must wait, not redraw over it every 0.2 s (it flickered).
    registry = tmp_path / "big.csv"
    rows = (f"PTA-{k},{10 + (k >> 16)}.{(k >> 8) & 255}.{k & 255}.0/24,o" for k in range(60_000))
    registry.write_text("id,cidr,owner\n" + "\n".join(rows) + "\n")
    env = dict(os.environ, IPALLOW_PROGRESS_DELAY="0", TERM="xterm")
    status, _, terminal = _run_on_a_terminal(["compile", registry, "-o", tmp_path / "big.ipallow"], env)
    assert status == 0, terminal
    frames, loading = _frames(terminal, f"loading {registry}")
    assert len(loading) >= 2, terminal[:500]          # the load lasted more than one frame
    between = frames[loading[0]:loading[-1] + 1]
    assert not [f for f in between if f.startswith("compiling")], between


def test_nested_progress_helper_draws_only_the_innermost():
    import io
    import time
    from ipallow.commands._progress import Progress
    stream = io.StringIO()
    with Progress("outer", stream=stream, delay=0, enabled=True):
        with Progress("inner", stream=stream, delay=0, enabled=True):
            time.sleep(0.7)          # the outer would have drawn 3 frames by now
        time.sleep(0.3)
    frames, inner = _frames(stream.getvalue(), "inner")
    assert frames[1].startswith("outer") and len(inner) >= 2
    assert not [f for f in frames[inner[0]:inner[-1] + 1] if f.startswith("outer")]
    assert [f for f in frames[inner[-1] + 1:] if f.startswith("outer")]      # and resumes after


def test_no_progress_on_a_terminal_for_work_shorter_than_the_delay(tmp_path):
    args, label = _progress_commands(tmp_path)["validate"]
    env = dict(os.environ, TERM="xterm", IPALLOW_PROGRESS_DELAY="10")   # the default is 1 s
    status, _, terminal = _run_on_a_terminal(args, env)
    assert status == 0 and "\x1b[K" not in terminal
