"""Malformed input is rejected on every path with the same AddressError; unusual valid forms are accepted.

Cases are data: tests/data/malformed_addresses.txt and tests/data/malformed_networks.txt
("<category> | <Python string literal>"), plus the 10k-character cases built below. Each case is
also checked against the ``ipaddress`` module, which must reject it too, except for the documented
deliberate difference (category "zone"/"range-zone": ipaddress accepts a "%scope" suffix, the
ipallow contract rejects zone indexes).
"""

from __future__ import annotations

import ast
import ipaddress
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import ipallow
from oracle import normalize_network

DATA = Path(__file__).resolve().parent / "data"

# ipaddress accepts these on purpose-documented grounds; ipallow must reject them.
DOCUMENTED_DIFFERENCES = {
    "zone": "ipaddress accepts an RFC 4007 scope id ('%eth0'); the ipallow contract rejects zone indexes",
    "range-zone": "same as 'zone', inside a range end",
}


def load_cases(name: str) -> list[tuple[str, str]]:
    cases = []
    for lineno, line in enumerate((DATA / name).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        category, sep, literal = line.partition(" | ")
        assert sep, f"{name}:{lineno}: missing ' | '"
        text = ast.literal_eval(literal)
        assert isinstance(text, str), f"{name}:{lineno}: not a string literal"
        cases.append((category.strip(), text))
    return cases


LONG_CASES = [
    ("long", "1" * 10_000),
    ("long", "a" * 10_000),
    ("long", ":" * 10_000),
    ("long", "1:" * 5_000),
    ("long", "1." * 5_000),
    ("long", "1.2.3.4" + " " * 10_000),
    ("long", "1.2.3." + "4" * 10_000),
    ("long", "0" * 10_000 + "1.2.3.4"),
    ("long", "::" + "0" * 10_000),
    ("long", "::ffff:" + "1" * 10_000 + ".2.3.4"),
    ("long", "1.2.3.4/" + "2" * 10_000),
]

ADDRESS_CASES = load_cases("malformed_addresses.txt") + LONG_CASES
NETWORK_CASES = load_cases("malformed_networks.txt")
ENTRY_CASES = ADDRESS_CASES + NETWORK_CASES


def case_id(case: tuple[str, str]) -> str:
    category, text = case
    shown = repr(text) if len(text) <= 40 else repr(text[:20]) + f"...<{len(text)} chars>"
    return f"{category}:{shown}"


def ref_entry(text: str):
    """What ipaddress makes of an entry text (CIDR, address, or 'a - b' / 'a-b' range); raises if invalid."""
    if "/" in text:
        return [ipaddress.ip_network(text, strict=True)]
    if "-" in text:
        a, b = text.split(" - ", 1) if " - " in text else text.split("-", 1)
        first, last = ipaddress.ip_address(a), ipaddress.ip_address(b)
        return list(ipaddress.summarize_address_range(first, last))  # type: ignore[type-var]
    return [ipaddress.ip_network(ipaddress.ip_address(text))]


def ipaddress_rejects(fn, text: str) -> bool:
    try:
        fn(text)
    except (ValueError, TypeError):
        return True
    return False


def shows_text(message: str, text: str) -> bool:
    """The offending text appears in the message, verbatim or as its repr (for escapes)."""
    return text in message or repr(text) in message


AL_FULL = ipallow.Allowlist(["0.0.0.0/0", "::/0"])
AL_EMPTY = ipallow.Allowlist()


# ---------------------------------------------------------------------------------------------
# the case lists themselves


def test_case_lists_are_large_and_distinct():
    assert len(ADDRESS_CASES) >= 100 and len(NETWORK_CASES) >= 50
    texts = [t for _, t in ENTRY_CASES]
    dups = {t for t in texts if texts.count(t) > 1}
    assert not dups, f"duplicate cases: {dups}"


@pytest.mark.parametrize("case", ADDRESS_CASES, ids=case_id)
def test_ipaddress_agrees_address_is_malformed(case):
    category, text = case
    rejected = ipaddress_rejects(ipaddress.ip_address, text)
    if category in DOCUMENTED_DIFFERENCES:
        assert not rejected, "a documented difference must really differ from ipaddress"
    else:
        assert rejected, f"ipaddress accepts {text!r}: the case is not malformed"


@pytest.mark.parametrize("case", ENTRY_CASES, ids=case_id)
def test_ipaddress_agrees_entry_is_malformed(case):
    category, text = case
    rejected = ipaddress_rejects(ref_entry, text)
    if category in DOCUMENTED_DIFFERENCES:
        assert not rejected, "a documented difference must really differ from ipaddress"
    else:
        assert rejected, f"ipaddress accepts entry {text!r}: the case is not malformed"


# ---------------------------------------------------------------------------------------------
# every path rejects, with the same message


def raise_message(fn, text) -> str:
    with pytest.raises(ipallow.AddressError) as ei:
        fn(text)
    assert isinstance(ei.value, ValueError)
    return str(ei.value)


@pytest.mark.parametrize("case", ADDRESS_CASES, ids=case_id)
def test_malformed_address_rejected_on_every_path(case):
    _, text = case
    messages = {}
    for name, al in (("full", AL_FULL), ("empty", AL_EMPTY)):
        messages[f"in/{name}"] = raise_message(lambda t: t in al, text)
        messages[f"lookup/{name}"] = raise_message(al.lookup, text)
        messages[f"covering/{name}"] = raise_message(al.covering, text)
        messages[f"contains_many/{name}"] = raise_message(al.contains_many, [text])
        messages[f"lookup_many/{name}"] = raise_message(al.lookup_many, [text])
    messages["contains_many/after-good"] = raise_message(AL_FULL.contains_many, ["1.2.3.4", "::1", text])
    messages["lookup_many/after-good"] = raise_message(AL_FULL.lookup_many, ["1.2.3.4", "::1", text])
    messages["Allowlist"] = raise_message(lambda t: ipallow.Allowlist([t]), text)
    messages["Allowlist/after-good"] = raise_message(lambda t: ipallow.Allowlist(["10.0.0.0/8", (t, {})]), text)
    missing = [path for path, msg in messages.items() if not shows_text(msg, text)]
    assert not missing, f"offending text absent from the message on {missing}: {messages[missing[0]][:200]!r}"
    assert messages["in/full"] == messages["lookup/full"], "C parser (`in`) and lookup messages differ"
    assert messages["in/empty"] == messages["in/full"], "message depends on the table"
    assert messages["lookup/empty"] == messages["lookup/full"]
    assert messages["covering/full"] == messages["lookup/full"]
    # the stream helper never raises: a bad row is UNPARSEABLE (-2)
    assert AL_FULL._match_text([text, "1.2.3.4"]).tolist() == [-2, 0]


@pytest.mark.parametrize("case", NETWORK_CASES, ids=case_id)
def test_malformed_network_rejected_by_allowlist(case):
    _, text = case
    for entries in ([text], [("1.2.3.0/24", 0), (text, {"x": 1})]):
        msg = raise_message(ipallow.Allowlist, entries)
        assert shows_text(msg, text), msg[:200]


@pytest.mark.parametrize("case", NETWORK_CASES, ids=case_id)
def test_network_text_is_not_an_address(case):
    """A malformed entry is a malformed address too: `in`/lookup reject it with one message."""
    _, text = case
    m_in = raise_message(lambda t: t in AL_FULL, text)
    m_lookup = raise_message(AL_FULL.lookup, text)
    assert m_in == m_lookup
    assert shows_text(m_in, text)
    assert shows_text(raise_message(AL_FULL.contains_many, [text]), text)


ENTRY_ONLY = ["1.2.3.0/24", "1.2.3.4/32", "::/0", "::1/128", "1.2.3.4-1.2.3.5", "1.2.3.4 - 1.2.3.5", "::1 - ::2"]


@pytest.mark.parametrize("text", ENTRY_ONLY)
def test_network_and_range_text_rejected_as_address(text):
    """Valid entries, but not addresses: `in`/lookup/batches raise AddressError, Allowlist accepts."""
    assert len(ipallow.Allowlist([text])) == 1
    m_in = raise_message(lambda t: t in AL_FULL, text)
    assert m_in == raise_message(AL_FULL.lookup, text)
    assert shows_text(m_in, text)
    raise_message(AL_FULL.contains_many, [text])
    raise_message(AL_FULL.lookup_many, [text])
    assert AL_FULL._match_text([text]).tolist() == [-2]


def test_address_error_is_value_error_subclass():
    assert issubclass(ipallow.AddressError, ValueError)


# ---------------------------------------------------------------------------------------------
# valid but unusual forms


def assert_accepted_like_ipaddress(text: str) -> None:
    ref = ipaddress.ip_address(text)
    host = normalize_network(ipaddress.ip_network(ref))
    neighbour = host.supernet().address_exclude(host).__next__()  # the /32|/128 that differs in the last bit
    al = ipallow.Allowlist([host, neighbour])
    assert text in al, f"{text!r} rejected or misparsed by `in`"
    m = al.lookup(text)
    assert m is not None and m.index == 0 and m.network == host, f"{text!r} parsed as {m!r}, want {host}"
    assert al.lookup_many([text]).tolist() == [0]
    assert al.contains_many([text]).tolist() == [True]
    assert [(c.network, c.index) for c in al.covering(text)] == [(host, 0)]
    prefix = al._match_text([text]).tolist()[0]
    assert prefix >= 0 and int(al._compiled.prefix_reg[prefix]) == 0
    assert ipallow.Allowlist([text])[0].networks == (host,)


VALID_FORMS = [
    "::",
    "::1",
    "1::",
    "::0",
    "0::0",
    "0:0::0:0",
    "0:0:0:0:0:0:0:0",
    "0000:0000:0000:0000:0000:0000:0000:0001",
    "1:2:3:4:5:6:7:8",
    "1::8",
    "1:2::7:8",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1:0:0:0:0:0:0:0",
    "2001:db8::1",
    "2001:DB8::1",
    "2001:0db8:0000:0000:0000:0000:0000:0001",
    "2001:db8:0:0:0:0:0:1",
    "Fe80::Ab:cD",
    "FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "abcd:ef01:2345:6789:abcd:ef01:2345:6789",
    "a::",
    "::a",
    "::1.2.3.4",
    "::0.0.0.0",
    "::255.255.255.255",
    "::ffff:1.2.3.4",
    "::FFFF:1.2.3.4",
    "::ffff:0.0.0.0",
    "::ffff:255.255.255.255",
    "0:0:0:0:0:ffff:1.2.3.4",
    "::0:ffff:1.2.3.4",
    "::ffff:102:304",
    "64:ff9b::192.0.2.33",
    "2001:db8::1.2.3.4",
    "1:2:3:4:5:6:1.2.3.4",
    "0.0.0.0",
    "0.0.0.1",
    "1.2.3.4",
    "1.0.0.0",
    "10.0.0.0",
    "100.64.0.1",
    "255.255.255.255",
    "127.0.0.1",
    "192.0.2.0",
    "0.10.100.200",
]


@pytest.mark.parametrize("text", VALID_FORMS)
def test_valid_unusual_forms_accepted(text):
    assert_accepted_like_ipaddress(text)


# ---------------------------------------------------------------------------------------------
# Hypothesis: ipallow accepts exactly what ipaddress.ip_address accepts, with the same value

FUZZ_ALPHABET = "0123456789abcdefABCDEF:."
NOISE = FUZZ_ALPHABET + "gxX -/_+[] \t\x00\u0661\uff11"


@st.composite
def mutated_addresses(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        addr = ipaddress.IPv4Address(draw(st.integers(0, 2**32 - 1)))
        text = str(addr)
    else:
        addr6 = ipaddress.IPv6Address(draw(st.integers(0, 2**128 - 1)) >> (16 * draw(st.integers(0, 8))))
        style = draw(st.sampled_from(["compressed", "exploded", "mapped", "embedded"]))
        if style == "exploded":
            text = addr6.exploded
        elif style == "mapped":
            text = f"::ffff:{ipaddress.IPv4Address(int(addr6) & 0xFFFFFFFF)}"
        elif style == "embedded":
            head = addr6.exploded.rsplit(":", 2)[0]  # the first six groups
            text = f"{head}:{ipaddress.IPv4Address(int(addr6) & 0xFFFFFFFF)}"
        else:
            text = str(addr6)
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        ch = draw(st.sampled_from(NOISE))
        if op == "insert":
            text = text[:pos] + ch + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + 1 :]
        elif op == "replace":
            text = text[:pos] + ch + text[pos + 1 :]
        else:
            text = text[:pos] + text[pos : pos + 3] + text[pos:]
    return text


fuzz_texts = st.one_of(
    mutated_addresses(),
    st.text(alphabet=FUZZ_ALPHABET, max_size=45),
    st.from_regex(r"\A[0-9]{1,4}(\.[0-9]{1,4}){0,4}\Z"),
    st.from_regex(r"\A([0-9a-fA-F]{0,5}:){1,9}[0-9a-fA-F]{0,5}(\.[0-9]{1,3}){0,4}\Z"),
    st.text(alphabet=st.characters(codec="ascii"), max_size=20),
    st.text(max_size=12),
)


@settings(max_examples=settings.default.max_examples * 5)
@given(fuzz_texts)
def test_parser_accepts_exactly_what_ipaddress_accepts(text):
    assume("%" not in text)  # zone indexes: the documented difference, tested above
    try:
        ipaddress.ip_address(text)
    except ValueError:
        m_in = raise_message(lambda t: t in AL_FULL, text)
        m_lookup = raise_message(AL_FULL.lookup, text)
        assert m_in == m_lookup
        assert shows_text(m_in, text)
        raise_message(AL_FULL.contains_many, [text])
        assert AL_FULL._match_text([text]).tolist() == [-2]
        if "/" not in text and "-" not in text:  # those may be valid networks / ranges as entries
            raise_message(lambda t: ipallow.Allowlist([t]), text)
    else:
        assert_accepted_like_ipaddress(text)
