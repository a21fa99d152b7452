"""Replay the committed seed corpus through every fuzz harness (plain Python, no atheris).

This keeps the harnesses working between fuzzing runs and makes each seed a regression case:
a seed that trips a harness's oracle fails here in the normal suite.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

HARNESSES = ["address", "network", "batch", "listfile", "lines", "registry", "snapshot"]


def test_every_harness_has_seeds():
    for name in HARNESSES:
        assert (HERE / f"fuzz_{name}.py").is_file(), name
        assert len(list((HERE / "corpus" / name).iterdir())) >= 4, name


@pytest.mark.parametrize("name", HARNESSES)
def test_seed_corpus_passes_the_harness(name):
    harness = importlib.import_module(f"fuzz_{name}")
    seeds = sorted((HERE / "corpus" / name).iterdir())
    for seed in seeds:
        try:
            harness.test_one_input(seed.read_bytes())
        except AssertionError as exc:
            raise AssertionError(f"{seed.relative_to(HERE)}: {exc}") from exc
