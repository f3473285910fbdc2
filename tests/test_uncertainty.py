"""The Monte Carlo errors are right: the formulas equal scipy's, cube and summary stores
agree, and over many independent seeds the spread of each estimate matches its stated
standard error and its intervals cover the truth as often as they say."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import firms_config
from scipy import special, stats

from gpusim import run, simulate, uncertainty
from gpusim.analysis import expected_shortfall, value_at_risk

SEEDS = 100
"""Independent runs in the honesty test."""
PATHS = 800
"""Paths per run: the estimates are roughly normal, yet a run stays ~0.05 s."""
SD_TOLERANCE = 4 / np.sqrt(2 * (SEEDS - 1))
"""The sample SD of SEEDS normal estimates has relative sd 1/√(2(SEEDS − 1)); 4 of those."""
COVERAGE_TOLERANCE = 4 * np.sqrt(0.05 * 0.95 / SEEDS)
"""Four binomial sds of the share of SEEDS intervals that cover."""


@pytest.mark.parametrize(("k", "n"), [(0, 50), (1, 50), (25, 50), (49, 50), (50, 50),
                                      (3, 10_000)])
def test_wilson_interval_is_scipys(k, n):
    expected = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    low, high = uncertainty.wilson(k, n)
    np.testing.assert_allclose([low, high], [expected.low, expected.high], atol=1e-12)


@pytest.mark.parametrize("n", [20, 200, 1000, 100_000])
@pytest.mark.parametrize("q", [0.05, 0.5, 0.975, 0.99])
def test_order_ranks_cover_at_least_the_level(n, q):
    low, high = uncertainty.order_ranks(n, q)
    assert 0 <= low <= np.floor(q * (n - 1)) <= high <= n - 1
    if low > 0 and high < n - 1:  # unclipped: P(low < B ≤ high) with B ~ binomial(n, q)
        coverage = stats.binom.cdf(high, n, q) - stats.binom.cdf(low, n, q)
        assert coverage >= 0.95


LEVELS = (0.001, 0.01, 0.025, 0.05, 0.1, 0.25, 1 / 3, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.999)


@pytest.mark.parametrize("t", [0.025, 0.975])
def test_binomial_quantile_is_scipy_stats_at_the_intervals_tails(t):
    """At the tails of the 95% order-statistic intervals, the bisection gives scipy.stats'
    ppf at every n of a fine grid and at large and odd ones, for the quantile levels
    gpusim's estimates use and others (at an exact tie, P(B ≤ k) = t, which other tails
    meet, e.g. n = 15, p = t = ½, scipy's answer is k + 1)."""
    ns = [*range(1, 1201, 7), 2047, 2048, 16_384, 99_999, 100_000, 1_000_003, 10_000_000]
    for n in ns:
        for p in LEVELS:
            assert uncertainty.binomial_quantile(t, n, p) == int(stats.binom.ppf(t, n, p)), \
                (t, n, p)


def test_binomial_quantile_is_the_smallest_k_reaching_t():
    rng = np.random.default_rng(11)
    for _ in range(300):
        n, p, t = int(rng.integers(1, 5000)), rng.uniform(0.001, 0.999), rng.uniform()
        k = uncertainty.binomial_quantile(t, n, p)
        assert 0 <= k <= n and special.bdtr(k, n, p) >= t
        assert k == 0 or special.bdtr(k - 1, n, p) < t


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The same 900 paths as a dask-backed cube (3 blocks) and as a summary store."""
    root = tmp_path_factory.mktemp("stores")
    return {mode: xr.open_zarr(run(firms_config(), root / f"{mode}.zarr", paths=900, seed=4,
                                   block_paths=300, mode=mode))
            for mode in ("cube", "summary")}


def test_errors_are_the_same_on_cube_and_summary_stores(stores):
    cube, summary = stores["cube"], stores["summary"]
    for name in ("default_curve", "ltv_breach_curve", "expected_loss", "var", "es"):
        lazy = getattr(cube.gpusim, name)(errors=True)
        assert all(v.chunks is not None for v in lazy.data_vars.values()), name
        xr.testing.assert_allclose(lazy.compute(), getattr(summary.gpusim, name)(errors=True))
    marginal = cube.gpusim.default_curve(marginal=True).compute()
    np.testing.assert_allclose(marginal.cumsum("month"), cube.gpusim.default_curve())


def test_point_values_are_unchanged(stores):
    ds = stores["cube"]
    xr.testing.assert_allclose(ds.gpusim.var(0.99, errors=True)["value"].compute(),
                               value_at_risk(ds, 0.99).compute(), check_dim_order=False)
    np.testing.assert_allclose(ds.gpusim.es(errors=True)["value"],
                               expected_shortfall(ds, 0.975))


def test_sketch_intervals_contain_the_exact_order_statistic_intervals(stores):
    quantiles = (0.05, 0.5, 0.95)
    for name in ("rental_price", "cash", "balance"):
        exact = stores["cube"].gpusim.fan(name, quantiles, errors=True).compute()
        sketched = stores["summary"].gpusim.fan(name, quantiles, errors=True)
        assert sketched.attrs["relative_accuracy"] == 0.01
        assert np.all(sketched.ci_low.values <= exact.ci_low.values), name
        assert np.all(sketched.ci_high.values >= exact.ci_high.values), name
        slack = 1e-12 * np.abs(exact.value)  # linear interpolation between equal values
        assert np.all(exact.ci_low - slack <= exact.value), name
        assert np.all(exact.value <= exact.ci_high + slack), name


def _estimates(ds: xr.Dataset) -> dict[str, xr.Dataset]:
    """The estimates whose error is checked, each a Dataset with value and se or ci."""
    month = ds.sizes["month"] - 1
    return {
        "pd": uncertainty.default_probability(ds).isel(month=month),
        "marginal pd": uncertainty.default_probability(ds, marginal=True).isel(month=6),
        "ltv breach": uncertainty.ltv_breach_probability(ds).isel(month=month),
        "expected loss": uncertainty.expected_loss(ds),
        "es": uncertainty.expected_shortfall(ds, 0.975),
        "var": uncertainty.value_at_risk(ds, 0.99),
        "price quantiles": ds.gpusim.fan("rental_price", (0.05, 0.5, 0.95),
                                         errors=True).isel(month=month),
    }


@pytest.fixture(scope="module")
def many_seeds():
    """Each estimate over SEEDS independent runs (stacked on a new `seed` dim), and the
    same estimates from all of their paths pooled (SEEDS times as precise: the truth)."""
    runs = [simulate(firms_config(), paths=PATHS, seed=1000 + s) for s in range(SEEDS)]
    per_seed = [_estimates(ds) for ds in runs]
    stacked = {name: xr.concat([e[name] for e in per_seed], "seed") for name in per_seed[0]}
    pooled = xr.concat(runs, "path")
    pooled["path"] = np.arange(pooled.sizes["path"])
    return stacked, _estimates(pooled)


@pytest.mark.parametrize("name", ["pd", "marginal pd", "ltv breach", "expected loss", "es"])
def test_spread_over_seeds_matches_the_stated_standard_error(many_seeds, name):
    estimates = many_seeds[0][name]
    spread = estimates["value"].std("seed", ddof=1)
    stated = estimates["se"].mean("seed")
    ratio = (spread / stated).values
    assert np.all(np.abs(ratio - 1) <= SD_TOLERANCE), f"{name}: spread / se = {ratio}"


@pytest.mark.parametrize("name", ["pd", "ltv breach", "expected loss", "var",
                                  "price quantiles"])
def test_intervals_cover_the_pooled_estimate(many_seeds, name):
    estimates, pooled = many_seeds[0][name], many_seeds[1][name]["value"]
    covered = ((estimates.ci_low <= pooled) & (pooled <= estimates.ci_high)).mean("seed")
    assert np.all(covered.values >= 0.95 - COVERAGE_TOLERANCE), f"{name}: {covered.values}"


@pytest.mark.parametrize("chunk_bytes", [1, 3 * 8 * 2 * 700, 10**9])
def test_path_quantiles_are_numpys_with_all_paths_of_some_months_a_chunk(monkeypatch,
                                                                        chunk_bytes):
    """Exact quantiles over paths, whichever months share a chunk: numpy's to rounding,
    and bit for bit what dask gives with one month a chunk (xarray's lerp there differs
    from its in-memory one by an ulp at times); every path in one chunk, at least one
    month, at most all of them."""
    rng = np.random.default_rng(5)
    values = rng.lognormal(size=(700, 12, 2))  # (path, month, facility)
    lazy = xr.DataArray(values, dims=("path", "month", "facility")).chunk(
        {"path": 256, "month": -1})
    monkeypatch.setattr(uncertainty, "PATH_CHUNK_BYTES", chunk_bytes)
    chunked = uncertainty.all_paths(lazy)
    months = min(max(chunk_bytes // (700 * 2 * 8), 1), 12)
    assert chunked.chunks == ((700,), (months,) * (12 // months) + ((12 % months,) if 12 % months
                                                                   else ()), (2,))
    for method in ("linear", "lower"):
        got = uncertainty.path_quantiles(lazy, [0.05, 0.5, 0.99], method=method)
        assert got.chunks is not None and got.dims == ("quantile", "month", "facility")
        month_a_chunk = lazy.chunk({"path": -1, "month": 1}).quantile(
            [0.05, 0.5, 0.99], dim="path", method=method)
        np.testing.assert_array_equal(got.values, month_a_chunk.values)
        np.testing.assert_allclose(
            got.values, np.quantile(values, [0.05, 0.5, 0.99], axis=0, method=method),
            rtol=1e-15, atol=0)
    in_memory = xr.DataArray(values, dims=("path", "month", "facility"))
    assert uncertainty.all_paths(in_memory) is in_memory
