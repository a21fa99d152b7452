"""The package version: a constant, so ``import ipallow`` need not ask importlib.metadata (~50 ms)."""

__version__ = "0.1.0"
