"""ipallow.dataframe: Arrow / pandas / numpy columns, classify on pandas and on a real Dask cluster.

Every column form must give, row for row, what ``Allowlist.contains_many`` /
``lookup_many`` give for the same addresses, plus the documented treatment of
rows that are not addresses: null -> NULL, text the strict parser refuses ->
UNPARSEABLE, both with ``valid`` False.  The expected answer is computed with the
public API only: ``Allowlist.lookup`` decides which rows are addresses (it raises
for the others), then one ``contains_many`` / ``lookup_many`` call answers them.

The Dask tests run on a ``dask.distributed.LocalCluster`` with two worker
*processes* on loopback, started once for this module and closed at its end.
"""

from __future__ import annotations

import ast
import importlib.util
import ipaddress
import os
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ipallow
from ipallow import synth

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

from ipallow import dataframe as idf  # noqa: E402  (after the optional imports)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
EXAMPLES = ROOT / "examples"


# ---------------------------------------------------------------------------------------------
# data: a registry with nesting, IPv6, IPv4-mapped registrations and data; rows of every kind


def _malformed() -> list[str]:
    rows = []
    for line in (DATA / "malformed_addresses.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append(ast.literal_eval(line.partition(" | ")[2]))
    return rows + ["", "1.2.3", "010.1.1.1", " 10.0.0.1", "10.0.0.1 ", "fe80::1%eth0", "10.0.0.0/8",
                   "::ffff:1.2.3.256", "1" * 300, "１.２.３.４", "2001:db8::1::1"]


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Arrow strings must be valid UTF-8: lone surrogates are tested on the object paths only.
MALFORMED = [t for t in _malformed() if _utf8(t)]
SURROGATES = [t for t in _malformed() if not _utf8(t)] + ["10.0.0.1\udcff", "\ud800"]


@pytest.fixture(scope="module")
def allowlist():
    keys, plens = synth.ipv4_table(4000, seed=11)
    hi, lo, plens6 = synth.ipv6_table(800, seed=12)
    entries = [(cidr, {"id": f"V4-{i}"}) for i, cidr in enumerate(synth.ipv4_strings(keys, plens))]
    entries += [(cidr, {"id": f"V6-{i}"}) for i, cidr in enumerate(synth.ipv6_strings(hi, lo, plens6))]
    entries += ["10.0.0.0/8", ("10.1.0.0/16", {"id": "NESTED"}), "2001:db8::/32",
                "::ffff:192.0.2.0/120",            # registered as 192.0.2.0/24
                "198.51.100.7", "2001:db8:5::/48", "100.64.0.0/10"]
    return ipallow.Allowlist(entries)


def _mixed_rows(seed: int, n: int) -> list:
    """n rows: IPv4, IPv6 (several text forms), IPv4-mapped, nulls and malformed text, shuffled."""
    rng = np.random.default_rng(seed)
    keys, plens = synth.ipv4_table(4000, seed=11)
    hi, lo, plens6 = synth.ipv6_table(800, seed=12)
    v4 = [str(ipaddress.IPv4Address(int(x))) for x in synth.ipv4_queries(keys, plens, n, seed=seed)]
    q6 = synth.ipv6_queries(hi, lo, plens6, n // 4, seed=seed)
    v6 = [ipaddress.IPv6Address((int(a) << 64) | int(b)) for a, b in q6.tolist()]
    rows: list = []
    for i in range(n):
        r = rng.random()
        if r < 0.55:
            rows.append(v4[i])
        elif r < 0.75:
            a = v6[i % len(v6)]
            form = i % 3
            rows.append(str(a) if form == 0 else a.exploded if form == 1 else str(a).upper())
        elif r < 0.85:                                   # IPv4-mapped, dotted and hex forms
            value = int(ipaddress.IPv4Address(v4[i]))
            rows.append(f"::ffff:{v4[i]}" if i % 2 else f"::FFFF:{value >> 16:x}:{value & 0xFFFF:x}")
        elif r < 0.90:
            rows.append(f"10.{i % 3}.{i % 256}.{(i * 7) % 256}")
        elif r < 0.95:
            rows.append(None)
        else:
            rows.append(MALFORMED[i % len(MALFORMED)])
    return rows


@pytest.fixture(scope="module")
def rows():
    return _mixed_rows(seed=5, n=6000)


def expected(al: ipallow.Allowlist, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes, allowed, registrations) from the public API: lookup() for validity, one batch call."""
    codes = np.empty(len(rows), dtype=np.int32)
    good = []
    for i, row in enumerate(rows):
        if row is None:
            codes[i] = idf.NULL
            continue
        try:
            al.lookup(row)
        except (ipallow.AddressError, TypeError):
            codes[i] = idf.UNPARSEABLE
            continue
        good.append(i)
    batch = [rows[i] for i in good]
    registrations = al.lookup_many(batch) if batch else np.zeros(0, np.int32)
    allowed_batch = al.contains_many(batch) if batch else np.zeros(0, bool)
    codes[good] = registrations
    allowed = np.zeros(len(rows), dtype=bool)
    allowed[good] = allowed_batch
    regs = np.where(codes >= 0, codes, -1).astype(np.int32)
    return codes, allowed, regs


def check_column(column, al, rows) -> None:
    codes, allowed, regs = expected(al, rows)
    got = idf.match_codes(column, al)
    assert got.dtype == np.int32 and got.shape == (len(rows),)
    bad = np.flatnonzero(got != codes)
    assert not bad.size, [(rows[i], int(got[i]), int(codes[i])) for i in bad[:5]]
    c = idf.contains_many(column, al)
    np.testing.assert_array_equal(c.values, allowed)
    np.testing.assert_array_equal(c.valid, codes >= -1)
    lk = idf.lookup_many(column, al)
    np.testing.assert_array_equal(lk.values, regs)
    np.testing.assert_array_equal(lk.valid, codes >= -1)
    assert c.values.dtype == np.bool_ and lk.values.dtype == np.int32


def test_rows_cover_every_case(allowlist, rows):
    codes, allowed, _ = expected(allowlist, rows)
    assert {idf.NULL, idf.UNPARSEABLE, idf.NO_MATCH} <= set(codes.tolist())
    assert allowed.sum() > len(rows) // 5
    assert any(isinstance(r, str) and ":" in r and "." not in r and allowlist.lookup(r) for r in rows
               if r is not None and r not in MALFORMED)                                      # IPv6 hits
    assert any(isinstance(r, str) and r.startswith("::ffff:") and r not in MALFORMED and allowlist.lookup(r)
               for r in rows)                                                                  # mapped hits


# ---------------------------------------------------------------------------------------------
# column forms


def _ascii(rows):
    return [r for r in rows if r is None or r.isascii()]


COLUMN_FORMS = {
    "list": lambda rows: rows,
    "tuple": lambda rows: tuple(rows),
    "numpy-object": lambda rows: np.array(rows, dtype=object),
    "arrow-string": lambda rows: pa.array(rows, pa.string()),
    "arrow-large_string": lambda rows: pa.array(rows, pa.large_string()),
    "arrow-string_view": lambda rows: pa.array(rows, pa.string_view()),
    "arrow-binary": lambda rows: pa.array([None if r is None else r.encode() for r in rows], pa.binary()),
    "arrow-large_binary": lambda rows: pa.array([None if r is None else r.encode() for r in rows],
                                                pa.large_binary()),
    "arrow-sliced": lambda rows: pa.array(["junk", None] + list(rows) + ["x"]).slice(2, len(rows)),
    "arrow-chunked": lambda rows: pa.chunked_array(
        [pa.array(rows[:7], pa.string()), pa.array([], pa.string()), pa.array(rows[7:1000], pa.string()),
         pa.array(rows[1000:], pa.string())], pa.string()),
    "arrow-chunked-large": lambda rows: pa.chunked_array(
        [pa.array(rows[:2000], pa.large_string()), pa.array(rows[2000:], pa.large_string())]),
    "arrow-dictionary": lambda rows: pa.array(rows).dictionary_encode(),
    "arrow-chunked-dictionary": lambda rows: pa.chunked_array(
        [pa.array(rows[:3000]).dictionary_encode(), pa.array(rows[3000:]).dictionary_encode()]),
    "pandas-default": lambda rows: pd.Series(rows),
    "pandas-object": lambda rows: pd.Series(rows, dtype=object),
    "pandas-object-nan": lambda rows: pd.Series([np.nan if r is None else r for r in rows], dtype=object),
    "pandas-string[python]": lambda rows: pd.Series(rows, dtype="string[python]"),
    "pandas-string[pyarrow]": lambda rows: pd.Series(rows, dtype="string[pyarrow]"),
    "pandas-arrow-large_string": lambda rows: pd.Series(rows, dtype=pd.ArrowDtype(pa.large_string())),
    "pandas-arrow-string-chunked": lambda rows: pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array(
        [pa.array(rows[:100]), pa.array(rows[100:])]))),
    "pandas-category": lambda rows: pd.Series(rows, dtype="category"),
    "pandas-index": lambda rows: pd.Index(rows, dtype=object),
    "pandas-non-default-index": lambda rows: pd.Series(rows, index=np.arange(len(rows))[::-1] * 3),
}


@pytest.mark.parametrize("form", sorted(COLUMN_FORMS))
def test_column_forms_agree_with_contains_many(allowlist, rows, form):
    check_column(COLUMN_FORMS[form](rows), allowlist, rows)


@pytest.mark.parametrize("form", ["list", "numpy-object", "pandas-object", "pandas-string[python]"])
def test_text_that_is_not_utf8(allowlist, form):
    rows = SURROGATES + ["10.1.2.3", None]
    codes = idf.match_codes(COLUMN_FORMS[form](rows), allowlist)
    assert codes.tolist() == [idf.UNPARSEABLE] * len(SURROGATES) + [allowlist.lookup("10.1.2.3").index, idf.NULL]
    with pytest.raises(idf.BadRowError, match="row 0"):
        idf.contains_many(COLUMN_FORMS[form](rows), allowlist, strict=True)
    numpy_u = np.array(SURROGATES)
    assert (idf.match_codes(numpy_u, allowlist) == idf.UNPARSEABLE).all()


@pytest.mark.parametrize("kind", ["U", "S"])
def test_numpy_fixed_width_text(allowlist, rows, kind):
    # Fixed-width arrays hold no None and only what numpy stores: it drops trailing NULs,
    # so the expected answer is computed from what the array gives back.
    text = [("" if r is None else r) for r in (_ascii(rows) if kind == "S" else rows)]
    arr = np.array(text, dtype="U") if kind == "U" else np.array([t.encode() for t in text], dtype="S")
    stored = [v if kind == "U" else v.decode() for v in arr.tolist()]
    check_column(arr, allowlist, stored)
    # non-contiguous views work too
    check_column(arr[::2], allowlist, stored[::2])


@pytest.mark.parametrize("kind", ["U", "S"])
def test_numpy_text_with_a_nul_inside_is_unparseable(allowlist, kind):
    # numpy keeps inner NULs; the core stops at the first NUL, so the glue must mark these.
    text = ["10.1.2.3\x00junk", "10.1.2.3", "\x0010.1.2.3", "10.1.2.3\x00", "2001:db8::1\x00::"]
    arr = np.array(text, dtype="U") if kind == "U" else np.array([t.encode() for t in text], dtype="S")
    codes = idf.match_codes(arr, allowlist)
    assert codes.tolist()[0] == idf.UNPARSEABLE and codes[2] == idf.UNPARSEABLE and codes[4] == idf.UNPARSEABLE
    assert codes[1] == codes[3] == allowlist.lookup("10.1.2.3").index      # trailing NUL: numpy padding
    with pytest.raises(idf.BadRowError, match=r"row 0: .*unexpected character '\\x00'"):
        idf.contains_many(arr, allowlist, strict=True)


def test_objects_other_than_text(allowlist):
    objs = [ipaddress.ip_address("10.1.2.3"), int(ipaddress.ip_address("10.1.2.3")), np.nan, pd.NA, pd.NaT,
            None, 1.5, True, ipaddress.ip_network("10.0.0.0/8"), b"10.1.2.3", b"\x0a\x01\x02\x03", "10.1.2.3"]
    codes = idf.match_codes(objs, allowlist)
    reg = allowlist.lookup("10.1.2.3").index
    assert codes.tolist() == [reg, reg, idf.NULL, idf.NULL, idf.NULL, idf.NULL, idf.UNPARSEABLE,
                              idf.UNPARSEABLE, idf.UNPARSEABLE, reg, idf.UNPARSEABLE, reg]
    # ints and address objects agree with contains_many / lookup_many on them
    assert idf.lookup_many(objs[:2], allowlist).values.tolist() == allowlist.lookup_many(objs[:2]).tolist()


def test_integer_columns_are_ipv4(allowlist, rows):
    keys, plens = synth.ipv4_table(4000, seed=11)
    q = synth.ipv4_queries(keys, plens, 3000, seed=9)
    want = allowlist.lookup_many(q)
    for column in (q, q.astype(np.int64), q.astype(np.uint64), pd.Series(q), pd.Series(q, dtype="UInt32"),
                   pa.array(q), pa.array(q.astype(np.int64))):
        got = idf.lookup_many(column, allowlist)
        np.testing.assert_array_equal(got.values, want)
        assert got.valid.all()
    mixed = pd.Series([int(q[0]), None, -1, 2**32, int(q[1])], dtype="Int64")
    codes = idf.match_codes(mixed, allowlist)
    assert codes.tolist() == [want[0], idf.NULL, idf.UNPARSEABLE, idf.UNPARSEABLE, want[1]]
    arrow = pa.array([int(q[0]), None, int(q[1])], pa.uint32())
    assert idf.match_codes(arrow, allowlist).tolist() == [want[0], idf.NULL, want[1]]
    with pytest.raises(idf.BadRowError, match="row 2.*out of range|row 2.*not an IPv4"):
        idf.contains_many(np.array([q[0], q[1], 2**33], dtype=np.int64), allowlist, strict=True)


def test_empty_and_all_null_columns(allowlist):
    for column in ([], np.array([], dtype="U"), np.array([], dtype="S"), pa.array([], pa.string()),
                   pa.chunked_array([], pa.string()), pd.Series([], dtype="string[pyarrow]"),
                   pd.Series([], dtype=object), pd.Series([], dtype="category")):
        res = idf.contains_many(column, allowlist, strict=True)
        assert res.values.shape == res.valid.shape == (0,)
    for column in (pa.nulls(4), pa.array([None] * 4, pa.string()), pd.Series([None] * 4, dtype="string[pyarrow]"),
                   pa.array([None, None, None, None]).dictionary_encode(), pd.Series([None] * 4, dtype="category")):
        assert idf.match_codes(column, allowlist).tolist() == [idf.NULL] * 4


def test_unsupported_columns(allowlist):
    for column in (np.array([1.5, 2.0]), pd.Series([1.0, np.nan]), np.array([True]), pa.array([1.5]),
                   pd.Series(pd.to_datetime(["2024-01-01"]))):
        with pytest.raises(TypeError):
            idf.contains_many(column, allowlist)
    with pytest.raises(TypeError, match="single str"):
        idf.contains_many("10.0.0.1", allowlist)
    with pytest.raises(TypeError):
        idf.contains_many(["10.0.0.1"], None)
    with pytest.raises(TypeError):
        idf.contains_many(None, allowlist)


# ---------------------------------------------------------------------------------------------
# strict=True


def test_strict_names_the_first_bad_row(allowlist):
    s = pd.Series(["10.1.2.3", "2001:db8::1", "1.2.3.256", None, "x"], index=["a", "b", "c", "d", "e"])
    with pytest.raises(idf.BadRowError) as info:
        idf.lookup_many(s, allowlist, strict=True)
    err = info.value
    assert (err.position, err.label, err.value, err.nulls, err.unparseable) == (2, "c", "1.2.3.256", 1, 2)
    assert isinstance(err, ValueError)
    assert "row 2 (index 'c')" in str(err) and "octet greater than 255" in str(err)
    assert "3 bad rows in all (1 null, 2 unparseable)" in str(err)
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.position == 2 and back.label == "c"

    with pytest.raises(idf.BadRowError, match=r"^row 1: null \(missing\) address"):
        idf.contains_many(pa.array(["10.1.2.3", None]), allowlist, strict=True)
    # a clean column passes and gives the non-strict answer
    clean = pa.array(["10.1.2.3", "2001:db8::1", "8.8.8.8"])
    assert idf.contains_many(clean, allowlist, strict=True).values.tolist() == [True, True, False]


# ---------------------------------------------------------------------------------------------
# properties: arbitrary text agrees across paths


TEXTISH = st.one_of(
    st.none(),
    st.text(alphabet="0123456789abcdefABCDEF:.%/ x\x00", max_size=45),
    st.ip_addresses().map(str),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
)


@settings(max_examples=60)
@given(st.lists(TEXTISH, max_size=40))
def test_any_text_agrees_across_column_forms(allowlist, texts):
    codes, _, _ = expected(allowlist, texts)
    for form in ("list", "arrow-string", "arrow-large_string", "arrow-dictionary", "pandas-string[python]",
                 "pandas-string[pyarrow]", "pandas-object-nan"):
        got = idf.match_codes(COLUMN_FORMS[form](texts), allowlist)
        assert got.tolist() == codes.tolist(), form


# ---------------------------------------------------------------------------------------------
# classify on pandas


def test_classify_pandas(allowlist, rows):
    df = pd.DataFrame({"src": pd.array(rows, dtype="string[pyarrow]"), "bytes": np.arange(len(rows))},
                      index=pd.Index(np.arange(len(rows))[::-1] * 2, name="flow"))
    before = df.copy()
    out = idf.classify(df, "src", allowlist)
    pd.testing.assert_frame_equal(df, before)                        # input untouched
    assert list(out.columns) == ["src", "bytes", "allowed", "registration", "valid"]
    assert out.index.equals(df.index)
    assert (out.dtypes["allowed"], out.dtypes["registration"], out.dtypes["valid"]) == (bool, np.int32, bool)
    codes, allowed, regs = expected(allowlist, rows)
    np.testing.assert_array_equal(out["allowed"].to_numpy(), allowed)
    np.testing.assert_array_equal(out["registration"].to_numpy(), regs)
    np.testing.assert_array_equal(out["valid"].to_numpy(), codes >= -1)

    slim = idf.classify(df, "src", allowlist, registration=False, valid="ok", allowed="src_allowed")
    assert list(slim.columns) == ["src", "bytes", "src_allowed", "ok"]
    assert idf.classify(df.iloc[:0], "src", allowlist).shape == (0, 5)


def test_classify_pandas_errors(allowlist):
    df = pd.DataFrame({"src": ["10.1.2.3", None], "allowed": [1, 2]})
    with pytest.raises(KeyError, match="dst"):
        idf.classify(df, "dst", allowlist)
    with pytest.raises(ValueError, match="replace the address column"):
        idf.classify(df, "src", allowlist, valid="src")
    with pytest.raises(ValueError, match="clash"):
        idf.classify(df, "src", allowlist, registration="x", valid="x")
    with pytest.raises(TypeError, match="pandas or dask DataFrame"):
        idf.classify(df.to_dict(), "src", allowlist)
    with pytest.raises(idf.BadRowError, match="row 1 .*column 'src'.*null"):
        idf.classify(df, "src", allowlist, strict=True)
    assert idf.classify(df, "src", allowlist)["allowed"].tolist() == [True, False]   # replaced, as assign


def test_classify_with_a_snapshot_path(allowlist, rows, tmp_path):
    path = tmp_path / "registry.ipallow"
    allowlist.save(path)
    df = pd.DataFrame({"src": rows})
    want = idf.classify(df, "src", allowlist)
    loads = idf.worker_stats()["snapshot_loads"]
    for _ in range(3):
        pd.testing.assert_frame_equal(idf.classify(df, "src", str(path)), want)
    assert idf.worker_stats()["snapshot_loads"] == loads + 1          # mapped once, then cached
    assert idf.contains_many(rows, path).values.tolist() == want["allowed"].tolist()


def test_registration_labels(allowlist):
    idx = allowlist.lookup("10.1.2.3").index
    assert idf.registration_labels([idx, -1, 0], allowlist) == ["NESTED", None, "V4-0"]
    assert idf.registration_labels(np.array([allowlist.lookup("10.200.0.1").index]), allowlist) == \
        [f"#{allowlist.lookup('10.200.0.1').index}"]
    with pytest.raises(IndexError):
        idf.registration_labels([len(allowlist)], allowlist)


def test_registration_labels_old_argument_order_still_works_with_a_warning(allowlist, tmp_path):
    idx = allowlist.lookup("10.1.2.3").index
    with pytest.warns(DeprecationWarning, match="registration_labels\\(registrations, allowlist\\)"):
        assert idf.registration_labels(allowlist, [idx, -1]) == ["NESTED", None]
    path = tmp_path / "al.ipallow"
    allowlist.save(path)
    with pytest.warns(DeprecationWarning):
        assert idf.registration_labels(str(path), [idx]) == ["NESTED"]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert idf.registration_labels([idx], str(path)) == ["NESTED"]


# ---------------------------------------------------------------------------------------------
# Dask


dd = pytest.importorskip("dask.dataframe")


def _frame(rows, npartitions=9):
    df = pd.DataFrame({"src": pd.Series(rows, dtype=object), "n": np.arange(len(rows))})
    return df, dd.from_pandas(df, npartitions=npartitions, sort=False)


def test_dask_without_a_cluster(allowlist, rows):
    # threads / synchronous schedulers: the allowlist sits in the graph once, shared in memory
    import dask
    df, ddf = _frame(rows)
    with dask.config.set(scheduler="sync"):
        got = idf.classify(ddf, "src", allowlist).compute()
    want = idf.classify(ddf.compute(scheduler="sync"), "src", allowlist)
    pd.testing.assert_frame_equal(got, want)


@pytest.fixture(scope="module")
def client():
    import dask
    distributed = pytest.importorskip("distributed")
    # A task whose worker dies fails at once (KilledWorker) instead of being retried on a
    # restarted worker: a broken test fails instead of hanging the run.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                     dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _stats(client):
    return {info["pid"]: info for info in client.run(idf.worker_stats).values()}


def test_dask_cluster_is_two_processes(client):
    pids = set(_stats(client))
    assert len(pids) == 2 and os.getpid() not in pids


def test_dask_classify_matches_contains_many(client, allowlist, rows):
    df, ddf = _frame(rows)
    assert ddf.npartitions == 9
    before = _stats(client)
    result = idf.classify(ddf, "src", allowlist)
    assert result.npartitions == 9 and list(result.columns) == ["src", "n", "allowed", "registration", "valid"]
    out = result.compute().sort_values("n")
    codes, allowed, regs = expected(allowlist, rows)
    np.testing.assert_array_equal(out["allowed"].to_numpy(), allowed)
    np.testing.assert_array_equal(out["registration"].to_numpy(), regs)
    np.testing.assert_array_equal(out["valid"].to_numpy(), codes >= -1)
    # again, after the scheduler's memory manager had time to act (it drops extra replicas of
    # scattered data every 2 s): the shipment is re-used, and each worker process unpickled
    # the allowlist exactly once
    time.sleep(2.5)
    again = idf.classify(ddf, "src", allowlist, registration="reg", valid=False).compute().sort_values("n")
    np.testing.assert_array_equal(again["reg"].to_numpy(), regs)
    after = _stats(client)
    assert {pid: after[pid]["shipments"] - before[pid]["shipments"] for pid in after} == {pid: 1 for pid in after}
    shipment = idf.ship(allowlist, client)
    assert shipment is idf.ship(allowlist, client)
    assert all(shipment.token in info["installed"] for info in after.values())


def test_dask_shipment_release(client, rows):
    al = ipallow.Allowlist(["10.0.0.0/8", "2001:db8::/32"])
    shipment = idf.ship(al, client)
    _, ddf = _frame(rows[:500], npartitions=3)
    want = idf.classify(ddf.compute(), "src", al)
    got = idf.classify(ddf, "src", shipment).compute()           # a Shipment works as the allowlist
    np.testing.assert_array_equal(got["registration"].to_numpy(), want["registration"].to_numpy())
    assert all(shipment.token in info["installed"] for info in _stats(client).values())
    # your own tasks: a Shipment travels as its token; the column functions take it
    import dask
    parts = [dask.delayed(idf.match_codes)(part, shipment) for part in ddf["src"].to_delayed()]
    np.testing.assert_array_equal(np.concatenate(dask.compute(*parts)), idf.match_codes(ddf["src"].compute(), al))
    shipment.release()
    shipment.release()                                               # idempotent
    assert all(shipment.token not in info["installed"] for info in _stats(client).values())
    with pytest.raises(ValueError, match="released"):
        idf.classify(ddf, "src", shipment)
    assert idf.ship(al, client) is not shipment                      # shipped afresh
    idf.ship(al, client).release()


def test_dask_object_strings_and_empty_partitions(client, allowlist, rows):
    import dask
    df = pd.DataFrame({"src": pd.Series(rows, dtype=object), "n": np.arange(len(rows))})
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_pandas(df, npartitions=6, sort=False)
        ddf = ddf[ddf["n"] >= len(rows) // 2]                        # the first partitions become empty
        assert ddf.dtypes["src"] == object
        out = idf.classify(ddf, "src", allowlist).compute().sort_values("n")
    codes, allowed, regs = expected(allowlist, rows[len(rows) // 2:])
    np.testing.assert_array_equal(out["allowed"].to_numpy(), allowed)
    np.testing.assert_array_equal(out["registration"].to_numpy(), regs)
    np.testing.assert_array_equal(out["valid"].to_numpy(), codes >= -1)


def test_dask_snapshot_path_mapped_once_per_worker(client, allowlist, rows, tmp_path):
    path = tmp_path / "registry.ipallow"
    allowlist.save(path)
    df, ddf = _frame(rows, npartitions=12)
    want = idf.classify(df, "src", allowlist)
    before = _stats(client)
    for _ in range(2):
        got = idf.classify(ddf, "src", path).compute().sort_values("n")
        for name in ("allowed", "registration", "valid"):
            np.testing.assert_array_equal(got[name].to_numpy(), want[name].to_numpy())
    after = _stats(client)
    loads = {pid: after[pid]["snapshot_loads"] - before[pid]["snapshot_loads"] for pid in after}
    assert all(v <= 1 for v in loads.values()) and sum(loads.values()) >= 1, loads
    assert all(after[pid]["shipments"] == before[pid]["shipments"] for pid in after)   # nothing shipped


def test_dask_snapshot_replaced_after_planning_is_refused(client, allowlist, rows, tmp_path):
    path = tmp_path / "registry.ipallow"
    allowlist.save(path)
    _, ddf = _frame(rows[:200], npartitions=2)
    planned = idf.classify(ddf, "src", str(path))
    ipallow.Allowlist(["10.0.0.0/8"]).save(path)                      # atomically replaced
    with pytest.raises(ipallow.SnapshotError, match="replaced after the job was planned"):
        planned.compute()


def test_dask_strict_names_partition_and_row(client, allowlist):
    rows = ["10.1.2.3"] * 10 + ["1.2.3.256"] + ["10.1.2.3"] * 9
    df = pd.DataFrame({"src": rows}, index=np.arange(100, 120))
    ddf = dd.from_pandas(df, npartitions=4, sort=True)
    with pytest.raises(idf.BadRowError) as info:
        idf.classify(ddf, "src", allowlist, strict=True).compute()
    err = info.value
    assert (err.partition, err.position, err.label, err.value) == (2, 0, 110, "1.2.3.256")
    assert "partition 2" in str(err) and "index 110" in str(err)


def test_dask_errors_at_planning_time(client, allowlist, tmp_path):
    _, ddf = _frame(["10.0.0.1"])
    with pytest.raises(KeyError):
        idf.classify(ddf, "dst", allowlist)
    with pytest.raises(FileNotFoundError):
        idf.classify(ddf, "src", tmp_path / "missing.ipallow")
    with pytest.raises(TypeError, match="snapshot path"):
        idf.classify(ddf, "src", ["10.0.0.0/8"])
    with pytest.raises(TypeError, match="classify"):
        idf.contains_many(ddf["src"], allowlist)


# ---------------------------------------------------------------------------------------------
# examples/: the worked Dask example (on this module's cluster) and the Spark recipe


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"ipallow_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    # Deliberately not in sys.modules: the examples are not importable on Dask workers or
    # Spark executors, so their functions must travel by value (cloudpickle), as they do
    # when the example runs as a script.
    spec.loader.exec_module(module)
    return module


def test_flow_log_example(client, tmp_path):
    example = _example("flow_log_dask")
    al = ipallow.Allowlist.from_file(ipallow.SAMPLE_LIST)
    paths = example.write_flow_log(tmp_path / "flows", al, rows=20_000, files=4, seed=3)
    assert len(paths) == 4
    ddf = dd.read_parquet([str(p) for p in paths])
    classified = idf.classify(ddf, "src_addr", al)
    by_verdict, by_registration = example.summarize(classified, al)
    # the same summaries from one pandas frame and the public batch API
    flows = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    codes, allowed, regs = expected(al, [None if pd.isna(v) else v for v in flows["src_addr"].tolist()])
    verdict = np.where(codes < -1, "invalid", np.where(allowed, "allowed", "denied"))
    want = flows.assign(verdict=verdict).groupby("verdict")[["bytes"]].sum()["bytes"]
    assert by_verdict["bytes"].to_dict() == want.to_dict()
    assert by_verdict["flows"].sum() == len(flows)
    per_reg = pd.Series(flows["bytes"].to_numpy()[regs >= 0]).groupby(regs[regs >= 0]).sum()
    top = by_registration.set_index("registration")["bytes"]
    assert all(top[r] == per_reg[r] for r in top.index)
    assert list(by_registration["id"]) == idf.registration_labels(by_registration["registration"], al)
    assert set(by_verdict.index) == {"allowed", "denied", "invalid"}


def test_spark_recipe(tmp_path):
    pytest.importorskip("pyspark", reason="pyspark is not installed")
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        pytest.skip("no Java runtime for Spark")
    recipe = _example("spark_recipe")
    al = ipallow.Allowlist([("10.0.0.0/8", {"id": "A"}), ("2001:db8::/32", {"id": "B"})])
    snapshot = tmp_path / "registry.ipallow"
    al.save(snapshot)
    rows = ["10.1.2.3", None, "8.8.8.8", "2001:db8::1", "::ffff:10.0.0.1", "bad"] * 5
    spark = recipe.local_session(cores=2)
    try:
        sdf = spark.createDataFrame(pd.DataFrame({"src": rows, "n": np.arange(len(rows))}))
        out = recipe.classify_spark(spark, sdf, "src", snapshot).toPandas().sort_values("n")
    finally:
        spark.stop()
    codes, allowed, regs = expected(al, rows)
    assert out["allowed"].tolist() == allowed.tolist()
    assert out["registration"].tolist() == regs.tolist()
    assert out["valid"].tolist() == (codes >= -1).tolist()
