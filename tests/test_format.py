"""The commands' one number formatter (``ipallow.commands._format.human``).

The expected strings are what ``ipallow stats`` (sizes up to GiB, thousands
separators) and the progress line (bytes up to TiB, counts with k/M/G) printed
before they shared this function.
"""

from __future__ import annotations

import pytest

from ipallow.commands._format import BYTES, COUNT, human


@pytest.mark.parametrize("value, expected", [
    (0, "0 B"), (1023, "1023 B"), (1023.6, "1024 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (3 * 2**20, "3.0 MiB"), (5 * 2**40, "5.0 TiB"), (2**50, "1024.0 TiB"),
])
def test_progress_bytes(value, expected):
    assert human(value) == expected


@pytest.mark.parametrize("value, expected", [
    (0, "0"), (999.4, "999"), (1000, "1.0k"), (123_456, "123.5k"), (7_000_000, "7.0M"),
    (2.5e12, "2500.0G"),
])
def test_progress_counts(value, expected):
    assert human(value, COUNT) == expected


@pytest.mark.parametrize("value, expected", [
    (1000, "1,000 B"), (1023, "1,023 B"), (2**20 + 2**19, "1.5 MiB"), (2**40, "1,024.0 GiB"),
])
def test_stats_sizes(value, expected):
    assert human(value, BYTES[:4], grouping=True) == expected


def test_an_int_in_the_first_unit_is_exact():
    # A float conversion would print ...808.
    assert human(2**63 + 1, ("B",), grouping=True) == "9,223,372,036,854,775,809 B"
