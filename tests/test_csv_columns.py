"""The core's CSV column splitter (#15), ``_trie.csv_columns``, against an obviously-correct
split in Python: the lines of the text, each split at commas, every line ``width`` fields.

Coded columns are decoded back (``distinct[code]``) and must give the same cells, their
distinct cells in the order they first come.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipallow._trie import csv_columns


def oracle(text: str, width: int) -> list[list[str]] | None:
    """The data columns, or None (a wrong width anywhere, or no data line)."""
    if width < 2:
        return None
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        del lines[-1]                       # the last line's end
    rows = [line.split(",") for line in lines[1:]]
    if not rows or any(len(row) != width for row in rows):
        return None
    return [[row[position] for row in rows] for position in range(width)]


def decoded(result, coded: list[bool]):
    """The columns of ``csv_columns``'s result as cells, each coded one checked on the way."""
    if result is None:
        return None
    columns = []
    for column, is_coded in zip(result, coded):
        if is_coded:
            codes, distinct = column
            assert isinstance(codes, np.ndarray) and codes.dtype == np.int32 and codes.flags.c_contiguous
            cells = [distinct[code] for code in codes.tolist()]
            assert distinct == list(dict.fromkeys(cells)), "distinct cells, in the order they first come"
            columns.append(cells)
        else:
            assert type(column) is list and all(type(cell) is str for cell in column)
            columns.append(column)
    return columns


def assert_as_oracle(text: str, width: int, coded: list[bool]) -> None:
    assert decoded(csv_columns(text, width, coded), coded) == oracle(text, width), (text, width, coded)


ALPHABET = ["a", "b", ",", ",", "\n", "\n", " ", "ü", "€", "\t", "0", "😀", "x,y"]


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(ALPHABET), max_size=40), st.integers(2, 5), st.data())
def test_random_texts_split_as_the_oracle_splits_them(pieces, width, data):
    coded = data.draw(st.lists(st.booleans(), min_size=width, max_size=width))
    assert_as_oracle("".join(pieces), width, coded)


@pytest.mark.parametrize("seed", range(40))
def test_random_exports_split_as_the_oracle_splits_them(seed):
    """Mostly well-formed tables (the common case), now and then a line off by a field."""
    rng = random.Random(seed)
    width = rng.randint(2, 9)
    values = [rng.choice(["", "active", "Owner 7", "ü", "2030-01-01", "x" * rng.randint(0, 40)])
              for _ in range(rng.randint(1, 30))]
    lines = [",".join(f"h{i}" for i in range(width))]
    for _ in range(rng.choice([1, 2, 50, 3000])):
        row = [rng.choice(values) for _ in range(width)]
        if rng.random() < 0.002:
            row.append("extra") if rng.random() < 0.5 else row.pop()
        lines.append(",".join(row))
    text = "\n".join(lines) + rng.choice(["", "\n"])
    coded = [rng.random() < 0.6 for _ in range(width)]
    assert_as_oracle(text, width, coded)


def test_the_edges_of_a_text():
    for text in ["h,H\na,b", "h,H\na,b\n", "h,H\n,\n", "h,H\n,", "h,H\na,b\nc,d\n", "h,H\nü,😀\n",
                 "h,H\n", "h,H", "", "\n", "h,H\n\n", "h,H\na,b\n\n", "h,H\n\na,b", "h,H\na,b,c\n",
                 "h,H\na\n", "h,H\na,b\nc", ",\n,", "h\na,b\n"]:
        for coded in ([False, False], [True, True], [True, False]):
            assert_as_oracle(text, 2, coded)


def test_many_distinct_cells_are_coded_past_every_growth_of_the_table():
    count = 200_000
    text = "id,v\n" + "".join(f"{i},v{i * 7919 % count}\n" for i in range(count))
    columns = csv_columns(text, 2, [False, True])
    codes, distinct = columns[1]
    assert len(distinct) == count and codes.tolist() == list(range(count))
    assert distinct[:3] == ["v0", "v7919", "v15838"] and columns[0][:2] == ["0", "1"]


def test_what_it_declines_or_refuses():
    assert csv_columns("h\na\n", 1, [False]) is None                        # under 2 columns
    assert csv_columns("a,b\n1,2\n", 5000, [False] * 5000) is None          # over 4096
    assert csv_columns("a,b\n\ud800,2\n", 2, [False, False]) is None        # not UTF-8: csv's reader reads it
    with pytest.raises(ValueError, match="one truth per column"):
        csv_columns("a,b\n1,2\n", 2, [False])
    with pytest.raises(TypeError):
        csv_columns(b"a,b\n1,2\n", 2, [False, False])
    with pytest.raises(TypeError):
        csv_columns("a,b\n1,2\n", 2, None)
    with pytest.raises(TypeError):
        csv_columns("a,b\n1,2\n", "2", [False, False])
    with pytest.raises(OverflowError):
        csv_columns("a,b\n1,2\n", 2**70, [False, False])
