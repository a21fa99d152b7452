"""Registry time: instants as POSIX seconds, ISO 8601 text in and out (all UTC)."""

from __future__ import annotations

import functools
import math
import time
from datetime import date, datetime, timezone
from typing import Any

UTC = timezone.utc


def to_timestamp(at: Any = None) -> float:
    """An instant -> POSIX seconds (float).  ``None`` is now.

    Arguments:
        at: None (now), an aware :class:`datetime.datetime`, a
            :class:`datetime.date` (midnight UTC), or POSIX seconds.

    Raises:
        TypeError: ``at`` is of another type (``bool`` included).
        ValueError: a naive datetime, or a non-finite number.

    >>> to_timestamp(datetime(2025, 1, 1, tzinfo=UTC))
    1735689600.0
    """
    if at is None:
        return time.time()
    if isinstance(at, bool):
        raise TypeError("an instant must be a datetime, a date or POSIX seconds, not bool")
    if isinstance(at, (int, float)):
        value = float(at)
        if not math.isfinite(value):
            raise ValueError(f"instant must be finite, got {at!r}")
        return value
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"naive datetime {at.isoformat()!r}: give a timezone "
                             f"(e.g. datetime.now(timezone.utc)) or POSIX seconds")
        return at.timestamp()
    if isinstance(at, date):
        return datetime(at.year, at.month, at.day, tzinfo=UTC).timestamp()
    raise TypeError(f"an instant must be a datetime, a date or POSIX seconds, "
                    f"not {type(at).__name__}")


def _parse_time_text(text: str) -> datetime:
    """ISO 8601 text -> aware UTC datetime; text without an offset is UTC."""
    stripped = text.strip()
    try:
        value = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(f"unparseable timestamp {text!r}: expected ISO 8601 such as "
                         f"2025-01-31T12:00:00Z") from None
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp {text!r} is out of range in UTC") from None


def format_time(value: datetime) -> str:
    """``2025-01-31T12:00:00Z`` (microseconds only when there are some)."""
    if type(value) is datetime and value.tzinfo is UTC:       # how registrations keep them
        return _format_utc(value)
    return _format(value)


def _format(value: datetime) -> str:
    value = value.astimezone(UTC)
    # Not strftime: glibc writes year 851 as '851', which no ISO 8601 reader takes back.
    text = (f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
            f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


# Registries repeat a handful of dates over thousands of records: formatting was a quarter of
# writing their records into a snapshot.  Only UTC datetimes are cached: two of them are
# equal exactly when they are the same instant (in a zone with a repeated hour, two
# instants that differ only by ``fold`` compare equal, and would share a text).
_format_utc = functools.lru_cache(maxsize=4096)(_format)

