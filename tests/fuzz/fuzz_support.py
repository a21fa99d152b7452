"""What the harnesses share: the instrumentation switch, fuzz bytes -> text, the fixed allowlist
and the ``ipaddress`` oracle for addresses and entries.

The oracle reads text as the README documents ipallow reading it: strict ``ipaddress`` parsing,
except that zone indexes (``fe80::1%eth0``) are refused (the one documented difference, see
tests/test_malformed.py); a range ``a - b`` is the minimal CIDR list of its (whitespace-stripped)
ends; an IPv4-mapped network (``::ffff:0:0/96`` and longer) is the IPv4 network it maps.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ipaddress
import os
import sys

# tools/fuzz.sh sets this: instrument ipallow's Python modules so libFuzzer sees their branches
# too. The corpus replay under pytest leaves it unset and imports plainly.
FUZZING = os.environ.get("IPALLOW_FUZZ") == "1"


def instrumented():
    """A context to import ipallow in: atheris-instrumented when fuzzing, plain otherwise."""
    if FUZZING:
        import atheris
        return atheris.instrument_imports(include=["ipallow"])
    return contextlib.nullcontext()


with instrumented():
    import ipallow
    from ipallow import _trie  # noqa: F401  (the harnesses import it from here, instrumented)


def main(test_one_input) -> None:
    """Run ``test_one_input`` under libFuzzer (arguments: libFuzzer's, from the command line).

    A failing input is also saved by us (to $IPALLOW_FUZZ_ARTIFACTS, when set) before the
    exception reaches libFuzzer: libFuzzer writes its crash file only after printing a symbolized
    stack, which on a loaded machine can outlast -timeout and lose the input.
    """
    import atheris
    artifacts = os.environ.get("IPALLOW_FUZZ_ARTIFACTS")

    def guarded(data: bytes) -> None:
        try:
            test_one_input(data)
        except BaseException:
            if artifacts:
                name = "failure-" + hashlib.sha1(data).hexdigest()
                with open(os.path.join(artifacts, name), "wb") as handle:
                    handle.write(data)
                print(f"\n=== failing input saved as {os.path.join(artifacts, name)} ===", file=sys.stderr)
            raise

    atheris.Setup(sys.argv, guarded)
    atheris.Fuzz()


def line_count(raw: bytes) -> int:
    """Lines of a file as its most generous reader counts them ('\\r', '\\n' and '\\r\\n' all end one)."""
    return len(io.StringIO(raw.decode("utf-8", "replace"), newline="").readlines()) + 1


def text_of(data: bytes) -> str:
    """Fuzz bytes -> str: UTF-8 where it decodes (lone surrogates included), else Latin-1."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("latin-1")


class Zone(Exception):
    """ipaddress accepts the text only because of a zone index, which ipallow refuses."""


def reference_address(text: str) -> tuple[int, int]:
    """(version, value) of address text as ``ipaddress`` reads it.

    Raises:
        ValueError: ipaddress refuses it.
        Zone: ipaddress accepts it with a scope id (ipallow must refuse it).
    """
    address = ipaddress.ip_address(text)
    if "%" in text:                     # ipaddress takes '%' only as a scope id
        raise Zone(text)
    return address.version, int(address)


def unmapped(network):
    """An IPv4-mapped IPv6 network of length >= 96 is the IPv4 network it maps."""
    if network.version == 6 and network.prefixlen >= 96 and network.network_address.ipv4_mapped:
        return ipaddress.IPv4Network((network.network_address.ipv4_mapped, network.prefixlen - 96))
    return network


def index_key(version: int, value: int) -> tuple[int, int]:
    """The key a lookup uses: ::ffff:a.b.c.d is looked up as a.b.c.d."""
    if version == 6 and value >> 32 == 0xFFFF:
        return 4, value & 0xFFFFFFFF
    return version, value


def reference_entry(text: str, strict: bool) -> list:
    """The ``ipaddress`` networks a registered text entry stands for (unmapped).

    Raises:
        ValueError: ipaddress refuses it (or a range whose ends disagree or run backwards).
        Zone: accepted by ipaddress only thanks to a zone index.
    """
    if "-" in text:
        left, _, right = text.partition("-")
        ends = []
        for part in (left.strip(), right.strip()):
            version, value = reference_address(part)
            ends.append(ipaddress.ip_address(value) if version == 4 else ipaddress.IPv6Address(value))
        if ends[0].version != ends[1].version or ends[0] > ends[1]:
            raise ValueError("not a range")
        return [unmapped(n) for n in ipaddress.summarize_address_range(*ends)]
    if "/" in text:
        network = ipaddress.ip_network(text, strict=strict)
        if "%" in text:                 # (strict=False drops the scope id from the network)
            raise Zone(text)
        return [unmapped(network)]
    version, value = reference_address(text)
    return [unmapped(ipaddress.ip_network(ipaddress.ip_address(value) if version == 4
                                          else ipaddress.IPv6Address(value)))]


def outcome(fn, *args, **kwargs):
    """("ok", result) or ("raised", exception): lets a harness compare two paths' outcomes."""
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the caller decides which exceptions are allowed
        return "raised", exc


# -- the fixed allowlist every lookup harness asks -------------------------------------------------

# Nested, overlapping and duplicate registrations in both families, an IPv4-mapped one, the
# extremes of each space, plus registrations with data, so lookups see every leaf shape.
REGISTERED = [
    "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3", "10.1.2.0/24",
    "192.0.2.0/24", "192.0.2.128/25", "198.51.100.0/24", "203.0.113.0/24", "100.64.0.0/10",
    "128.0.0.0/3", "0.0.0.0/32", "255.255.255.255", "1.2.3.0/255.255.255.0",
    "172.16.5.0 - 172.16.9.255",
    "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::10", "fe80::/10", "::/128", "::1",
    "ffff::/16", "64:ff9b::/96", "::ffff:172.20.0.0/112", "2002::/16", "1::/16",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
]
DATA = [{"row": i} if i % 3 else None for i in range(len(REGISTERED))]
ALLOWLIST = ipallow.Allowlist(list(zip(REGISTERED, DATA)))

# Registration index -> its unmapped ipaddress networks, for the oracle's longest match.
_ORACLE_NETWORKS = [(reg, network) for reg, text in enumerate(REGISTERED)
                    for network in reference_entry(text, strict=True)]


def reference_lookup(version: int, value: int):
    """(registration index, network) of the longest registered prefix covering the address, or None.

    Ties (the same prefix registered twice) go to the first registration.
    """
    version, value = index_key(version, value)
    best = None
    for reg, network in _ORACLE_NETWORKS:
        if network.version != version:
            continue
        first = int(network.network_address)
        if first <= value <= int(network.broadcast_address):
            if best is None or network.prefixlen > best[1].prefixlen:
                best = (reg, network)
    return best
