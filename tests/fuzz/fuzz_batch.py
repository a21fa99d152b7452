"""The batch entry points against the scalar path: ``contains_many`` / ``lookup_many`` on arrays
built from the fuzz bytes in every documented form (uint32, (n, 2) uint64, (n, 4) / (n, 16)
uint8, S4 / S16 / V4 / V16, U and S text, other integer dtypes, lists and object arrays of mixed
items; strided, read-only, with ``out=``) answer element by element what ``in`` / ``lookup``
answer, and fail exactly when an element fails, with the first bad element's error.

Input layout: byte 0 picks the form, byte 1 the variations, the rest is the payload.
"""

from __future__ import annotations

import ipaddress

import numpy as np

from fuzz_support import ALLOWLIST, main, outcome, text_of



def words(payload: bytes, dtype: str, width: int) -> np.ndarray:
    usable = len(payload) // width * width
    return np.frombuffer(payload[:usable], dtype=dtype).copy()


def as_ipv4_ints(arr: np.ndarray):
    """A 1-D integer array is IPv4: every value must be below 2**32."""
    values = [int(v) for v in arr]
    if any(not 0 <= v < 1 << 32 for v in values):
        return ValueError
    return values


def packed_rows(arr: np.ndarray, width: int) -> list[bytes]:
    return [bytes(row) for row in np.ascontiguousarray(arr).view(np.uint8).reshape(-1, width)]


def form_u32(payload):
    arr = words(payload, "<u4" if len(payload) % 2 else ">u4", 4)
    return arr, as_ipv4_ints(arr)


def form_u64x2(payload):
    arr = words(payload, "<u8", 16).reshape(-1, 2)
    return arr, [((int(h) << 64) | int(lo)).to_bytes(16, "big") for h, lo in arr]


def form_uint8_rows(payload):
    width = 16 if len(payload) % 2 else 4
    arr = words(payload, "u1", width).reshape(-1, width)
    return arr, [bytes(row) for row in arr]


def form_packed_sv(payload):
    width = 16 if len(payload) % 2 else 4
    kind = "S" if len(payload) % 3 else "V"
    arr = words(payload, f"{kind}{width}", width)
    return arr, packed_rows(arr, width)


ADDRESS_CHARS = frozenset(b"0123456789abcdefABCDEF.:")


def refused_as_text(arr, items) -> bool:
    """Documented (README, docs/batches.md): an S4 / S16 array is refused (ValueError) when any row,
    without its trailing NULs, is address text, or when every row is printable ASCII or empty --
    numpy gives text and packed bytes the same dtype, so an array that can be text is never guessed."""
    if not (isinstance(arr, np.ndarray) and arr.dtype.kind == "S" and arr.dtype.itemsize in (4, 16)
            and len(items) > 0):
        return False
    rows = [bytes(r).rstrip(b"\0") for r in items]

    def address_text(row: bytes) -> bool:
        if not row or not set(row) <= ADDRESS_CHARS:
            return False
        try:
            ipaddress.ip_address(row.decode("ascii"))
        except ValueError:
            return False
        return True

    return any(map(address_text, rows)) or all(all(0x20 <= b <= 0x7E for b in row) for row in rows)


def form_other_ints(payload):
    choice = len(payload) % 4
    if choice == 0:
        return (arr := words(payload, "<i8", 8)), as_ipv4_ints(arr)
    if choice == 1:
        return (arr := words(payload, "<u2", 2)), as_ipv4_ints(arr)
    if choice == 2:
        arr = words(payload, "<i8", 16).reshape(-1, 2)
        if (arr < 0).any():
            return arr, ValueError
        return arr, [((int(h) << 64) | int(lo)).to_bytes(16, "big") for h, lo in arr]
    arr = words(payload, "i1", 4).reshape(-1, 4)
    if (arr < 0).any():
        return arr, ValueError
    return arr, [bytes(row.astype(np.uint8)) for row in arr]


def form_unicode(payload):
    arr = np.array(text_of(payload).split("\n"), dtype=str)
    return arr, [str(item) for item in arr]       # numpy drops trailing NULs: so does the batch


def form_bytes_text(payload):
    items = payload.split(b"\n")
    width = max(len(item) for item in items) or 1
    if width in (4, 16):
        width += 1                    # S4 / S16 are packed addresses, not text
    arr = np.array(items, dtype=f"S{width}")
    return arr, [bytes(item).decode("latin-1") for item in arr]


def objects(payload: bytes) -> list:
    items, i = [], 0
    while i < len(payload):
        tag, size = payload[i] % 8, (payload[i] >> 3) % 18
        chunk = payload[i + 1:i + 1 + size]
        i += 1 + size
        if tag == 0:
            items.append(text_of(chunk))
        elif tag == 1:
            items.append(int.from_bytes(chunk[:4], "big"))
        elif tag == 2:
            items.append(int.from_bytes(chunk, "big"))
        elif tag == 3:
            items.append(-int.from_bytes(chunk, "big") - 1)
        elif tag == 4:
            items.append(bytes(chunk))
        elif tag == 5:
            items.append(ipaddress.ip_address(int.from_bytes(chunk, "big") & ((1 << 128) - 1)))
        elif tag == 6:
            items.append([None, True, 1.5, ipaddress.ip_network("10.0.0.0/8"), b"", ""][size % 6])
        else:
            items.append(np.str_(text_of(chunk)) if size % 2 else np.uint32(size))
    return items


def form_list(payload):
    items = objects(payload)
    return items, list(items)


def form_object_array(payload):
    items = objects(payload)
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr, list(items)


FORMS = [form_u32, form_u64x2, form_uint8_rows, form_packed_sv, form_other_ints, form_unicode,
         form_bytes_text, form_list, form_object_array]


def scalar_answers(items):
    """Registration index per item, or the first item's exception (what the batch must raise)."""
    answers = []
    for item in items:
        kind, value = outcome(ALLOWLIST._registration_index, item)
        if kind == "raised":
            return value
        answers.append(value)
    return answers


def check(batch, expected, items, method: str) -> None:
    kind, got = batch
    if isinstance(expected, Exception):
        assert kind == "raised", f"{method} answered {got!r} though element scalar lookup raised {expected!r}"
        assert type(got) is type(expected) and str(got) == str(expected), (method, got, expected)
        return
    assert kind == "ok", f"{method} raised {got!r}; every element is fine alone ({items!r})"
    if method == "contains_many":
        assert got.dtype == np.bool_ and got.tolist() == [a >= 0 for a in expected], (items, got)
    else:
        assert got.dtype == np.int32 and got.tolist() == expected, (items, got, expected)


def expect_value_error(arr) -> None:
    for method in (ALLOWLIST.contains_many, ALLOWLIST.lookup_many):
        kind, exc = outcome(method, arr)
        assert kind == "raised" and type(exc) is ValueError, (arr, exc)


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    arr, items = FORMS[data[0] % len(FORMS)](data[2:])
    variation = data[1]
    if items is ValueError:         # an integer out of range for its form
        return expect_value_error(arr)
    if variation & 1 and len(items) > 1:     # strided: a non-contiguous view (rows for 2-D)
        arr, items = arr[::2], items[::2]
    if variation & 2 and isinstance(arr, np.ndarray):
        arr.flags.writeable = False
    if refused_as_text(arr, items):
        return expect_value_error(arr)
    expected = scalar_answers(items)
    for method in ("contains_many", "lookup_many"):
        out = None
        if variation & 4 and not isinstance(expected, Exception):
            out = np.full(len(items), 7 if method == "lookup_many" else True,
                          dtype=np.int32 if method == "lookup_many" else np.bool_)
        result = outcome(getattr(ALLOWLIST, method), arr, out)
        check(result, expected, items, method)
        if out is not None:
            assert result[1] is out, method


if __name__ == "__main__":
    main(test_one_input)
