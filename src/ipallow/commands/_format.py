"""Numbers and text for people, shared by the commands (sizes in ``stats``, rates in the progress
line, an offending input line in a message).

Not a command: ``register`` is a no-op because ``ipallow.cli`` registers every
module of this package.
"""

from __future__ import annotations

__all__ = ["BYTES", "COUNT", "human", "address_count", "SHOWN_TEXT", "printable", "quoted"]

#: Binary byte units (steps of 1024, a space before the unit).
BYTES = ("B", "KiB", "MiB", "GiB", "TiB")
#: Decimal count suffixes (steps of 1000, written right after the number).
COUNT = ("", "k", "M", "G")


def register(subparsers) -> None:  # noqa: ARG001 - see the module docstring
    """Nothing: this module is a helper, not a command."""


def human(value: float, units: tuple[str, ...] = BYTES, *, grouping: bool = False) -> str:
    """``value`` in the largest of ``units`` it reaches: whole in the first unit, one decimal after.

    ``units`` starting with ``"B"`` step by 1024 and put a space before the unit,
    others step by 1000 with the suffix right after the number; the last unit
    takes everything above.  ``grouping`` adds thousands separators.  An int in
    the first unit is written exactly.

    >>> human(1536), human(1_000, grouping=True), human(2_500_000, COUNT), human(999, COUNT)
    ('1.5 KiB', '1,000 B', '2.5M', '999')
    """
    base, space = (1024, " ") if units[0] == "B" else (1000, "")
    sep = "," if grouping else ""
    for unit in units:
        if value < base or unit == units[-1]:
            break
        value /= base
    if unit == units[0]:
        number = f"{value:{sep}d}" if isinstance(value, int) else f"{value:{sep}.0f}"
    else:
        number = f"{value:{sep}.1f}"
    return f"{number}{space}{unit}"


def address_count(n: int) -> str:
    """A count of addresses: exact with separators below 2**64; beyond (IPv6 sizes), the size
    in /64 networks, the unit IPv6 is handed out in, and three significant digits.

    >>> address_count(16_777_216), address_count(2**96 + 2**64), address_count(2**64 + 2**63)
    ('16,777,216', '4,294,967,297 /64s = 7.923e+28', 'about 1.5 /64s = 2.767e+19')
    """
    if n < 1 << 64:
        return f"{n:,}"
    subnets = f"{n >> 64:,} /64s" if n % (1 << 64) == 0 else f"about {n / (1 << 64):,.1f} /64s"
    return f"{subnets} = {n:.3e}"


SHOWN_TEXT = 200     # characters of an offending line or field shown in a message


def printable(text: str, limit: int = SHOWN_TEXT) -> str:
    """``text`` fit for a one-line message: control characters escaped, cut to ``limit``
    characters with its full length said (a 20 MB line is never echoed whole).

    >>> printable("a\\tb"), printable("x" * 5, 3)
    ('a\\\\tb', 'xxx... (5 characters)')
    """
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in cut)
    if len(text) > limit:
        cut += f"... ({len(text):,} characters)"
    return cut


def quoted(text: str) -> str:
    """``repr(text)``, cut to SHOWN_TEXT characters with the full length said."""
    if len(text) <= SHOWN_TEXT:
        return repr(text)
    return f"{text[:SHOWN_TEXT]!r}... ({len(text):,} characters)"
