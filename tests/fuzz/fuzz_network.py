"""Registered entry text, differential against ``ipaddress``: CIDRs, bare addresses, IPv4
netmask and hostmask forms and ranges ``a - b``, with strict and non-strict host bits. ipallow
registers exactly the networks ``ipaddress.ip_network`` / ``summarize_address_range`` give
(IPv4-mapped ones as IPv4), refuses what they refuse (and zone indexes), and a refusal is an
AddressError naming the text.
"""

from __future__ import annotations

import warnings

from fuzz_support import Zone, _trie, ipallow, main, outcome, reference_entry, text_of


def registered(text: str, strict: bool):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        allowlist = ipallow.Allowlist([text], strict=strict)
    masked = any(issubclass(w.category, ipallow.HostBitsWarning) for w in caught)
    return [n for entry in allowlist for n in entry.networks], masked


def test_one_input(data: bytes) -> None:
    text = text_of(data)
    references = {}
    for strict in (True, False):
        try:
            references[strict] = reference_entry(text, strict)
        except (ValueError, Zone):
            references[strict] = None
    for strict, expected in references.items():
        got = outcome(registered, text, strict)
        if expected is None:
            kind, exc = got
            assert kind == "raised", f"registered {text!r} (strict={strict}) as {exc}; ipaddress refuses it"
            assert type(exc) is ipallow.AddressError, (text, strict, repr(exc))
            assert exc.text == text, (text, exc.text)
            if "-" not in text:
                kind, core = outcome(_trie.parse_network, text, strict)
                assert kind == "raised" and str(core) == str(exc), (text, strict, core, exc)
            continue
        kind, value = got
        assert kind == "ok", f"refused {text!r} (strict={strict}): {value!r}; ipaddress reads {expected}"
        networks, masked = value
        assert networks == expected, (text, strict, networks, expected)
        if "-" not in text:
            version, first, prefixlen, core_masked = _trie.parse_network(text, strict)
            network = expected[0]
            assert (version, first, prefixlen) == (
                network.version, int(network.network_address), network.prefixlen), text
            assert core_masked == masked, (text, core_masked, masked)
            # Host bits were cleared exactly when the strict reading refuses the text.
            assert masked == (references[True] is None), (text, strict, masked)


if __name__ == "__main__":
    main(test_one_input)
