"""Monte Carlo error of every estimate gpusim reports: standard errors and 95% intervals.

Each function takes an opened store (a dask-backed cube, an in-memory cube from
`gpusim.simulate`, or a summary store) and returns an `xarray.Dataset` with the estimate
`value` and its error: `se` (a standard error, in the estimate's units) where one exists,
and `ci_low`/`ci_high`, a two-sided interval of nominal level `LEVEL` (95%):

- proportions (default and LTV-breach probabilities): the binomial standard error
  √(p(1−p)/n) and the Wilson score interval, which stays inside [0, 1] and keeps its
  coverage when p is near 0 or 1 (where p ± 1.96·se would not);
- expected loss: the sample standard deviation over √n;
- value at risk and quantiles: the distribution-free order-statistic interval
  [X₍ₗ₎, X₍ᵤ₎], whose ranks are binomial(n, q) quantiles, so it covers the true quantile
  with probability ≥ 95% whatever the loss distribution (atoms at zero included);
  on a summary store, the sketch's relative accuracy α widens it further;
- expected shortfall: the asymptotic standard error of the tail mean,
  √(n·Var((X − VaR)⁺))/k for the mean of the worst k losses (its derivative in VaR
  vanishes, so VaR's own error adds nothing to first order), and ES ± 1.96·se.

Everything is computed from the per-path values that cube and summary stores both keep
exactly (`default_month`, `loss_total`) or from counts, so the two kinds of store give the
same errors; on a dask-backed cube the results stay lazy (the tail measures read only the
largest losses, via `dask.array.topk`).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np
import xarray as xr

from gpusim import sketch
from gpusim.outputs import sketch_name

LEVEL = 0.95
"""Nominal coverage of every interval."""
Z = NormalDist().inv_cdf(0.5 + LEVEL / 2)
"""The normal quantile of the two-sided LEVEL interval (1.96)."""


def is_summary(ds: xr.Dataset) -> bool:
    """Whether `ds` is a summary store (sketches) rather than a cube (every path)."""
    return ds.attrs.get("mode") == "summary"


# --- proportions ----------------------------------------------------------------------------

def wilson(k: Any, n: int, z: float = Z) -> tuple[Any, Any]:
    """Wilson score interval of a binomial proportion: k successes out of n trials.

    Works elementwise on numbers, numpy, dask or xarray arrays; returns (low, high).
    """
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def proportion(k: xr.DataArray, n: int, units: str = "1") -> xr.Dataset:
    """A proportion k/n with its binomial standard error and Wilson 95% interval."""
    p = k / n
    low, high = wilson(k, n)
    out = xr.Dataset({"value": p, "se": np.sqrt(p * (1 - p) / n),
                      "ci_low": low, "ci_high": high})
    return out.assign_attrs(units=units, paths=n, level=LEVEL, interval="Wilson score")


def month_index(ds: xr.Dataset) -> xr.DataArray:
    """Each month's 0-based index, on the store's month coordinate (to compare with
    per-path default months)."""
    return xr.DataArray(np.arange(ds.sizes["month"]), dims="month",
                        coords={"month": ds["month"]})


def defaulted_by(default_month: xr.DataArray, month: Any) -> xr.DataArray:
    """Per path, whether the default (`default_month`, -1: none) happened by month index
    `month`: one index, or `month_index(ds)` for every month of the run."""
    return (default_month >= 0) & (default_month <= month)


def default_probability(ds: xr.Dataset, marginal: bool = False) -> xr.Dataset:
    """Probability of default by month and firm, with its error (month, firm).

    Cumulative (default): the share of paths whose firm has defaulted by the month.
    Marginal: the share that default in that month (unconditional). From the exact
    per-path default months, on either kind of store.
    """
    dm = ds["default_month"]
    month = month_index(ds)
    hit = (dm == month) if marginal else defaulted_by(dm, month)
    kind = "marginal" if marginal else "cumulative"
    return proportion(hit.sum("path").transpose("month", "firm"), ds.sizes["path"]).assign_attrs(
        long_name=f"{kind} probability of default")


def ltv_breach_probability(ds: xr.Dataset) -> xr.Dataset:
    """Probability that a firm's LTV test fails in the month, with its error (month, firm)."""
    if is_summary(ds):
        k = ds["ltv_breach_count"]
    else:
        k = ds["ltv_breach"].astype("int64").sum("path")
    return proportion(k.transpose("month", "firm"), ds.sizes["path"]).assign_attrs(
        long_name="probability of an LTV breach in the month")


# --- losses ---------------------------------------------------------------------------------

def expected_loss(ds: xr.Dataset) -> xr.Dataset:
    """Mean lender loss over the run per facility [USD], its standard error and the
    normal 95% interval (the mean of n independent paths)."""
    losses = ds["loss_total"]
    n = ds.sizes["path"]
    value = losses.mean("path")
    se = losses.std("path", ddof=1) / np.sqrt(n) if n > 1 else xr.full_like(value, np.nan)
    return xr.Dataset({"value": value, "se": se, "ci_low": value - Z * se,
                       "ci_high": value + Z * se}).assign_attrs(
        units="USD", paths=n, level=LEVEL, long_name="expected loss over the run")


def paired_difference(x: xr.DataArray, y: xr.DataArray) -> xr.Dataset:
    """mean(x) − mean(y) over matched paths (common random numbers), with the standard
    error of the per-path differences, sd(x − y)/√n, and the normal 95% interval."""
    d = (x - y).astype("float64")
    n = d.sizes["path"]
    value = d.mean("path")
    se = d.std("path", ddof=1) / np.sqrt(n) if n > 1 else xr.full_like(value, np.nan)
    return xr.Dataset({"value": value, "se": se, "ci_low": value - Z * se,
                       "ci_high": value + Z * se}).assign_attrs(
        paths=n, level=LEVEL, pairing="paired")


def largest(ds: xr.Dataset, k: int) -> Any:
    """The k largest losses over the run per facility, largest first (facility, k).

    Lazy on a dask-backed store: `dask.array.topk` keeps only the k largest per chunk,
    so memory is bounded by the tail, not by the path count."""
    import dask.array as da  # loaded with the first lazy store, not with `import gpusim`

    losses = ds["loss_total"].transpose("facility", "path").data
    k = min(max(k, 1), ds.sizes["path"])
    if isinstance(losses, da.Array):
        return da.topk(losses, k, axis=1)
    return -np.sort(-np.asarray(losses), axis=1)[:, :k]


def order_ranks(n: int, q: float, level: float = LEVEL) -> tuple[int, int]:
    """0-based ascending ranks (l, u) of the order-statistic interval [X₍ₗ₎, X₍ᵤ₎] for the
    q-quantile of n draws: P(l < B ≤ u) ≥ level for B ~ binomial(n, q), the number of
    draws below the true quantile; clipped to [0, n − 1] (then the coverage is lower)."""
    tail = (1 - level) / 2
    low = binomial_quantile(tail, n, q) - 1
    high = binomial_quantile(1 - tail, n, q)
    return max(low, 0), min(high, n - 1)


def binomial_quantile(t: float, n: int, p: float) -> int:
    """The smallest k in [0, n] with P(B ≤ k) ≥ t for B ~ binomial(n, p), 0 < t < 1: what
    `scipy.stats.binom.ppf` gives, found by bisection on the binomial CDF
    (`scipy.special.bdtr`, ≤ 1 + log₂ n calls). scipy.stats alone would add ~1 s to every
    command that prints an interval; scipy.special loads in ~0.2 s, with the first
    interval rather than with `import gpusim`."""
    from scipy.special import bdtr

    below, at_least = -1, n  # P(B ≤ below) < t ≤ P(B ≤ at_least), P(B ≤ −1) = 0
    while at_least - below > 1:
        middle = (below + at_least) // 2
        if bdtr(middle, n, p) >= t:
            at_least = middle
        else:
            below = middle
    return at_least


def _per_facility(ds: xr.Dataset, values: dict[str, Any], **attrs: Any) -> xr.Dataset:
    coords = {key: c for key, c in ds["loss_total"].coords.items() if c.dims == ("facility",)}
    return xr.Dataset({name: xr.DataArray(v, coords=coords, dims=["facility"])
                       for name, v in values.items()}).assign_attrs(units="USD", **attrs)


def value_at_risk(ds: xr.Dataset, q: float = 0.99) -> xr.Dataset:
    """The q-quantile of the loss over the run per facility [USD] (numpy's linear
    quantile) and its order-statistic 95% interval, read from the largest losses only."""
    n = ds.sizes["path"]
    position = (n - 1) * q
    below = int(np.floor(position))
    low_rank, high_rank = order_ranks(n, q)
    top = largest(ds, n - min(below, low_rank))  # descending: rank r is column n − 1 − r

    def rank(r: int) -> Any:
        return top[:, n - 1 - r]

    value = rank(below) + (position - below) * (rank(min(below + 1, n - 1)) - rank(below))
    return _per_facility(ds, {"value": value, "ci_low": rank(low_rank),
                              "ci_high": rank(high_rank)},
                         paths=n, level=LEVEL, interval="order statistics",
                         long_name=f"{q:.1%} value at risk of the loss over the run")


def expected_shortfall(ds: xr.Dataset, q: float = 0.975) -> xr.Dataset:
    """Mean of the worst k = ⌈n(1 − q)⌉ losses per facility [USD], its asymptotic
    standard error √(n·Var((X − v)⁺))/k (v: the k-th largest loss) and ES ± 1.96·se."""
    n = ds.sizes["path"]
    k = max(1, int(np.ceil(n * (1 - q) - 1e-9)))
    top = largest(ds, k)
    value = top.mean(axis=1)
    excess = top - top[:, k - 1:k]  # (X − v)⁺ on the k largest, 0 on every other path
    m1, m2 = excess.sum(axis=1) / n, (excess * excess).sum(axis=1) / n
    se = (n * np.maximum(m2 - m1 * m1, 0.0)) ** 0.5 / k
    return _per_facility(ds, {"value": value, "se": se, "ci_low": value - Z * se,
                              "ci_high": value + Z * se},
                         paths=n, level=LEVEL, interval="normal, asymptotic tail-mean se",
                         long_name=f"{q:.1%} expected shortfall of the loss")


# --- quantiles of monthly variables ---------------------------------------------------------

def rank_levels(n: int, ranks: Any) -> np.ndarray:
    """Quantile levels whose `method="lower"` order statistic (rank ⌊q(n − 1)⌋) is exactly
    `ranks`: the midpoints (r + ½)/(n − 1), which no rounding moves across an integer."""
    return np.minimum((np.asarray(ranks, dtype=np.float64) + 0.5) / max(n - 1, 1), 1.0)


def quantile_bounds(ds: xr.Dataset, variable: str, quantiles: tuple[float, ...]
                    ) -> xr.Dataset:
    """The 95% order-statistic interval of each quantile of a monthly variable
    (quantile, month[, entity]): `ci_low`, `ci_high` in the variable's units.

    On a cube the order statistics are exact; on a summary store they are read from the
    sketch and widened by its relative accuracy α (and its MIN_MAGNITUDE floor), so the
    interval bounds the true quantile with ≥ 95% probability in both cases.
    """
    n = ds.sizes["path"]
    ranks = np.array([order_ranks(n, q) for q in quantiles])  # (quantile, 2)
    levels = rank_levels(n, ranks.ravel())
    if is_summary(ds):
        counts = ds[sketch_name(variable)]
        raw = sketch.quantiles(counts.values, levels)  # (..., 2·quantile)
        dims = counts.dims[:-1]
        coords = {d: ds[d] for d in dims}
        raw = np.moveaxis(raw, -1, 0).reshape(len(quantiles), 2, *raw.shape[:-1])
        slack = sketch.ALPHA / (1 - sketch.ALPHA) * np.abs(raw) + sketch.MIN_MAGNITUDE
        low, high = raw[:, 0] - slack[:, 0], raw[:, 1] + slack[:, 1]
        return _bounds(low, high, dims, coords, quantiles).assign_attrs(
            relative_accuracy=sketch.ALPHA)
    values = ds[variable]
    stats_ = path_quantiles(values, levels, method="lower")
    pairs = stats_.data.reshape(len(quantiles), 2, *stats_.shape[1:])
    dims = stats_.dims[1:]
    coords = {d: values[d] for d in dims if d in values.coords}
    return _bounds(pairs[:, 0], pairs[:, 1], dims, coords, quantiles)


PATH_CHUNK_BYTES = 64_000_000
"""About how much of a cube variable `path_quantiles` sorts at a time: all paths of as
many months as fit (one month at least)."""


def all_paths(values: xr.DataArray) -> xr.DataArray:
    """A cube variable chunked for reductions over paths: every path in one chunk, a few
    months a chunk (about PATH_CHUNK_BYTES; the store's chunks hold every month of a
    block of paths). Unchanged if not dask-backed."""
    if values.chunks is None:
        return values
    per_month = values.dtype.itemsize * values.size // max(values.sizes["month"], 1)
    months = max(1, min(values.sizes["month"], PATH_CHUNK_BYTES // max(per_month, 1)))
    return values.chunk({"path": -1, "month": months})


def path_quantiles(values: xr.DataArray, q: Any, method: str = "linear") -> xr.DataArray:
    """Quantiles over paths of a cube variable (quantile, month[, entity]), exact, lazily
    on dask: `all_paths` chunks, with the paths last so that numpy partitions each
    (month, entity) column along contiguous memory (2-3× faster than paths first, or one
    month a chunk, on a 100,000-path cube)."""
    return all_paths(values).transpose(..., "path").quantile(q, dim="path", method=method)


def _bounds(low: Any, high: Any, dims: tuple, coords: dict, quantiles: tuple[float, ...]
            ) -> xr.Dataset:
    coords = {**coords, "quantile": list(quantiles)}
    return xr.Dataset({name: xr.DataArray(a, dims=("quantile", *dims), coords=coords)
                       for name, a in (("ci_low", low), ("ci_high", high))}).assign_attrs(
        level=LEVEL)
