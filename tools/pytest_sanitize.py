"""pytest plugin loaded by tools/sanitize.sh (`-p pytest_sanitize`): Hypothesis runs fewer examples.

Under ASan + UBSan the suite is several times slower, and most of that time is the property tests'
examples; the sanitizers look for memory and UB errors on the code paths those examples reach,
which far fewer examples already reach (the fuzzers of tests/fuzz/ do the long random search).
The profile is the suite's own "ci" profile (derandomized) with max_examples lowered; tests that
set their own max_examples keep it.
"""

from __future__ import annotations

import os

from hypothesis import settings

EXAMPLES = int(os.environ.get("IPALLOW_SANITIZE_EXAMPLES", "25"))


def pytest_configure(config):
    # tests/conftest.py has registered and loaded its profiles by now (initial conftests load first).
    settings.register_profile("sanitize", parent=settings.default, max_examples=EXAMPLES)
    settings.load_profile("sanitize")
