"""Shared test configuration: Hypothesis profiles and the import path for the test helpers.

Profiles (pick with the HYPOTHESIS_PROFILE environment variable):
  ci        default; derandomized (fixed seed), moderate example counts, whole suite < ~3 min on 2 cores
  thorough  many more examples, still derandomized so a failure reproduces
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# pytest runs with --import-mode=importlib, which does not put tests/ on sys.path; the helper
# modules (oracle.py, strategies.py) live here and are imported by plain name.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

_COMMON = dict(
    deadline=None,  # no timing in tests
    derandomize=True,  # fixed seed: the same examples on every run and every machine
    database=None,  # derandomized runs do not need (or write) an example database
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", max_examples=150, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config):
    # Which build and which path of the compiled core this run checks (CI runs the suite once on
    # each path: IPALLOW_SCALAR=1 forces the scalar one).
    import ipallow
    from ipallow import _trie
    return [f"ipallow {ipallow.__version__} from {Path(ipallow.__file__).parent}; "
            f"compiled core on the {_trie.cpu_path()!r} path"]
