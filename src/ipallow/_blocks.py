"""Address ranges cut into aligned CIDR blocks, all ranges at once (numpy, 128-bit values as
(hi, lo) uint64 word pairs).

The vectorised twin of :func:`ipallow._parse.range_to_networks`: used to compile a list's
``a - b`` ranges (:mod:`ipallow._compile`) and to turn set-algebra results back into CIDRs
(:mod:`ipallow.setops`).
"""

from __future__ import annotations

import numpy as np

from ipallow._parse import MAX_BITS

__all__ = ["ALL_ONES", "low_mask64", "cut_ranges"]

ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def low_mask64(bits: np.ndarray) -> np.ndarray:
    """``2**bits - 1`` as uint64 for ``bits`` in 0..64 (numpy shifts by 64 are undefined)."""
    bits = np.asarray(bits, dtype=np.uint64)
    safe = np.minimum(bits, np.uint64(63))
    m = (np.uint64(1) << safe) - np.uint64(1)
    return np.where(bits >= np.uint64(64), ALL_ONES, m)


_ZERO, _ONE = np.uint64(0), np.uint64(1)


def _bit_length64(x: np.ndarray) -> np.ndarray:
    """``int.bit_length`` of each uint64 (0 for 0), exactly."""
    # float64 gets it right or one too high (a value just below 2**k rounds up): check and fix.
    e = np.minimum(np.frexp(x.astype(np.float64))[1], 64).astype(np.int64)
    shift = np.maximum(e - 1, 0).astype(np.uint64)
    too_high = (e > 0) & ((x >> shift) == _ZERO)
    return e - too_high


def _trailing_zeros(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Trailing zero bits of each 128-bit value (128 for zero)."""
    low_bit_lo = lo & (~lo + _ONE)
    low_bit_hi = hi & (~hi + _ONE)
    return np.where(lo != _ZERO, _bit_length64(low_bit_lo) - 1,
                    np.where(hi != _ZERO, 64 + _bit_length64(low_bit_hi) - 1, 128))


def _pow2(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) words of 2**e for e in 0..127."""
    e = np.asarray(e, dtype=np.int64)
    lo = np.where(e < 64, _ONE << np.minimum(e, 63).astype(np.uint64), _ZERO)
    hi = np.where(e >= 64, _ONE << np.clip(e - 64, 0, 63).astype(np.uint64), _ZERO)
    return hi, lo


def cut_ranges(version: int, first_hi: np.ndarray, first_lo: np.ndarray, last_hi: np.ndarray,
               last_lo: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every inclusive range cut into the fewest aligned CIDR blocks, all ranges at once:
    ``(owner, hi, lo, prefixlen)``, ``owner`` the index of each block's range.

    Greedy from each range's start: the largest aligned block that starts there and ends
    inside the range, then the next (as :func:`ipallow._parse.range_to_networks` does for
    one range).  Blocks come round by round, so each range's blocks are in ascending order
    among themselves.
    """
    bits = MAX_BITS[version]
    owner = np.arange(len(first_lo), dtype=np.int64)
    cur_hi = np.asarray(first_hi, dtype=np.uint64).copy()
    cur_lo = np.asarray(first_lo, dtype=np.uint64).copy()
    end_hi, end_lo = np.asarray(last_hi, dtype=np.uint64), np.asarray(last_lo, dtype=np.uint64)
    out_owner, out_hi, out_lo, out_len = [], [], [], []
    while len(cur_lo):
        # span = end - cur (no overflow: cur <= end)
        span_lo = end_lo - cur_lo
        span_hi = end_hi - cur_hi - (end_lo < cur_lo).astype(np.uint64)
        length = np.where(span_hi != _ZERO, 64 + _bit_length64(span_hi), _bit_length64(span_lo))
        mask_hi, mask_lo = low_mask64(np.clip(length - 64, 0, 64)), low_mask64(np.clip(length, 0, 64))
        all_ones = (span_hi == mask_hi) & (span_lo == mask_lo)      # span + 1 is a power of two
        fits = np.where(all_ones, length, length - 1)               # floor(log2(span + 1))
        e = np.minimum(np.minimum(_trailing_zeros(cur_hi, cur_lo), bits), fits)
        out_owner.append(owner)
        out_hi.append(cur_hi)
        out_lo.append(cur_lo)
        out_len.append((bits - e).astype(np.uint8))
        done = all_ones & (e == length)       # this block ends exactly at the range's end
        keep = ~done
        owner, cur_hi, cur_lo, e = owner[keep], cur_hi[keep], cur_lo[keep], e[keep]
        end_hi, end_lo = end_hi[keep], end_lo[keep]
        add_hi, add_lo = _pow2(e)
        new_lo = cur_lo + add_lo
        cur_hi = cur_hi + add_hi + (new_lo < cur_lo).astype(np.uint64)
        cur_lo = new_lo
    if not out_lo:
        empty = np.zeros(0, np.uint64)
        return np.zeros(0, np.int64), empty, empty, np.zeros(0, np.uint8)
    return (np.concatenate(out_owner), np.concatenate(out_hi), np.concatenate(out_lo),
            np.concatenate(out_len))
