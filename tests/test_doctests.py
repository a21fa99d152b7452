"""Every example in the package's docstrings runs, against the installed package.

The examples are written as a user would type them after ``import ipallow`` (and ``import numpy as
np``), so those two names are given to each one; anything else an example needs it imports itself.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import ipallow


def _modules() -> list[str]:
    names = ["ipallow"]
    for info in pkgutil.walk_packages(ipallow.__path__, "ipallow."):
        names.append(info.name)
    return sorted(names)


def _examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for name in _modules():
        module = importlib.import_module(name)   # the test extras install every optional package
        for test in finder.find(module, name, extraglobs={"ipallow": ipallow, "np": np}):
            if test.examples:
                tests.append(test)
    return tests


EXAMPLES = _examples()


def test_the_package_has_docstring_examples():
    # A guard on the guard: if discovery broke, the parametrised test below would silently run none.
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("test", EXAMPLES, ids=lambda t: t.name)
def test_docstring_example(test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)            # examples that write files write them here
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda text: None)
    result = runner.summarize(verbose=False)
    if result.failed:
        # Run again to collect the report for the failure message.
        report = []
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(test, out=report.append)
        pytest.fail("".join(report), pytrace=False)
