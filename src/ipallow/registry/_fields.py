"""The one check of each :class:`~ipallow.registry.Registration` field, for the constructor and the loaders.

``Registration(...)`` and the registry loaders take the same fields from different
hands: the constructor gets Python values (datetimes, ``ipaddress`` objects, any
iterable) and raises the first problem; a loader gets a CSV cell's text or a JSON
value and reports every problem at its ``path:line:column``.  Each field is checked
once, here, for both (:func:`check_fields`), which returns the stored values and
the problems, each a :class:`FieldProblem`:

* ``field`` and ``offset``: which field, and how many characters into its text the
  problem starts (a loader adds it to the cell's column);
* ``message``: what is wrong, in the words of the input: a file's message names JSON
  types ("not a number"), the constructor's Python types ("not int");
* ``error``: the exception ``Registration(...)`` raises for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from types import GeneratorType
from typing import Any, NamedTuple

from ipallow import _parse
from ipallow._formats import NETWORK_COLUMNS, problem as _file_problem
from ipallow.errors import AddressError
from ipallow.registry._frozenmap import FrozenMap
from ipallow.registry._time import UTC, _parse_time_text, format_time

STATUSES = ("pending", "active", "suspended", "revoked")
CATEGORIES = ("company_vpn", "freelancer_vpn", "call_center", "video_conference", "other")

#: Column / key names that hold the networks, in order of preference.
REGISTRY_NETWORK_COLUMNS = (*NETWORK_COLUMNS[:2], "networks", *NETWORK_COLUMNS[2:])
_CORE_FIELDS = ("id", "networks", "owner", "category", "status", "valid_from", "expires_at", "tags")
FIELD_NAMES = (*_CORE_FIELDS, "extra")
#: What a loader stores for an optional column the file does not have.
DEFAULTS = {"owner": "", "category": "other", "status": "active", "valid_from": None,
            "expires_at": None, "tags": ()}
_LIST_SEPARATORS = re.compile(r"[,;]")


class FieldProblem(NamedTuple):
    """One problem with one field (see the module documentation)."""

    field: str
    offset: int
    message: str
    error: Exception


class Checked(NamedTuple):
    """The outcome of :func:`check_fields`: stored values (complete only without problems)."""

    values: dict[str, Any]
    problems: list[FieldProblem]
    masked: int             # networks whose host bits were cleared (strict=False)


def _wrong(field: str, message: str, error: type[Exception] = ValueError, offset: int = 0) -> FieldProblem:
    return FieldProblem(field, offset, message, error(message))


def check_fields(values: Mapping[str, Any], *, from_file: bool, strict: bool = True) -> Checked:
    """Check and normalise a record's fields.

    Arguments:
        values: field name -> value.  A loader leaves out the optional columns its
            file does not have (they take :data:`DEFAULTS`); ``id`` and
            ``networks`` are always there.
        from_file: the values are a file's (CSV text, JSON values): every problem is
            collected, worded for a file.  Otherwise the constructor's: the check
            stops at the first field with a problem (``Registration`` raises its ``error``).
        strict: host bits set in a network is a problem (else they are cleared and
            counted in ``masked``); the constructor is always strict.
    """
    problems: list[FieldProblem] = []
    out: dict[str, Any] = {}
    masked = 0
    for name in FIELD_NAMES:
        if name not in values:
            out[name] = FrozenMap() if name == "extra" else DEFAULTS[name]
            continue
        value = values[name]
        if name == "id":
            out[name] = _check_id(value, from_file, problems)
        elif name == "networks":
            out[name], masked = _check_networks(value, from_file, strict, problems)
        elif name == "owner":
            out[name] = _check_owner(value, from_file, problems)
        elif name == "category":
            out[name] = _check_choice(value, name, CATEGORIES, from_file, problems)
        elif name == "status":
            out[name] = _check_choice(value, name, STATUSES, from_file, problems)
        elif name in ("valid_from", "expires_at"):
            out[name] = _check_time(value, name, from_file, problems)
            if name == "expires_at":       # both read (a time with a problem is None here)
                _check_window(out["valid_from"], out["expires_at"], problems)
        elif name == "tags":
            out[name] = _check_tags(value, from_file, problems)
        else:
            out[name] = _check_extra(value, problems)
        if problems and not from_file:
            break
    return Checked(out, problems, masked)


# -- the fast path of a file's well-formed row ----------------------------------------------

_CATEGORY_SET = frozenset(CATEGORIES)
_STATUS_SET = frozenset(STATUSES)
_TIMES: dict[str, datetime] = {}      # time text -> parsed (registries repeat their dates)
_EXTRA_CLASHES = frozenset(_CORE_FIELDS + REGISTRY_NETWORK_COLUMNS)
_NO_EXTRA = FrozenMap()


class _Unusual(Exception):
    """A value :func:`quick_fields` leaves to :func:`check_fields`."""


def _quick_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Unusual
    parsed = _TIMES.get(value)
    if parsed is None:
        if not value.strip():
            return None
        try:
            parsed = _parse_time_text(value)
        except ValueError:
            raise _Unusual from None
        if len(_TIMES) < 4096:
            _TIMES[value] = parsed
    return parsed


def _quick_choice(value: Any, choices: frozenset) -> str:
    if not isinstance(value, str):
        raise _Unusual
    normal = value.strip().lower()
    if normal not in choices:
        raise _Unusual
    return normal


def _quick_tags(value: Any) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        value = _LIST_SEPARATORS.split(value)
    elif not (isinstance(value, list) and all(isinstance(tag, str) for tag in value)):
        raise _Unusual
    kept: list[str] = []
    for tag in value:
        tag = tag.strip()
        if tag and tag not in kept:
            kept.append(tag)
    return tuple(kept)


def _quick_networks(value: Any, strict: bool) -> tuple[tuple, int]:
    if type(value) is str:
        texts = (value,)
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        texts = value
    else:
        raise _Unusual
    seen: set = set()
    out: list = []
    masked = 0
    for text in texts:
        for part in (_LIST_SEPARATORS.split(text) if ("," in text or ";" in text) else (text,)):
            piece = part.strip()
            if not piece:
                continue
            try:
                found, count = _parse.entry_networks(piece, strict)
            except (TypeError, ValueError):     # AddressError included
                raise _Unusual from None
            masked += count
            for network in found:
                if network not in seen:
                    seen.add(network)
                    out.append(_parse.network_object(*network))
    if not out:
        raise _Unusual
    return tuple(out), masked


def quick_fields(values: Mapping[str, Any], strict: bool) -> tuple[dict[str, Any], int] | None:
    """What :func:`check_fields` (``from_file=True``) stores for a file's row, and the masked
    count, when the row is well formed; None for anything else, which the careful check
    then reports (its messages, positions and rules stay the one source).

    A registry's load is mostly this, once per row: it works on the text (the compiled
    core's parser, choices in sets, each distinct time text parsed once) where the careful
    check builds ``FieldProblem`` machinery and an ``ipaddress`` object per network to
    compare them.
    """
    if "id" not in values or "networks" not in values:
        return None
    try:
        rid = values["id"]
        if isinstance(rid, int) and not isinstance(rid, bool):
            rid = str(rid)
        if not isinstance(rid, str):
            return None
        rid = rid.strip()
        if not rid:
            return None
        networks, masked = _quick_networks(values["networks"], strict)
        get = values.get
        owner = get("owner")
        if owner is None:
            owner = ""
        elif isinstance(owner, str):
            owner = owner.strip()
        else:
            return None
        category = _quick_choice(values["category"], _CATEGORY_SET) if "category" in values else "other"
        status = _quick_choice(values["status"], _STATUS_SET) if "status" in values else "active"
        valid_from = _quick_time(get("valid_from"))
        expires_at = _quick_time(get("expires_at"))
        if valid_from is not None and expires_at is not None and expires_at <= valid_from:
            return None
        tags = _quick_tags(get("tags"))
        extra = get("extra")
        if extra is None or (type(extra) is dict and not extra):
            extra = _NO_EXTRA                  # immutable: one for every row without extra columns
        elif type(extra) is dict and _EXTRA_CLASHES.isdisjoint(extra) and all(
                type(key) is str for key in extra):
            extra = FrozenMap(extra)
        else:
            return None
    except _Unusual:
        return None
    return {"id": rid, "networks": networks, "owner": owner, "category": category, "status": status,
            "valid_from": valid_from, "expires_at": expires_at, "tags": tags, "extra": extra}, masked


# -- one field at a time: each returns the stored value (None when it has a problem) ----------

def _check_id(value: Any, from_file: bool, problems: list[FieldProblem]) -> str | None:
    if from_file and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)                  # a JSON integer id is text
    if not isinstance(value, str):
        problems.append(_wrong("id", f"id must be a string, not {json_type(value)}", TypeError) if from_file
                        else _wrong("id", f"Registration id must be a str, not {type(value).__name__}",
                                    TypeError))
        return None
    stripped = value.strip()
    if not stripped:
        problems.append(_wrong("id", "missing id" if from_file else "Registration id is empty"))
        return None
    return stripped


_NETWORK_OBJECT_TYPES = (_parse._NETWORK_TYPES + _parse._ADDRESS_TYPES + _parse._INTERFACE_TYPES)


def _is_single_entry(value: Any) -> bool:
    if isinstance(value, (str, bytes, int) + _NETWORK_OBJECT_TYPES):
        return True
    netaddr = _parse._netaddr()
    return netaddr is not None and isinstance(
        value, (netaddr.IPAddress, netaddr.IPNetwork, netaddr.IPRange, netaddr.IPSet))


def split_pieces(text: str) -> Iterator[tuple[int, str]]:
    """(offset of the stripped piece, piece) for each ``,``/``;``-separated piece."""
    start = 0
    for part in _LIST_SEPARATORS.split(text):
        stripped = part.strip()
        if stripped:
            yield start + len(part) - len(part.lstrip()), stripped
        start += len(part) + 1


def _network_entries(value: Any, from_file: bool, problems: list[FieldProblem]) -> Iterable | None:
    """(offset, entry) pairs of a networks value, or None after reporting a problem.

    A file gives text (several networks separated by ``,`` / ``;``) or a JSON list of
    such text (offsets 0: the list's items have no column of their own); the
    constructor a network in any form or an iterable of them.
    """
    if from_file:
        if isinstance(value, list):
            wrong = [v for v in value if not isinstance(v, str)]
            if wrong:
                problems.append(_wrong("networks", f"networks must be a string or a list of strings, found "
                                                   f"{json_type(wrong[0])} in the list"))
                return None
            pieces = [(0, piece) for item in value for _, piece in split_pieces(item)]
        elif isinstance(value, str):
            pieces = list(split_pieces(value))
        else:
            problems.append(_wrong("networks", f"networks must be a string or a list of strings, "
                                               f"not {json_type(value)}"))
            return None
        if not pieces:
            problems.append(_wrong("networks", "missing network"))
            return None
        return pieces
    if value is None:
        problems.append(_wrong("networks", "networks must be a network or an iterable of networks, not None",
                               TypeError))
        return None
    if _is_single_entry(value):
        return ((0, value),)
    if isinstance(value, (list, tuple, set, frozenset, GeneratorType, Iterator)):
        return ((0, entry) for entry in value)
    problems.append(_wrong("networks", f"networks must be a network or an iterable of networks, "
                                       f"not {type(value).__name__}", TypeError))
    return None


def _check_networks(value: Any, from_file: bool, strict: bool,
                    problems: list[FieldProblem]) -> tuple[tuple | None, int]:
    entries = _network_entries(value, from_file, problems)
    if entries is None:
        return None, 0
    before = len(problems)
    out: list = []
    seen: set = set()
    masked = 0
    for offset, entry in entries:
        if isinstance(entry, _parse._NETWORK_TYPES) and not (
                entry.version == 6 and entry.prefixlen >= 96
                and int(entry.network_address) >> 32 == 0xFFFF):
            if entry not in seen:          # already a plain network: keep the object
                seen.add(entry)
                out.append(entry)
            continue
        try:
            found, count = _parse.entry_networks(entry, strict)
        except AddressError as exc:
            # a file's message: the loaders' wording (long text cut), at the bad character
            shown = _file_problem("", 0, offset + 1, exc)
            problems.append(FieldProblem("networks", shown.column - 1,
                                         shown.message if from_file else str(exc), exc))
        except (TypeError, ValueError) as exc:
            problems.append(FieldProblem("networks", offset, str(exc), exc))
        else:
            masked += count
            for network in found:
                network = _parse.network_object(*network)
                if network not in seen:
                    seen.add(network)
                    out.append(network)
            continue
        if not from_file:
            break                         # the constructor raises the first
    if len(problems) != before:
        return None, masked
    if not out:
        problems.append(_wrong("networks", "a registration needs at least one network"))
        return None, masked
    return tuple(out), masked


def _check_owner(value: Any, from_file: bool, problems: list[FieldProblem]) -> str | None:
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(_wrong("owner", f"owner must be a string, not {json_type(value)}") if from_file
                        else _wrong("owner", f"owner must be a str, not {type(value).__name__}", TypeError))
        return None
    return value.strip()


def _check_choice(value: Any, name: str, choices: tuple[str, ...], from_file: bool,
                  problems: list[FieldProblem]) -> str | None:
    if not isinstance(value, str):
        problems.append(_wrong(name, f"{name} must be a string, not {json_type(value)}") if from_file
                        else _wrong(name, f"{name} must be a str, not {type(value).__name__}", TypeError))
        return None
    normal = value.strip().lower()
    if from_file and not normal:
        problems.append(_wrong(name, f"missing {name} (the column is there but the value is empty)"))
        return None
    if normal not in choices:
        shown = value.strip() if from_file else value
        problems.append(_wrong(name, f"unknown {name} {shown!r}: expected one of {', '.join(choices)}"))
        return None
    return normal


def _check_time(value: Any, name: str, from_file: bool, problems: list[FieldProblem]) -> datetime | None:
    """Text (both): ISO 8601, no offset = UTC, blank = open.  Objects (constructor only):
    an aware datetime, a date (midnight UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return _parse_time_text(value)
        except ValueError as exc:
            if from_file:
                problems.append(_wrong(name, f"{name}: {exc}", offset=len(value) - len(value.lstrip())))
            else:
                problems.append(FieldProblem(name, 0, str(exc), exc))
            return None
    if from_file:
        problems.append(_wrong(name, f"{name} must be an ISO 8601 string, not {json_type(value)}"))
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            problems.append(_wrong(name, f"{name}: naive datetime {value.isoformat()!r}; give a timezone "
                                         f"(registry times are UTC)"))
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            problems.append(_wrong(name, f"{name}: {value.isoformat()!r} is out of range in UTC"))
            return None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    problems.append(_wrong(name, f"{name} must be a datetime, a date, ISO 8601 text or None, "
                                 f"not {type(value).__name__}", TypeError))
    return None


def _check_window(valid_from: datetime | None, expires_at: datetime | None,
                  problems: list[FieldProblem]) -> None:
    if valid_from is not None and expires_at is not None and expires_at <= valid_from:
        problems.append(_wrong("expires_at", f"expires_at {format_time(expires_at)} is not after "
                                             f"valid_from {format_time(valid_from)}"))


def _check_tags(value: Any, from_file: bool, problems: list[FieldProblem]) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if from_file and not (isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value))):
        problems.append(_wrong("tags", f"tags must be a string or a list of strings, not {json_type(value)}"))
        return None
    items = _LIST_SEPARATORS.split(value) if isinstance(value, str) else value
    if isinstance(items, (bytes, Mapping)) or not isinstance(items, Iterable):
        problems.append(_wrong("tags", f"tags must be a str or an iterable of str, not {type(value).__name__}",
                               TypeError))
        return None
    out: list[str] = []
    for tag in items:
        if not isinstance(tag, str):
            problems.append(_wrong("tags", f"each tag must be a str, not {type(tag).__name__}", TypeError))
            return None
        tag = tag.strip()
        if tag and tag not in out:
            out.append(tag)
    return tuple(out)


def _check_extra(value: Any, problems: list[FieldProblem]) -> FrozenMap | None:
    """Further columns.  A loader's never fail (its readers keep the fields out of them)."""
    extra = FrozenMap() if value is None else value
    if not isinstance(extra, Mapping):
        problems.append(_wrong("extra", f"extra must be a mapping, not {type(extra).__name__}", TypeError))
        return None
    for key in extra:
        if not isinstance(key, str):
            problems.append(_wrong("extra", f"extra keys must be str, not {type(key).__name__}", TypeError))
            return None
        if key in _CORE_FIELDS or key in REGISTRY_NETWORK_COLUMNS:
            problems.append(_wrong("extra", f"extra key {key!r} clashes with a Registration field"))
            return None
    return extra if isinstance(extra, FrozenMap) else FrozenMap(extra)


def json_type(value: Any) -> str:
    """How a file's message names a JSON value's type."""
    return {type(None): "null", bool: "a boolean", int: "a number", float: "a number",
            str: "a string", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)
