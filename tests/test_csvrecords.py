"""Where each CSV field starts (``_csvrecords``), checked against the ``csv`` module itself.

Every error message about a CSV value points at ``line:column`` of that value, so the start
positions must agree with the fields ``csv`` reads — one start per field, at the value's first
character — for every record ``csv`` accepts, empty fields and quotes included.
"""

from __future__ import annotations

import csv
import io
import random

import pytest

import ipallow
from ipallow import _csvrecords


def csv_fields(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def value_at(text: str, line: int, column: int, length: int) -> str:
    lines = io.StringIO(text, newline="").readlines()
    rest = "".join(lines[line - 1:])[column - 1:]
    return rest[:length]


@pytest.mark.parametrize("record", [
    "a,b,c\n", ",b,c\n", "a,,c\n", "a,b,\n", ",,\n", ",\n", "\n", '"",x\n', 'x,""\n',
    '"a,b",c\n', '"a\nb",c\n', 'a,"b ""q"" c",d\n', ",y10.2.0,1r\n", "a,b,c", ",", ",,",
])
def test_one_start_per_field_at_the_value(record):
    (fields,) = csv_fields(record) or [[]]
    starts = _csvrecords.field_starts(record, 1)
    assert len(starts) == len(fields), (record, starts, fields)
    for field, (line, column) in zip(fields, starts):
        if field and "\n" not in field and '"' not in field:
            assert value_at(record, line, column, len(field)) == field, (record, field)


def test_random_records_agree_with_csv():
    rng = random.Random(20261130)
    alphabet = ["a", "b", ",", ",", '"', " ", "\n", "\r\n", "1.2"]
    checked = 0
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        try:
            expected = csv_fields(text)
            got = list(_csvrecords.records(text))
        except (csv.Error, _csvrecords.CsvError):
            continue
        assert [r.fields for r in got] == expected, text
        for record in got:
            assert len(record.starts) == len(record.fields), (text, record)
            for field, (line, column) in zip(record.fields, record.starts):
                if not field:
                    continue
                if column > 1 and value_at(text, line, column - 1, 1) == '"':
                    continue   # quoted: the value starts after the quote, even if `""x`
                assert value_at(text, line, column, 1) == field[0], (text, record)
        checked += 1
    assert checked > 10_000


def test_a_list_row_with_an_empty_first_field_is_a_parse_error_not_a_crash(tmp_path):
    # Found by the CI fuzz smoke run: the empty first field hid one comma, the row looked one
    # field short to the position finder, and the loader indexed past the end (IndexError).
    path = tmp_path / "list.csv"
    path.write_text("owner,cidr\n,y10.2.0\n,10.0.0.0/8\n")
    with pytest.raises(ipallow.ParseError) as caught:
        ipallow.Allowlist.from_file(str(path), format="csv")
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (2, 2), problem
