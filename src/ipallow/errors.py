"""The exception and warning types of ipallow (imports nothing of ipallow)."""

from __future__ import annotations

__all__ = ["AddressError", "ParseError", "Problem", "HostBitsWarning", "TableError", "SnapshotError"]

from collections import namedtuple


class AddressError(ValueError):
    """An address, network or range that cannot be parsed or is out of range.

    Attributes:
        text: the offending text (for non-text input, its ``repr``).
        reason: what is wrong, e.g. ``"octet greater than 255"``.
        column: 1-based column of the problem in ``text``, or None.
        kind: ``"IP address"``, ``"network"`` or ``"range"``.
    """

    def __init__(self, text: str, reason: str, column: int | None = None,
                 kind: str = "IP address") -> None:
        self.text = text
        self.reason = reason
        self.column = column
        self.kind = kind
        where = f" at column {column}" if column is not None else ""
        super().__init__(f"invalid {kind} {text!r}: {reason}{where}")

    def __reduce__(self):  # keep the attributes across pickling (multiprocessing)
        return (type(self), (self.text, self.reason, self.column, self.kind))


# A plain namedtuple, not typing.NamedTuple: typing and the class it builds cost 2-3 ms of
# every command's start-up, against an `ipallow export` of 100k CIDRs taking ~20 ms in all.
class Problem(namedtuple("Problem", ("path", "line", "column", "message"))):
    """One bad line of an input file: ``path`` (str), ``line`` and ``column`` (1-based int),
    ``message`` (str)."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class ParseError(ValueError):
    """A file (or other source) could not be loaded; nothing was loaded.

    Attributes:
        problems: every problem found, as :class:`Problem` (path, line, column, message).
    """

    SHOWN = 20  # problems listed in full in the message; the rest are counted

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        shown = [str(p) for p in self.problems[: self.SHOWN]]
        more = len(self.problems) - len(shown)
        if more > 0:
            shown.append(f"... and {more} more problem{'s' if more != 1 else ''}")
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(f"{len(self.problems)} {noun}; nothing was loaded:\n" + "\n".join(shown))

    def __reduce__(self):
        return (type(self), (self.problems,))


class TableError(ValueError):
    """Compiled tables (from a snapshot, a pickle, or any other source) that lookups could
    not safely walk: an index out of range, a cycle, a malformed node.  Nothing is served."""


class HostBitsWarning(UserWarning):
    """``strict=False`` cleared host bits of one or more registered networks."""


class SnapshotError(ValueError):
    """A snapshot file or buffer that cannot be used; the message names the reason.

    Lives here (not in ``ipallow.snapshot``, which re-exports it) so the command
    line can catch it without loading numpy.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: not a usable ipallow snapshot: {reason}")
