"""Registry exports (``parse_registry``, CSV and JSON Lines) on arbitrary bytes.

Only the documented failure is allowed: one ``ParseError`` whose problems name the source, a line
of it and a column. What loads must hold together: every registration survives its own
``to_dict`` / ``from_dict`` round trip; the registry compiles; each counting registration answers
for its first address (as itself or a longer registration); and the compiled list survives a
snapshot round trip with the same registration data.

Input layout: byte 0 even = CSV, odd = JSON Lines; the rest is the file.
"""

from __future__ import annotations

from fuzz_support import ipallow, line_count, main, outcome

with __import__("fuzz_support").instrumented():
    from ipallow import registry as registry_module
    from ipallow import snapshot
    from ipallow.allowlist import loads

NAME = "registry-under-test"
AT = 1_750_000_000        # a fixed instant (2025-06-15), so validity windows are judged repeatably


def test_one_input(data: bytes) -> None:
    if not data:
        return
    form = "jsonl" if data[0] & 1 else "csv"
    raw = data[1:]
    kind, result = outcome(registry_module.parse_registry, raw, NAME, format=form)
    if kind == "raised":
        assert type(result) is ipallow.ParseError, repr(result)
        lines = line_count(raw)
        for problem in result.problems:
            assert problem.path == NAME, problem
            assert 1 <= problem.line <= lines and problem.column >= 1, (problem, lines)
        return
    registry = result
    for record in registry:
        assert ipallow.Registration.from_dict(record.to_dict()) == record, record
    allowlist = ipallow.Allowlist.from_registry(registry, at=AT)
    for record in registry:
        first = record.networks[0].network_address
        match = allowlist.lookup(first)
        if record.counts_at(AT).counts:
            assert match is not None and match.network.prefixlen >= record.networks[0].prefixlen, record
    copy = loads(bytes(snapshot.to_bytes(allowlist._compiled, created=0)))
    assert [entry.data for entry in copy] == [entry.data for entry in allowlist]


if __name__ == "__main__":
    main(test_one_input)
