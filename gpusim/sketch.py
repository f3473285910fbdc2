"""Mergeable quantile sketches with log-spaced buckets (the DDSketch idea, dense).

A value x with |x| ≥ MIN_MAGNITUDE falls in bucket key k = ⌈log_γ |x|⌉, γ = (1+α)/(1−α),
kept separately for positive and negative values; smaller magnitudes count as zero.
A bucket's representative value 2γᵏ/(γ+1) is within relative error α of every value in
it, so the quantile a sketch returns is within α (relative) of the exact order statistic
of rank ⌊q·(n−1)⌋, the `method="lower"` quantile of numpy, whatever n is. Values whose
magnitude is below MIN_MAGNITUDE come back as 0 (absolute error below MIN_MAGNITUDE);
magnitudes above MAX_MAGNITUDE are clamped into the top bucket.

Counts are integers, so merging sketches (blocks, workers, a resumed run) is addition:
exact and independent of order. The same code runs on numpy or CuPy arrays (xp), so on a
GPU the sketches are built on the device and only the counts leave it.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

ALPHA = 0.01
"""Relative accuracy of the sketch quantiles (1%): 8,983 buckets per sketch (`BUCKETS`)."""
MIN_MAGNITUDE = 1e-9
MAX_MAGNITUDE = 1e30
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LOG_GAMMA = math.log(GAMMA)
KEY_MIN = math.ceil(math.log(MIN_MAGNITUDE) / LOG_GAMMA)
KEY_MAX = math.ceil(math.log(MAX_MAGNITUDE) / LOG_GAMMA)
SIDE = KEY_MAX - KEY_MIN + 1
"""Buckets per sign."""
BUCKETS = 2 * SIDE + 1
"""Dense layout: [negative keys KEY_MAX .. KEY_MIN | zero | positive keys KEY_MIN .. KEY_MAX],
so bucket order is value order."""
ZERO = SIDE


def bucket_index(values: Any, xp: ModuleType = np) -> Any:
    """Dense bucket index (int64, same shape) of every value; NaN is an error upstream.

    Written with in-place operations on one float64 buffer: it runs over every value of
    every monthly variable of every block, so it is the hot path of summary mode.
    """
    work = xp.abs(values).astype(xp.float64)  # |x|, then ln|x|, then the signed index
    tiny = work < MIN_MAGNITUDE
    xp.maximum(work, MIN_MAGNITUDE, out=work)
    xp.log(work, out=work)
    work /= LOG_GAMMA
    xp.ceil(work, out=work)
    xp.clip(work, KEY_MIN, KEY_MAX, out=work)
    work -= KEY_MIN - 1  # 1 .. SIDE: the distance from the zero bucket
    negative = values < 0
    if xp is np:
        np.negative(work, out=work, where=negative)
    else:  # CuPy's ufuncs take no where=
        work = xp.where(negative, -work, work)
    work[tiny] = 0.0
    work += ZERO
    return work.astype(xp.int64)


CHUNK_VALUES = 1 << 18
"""Values bucketed at a time on the CPU: the temporaries stay in cache instead of being
fresh, page-faulting allocations the size of a whole block (which cost more than the
arithmetic)."""


def accumulate(counts: Any, values: Any, xp: ModuleType = np) -> None:
    """Add `values` (series..., n) into `counts` (series..., BUCKETS), in place.

    All leading axes are separate sketches (e.g. month × firm); the last axis is paths.
    """
    if not counts.flags.c_contiguous:
        raise ValueError("counts must be C-contiguous (it is updated through a flat view)")
    series = int(np.prod(values.shape[:-1]))
    rows = values.reshape(series, -1)
    flat_counts = counts.reshape(series * BUCKETS)
    step = series if xp is not np else max(1, CHUNK_VALUES // max(rows.shape[1], 1))
    for first in range(0, series, step):
        chunk = rows[first:first + step]
        index = bucket_index(chunk, xp)
        if xp is np and chunk.shape[1]:
            _add_narrow(flat_counts[first * BUCKETS:(first + len(chunk)) * BUCKETS], index)
            continue
        index += (xp.arange(len(chunk), dtype=xp.int64) * BUCKETS)[:, None]
        added = xp.bincount(index.ravel(), minlength=len(chunk) * BUCKETS)
        flat_counts[first * BUCKETS:(first + len(chunk)) * BUCKETS] += added.astype(
            counts.dtype, copy=False)


def _add_narrow(flat_counts: np.ndarray, index: np.ndarray) -> None:
    """Count bucket indices (rows, n) into rows of BUCKETS counts (flat), counting each row
    only over the span of buckets it hits (a month's values fill a few hundred of the
    8,983): a bincount rows × span wide instead of rows × BUCKETS, then only the nonzero
    counts added, each to its own bucket."""
    rows = index.shape[0]
    low = index.min(axis=1)
    width = int((index.max(axis=1) - low).max()) + 1
    local = index - low[:, None]
    local += (np.arange(rows, dtype=np.int64) * width)[:, None]
    added = np.bincount(local.ravel(), minlength=rows * width)
    hit = np.flatnonzero(added)
    row, offset = np.divmod(hit, width)
    flat_counts[row * BUCKETS + low[row] + offset] += added[hit].astype(flat_counts.dtype,
                                                                       copy=False)


def representative(index: np.ndarray) -> np.ndarray:
    """The value a bucket stands for: ±2γᵏ/(γ+1), or 0 for the zero bucket."""
    index = np.asarray(index)
    key = np.where(index > ZERO, index - ZERO - 1, ZERO - 1 - index) + KEY_MIN
    value = 2.0 * np.exp(key * LOG_GAMMA) / (GAMMA + 1.0)
    return np.where(index == ZERO, 0.0, np.where(index > ZERO, value, -value))


def quantiles(counts: np.ndarray, q: Any) -> np.ndarray:
    """Quantiles (levels q, placed on a new last axis) of sketches counts (..., BUCKETS).

    Returns the representative of the bucket holding the order statistic of rank
    ⌊q·(n−1)⌋; NaN where a sketch is empty.
    """
    counts = np.asarray(counts)
    levels = np.atleast_1d(np.asarray(q, dtype=np.float64))
    cumulative = np.cumsum(counts, axis=-1)
    total = cumulative[..., -1:]
    rank = np.floor(levels * (total - 1))  # (..., len(q))
    index = np.empty(rank.shape, dtype=np.int64)
    flat_cum = cumulative.reshape(-1, BUCKETS)
    flat_rank = rank.reshape(flat_cum.shape[0], -1)
    flat_index = index.reshape(flat_rank.shape)
    for row in range(flat_cum.shape[0]):
        flat_index[row] = np.searchsorted(flat_cum[row], flat_rank[row], side="right")
    values = representative(np.minimum(index, BUCKETS - 1))
    return np.where(total > 0, values, np.nan)
