"""The public column and DataFrame functions of :mod:`ipallow.dataframe` (documented there)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from ipallow import _columns
from ipallow._columns import (NO_MATCH, ColumnMatch, pandas_or_none as _pandas_or_none,
                              prefix_codes as _prefix_codes, raise_first_bad as _raise_first_bad)
from ipallow.allowlist import Allowlist, registration_label
from ipallow.dataframe._dask import Shipment, _as_allowlist, _dask_source, _Installed, _resolve


# ---------------------------------------------------------------------------
# Column functions
# ---------------------------------------------------------------------------

def match_codes(column: Any, allowlist: Any) -> np.ndarray:
    """One int32 code per row: the registration index, or ``NO_MATCH`` / ``UNPARSEABLE`` / ``NULL``.

    ``>= 0``: the registration of the longest matching prefix (``allowlist[i]``);
    ``NO_MATCH`` (-1): a valid address no registration covers; ``UNPARSEABLE``
    (-2); ``NULL`` (-3).  Never raises for a bad row.

    Arguments:
        column: see the module documentation for the accepted columns.
        allowlist: an :class:`~ipallow.Allowlist`; the path of a snapshot file
            (mapped once per process and cached); or, inside a Dask task, the
            :class:`Shipment` from :func:`ship` (the worker's installed copy).

    Raises:
        TypeError: a column of no supported type or dtype (float, bool, ...).

    >>> match_codes(["10.1.2.3", "8.8.8.8", "10.1.2", None], Allowlist(["10.0.0.0/8"])).tolist()
    [0, -1, -2, -3]
    """
    al = _as_allowlist(allowlist)
    return _columns.registration_codes(al, al.compiled.prefix_reg, _prefix_codes(column, al))


def contains_many(column: Any, allowlist: Any, *, strict: bool = False) -> ColumnMatch:
    """Membership of every row of an address column: ``(allowed, valid)`` numpy bool arrays.

    ``allowed`` is True where a registration covers the row's address; it is
    False for null and unparseable rows, which ``valid`` marks False.  Agrees
    with :meth:`Allowlist.contains_many` on every valid row (``::ffff:a.b.c.d``
    is looked up as ``a.b.c.d``; an IPv4 address never matches an IPv6 prefix).

    Arguments:
        column: a pyarrow (chunked) string / binary / dictionary / integer array,
            a pandas Series or Index, a numpy ``U`` / ``S`` / object / integer
            array, or a list.  ``bytes`` and ``S`` rows are ASCII address text
            (not packed addresses, unlike :meth:`Allowlist.contains_many`).
        allowlist: an :class:`~ipallow.Allowlist` or the path of a snapshot file.
        strict: raise :class:`BadRowError` for the first null or unparseable row.

    Raises:
        BadRowError: ``strict=True`` and a bad row (a ``ValueError``).
        TypeError: a column of no supported type or dtype.

    >>> allowed, valid = contains_many(["10.1.2.3", "8.8.8.8", None], Allowlist(["10.0.0.0/8"]))
    >>> allowed.tolist(), valid.tolist()
    ([True, False, False], [True, True, False])
    """
    return _columns.contains_many(column, _as_allowlist(allowlist), strict=strict)


def lookup_many(column: Any, allowlist: Any, *, strict: bool = False) -> ColumnMatch:
    """Registration index of the longest match of every row: ``(registrations, valid)``.

    ``registrations`` is int32, -1 where no registration covers the address and
    on invalid (null or unparseable) rows, which ``valid`` marks False.  Takes
    the same columns as :func:`contains_many`; agrees with
    :meth:`Allowlist.lookup_many` on every valid row.

    Raises:
        BadRowError: ``strict=True`` and a null or unparseable row.
        TypeError: a column of no supported type or dtype.

    >>> al = Allowlist(["10.0.0.0/8", "10.1.0.0/16"])
    >>> lookup_many(["10.1.2.3", "10.2.0.1", "bad"], al).values.tolist()
    [1, 0, -1]
    """
    al = _as_allowlist(allowlist)
    return _columns.lookup_many(column, al, al.compiled.prefix_reg, strict=strict)


def _is_allowlist_like(value: Any) -> bool:
    return isinstance(value, (Allowlist, str, os.PathLike, _Installed, Shipment))


def registration_labels(registrations: Any, allowlist: Any) -> list:
    """Short ids for registration indices, e.g. to label a summary grouped by ``registration``.

    Takes its arguments in the order of :func:`classify` and
    :func:`lookup_many`: the values first, then the allowlist (an
    :class:`~ipallow.Allowlist` or a snapshot path).  The id is the
    registration's ``id`` (a registry record, or an ``id`` /
    ``registration_id`` / ``name`` data field), else ``"#index"``; None for -1.
    Meant for the few distinct indices of a summary, not for every row.

    The old order ``registration_labels(allowlist, registrations)`` still
    works, with a :class:`DeprecationWarning` (an allowlist is never a
    column of indices, so the two cannot be confused).

    >>> registration_labels([0, 1, -1], Allowlist([("10.0.0.0/8", {"id": "PTA-7"}), "2001:db8::/32"]))
    ['PTA-7', '#1', None]
    """
    if _is_allowlist_like(registrations) and not _is_allowlist_like(allowlist):
        warnings.warn("registration_labels(allowlist, registrations) is deprecated: pass "
                      "registration_labels(registrations, allowlist), the order of classify() "
                      "and lookup_many()", DeprecationWarning, stacklevel=2)
        registrations, allowlist = allowlist, registrations
    al = _as_allowlist(allowlist)
    data = al.compiled.data
    labels = []
    for value in np.asarray(registrations).reshape(-1).tolist():
        index = int(value)
        if index < 0:
            labels.append(None)
        else:
            labels.append(registration_label(data[index] if data is not None else None, index)
                          if index < len(al) else _raise_index(index, len(al)))
    return labels


# ---------------------------------------------------------------------------
# DataFrames: pandas and Dask
# ---------------------------------------------------------------------------

def classify(df: Any, column: Any, allowlist: Any, *, registration: bool | str = True,
             valid: bool | str = True, strict: bool = False, allowed: str = "allowed",
             client: Any = None) -> Any:
    """``df`` with ``allowed``, ``registration`` and ``valid`` columns for its address ``column``.

    ``allowed`` (bool): a registration covers the address.  ``registration``
    (int32): the index of the longest matching registration, -1 when not
    allowed (``registration_labels`` turns indices into ids).  ``valid`` (bool):
    False where the address is null or unparseable -- such rows are
    ``allowed=False`` and ``registration=-1``, so ``~allowed & valid`` is the
    traffic from valid addresses no registration covers.  Index, row order and
    the other columns are kept; existing columns of the output names are
    replaced (as ``DataFrame.assign`` does).  The input frame is not modified.

    Arguments:
        df: a pandas DataFrame, or a ``dask.dataframe`` DataFrame (the result is
            then lazy, one task per partition).
        column: the name of the address column (any column type that
            :func:`contains_many` takes).
        allowlist: an :class:`~ipallow.Allowlist`; the path of a snapshot file
            (``allowlist.save(path)``) readable by every worker; or, for Dask,
            the :class:`Shipment` :func:`ship` returned.  See the module
            documentation for how each reaches the workers (once per worker
            process).
        registration, valid: True for the default column name, a string for
            another name, False to leave the column out.
        allowed: the name of the ``allowed`` column.
        strict: raise :class:`BadRowError` for a null or unparseable address
            instead of marking it invalid (for Dask: when computed, naming the
            partition; with several bad partitions, whichever fails first).
        client: the ``dask.distributed`` Client to ship the allowlist with
            (default: the current client, if any).

    Raises:
        KeyError: ``column`` is not a column of ``df``.
        ValueError: clashing output column names.
        BadRowError: ``strict=True`` and a bad row.
        TypeError: ``df`` is neither a pandas nor a Dask DataFrame; an
            unsupported column dtype; ``allowlist`` of no supported kind.

    >>> import pandas as pd
    >>> out = classify(pd.DataFrame({"src": ["10.1.2.3", "8.8.8.8", None]}), "src", Allowlist(["10.0.0.0/8"]))
    >>> out[["allowed", "registration", "valid"]].to_dict("list")
    {'allowed': [True, False, False], 'registration': [0, -1, -1], 'valid': [True, True, False]}
    """
    names = _output_names(column, allowed, registration, valid)
    if _is_dask_frame(df):
        return _classify_dask(df, column, allowlist, names, strict, client)
    pd = _pandas_or_none()
    if pd is None or not isinstance(df, pd.DataFrame):
        raise TypeError(f"classify takes a pandas or dask DataFrame, not {type(df).__name__}")
    if column not in df.columns:
        raise KeyError(f"no column {column!r} in the DataFrame")
    return _classify_frame(df, column, _as_allowlist(allowlist), names, strict, None)


def _output_names(column: Any, allowed: Any, registration: Any, valid: Any) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for kind, given, default in (("allowed", allowed, "allowed"),
                                 ("registration", registration, "registration"),
                                 ("valid", valid, "valid")):
        if given is True:
            given = default
        if given is False or given is None:
            if kind == "allowed":
                raise ValueError("the allowed column cannot be left out")
            continue
        if not isinstance(given, str) or not given:
            raise TypeError(f"{kind} must be True, False or a column name, not {given!r}")
        names[kind] = given
    chosen = list(names.values())
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"output column names clash: {chosen}")
    if column in chosen:
        raise ValueError(f"an output column would replace the address column {column!r}")
    return names


def _classify_frame(df: Any, column: Any, al: Allowlist, names: dict[str, Any], strict: bool,
                    partition: int | None) -> Any:
    series = df[column]
    if series.ndim != 1:
        raise ValueError(f"column name {column!r} is not unique in the DataFrame")
    codes = _prefix_codes(series, al)
    ok = codes >= NO_MATCH
    if strict:
        _raise_first_bad(series, codes, ok, partition=partition, name=column)
    out = df.copy(deep=False)
    out[names["allowed"]] = codes >= 0
    if "registration" in names:
        out[names["registration"]] = _columns.registration_codes(al, al.compiled.prefix_reg, codes, invalid_as_no_match=True)
    if "valid" in names:
        out[names["valid"]] = ok
    return out


def _is_dask_frame(df: Any) -> bool:
    if not type(df).__module__.startswith("dask"):
        return False
    import dask.dataframe as dd
    return isinstance(df, dd.DataFrame)


def _classify_dask(ddf: Any, column: Any, allowlist: Any, names: dict[str, Any], strict: bool,
                   client: Any) -> Any:
    if column not in ddf.columns:
        raise KeyError(f"no column {column!r} in the DataFrame")
    source = _dask_source(allowlist, client)
    meta = ddf._meta.copy(deep=False)
    meta[names["allowed"]] = np.zeros(0, dtype=bool)
    if "registration" in names:
        meta[names["registration"]] = np.zeros(0, dtype=np.int32)
    if "valid" in names:
        meta[names["valid"]] = np.zeros(0, dtype=bool)
    return ddf.map_partitions(_classify_partition, source, column, names, strict, meta=meta,
                              enforce_metadata=False, transform_divisions=False)


def _classify_partition(pdf: Any, source: Any, column: Any, names: dict[str, Any], strict: bool,
                        partition_info: dict | None = None) -> Any:
    """One Dask task: ``source`` is the worker's shipped copy or a snapshot reference."""
    partition = partition_info.get("number") if partition_info else None
    return _classify_frame(pdf, column, _resolve(source), names, strict, partition)


def _raise_index(index: int, count: int):
    raise IndexError(f"registration index {index} out of range for {count} registrations")
