"""Id order: the one rule for a prefix registered by several registrations."""

from __future__ import annotations

import os
import re

import numpy as np

_DIGIT_RUNS = re.compile(r"([0-9]+)")


def id_key(rid: str) -> tuple:
    """Sort key of a registration id in natural order: ``PTA-9`` before ``PTA-10``.

    Ids compare piece by piece; runs of ASCII digits compare as numbers, the
    rest as text (by code point).  Ids that only differ in leading zeros
    (``PTA-09`` and ``PTA-9``) fall back to plain text order, so the order is
    total.  This order decides which registration answers for a prefix that
    several registrations share (the first one), everywhere: ``lookup``,
    ``check``, ``--explain``, ``validate`` and ``diff`` listings.

    >>> sorted(["PTA-10", "PTA-9", "PTA-100"], key=id_key)
    ['PTA-9', 'PTA-10', 'PTA-100']
    """
    parts: list = _DIGIT_RUNS.split(rid)
    # Pieces alternate text, digits, text ...: compare a digit run by its value
    # (length without leading zeros, then the digits: no int() of huge runs).
    parts[1::2] = [(len(d.lstrip("0")), d.lstrip("0")) for d in parts[1::2]]
    return (parts, rid)


def natural_order(ids: np.ndarray | list[str]) -> np.ndarray:
    """Positions of ``ids`` (a numpy str array, or a list of str) sorted by :func:`id_key`.

    Registry exports mostly use ids of one shape, text then a number
    (``PTA-12345``): those sort with numpy alone; any other shape takes
    :func:`id_key` per id.
    """
    count = len(ids)
    if count < 2:
        return np.arange(count)
    if isinstance(ids, list):
        found = numbered_order(ids)
        if found is not None:
            return found[0]
        ids = np.array(ids, dtype=str)
    prefix = np.char.rstrip(ids, "0123456789")
    plain_prefix = np.ones(count, dtype=bool)
    for digit in "0123456789":
        plain_prefix &= np.strings.find(prefix, digit) < 0
    digits = np.strings.lstrip(np.strings.slice(ids, np.strings.str_len(prefix), None), "0")
    digit_len = np.strings.str_len(digits)
    if not plain_prefix.all() or int(digit_len.max()) > 18:
        return np.array(sorted(range(count), key=lambda i: id_key(str(ids[i]))), dtype=np.int64)
    has_digits = np.strings.str_len(ids) > np.strings.str_len(prefix)
    value = np.where(has_digits, np.where(digit_len > 0, digits, "0"), "0").astype(np.int64)
    # key order: prefix text, then no number before a number, then the number, then the raw id
    if (prefix == prefix[0]).all():
        order = np.lexsort((value, has_digits))
    else:
        order = np.lexsort((value, has_digits, prefix))
    keys = (prefix[order], has_digits[order], value[order])
    tied = np.zeros(count, dtype=bool)
    tied[1:] = (keys[0][1:] == keys[0][:-1]) & (keys[1][1:] == keys[1][:-1]) & (keys[2][1:] == keys[2][:-1])
    if tied.any():      # ids equal but for leading zeros: rare, so the full sort is fine
        order = np.lexsort((ids, value, has_digits, prefix))
    return order


def numbered_order(ids: list[str]) -> tuple[np.ndarray, bool] | None:
    """(:func:`natural_order`, whether no id is given twice) of ids that are all one text
    and then a number without leading zeros (``PTA-0``, ``PTA-12345``: a bulk-loaded
    registry's, in a tenth of the time numpy's string functions take), or None for any
    other ids."""
    numbers = one_prefix_numbers(ids)
    if numbers is None:
        return None
    order = np.argsort(numbers)
    ordered = numbers[order]
    if np.any(ordered[1:] == ordered[:-1]):
        return np.argsort(numbers, kind="stable"), False    # an id given twice: in their given order
    return order, True


def one_prefix_numbers(ids: list[str]) -> np.ndarray | None:
    """The number of each id when the ids are all one text and then a number without
    leading zeros (so two ids are equal exactly when their numbers are), else None."""
    if not ids:
        return None
    # The lowest and highest ids share the text every id starts with.
    prefix = os.path.commonprefix([min(ids), max(ids)]).rstrip("0123456789")
    if not prefix.isascii() or _DIGIT_RUNS.search(prefix) or max(map(len, ids)) - len(prefix) > 18:
        return None                         # several texts, or a number past int64
    lines = "\n".join(ids)
    if lines.count("\n") != len(ids) - 1:
        return None                         # a line end inside an id
    numbers = lines.replace("\n" + prefix, "\n")[len(prefix):]
    if (not numbers.isascii() or not numbers.replace("\n", "").isdigit()
            or "\n\n" in numbers or numbers.startswith("\n") or numbers.endswith("\n")):
        return None                         # text after the number, or an id without one
    wrapped = "\n" + numbers + "\n"
    if wrapped.count("\n0") != wrapped.count("\n0\n"):
        return None                         # leading zeros: PTA-07 and PTA-7 tie on the number
    values = np.fromstring(numbers, dtype=np.int64, sep="\n")   # ASCII digit lines: nothing to misread
    return values if len(values) == len(ids) else None
