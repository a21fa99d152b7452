"""The lifecycle reference: which record answers a probe at instant t, with no ipallow code.

Judged from the records' raw fields with plain integer range arithmetic: a probe
is covered by a network when first <= probe <= last in the same family; among the
records counting at t (active, valid_from <= t < expires_at), the longest prefix
wins, then registry order.  The registry and live-reload tests both check against it.
"""

from __future__ import annotations

import numpy as np

from ipallow import Registration


class Reference:
    """Record position of the longest match among records counting at t (ties: registry order);
    a record may hold several networks."""

    def __init__(self, records: list[Registration], probes: list):
        self.records = records

        def words(values):
            return (np.array([v >> 64 for v in values], dtype=np.uint64),
                    np.array([v & (2**64 - 1) for v in values], dtype=np.uint64))

        def le(a_hi, a_lo, b_hi, b_lo):
            return (a_hi < b_hi) | ((a_hi == b_hi) & (a_lo <= b_lo))

        owner = np.array([i for i, r in enumerate(records) for _ in r.networks])
        nets = [n for r in records for n in r.networks]
        fam = np.array([n.version for n in nets])
        f_hi, f_lo = words([int(n.network_address) for n in nets])
        l_hi, l_lo = words([int(n.broadcast_address) for n in nets])
        p_fam = np.array([p.version for p in probes])[:, None]
        p_hi, p_lo = (w[:, None] for w in words([int(p) for p in probes]))
        covered = (p_fam == fam) & le(f_hi, f_lo, p_hi, p_lo) & le(p_hi, p_lo, l_hi, l_lo)
        order = np.lexsort((owner, -np.array([n.prefixlen for n in nets])))
        rows, cols = np.nonzero(covered[:, order])
        counts = np.bincount(rows, minlength=len(probes))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.matrix = np.full((len(probes), max(int(counts.max(initial=0)), 1)), -1, dtype=np.int64)
        self.matrix[rows, np.arange(len(rows)) - starts[rows]] = owner[order[cols]]

        self._cache: dict[bytes, np.ndarray] = {}
        self.active = np.array([r.status == "active" for r in records] + [False])
        self.starts = np.array([r.valid_from.timestamp() if r.valid_from else -np.inf for r in records] + [0])
        self.ends = np.array([r.expires_at.timestamp() if r.expires_at else np.inf for r in records] + [0])

    def counting(self, t: float) -> np.ndarray:
        """active and valid_from <= t < expires_at (the last slot is the padding: never)."""
        return self.active & (self.starts <= t) & (t < self.ends)

    def answers(self, t: float) -> np.ndarray:
        counting = self.counting(t)
        key = counting.tobytes()
        if key not in self._cache:
            self._cache.clear()
            self._cache[key] = self._answers(counting)
        return self._cache[key]

    def _answers(self, counting: np.ndarray) -> np.ndarray:
        valid = counting[self.matrix]
        first = valid.argmax(axis=1)
        rows = np.arange(len(first))
        return np.where(valid[rows, first], self.matrix[rows, first], -1)
