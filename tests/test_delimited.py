"""ipallow._delimited: field N of every line of a block, found with numpy, against lines built
from known fields (the csv module writes the quoted ones), with fixed seeds."""

from __future__ import annotations

import csv
import io
import random

import numpy as np
import pytest

from ipallow import _delimited

VALUE_CHARS = "0123456789abcdef.:/ x"          # address-like text, inner blanks included


def _line(rng: random.Random, values: list[str], sep: str) -> str:
    """One line holding ``values``: a value with the separator or a quote is quoted by the csv
    module, the others are sometimes padded with blanks (which the locator trims)."""
    cells = []
    for value in values:
        if sep in value or '"' in value or (rng.random() < 0.05 and value):
            out = io.StringIO()
            csv.writer(out, delimiter=sep, lineterminator="").writerow([value])
            cells.append(out.getvalue() if out.getvalue().startswith('"') else f'"{value}"')
        else:
            pad = rng.choice(["", "", "", " ", "\t", "  "]) if sep not in " \t" else ""
            cells.append(pad + value + pad[::-1])
    return sep.join(cells) + rng.choice(["", "", "\r"])


def _value(rng: random.Random, sep: str) -> str:
    text = "".join(rng.choice(VALUE_CHARS) for _ in range(rng.randrange(0, 12))).strip()
    if sep in " \t":
        text = text.replace(" ", "")
    if rng.random() < 0.05:       # a separator or quote inside: the csv module quotes the field
        text = "a" + text[:3] + rng.choice([sep, '"']) + text[3:] + "z"
    return text


def _block(seed: int, sep: str, regular: bool):
    rng = random.Random(seed)
    width = rng.randrange(1, 6)
    rows = []
    for _ in range(rng.randrange(1, 60)):
        n = width if regular else rng.randrange(0, 7)
        rows.append([_value(rng, sep) for _ in range(n)] if n else [])
    lines = [_line(rng, values, sep) if values else "" for values in rows]
    return ("\n".join(lines) + "\n").encode(), rows


@pytest.mark.parametrize("sep", [",", "\t", " ", ";"])
@pytest.mark.parametrize("regular", [True, False], ids=["same-width", "ragged"])
def test_every_line_field_matches_the_values_it_was_built_from(sep, regular):
    checked = 0
    for seed in range(150):
        data, rows = _block(seed, sep, regular)
        for column in range(4):
            found = _delimited.locate(data, column, ord(sep))
            assert len(found.texts) == len(rows)
            for i, values in enumerate(rows):
                # An empty line is one empty field: column 0 is there (and empty), the others are not.
                has = column < max(len(values), 1)
                assert bool(found.present[i]) == has, (seed, column, i, data)
                want = values[column] if column < len(values) else ""
                assert found.texts[i] == (want.encode() if has else b""), (seed, column, i, data)
                checked += 1
    assert checked > 10_000


def test_line_bounds_and_field_starts_point_into_the_block():
    data = b"a,10.0.0.1\nbb, 10.0.0.2\r\n\nc\n"
    found = _delimited.locate(data, 1, ord(","))
    assert found.starts.tolist() == [0, 11, 25, 26]
    assert found.ends.tolist() == [10, 24, 25, 27]
    assert [data[s:s + len(t)] for s, t in zip(found.field_starts.tolist(), found.texts)][:2] == \
        [b"10.0.0.1", b"10.0.0.2"]
    assert found.present.tolist() == [True, True, False, False]


def test_a_leading_part_of_the_block_ignores_quotes_after_it():
    # --strict stops mid-block; the --bytes column is then read over the lines before the stop only.
    data = b'10.0.0.1,5\nbad,3\n"10.0.0.2",4\n'
    whole = _delimited.locate(data, 1, ord(","))
    part = _delimited.locate(data, 1, ord(","), lines=(whole.starts[:1], whole.ends[:1]))
    assert part.texts == [b"5"] and part.present.tolist() == [True]


def test_selected_lines_are_copied_whole_in_order():
    data = b"a\nb\r\nc\nd\n"
    found = _delimited.locate(data, 0, ord(","))
    select = np.array([True, True, False, True])
    assert _delimited.selected_lines(data, found.starts, found.ends, select) == b"a\nb\r\nd\n"
    assert _delimited.selected_lines(data, found.starts, found.ends, np.zeros(4, bool)) == b""
