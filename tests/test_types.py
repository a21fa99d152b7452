"""Wrong types raise TypeError, bad values ValueError (never SystemError, never a crash);
every batch layout, dtype width, stride and flag gives the answers of the scalar path."""

from __future__ import annotations

import inspect
import ipaddress
from collections.abc import Sequence
from decimal import Decimal

import netaddr
import numpy as np
import pytest

import ipallow
from oracle import Oracle

N4 = ipaddress.IPv4Network
N6 = ipaddress.IPv6Network
IP4 = ipaddress.IPv4Address
IP6 = ipaddress.IPv6Address

AL = ipallow.Allowlist(
    ["0.0.0.0/25", "0.0.0.200", "0.0.255.0/24", "10.0.0.0/8", "255.255.255.255", "2001:db8::/32", "::1", "::ffff:9.0.0.0/104"]
)
ORACLE = Oracle([[ipaddress.ip_network(e)] for e in
                 ["0.0.0.0/25", "0.0.0.200", "0.0.255.0/24", "10.0.0.0/8", "255.255.255.255", "2001:db8::/32", "::1", "::ffff:9.0.0.0/104"]])


def expected(addrs):
    want_in = [ORACLE.contains(a) for a in addrs]
    want_idx = [-1 if ORACLE.lookup(a) is None else ORACLE.lookup(a) for a in addrs]
    return want_in, want_idx


def assert_batch(batch, addrs, form=""):
    want_in, want_idx = expected(addrs)
    got_in = AL.contains_many(batch)
    got_idx = AL.lookup_many(batch)
    assert got_in.dtype == np.bool_ and got_in.tolist() == want_in, form
    assert got_idx.dtype == np.int32 and got_idx.tolist() == want_idx, form


# ---------------------------------------------------------------------------------------------
# scalars


WRONG_TYPES = [
    None,
    1.5,
    float("nan"),
    1 + 2j,
    Decimal("1"),
    True,
    False,
    [1, 2, 3, 4],
    ["1.2.3.4"],
    {"ip": "1.2.3.4"},
    {},
    set(),
    object(),
    N4("1.2.3.0/24"),
    N6("::/0"),
    N4("1.2.3.4/32"),
    netaddr.IPNetwork("1.2.3.0/24"),
    netaddr.IPRange("1.2.3.4", "1.2.3.5"),
]


@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_wrong_type_lookup_raises_type_error(value):
    with pytest.raises(TypeError):
        value in AL  # noqa: B015
    with pytest.raises(TypeError):
        AL.lookup(value)
    with pytest.raises(TypeError):
        ipallow.Allowlist().lookup(value)
    with pytest.raises(TypeError):
        AL.covering(value)


BAD_INTS = [-1, -(2**32), -(2**200), 2**128, 2**128 + 1, 2**200]


@pytest.mark.parametrize("value", BAD_INTS, ids=repr)
def test_out_of_range_int_raises_value_error(value):
    for call in (lambda v: v in AL, AL.lookup, lambda v: ipallow.Allowlist([v])):
        with pytest.raises(ipallow.AddressError) as ei:
            call(value)
        assert isinstance(ei.value, ValueError) and not isinstance(ei.value, OverflowError)
        assert str(value) in str(ei.value)


def test_int_family_boundaries():
    v4_all = ipallow.Allowlist(["0.0.0.0/0"])
    v6_all = ipallow.Allowlist(["::/0"])
    assert 0 in v4_all and 2**32 - 1 in v4_all
    assert 2**32 not in v4_all and 2**128 - 1 not in v4_all
    assert 0 not in v6_all and 2**32 - 1 not in v6_all
    assert 2**32 in v6_all and 2**128 - 1 in v6_all
    assert ipallow.Allowlist([2**32 - 1])[0].networks == (N4("255.255.255.255/32"),)
    assert ipallow.Allowlist([2**32])[0].networks == (N6("::1:0:0/128"),)


@pytest.mark.parametrize("length", [0, 1, 3, 5, 8, 15, 17, 32])
def test_bytes_of_wrong_length_raise_value_error(length):
    value = bytes(range(1, length + 1))
    for call in (lambda v: v in AL, AL.lookup, lambda v: ipallow.Allowlist([v])):
        with pytest.raises(ValueError):
            call(value)


@pytest.mark.parametrize(
    "entry", [None, 1.5, True, False, object(), {"a": 1}, ("1.2.3.0/24", 1, 2), ("1.2.3.0/24",), 1j], ids=repr
)
def test_wrong_type_entry_raises_type_error(entry):
    with pytest.raises(TypeError):
        ipallow.Allowlist([entry])
    with pytest.raises(TypeError):
        ipallow.Allowlist(["10.0.0.0/8", entry])


@pytest.mark.parametrize("entries", [None, 5, 1.5, object()], ids=repr)
def test_non_iterable_entries_raise_type_error(entries):
    with pytest.raises(TypeError):
        ipallow.Allowlist(entries)


def test_getitem_wrong_type():
    with pytest.raises(TypeError):
        AL[None]
    with pytest.raises(TypeError):
        AL["0"]
    with pytest.raises(TypeError):
        AL[1.0]


# ---------------------------------------------------------------------------------------------
# None-safety over the whole public surface


def _al():
    return ipallow.Allowlist(["10.0.0.0/8"])


NONE_CALLS = {
    "Allowlist": [
        lambda: ipallow.Allowlist(None),
        lambda: ipallow.Allowlist([None]),
        lambda: ipallow.Allowlist([(None, {})]),
        lambda: ipallow.Allowlist.from_file(None),
    ],
    "load": [lambda: ipallow.load(None), lambda: ipallow.load("unused.ipallow", share=None)],
    "Registration": [
        lambda: ipallow.Registration(None, "10.0.0.0/8"),
        lambda: ipallow.Registration("A", None),
        lambda: ipallow.Registration("A", [None]),
        lambda: ipallow.Registration("A", "10.0.0.0/8", status=None),
        lambda: ipallow.Registration("A", "10.0.0.0/8", category=None),
        lambda: ipallow.Registration("A", "10.0.0.0/8").counts_at(True),
    ],
    "Registry": [lambda: ipallow.Registry(None), lambda: ipallow.Registry([None])],
    "load_registry": [lambda: ipallow.load_registry(None)],
    "diff": [lambda: ipallow.diff(None, []), lambda: ipallow.diff([], None)],
    "LiveAllowlist": [
        lambda: ipallow.LiveAllowlist(None),
        lambda: ipallow.LiveAllowlist([None]),
        lambda: ipallow.LiveAllowlist(ipallow.SAMPLE_LIST, poll=None, clock=None),
    ],
}

# Names of __all__ that are not called with None, and why.
NOT_CALLED = {
    "AddressError": "exception class: constructed by ipallow, not an API call",
    "ParseError": "exception class: constructed by ipallow, not an API call",
    "SnapshotError": "exception class: constructed by ipallow, not an API call",
    "TableError": "exception class: constructed by ipallow, not an API call",
    "HostBitsWarning": "warning class: issued by ipallow, not an API call",
    "Match": "record class (the 3-field sequence of a NamedTuple) returned by lookup; any field may be None",
    "Entry": "record class (NamedTuple) returned by al[i]; data may legitimately be None",
    "Problem": "record class (NamedTuple) inside ParseError",
    "Standing": "record class (NamedTuple) returned by Registration.counts_at",
    "Explanation": "record class (NamedTuple) returned by explain; registration may be None for plain lists",
    "Diff": "record class (NamedTuple) returned by diff",
    "ReloadRefused": "exception class: raised by LiveAllowlist.reload, not an API call",
    "SAMPLE_LIST": "a str constant (path of the bundled sample list), not callable",
    "__version__": "a str constant, not callable",
}

METHOD_NONE_CALLS = {
    "lookup": lambda al: al.lookup(None),
    "contains_many": lambda al: al.contains_many(None),
    "lookup_many": lambda al: al.lookup_many(None),
    "covering": lambda al: al.covering(None),
    "save": lambda al: al.save(None),
    "explain": lambda al: al.explain(None),
    "from_registry": lambda al: al.from_registry(None),
    "from_file": lambda al: al.from_file(None),
    "close": lambda al: al.close(None),          # takes no argument
    # None is "now" here (the default); a value of no instant type is the wrong type
    "reevaluated": lambda al: al.reevaluated(b"2028-01-01"),
    "covers": lambda al: al.covers(None),
    "overlaps": lambda al: al.overlaps(None),
    "union": lambda al: al.union(None),
    "intersection": lambda al: al.intersection(None),
    "difference": lambda al: al.difference(None),
    "export_mmdb": lambda al: al.export_mmdb(None),
    "from_mmdb": lambda al: al.from_mmdb(None),
}
DUNDER_NONE_CALLS = {
    "__contains__": lambda al: None in al,
    "__getitem__": lambda al: al[None],
    "__or__": lambda al: al | None,
    "__and__": lambda al: al & None,
    "__sub__": lambda al: al - None,
}


def test_none_tested_names_equal_all():
    tested = set(NONE_CALLS) | (set(NOT_CALLED) & set(ipallow.__all__))
    assert tested == set(ipallow.__all__), "every public name is either None-tested or skipped with a reason"
    for name in set(NOT_CALLED) & set(ipallow.__all__):
        obj = getattr(ipallow, name)
        # Records are NamedTuples, or (Match, compiled) registered collections.abc.Sequences
        is_record_or_error = isinstance(obj, type) and issubclass(obj, (Exception, Warning, tuple, Sequence))
        assert is_record_or_error or isinstance(obj, str), f"{name} is skipped but is {obj!r}"


@pytest.mark.parametrize("name", sorted(NONE_CALLS))
def test_none_to_public_callable_raises_type_error(name):
    for call in NONE_CALLS[name]:
        with pytest.raises(TypeError):
            call()


def test_none_tested_methods_equal_public_methods():
    public = {
        n
        for n, v in inspect.getmembers(ipallow.Allowlist)
        if not n.startswith("_") and callable(v) and not isinstance(v, property)
    }
    assert public == set(METHOD_NONE_CALLS), "every public Allowlist method is None-tested"


@pytest.mark.parametrize("name", sorted(METHOD_NONE_CALLS) + sorted(DUNDER_NONE_CALLS))
def test_none_to_public_method_raises_type_error(name):
    call = {**METHOD_NONE_CALLS, **DUNDER_NONE_CALLS}[name]
    for al in (_al(), ipallow.Allowlist()):
        with pytest.raises(TypeError):
            call(al)


# ---------------------------------------------------------------------------------------------
# arrays: dtypes


V4_VALUES = [0, 1, 127, 128, 199, 200, 201, 255, 256, 0xFF00, 0xFFFF, 0x0A000000, 0x0A123456, 0x09000001, 2**32 - 1]
V4_ADDRS = [IP4(v) for v in V4_VALUES]
V6_ADDRS = [ipaddress.ip_address(s) for s in
            ["::", "::1", "::2", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::",
             "::ffff:9.1.2.3", "::ffff:10.0.0.1", "::ffff:11.0.0.1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
             "1:0:0:0:0:0:0:0", "::1:0:0:1"]]


def v6_pairs(addrs):
    return np.array([[int(a) >> 64, int(a) & (2**64 - 1)] for a in addrs], dtype=np.uint64)


def v6_packed(addrs):
    return np.frombuffer(b"".join(a.packed for a in addrs), dtype=np.uint8).reshape(-1, 16).copy()


def v4_packed(addrs):
    return np.frombuffer(b"".join(a.packed for a in addrs), dtype=np.uint8).reshape(-1, 4).copy()


def test_uint32_reference_results():
    assert_batch(np.array(V4_VALUES, dtype=np.uint32), V4_ADDRS, "uint32")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64, np.uint64, np.intp])
def test_other_integer_widths_convert_when_values_fit(dtype):
    top = min(np.iinfo(dtype).max, 2**32 - 1)
    values = [v for v in V4_VALUES if v <= top]
    assert len(values) >= 3
    assert_batch(np.array(values, dtype=dtype), [IP4(v) for v in values], str(dtype))


@pytest.mark.parametrize(
    "array",
    [
        np.array([2**32], dtype=np.int64),
        np.array([0, 2**32 + 5], dtype=np.int64),
        np.array([2**63 - 1], dtype=np.int64),
        np.array([2**32], dtype=np.uint64),
        np.array([2**64 - 1], dtype=np.uint64),
        np.array([5, -1], dtype=np.int64),
        np.array([-1], dtype=np.int32),
        np.array([-128], dtype=np.int8),
        np.array([[0, 1], [-1, 0]], dtype=np.int64),  # (n,2) hi/lo must fit uint64
    ],
    ids=lambda a: f"{a.dtype}{a.tolist()}",
)
def test_integer_values_out_of_range_raise_value_error(array):
    with pytest.raises(ValueError):
        AL.contains_many(array)
    with pytest.raises(ValueError):
        AL.lookup_many(array)


def test_int64_pairs_within_range_match_uint64():
    addrs = [a for a in V6_ADDRS if (int(a) >> 64) < 2**63 and (int(a) & (2**64 - 1)) < 2**63]  # words fit int64
    assert len(addrs) >= 5
    assert_batch(v6_pairs(addrs).astype(np.int64), addrs, "int64 pairs")


@pytest.mark.parametrize(
    "array",
    [
        np.array([1.0, 2.0]),
        np.array([1.0], dtype=np.float32),
        np.array([1.0], dtype=np.float16),
        np.array([True, False]),
        np.array([1 + 1j]),
        np.zeros((3, 2), dtype=np.float64),
        np.zeros((3, 16), dtype=np.bool_),
        np.zeros((3, 4), dtype=np.float32),
        np.array([], dtype=np.float64),
    ],
    ids=lambda a: f"{a.dtype}{a.shape}",
)
def test_unsupported_dtypes_raise_type_error(array):
    with pytest.raises(TypeError):
        AL.contains_many(array)
    with pytest.raises(TypeError):
        AL.lookup_many(array)


# ---------------------------------------------------------------------------------------------
# arrays: layouts, strides, flags


def layouts():
    """(name, array, addresses) for every documented batch layout."""
    v4p = v4_packed(V4_ADDRS)
    v6p = v6_packed(V6_ADDRS)
    return [
        ("uint32", np.array(V4_VALUES, dtype=np.uint32), V4_ADDRS),
        ("uint8x4", v4p, V4_ADDRS),
        ("S4", v4p.copy().view("S4").reshape(-1), V4_ADDRS),
        ("uint64x2", v6_pairs(V6_ADDRS), V6_ADDRS),
        ("uint8x16", v6p, V6_ADDRS),
        ("S16", v6p.copy().view("S16").reshape(-1), V6_ADDRS),
        ("V16", v6p.copy().view("V16").reshape(-1), V6_ADDRS),
    ]


@pytest.mark.parametrize("index", range(7))
def test_layouts_contiguous(index):
    name, array, addrs = layouts()[index]
    assert_batch(array, addrs, name)


@pytest.mark.parametrize("index", range(7))
def test_layouts_non_contiguous(index):
    name, array, addrs = layouts()[index]
    strided = array[::2]
    assert not strided.flags.c_contiguous or len(strided) <= 1
    assert_batch(strided, addrs[::2], name + "[::2]")
    reversed_ = array[::-1]
    assert_batch(reversed_, addrs[::-1], name + "[::-1]")


@pytest.mark.parametrize("index", range(7))
def test_layouts_read_only(index):
    name, array, addrs = layouts()[index]
    frozen = array.copy()
    frozen.setflags(write=False)
    assert_batch(frozen, addrs, name + " read-only")
    frozen_view = array.copy()[::3]  # read-only AND strided
    frozen_view.flags.writeable = False
    assert_batch(frozen_view, addrs[::3], name + " read-only[::3]")


def test_two_dimensional_non_contiguous_layouts():
    pairs = v6_pairs(V6_ADDRS)
    assert_batch(np.asfortranarray(pairs), V6_ADDRS, "uint64x2 fortran")
    wide = np.zeros((len(V6_ADDRS), 4), dtype=np.uint64)
    wide[:, ::2] = pairs
    assert_batch(wide[:, ::2], V6_ADDRS, "uint64x2 column-strided")
    v6p = v6_packed(V6_ADDRS)
    wide8 = np.zeros((len(V6_ADDRS), 32), dtype=np.uint8)
    wide8[:, ::2] = v6p
    assert_batch(wide8[:, ::2], V6_ADDRS, "uint8x16 column-strided")
    assert_batch(np.asfortranarray(v4_packed(V4_ADDRS)), V4_ADDRS, "uint8x4 fortran")


@pytest.mark.parametrize("dtype", [">u4", ">u8"])
def test_non_native_byte_order_is_right_or_refused(dtype):
    """Big-endian input: either the right answer or a clean TypeError/ValueError, never a wrong answer."""
    if dtype == ">u4":
        array, addrs = np.array(V4_VALUES, dtype=dtype), V4_ADDRS
    else:
        array, addrs = v6_pairs(V6_ADDRS).astype(dtype), V6_ADDRS
    want_in, want_idx = expected(addrs)
    try:
        got_in = AL.contains_many(array)
    except (TypeError, ValueError):
        return
    assert got_in.tolist() == want_in
    assert AL.lookup_many(array).tolist() == want_idx


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((4, 3), dtype=np.uint64),
        np.zeros((4, 1), dtype=np.uint64),
        np.zeros((4, 3), dtype=np.uint8),
        np.zeros((4, 5), dtype=np.uint8),
        np.zeros((4, 17), dtype=np.uint8),
        np.zeros((2, 2, 8), dtype=np.uint8),
        np.zeros((2, 4, 4), dtype=np.uint8),
        np.zeros((2, 2, 2), dtype=np.uint64),
        np.zeros((2, 3, 4), dtype=np.uint32),
        np.zeros((3, 3), dtype=np.uint32),
        np.zeros((), dtype=np.uint32),
        np.zeros((3,), dtype="S5"),
        np.zeros((3,), dtype="V8"),
    ],
    ids=lambda a: f"{a.dtype}{a.shape}",
)
def test_wrong_shapes_raise_cleanly(array):
    for call in (AL.contains_many, AL.lookup_many):
        with pytest.raises((TypeError, ValueError)):
            call(array)


@pytest.mark.parametrize(
    "array",
    [
        np.array([], dtype=np.uint32),
        np.empty((0, 4), dtype=np.uint8),
        np.empty((0, 2), dtype=np.uint64),
        np.empty((0, 16), dtype=np.uint8),
        np.empty((0,), dtype="S16"),
        np.array([], dtype=str),
        np.array([], dtype=object),
        [],
    ],
    ids=lambda a: f"{getattr(a, 'dtype', 'list')}{getattr(a, 'shape', '')}",
)
def test_empty_batches_give_empty_results(array):
    for al in (AL, ipallow.Allowlist()):
        got_in = al.contains_many(array)
        got_idx = al.lookup_many(array)
        assert got_in.shape == (0,) and got_in.dtype == np.bool_
        assert got_idx.shape == (0,) and got_idx.dtype == np.int32


def test_results_are_fresh_arrays():
    batch = np.array([0x0A000001, 3], dtype=np.uint32)
    first = AL.lookup_many(batch)
    second = AL.lookup_many(batch)
    assert first is not second and not np.shares_memory(first, second)
    first[:] = 99
    assert AL.lookup_many(batch).tolist() == second.tolist() == [3, 0]
    m1, m2 = AL.contains_many(batch), AL.contains_many(batch)
    m1[:] = False
    assert m2.tolist() == [True, True] and AL.contains_many(batch).tolist() == [True, True]
    assert batch.tolist() == [0x0A000001, 3], "the input is not modified"


# ---------------------------------------------------------------------------------------------
# lists / object arrays


def test_mixed_object_list_matches_scalar_path():
    items = [
        "10.1.2.3",
        IP6("::1"),
        b"\x0a\x00\x00\x05",
        netaddr.IPAddress("::ffff:10.0.0.9"),
        2**32 + 1,
        0x0A000001,
        IP4("255.255.255.255"),
        "::ffff:9.9.9.9",
        ipaddress.ip_address("2001:db8::7").packed,
        netaddr.IPAddress("11.0.0.0"),
    ]
    scalar_in = [x in AL for x in items]
    scalar_idx = [-1 if AL.lookup(x) is None else AL.lookup(x).index for x in items]
    assert scalar_in == [True, True, True, True, False, True, True, True, True, False]
    for batch in (items, np.array(items, dtype=object)):
        assert AL.contains_many(batch).tolist() == scalar_in
        assert AL.lookup_many(batch).tolist() == scalar_idx


@pytest.mark.parametrize(
    "bad,exc",
    [
        (None, TypeError),
        (1.5, TypeError),
        (True, TypeError),
        (N4("10.0.0.0/8"), TypeError),
        ([1], TypeError),
        (-1, ValueError),
        (2**128, ValueError),
        (b"\x01\x02\x03", ValueError),
    ],
    ids=repr,
)
def test_bad_element_inside_a_list(bad, exc):
    for batch in (["10.0.0.1", bad], [bad], np.array(["10.0.0.1", bad], dtype=object)):
        with pytest.raises(exc):
            AL.contains_many(batch)
        with pytest.raises(exc):
            AL.lookup_many(batch)


def test_list_of_ints_matches_scalar_path():
    ints = [0, 200, 0x0A000001, 2**32 - 1, 2**32, 2**64 + 1, int(IP6("2001:db8::1")), int(IP6("::ffff:9.1.1.1"))]
    want = [AL.lookup(i).index if AL.lookup(i) else -1 for i in ints]
    assert AL.lookup_many(ints).tolist() == want
    assert AL.contains_many(ints).tolist() == [w >= 0 for w in want]


@pytest.mark.parametrize("size", [1, 127, 128, 129, 511, 512, 513, 1500])
def test_long_mixed_lists_match_the_scalar_path_and_name_the_first_bad_item(size):
    """Lists are read GATHER (512) items at a time and walked CHUNK (128) at a time:
    every boundary, every item form, and the first bad item whichever phase finds it."""
    rnd = np.random.default_rng(size)
    forms = [lambda v: str(IP4(v)), lambda v: v, lambda v: IP4(v).packed, lambda v: IP4(v),
             lambda v: f"::ffff:{IP4(v)}", lambda v: str(IP6(v << 64 | 7))]
    values = rnd.integers(0, 2**32, size).tolist()
    items = [forms[int(rnd.integers(len(forms)))](v) for v in values]
    assert AL.lookup_many(items).tolist() == [AL._registration_index(x) for x in items]
    for bad_text_at, bad_object_at in ((size - 1, None), (None, size - 1), (size // 2, size - 1),
                                       (size - 1, size // 2)):
        batch = list(items)
        if bad_object_at is not None:
            batch[bad_object_at] = None
        if bad_text_at is not None:
            batch[bad_text_at] = "10.0.0.256"
        first = min(p for p in (bad_text_at, bad_object_at) if p is not None)
        with pytest.raises((TypeError, ValueError)) as info:
            AL.contains_many(batch)
        assert info.value.__notes__ == [f"at position {first} of the batch"]
        assert isinstance(info.value, TypeError) == (first == bad_object_at and first != bad_text_at)


def test_a_list_changed_by_another_thread_during_a_batch_is_safe():
    """The GIL is released while a list's texts are parsed and walked: only copies are
    read then, so another thread replacing items meanwhile cannot break a batch."""
    import threading
    items = [f"10.{i % 256}.{i // 256 % 256}.1" for i in range(20_000)]
    stop = threading.Event()

    def mutate():
        i = 0
        while not stop.is_set():
            items[i % len(items)] = "10.255.0.1" if i % 2 else f"10.0.{i % 256}.7"   # new objects, all inside
            i += 1

    writer = threading.Thread(target=mutate)
    writer.start()
    try:
        for _ in range(50):
            assert AL.contains_many(items).all()        # whichever value each slot held then
    finally:
        stop.set()
        writer.join()


def test_a_list_that_shrinks_during_a_batch_is_reported():
    """The list is read in pieces (the GIL is released between them, and an item's
    conversion may run Python code): a list that shrinks meanwhile is refused in words,
    as Python refuses a dict changed during iteration, never read past its end."""
    items: list = []

    class Shrinking(IP4):
        def __int__(self):
            del items[600:]
            return super().__int__()

    items.extend(["10.0.0.1"] * 10 + [Shrinking("10.0.0.2")] + ["10.0.0.3"] * 2000)
    with pytest.raises(RuntimeError, match="changed size during the batch \\(from 2,011 to 600 items\\)"):
        AL.contains_many(items)


def test_an_earlier_bad_text_wins_over_a_later_item_whose_conversion_raises_anything():
    class Boom(IP4):
        def __int__(self):
            raise KeyError("converter trouble")

    with pytest.raises(ipallow.AddressError) as info:
        AL.contains_many(["10.0.0.1", "10.0.0.300", Boom("10.0.0.2")])
    assert info.value.__notes__ == ["at position 1 of the batch"]
    with pytest.raises(KeyError) as info:
        AL.contains_many(["10.0.0.1", Boom("10.0.0.2"), "10.0.0.300"])
    assert info.value.__notes__ == ["at position 1 of the batch"]
