"""Dotted masks after '/' are read exactly as ``ipaddress`` reads them (issue #16, defect 1).

A netmask is ones then zeros (``/255.255.255.0`` is /24); a mask that is not is tried as a hostmask
(``/0.0.0.255`` is /24 too); anything else is refused. The old contiguity check shifted a 32-bit value
by 32 when the mask's first bit was clear, so ``0.0.0.0/1.2.3.4`` registered 0.0.0.0/0: every address.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import subprocess
import sys
import warnings

import pytest

import ipallow


def ipaddress_reading(text: str, strict: bool):
    """What the standard library makes of the entry, or None where it refuses it."""
    try:
        return ipaddress.ip_network(text, strict=strict)
    except ValueError:
        return None


# Masks chosen at every edge: all zeros, all ones, first bit clear, last bit set, one bit, holes.
EDGE_MASKS = [
    "0.0.0.0", "255.255.255.255", "128.0.0.0", "255.255.255.254", "0.0.0.1", "0.0.0.255",
    "0.255.255.255", "127.255.255.255", "1.2.3.4", "255.0.255.0", "255.255.0.255", "0.0.255.0",
    "255.255.255.0", "0.0.0.3", "254.0.0.0", "1.0.0.0", "127.0.0.0", "0.128.0.0",
]


def test_security_regression_a_non_contiguous_mask_never_opens_the_list():
    for text in ["0.0.0.0/1.2.3.4", "10.0.0.0/0.255.0.255", "0.0.0.0/255.0.255.0"]:
        with pytest.raises(ipallow.AddressError):
            ipallow.Allowlist([text])
        with pytest.raises(ipallow.AddressError):
            ipallow.Allowlist([text], strict=False)


def test_hostmasks_are_read_as_ipaddress_reads_them():
    al = ipallow.Allowlist(["192.0.2.0/0.0.0.255", "10.0.0.0/0.255.255.255"])
    assert [str(n) for r in al for n in r.networks] == ["192.0.2.0/24", "10.0.0.0/8"]
    assert "8.8.8.8" not in al
    assert "192.0.2.77" in al and "10.9.9.9" in al
    # 0.0.0.1 inverted is 255.255.255.254: a /31, not /0.
    assert [str(n) for n in ipallow.Allowlist(["0.0.0.0/0.0.0.1"])[0].networks] == ["0.0.0.0/31"]
    assert "8.8.8.8" not in ipallow.Allowlist(["0.0.0.0/0.0.0.1"])


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("mask", EDGE_MASKS)
def test_edge_masks_agree_with_ipaddress(mask, strict):
    for base in ["0.0.0.0", "10.0.0.0", "192.0.2.0", "255.255.255.255", "10.1.2.3"]:
        text = f"{base}/{mask}"
        expected = ipaddress_reading(text, strict)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ipallow.HostBitsWarning)
            try:
                got = ipallow.Allowlist([text], strict=strict)[0].networks
            except ipallow.AddressError:
                got = None
        assert (None if got is None else [str(n) for n in got]) == (
            None if expected is None else [str(expected)]), text


def test_random_masks_agree_with_ipaddress():
    rng = random.Random(1601)
    masks = [rng.getrandbits(32) for _ in range(3000)]
    # Half the draws near a contiguous mask (one bit flipped), where a wrong check would slip.
    for length in range(33):
        net = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
        masks += [net, net ^ 0xFFFFFFFF] + [net ^ (1 << rng.randrange(32)) for _ in range(20)]
    for mask in masks:
        text = f"0.0.0.0/{ipaddress.IPv4Address(mask)}"
        expected = ipaddress_reading(text, strict=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ipallow.HostBitsWarning)
            try:
                got = [str(n) for n in ipallow.Allowlist([text], strict=False)[0].networks]
            except ipallow.AddressError:
                got = None
        assert got == (None if expected is None else [str(expected)]), text


def test_validate_refuses_a_file_with_a_non_contiguous_mask(tmp_path):
    # The operator's check said OK to such a file while the mask opened the whole list.
    path = tmp_path / "list.txt"
    path.write_text("10.0.0.0/8\n192.0.2.0/0.0.0.255\n0.0.0.0/1.2.3.4\n")
    ipallow_cli = shutil.which("ipallow", path=os.path.dirname(sys.executable)) or shutil.which("ipallow")
    done = subprocess.run([ipallow_cli, "validate", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    assert f"{path}:3:9: error: invalid network '0.0.0.0/1.2.3.4': netmask is not contiguous" in done.stdout
    assert ":2:" not in done.stdout                  # the hostmask line is fine
