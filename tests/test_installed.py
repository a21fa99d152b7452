"""CI runs the suite from the unpacked sdist against the installed wheel: make sure it really does.

With IPALLOW_TEST_INSTALLED=1 (set by .ci/run) the package must come from site-packages, never from
a source tree next to the tests, and must carry what a wheel carries.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

import ipallow
from ipallow import _trie

INSTALLED = os.environ.get("IPALLOW_TEST_INSTALLED") == "1"


@pytest.mark.skipif(not INSTALLED, reason="only under .ci/run (IPALLOW_TEST_INSTALLED=1)")
def test_the_package_under_test_is_the_installed_wheel():
    package = Path(ipallow.__file__).resolve().parent
    assert package.parent == Path(sysconfig.get_paths()["purelib"]).resolve(), package
    shipped = {p.name for p in package.iterdir()}
    assert "py.typed" in shipped and "_trie.pyi" in shipped and "sample.csv" in os.listdir(package / "data")
    # The wheel carries the compiled module, not its sources.
    assert not {n for n in shipped if n.endswith((".pyx", ".c", ".pxd", ".pxi"))}, shipped
    assert "include" not in shipped, "the core's C headers are build inputs, not package data"


def test_version_is_the_one_in_the_metadata():
    from importlib.metadata import version
    assert ipallow.__version__ == version("ipallow")


def test_the_compiled_module_is_stripped_and_small():
    size = Path(_trie.__file__).stat().st_size
    if os.environ.get("DEBUG") == "1" or not INSTALLED:
        pytest.skip("only the released build (the wheel) is stripped")
    assert size <= 1_000_000, f"{_trie.__file__} is {size:,} bytes"
