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
