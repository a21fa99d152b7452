"""Address columns -> the core's batch lookups: numpy, Arrow and pandas adapters.

Below the Allowlist facade: these functions take the compiled core index (an
``ipallow._trie.Index``; an Allowlist is one) and, for registrations, its
``prefix_reg`` array.  :meth:`ipallow.Allowlist.contains_many` and
:mod:`ipallow.dataframe` (which documents the accepted columns and the four
row cases) both call them.

pandas and pyarrow are optional: each is imported only when a column of its
kind is handed over.
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import Any, NamedTuple

import numpy as np

from ipallow import _trie
from ipallow.errors import AddressError

__all__ = ["ColumnMatch", "BadRowError", "NO_MATCH", "UNPARSEABLE", "NULL", "prefix_codes",
           "registration_codes", "contains_many", "lookup_many", "raise_first_bad"]

#: :func:`match_codes` values below zero (a registration index is >= 0).
NO_MATCH = -1
UNPARSEABLE = -2
NULL = -3

# The core's codes for the same cases (Index._match_text*): they must agree.
assert (_trie.NO_MATCH, _trie.UNPARSEABLE, _trie.MISSING) == (NO_MATCH, UNPARSEABLE, NULL)

class ColumnMatch(NamedTuple):
    """The answer for a column, with the rows it is an answer for.

    ``values``: numpy ``bool`` (:func:`contains_many`) or ``int32`` registration
    indices (:func:`lookup_many`); ``False`` / ``-1`` on invalid rows.
    ``valid``: numpy ``bool``, False where the row is null or unparseable.
    """

    values: np.ndarray
    valid: np.ndarray


class BadRowError(ValueError):
    """A null or unparseable address in a column classified with ``strict=True``.

    Attributes:
        position: 0-based row position (within ``partition`` for Dask).
        value: the row's value (None for a null).
        reason: why it is not an address (``"null"`` or the parser's message).
        label: the pandas index label of the row, or None.
        partition: the Dask partition number, or None.
        column: the column name, or None.
        nulls, unparseable: how many rows of each kind the column (partition) has.
    """

    def __init__(self, position: int, value: Any, reason: str, label: Any = None,
                 partition: int | None = None, column: Any = None, nulls: int = 0,
                 unparseable: int = 0) -> None:
        self.position = position
        self.value = value
        self.reason = reason
        self.label = label
        self.partition = partition
        self.column = column
        self.nulls = nulls
        self.unparseable = unparseable
        where = f"row {position}"
        if label is not None and label != position:
            where += f" (index {label!r})"
        if partition is not None:
            where += f" of partition {partition}"
        if column is not None:
            where += f" of column {column!r}"
        total = nulls + unparseable
        tail = (f"; {total} bad row{'s' if total != 1 else ''} in all "
                f"({nulls} null, {unparseable} unparseable)") if total else ""
        super().__init__(f"{where}: {reason}{tail}")

    def __reduce__(self):  # Dask sends it from the worker to the client
        return (type(self), (self.position, self.value, self.reason, self.label, self.partition,
                             self.column, self.nulls, self.unparseable))


def contains_many(column: Any, index: Any, *, strict: bool = False) -> ColumnMatch:
    """``(allowed, valid)`` of every row (see :func:`ipallow.dataframe.contains_many`)."""
    codes = prefix_codes(column, index)
    valid = codes >= NO_MATCH
    if strict:
        raise_first_bad(column, codes, valid)
    return ColumnMatch(codes >= 0, valid)


def lookup_many(column: Any, index: Any, prefix_reg: np.ndarray, *, strict: bool = False) -> ColumnMatch:
    """``(registrations, valid)`` of every row (see :func:`ipallow.dataframe.lookup_many`)."""
    codes = prefix_codes(column, index)
    valid = codes >= NO_MATCH
    if strict:
        raise_first_bad(column, codes, valid)
    return ColumnMatch(registration_codes(index, prefix_reg, codes, invalid_as_no_match=True), valid)


# ---------------------------------------------------------------------------
# Column -> prefix codes (the core's: prefix index, -1, -2, -3)
# ---------------------------------------------------------------------------

def prefix_codes(column: Any, index: Any) -> np.ndarray:
    module = type(column).__module__
    if module.startswith("pandas"):
        pd = pandas_or_none()
        if pd is not None and isinstance(column, (pd.Series, pd.Index)):
            return _pandas_codes(column, index)
    if module.startswith("pyarrow"):
        import pyarrow as pa
        if isinstance(column, pa.ChunkedArray):
            return _arrow_chunked_codes(column, index)
        if isinstance(column, pa.Array):
            return _arrow_codes(column, index)
    if module.startswith("dask"):
        raise TypeError("a Dask collection: use ipallow.dataframe.classify, or call this "
                        "function inside map_partitions")
    if isinstance(column, np.ndarray):
        return _numpy_codes(column, index)
    if isinstance(column, (str, bytes)):
        raise TypeError(f"expected a column of addresses, not a single {type(column).__name__}")
    if hasattr(column, "__arrow_c_stream__") or hasattr(column, "__arrow_c_array__"):
        import pyarrow as pa      # polars and other Arrow-speaking columns
        if hasattr(column, "__arrow_c_stream__"):
            return _arrow_chunked_codes(pa.chunked_array(column), index)
        return _arrow_codes(pa.array(column), index)
    if isinstance(column, (list, tuple)):
        return _object_codes(column, index)
    try:
        items = list(column)
    except TypeError:
        raise TypeError(f"expected a column of addresses, got {type(column).__name__}") from None
    return _object_codes(items, index)


def pandas_or_none() -> Any:
    if "pandas" not in sys.modules:
        return None
    import pandas
    return pandas


def _pandas_codes(series: Any, index: Any) -> np.ndarray:
    pd = sys.modules["pandas"]
    dtype = series.dtype
    array = series.array
    if isinstance(dtype, pd.CategoricalDtype):
        categories = prefix_codes(dtype.categories, index) if len(dtype.categories) else \
            np.zeros(0, np.int32)
        return _take_codes(categories, np.asarray(array.codes), None)
    if isinstance(dtype, pd.ArrowDtype) or getattr(dtype, "storage", None) in ("pyarrow", "pyarrow_numpy"):
        data = array.__arrow_array__()
        import pyarrow as pa
        if isinstance(data, pa.ChunkedArray):
            return _arrow_chunked_codes(data, index)
        return _arrow_codes(data, index)
    if isinstance(dtype, pd.StringDtype) or dtype == object:
        return _object_codes(series.to_numpy(dtype=object, na_value=None), index)
    if dtype.kind in "iu":
        if isinstance(array, pd.api.extensions.ExtensionArray):     # nullable Int64 / UInt32 ...
            nulls = np.asarray(series.isna())
            return _int_codes(series.to_numpy(dtype=np.int64 if dtype.kind == "i" else np.uint64,
                                              na_value=0), nulls, index)
        return _int_codes(series.to_numpy(), None, index)
    raise TypeError(f"unsupported column dtype {dtype}: expected address text (str, bytes), "
                    f"dictionary-encoded text, or integer IPv4 addresses")


def _arrow_chunked_codes(chunked: Any, index: Any) -> np.ndarray:
    if chunked.num_chunks == 1:
        return _arrow_codes(chunked.chunk(0), index)
    out = np.empty(len(chunked), dtype=np.int32)
    position = 0
    for chunk in chunked.chunks:
        size = len(chunk)
        if size:
            out[position:position + size] = _arrow_codes(chunk, index)
            position += size
    return out


def _arrow_codes(arr: Any, index: Any) -> np.ndarray:
    import pyarrow as pa
    t = arr.type
    if isinstance(t, pa.ExtensionType):
        return _arrow_codes(arr.storage, index)
    if pa.types.is_string(t) or pa.types.is_binary(t):
        large = False
    elif pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        large = True
    elif _is_view(pa, t):
        target = pa.large_string() if pa.types.is_string_view(t) else pa.large_binary()
        return _arrow_codes(arr.cast(target), index)
    elif pa.types.is_dictionary(t):
        values = _arrow_codes(arr.dictionary, index)
        indices = arr.indices
        nulls = indices.is_null().to_numpy(zero_copy_only=False) if indices.null_count else None
        raw = indices.fill_null(0) if nulls is not None else indices
        return _take_codes(values, raw.to_numpy(zero_copy_only=False), nulls)
    elif pa.types.is_null(t):
        return np.full(len(arr), NULL, dtype=np.int32)
    elif pa.types.is_integer(t):
        nulls = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
        raw = arr.fill_null(0) if nulls is not None else arr
        return _int_codes(raw.to_numpy(zero_copy_only=False), nulls, index)
    else:
        raise TypeError(f"unsupported Arrow type {t}: expected string, large_string, binary, "
                        f"a dictionary of them, or integer IPv4 addresses")
    validity, offsets, data = arr.buffers()[:3]
    if not arr.null_count:
        validity = None
    return index._match_text_arrow(offsets, data, validity, arr.offset, len(arr), large=large)


def _is_view(pa: Any, t: Any) -> bool:
    """string_view / binary_view (pyarrow >= 16)."""
    return bool(getattr(pa.types, "is_string_view", None) and
                (pa.types.is_string_view(t) or pa.types.is_binary_view(t)))


def _take_codes(values: np.ndarray, indices: np.ndarray, nulls: np.ndarray | None) -> np.ndarray:
    """Codes of dictionary-encoded rows: ``values[indices]``, NULL where the index is null (or -1)."""
    indices = np.asarray(indices)
    missing = indices < 0 if indices.dtype.kind == "i" else np.zeros(indices.shape, dtype=bool)
    if nulls is not None:
        missing |= nulls
    if len(values) == 0:
        if not missing.all():
            raise ValueError("dictionary indices point into an empty dictionary")
        return np.full(indices.shape, NULL, dtype=np.int32)
    safe = np.where(missing, 0, indices) if missing.any() else indices
    out = values.take(safe)            # raises IndexError for an index past the dictionary
    out[missing] = NULL
    return out


def _numpy_codes(arr: np.ndarray, index: Any) -> np.ndarray:
    kind = arr.dtype.kind
    if arr.ndim != 1 and kind in "USOiu":
        if kind in "iu" and arr.ndim == 2:
            return index._match_many(arr)     # (n, 2) uint64 IPv6 / (n, 4|16) uint8 packed rows
        raise ValueError(f"expected a 1-D column, got shape {arr.shape}")
    if kind in "US":
        return index._match_text_fixed(arr)       # a NUL inside the text makes the row unparseable
    if kind == "O":
        return _object_codes(arr, index)
    if kind in "iu":
        return _int_codes(arr, None, index)
    if kind == "V":
        return index._match_many(arr)         # V4 / V16 packed addresses
    raise TypeError(f"unsupported array dtype {arr.dtype}: expected address text (U, S, object) "
                    f"or integer IPv4 addresses")


def _int_codes(values: np.ndarray, nulls: np.ndarray | None, index: Any) -> np.ndarray:
    """Integer IPv4 addresses; values outside [0, 2**32) are unparseable rows."""
    values = np.asarray(values)
    bad = np.zeros(values.shape, dtype=bool)
    if values.dtype.kind == "i":
        bad |= values < 0
    if values.dtype.itemsize > 4:
        bad |= values > 0xFFFFFFFF
    if nulls is not None:
        bad |= nulls
    clean = np.where(bad, 0, values).astype(np.uint32) if bad.any() else values.astype(np.uint32)
    codes = index._match_many(clean)
    if bad.any():
        codes[bad] = UNPARSEABLE
        if nulls is not None:
            codes[nulls] = NULL
    return codes


def _object_codes(items: Any, index: Any) -> np.ndarray:
    """Codes for Python objects: text in the core; null-likes and address objects afterwards."""
    seq = items.tolist() if isinstance(items, np.ndarray) else items
    codes = index._match_text(seq if isinstance(seq, list) else list(seq))
    for i in np.flatnonzero(codes == UNPARSEABLE).tolist():
        item = seq[i]
        if isinstance(item, (str, bytes)):
            continue                       # text the parser refused: stays unparseable
        if is_null(item):
            codes[i] = NULL
            continue
        try:                               # ints, ipaddress / netaddr addresses, ...
            codes[i] = index._match_index(item)
        except (TypeError, ValueError):
            pass
    return codes


def is_null(item: Any) -> bool:
    if item is None:
        return True
    if isinstance(item, (float, np.floating)):
        return bool(item != item)
    pd = sys.modules.get("pandas")
    if pd is not None and (item is pd.NA or item is pd.NaT):
        return True
    if isinstance(item, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(item))
    return False


def registration_codes(index: Any, prefix_reg: np.ndarray, codes: np.ndarray,
                       invalid_as_no_match: bool = False) -> np.ndarray:
    """Prefix codes -> registration codes: one ``take`` through a table ending in the special codes.

    The table is ``prefix_reg`` (the registration of each prefix of ``index``) followed
    by ``[NULL, UNPARSEABLE, NO_MATCH]`` (or three ``NO_MATCH`` with
    ``invalid_as_no_match``), so the negative codes index it from the end.  Built once
    per index (which is immutable) and kept while the index lives.
    """
    with _LOCK:
        tables = _TABLES.get(index)
        table = tables.get(invalid_as_no_match) if tables else None
    if table is None:
        tail = [NO_MATCH] * 3 if invalid_as_no_match else [NULL, UNPARSEABLE, NO_MATCH]
        table = np.concatenate([np.asarray(prefix_reg, dtype=np.int32), np.array(tail, dtype=np.int32)])
        table.flags.writeable = False
        with _LOCK:
            _TABLES.setdefault(index, {})[invalid_as_no_match] = table
    return table.take(codes)


_LOCK = threading.Lock()
_TABLES: "weakref.WeakKeyDictionary[Any, dict[bool, np.ndarray]]" = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------
# Errors for strict=True
# ---------------------------------------------------------------------------

def raise_first_bad(column: Any, codes: np.ndarray, valid: np.ndarray, *,
                     partition: int | None = None, name: Any = None) -> None:
    if valid.all():
        return
    position = int(np.argmin(valid))
    value, label = _row(column, position)
    if codes[position] == NULL:
        reason = "null (missing) address"
    else:
        reason = _why_unparseable(value)
    raise BadRowError(position, value, reason, label, partition, name,
                      int(np.count_nonzero(codes == NULL)),
                      int(np.count_nonzero(codes == UNPARSEABLE)))


def _row(column: Any, position: int) -> tuple[Any, Any]:
    """(value, index label) of row ``position`` of any supported column."""
    pd = pandas_or_none()
    if pd is not None and isinstance(column, pd.Series):
        value = column.iloc[position]
        label = column.index[position]
        label = label.item() if isinstance(label, np.generic) else label
        return _plain(value), label
    if pd is not None and isinstance(column, pd.Index):
        return _plain(column[position]), None
    if type(column).__module__.startswith("pyarrow"):
        return column[position].as_py(), None
    if hasattr(column, "__getitem__") and not hasattr(column, "__arrow_c_stream__"):
        return _plain(column[position]), None
    return None, None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if is_null(value):
        return None
    return value


def _why_unparseable(value: Any) -> str:
    if isinstance(value, bytes):
        text = value.decode("latin-1")
    elif isinstance(value, str):
        text = value
    else:
        try:
            _trie.address_key(value)
        except (TypeError, ValueError) as exc:
            return str(exc)
        if isinstance(value, int):
            return f"integer {value} is not an IPv4 address (integer columns hold IPv4 as uint32)"
        return f"not an address: {value!r}"
    try:
        _trie.parse_address(text)
    except (AddressError, ValueError) as exc:
        return str(exc)
    if "\x00" in text:
        return f"invalid IP address {text!r}: NUL character inside the text"
    return f"invalid IP address {text!r}"
