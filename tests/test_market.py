"""The market model against closed forms, with jumps, regimes and feedback switched off.

Tolerances are 4 standard errors for the path count used: the standard error of a sample
mean is sqrt(var / n), of a sample variance of normals var * sqrt(2 / (n - 1)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import small_config

from gpusim import simulate
from gpusim.config import correlation_matrix
from gpusim.model.market import DT

N_PATHS = 20_000
CLOSED_FORM = (
    "switches.jumps=false", "switches.regimes=false", "switches.capacity_response=false",
    "switches.fire_sale=false", "market.price.floor=2.5", "market.price.cap=2.5",
    "market.demand.growth.reversion=0", "market.demand.growth.volatility=0",
    "horizon_months=60",
)


def assert_moments(sample: np.ndarray, mean: float, var: float) -> None:
    n = sample.size
    assert abs(sample.mean() - mean) < 4 * math.sqrt(var / n), (sample.mean(), mean)
    assert abs(sample.var(ddof=1) - var) < 4 * var * math.sqrt(2 / (n - 1)), (
        sample.var(ddof=1), var)


@pytest.fixture(scope="module")
def closed_form_run():
    config = small_config(*CLOSED_FORM)
    return config, simulate(config, paths=N_PATHS, seed=11)


@pytest.mark.parametrize("t", [1, 12, 59])
def test_log_demand_is_brownian_motion_with_drift(closed_form_run, t):
    config, ds = closed_form_run
    d = config.market.demand
    ln_d = np.log(ds.token_demand.isel(month=t).values)
    mean = math.log(d.tokens_per_month) + t * (d.growth.initial - d.volatility**2 / 2) * DT
    assert_moments(ln_d, mean, d.volatility**2 * DT * t)


@pytest.mark.parametrize("t", [1, 12, 59])
def test_log_price_is_the_discrete_ou_process(closed_form_run, t):
    config, ds = closed_form_run
    p = config.market.price
    a = 1 - p.reversion * DT
    target = math.log(p.cap)
    ln_p = np.log(ds.rental_price.isel(month=t).values)
    mean = target + a**t * (math.log(p.initial) - target)
    var = p.volatility**2 * DT * (1 - a ** (2 * t)) / (1 - a**2)
    assert_moments(ln_p, mean, var)


def test_cube_shocks_have_the_configured_correlation(closed_form_run):
    """Recover the demand, price and collateral shocks from the paths and correlate them."""
    config, ds = closed_form_run
    c = correlation_matrix(config.correlations)
    m = config.market
    ln_d = np.log(ds.token_demand.values)
    ln_p = np.log(ds.rental_price.values)
    ln_v = np.log(ds.collateral_value.values)
    a = 1 - m.price.reversion * DT
    z_demand = np.diff(ln_d, axis=1)[:, :12].ravel()
    z_price = (ln_p[:, 1:13] - (a * ln_p[:, :12] + (1 - a) * math.log(m.price.cap))).ravel()
    z_coll = (np.diff(ln_v, axis=1)[:, :12] - m.collateral.price_elasticity
              * np.diff(ln_p, axis=1)[:, :12]).ravel()
    sample = np.corrcoef([z_demand, z_price, z_coll])
    expected = c[np.ix_([0, 2, 3], [0, 2, 3])]
    se = (1 - expected**2) / math.sqrt(z_demand.size)
    assert np.all(np.abs(sample - expected) < 4 * se + 1e-12)


def test_start_values_and_units(make_config):
    config = make_config()
    ds = simulate(config, paths=200, seed=1)
    first = ds.isel(month=0)
    np.testing.assert_allclose(first.rental_price, config.market.price.initial, rtol=1e-15)
    np.testing.assert_allclose(first.collateral_value, config.market.collateral.initial,
                               rtol=1e-15)
    np.testing.assert_array_equal(first.capacity, config.market.capacity.initial_gpus)
    for name, var in ds.data_vars.items():
        assert var.attrs["units"] and var.attrs["long_name"], name
    assert ds.month.values[0] == np.datetime64("2026-01-01")
    assert ds.attrs["seed"] == 1 and ds.attrs["device"].startswith("cpu")
    assert "market:" in ds.attrs["config"] and ds.attrs["gpusim_version"]


def test_full_model_stays_in_bounds(make_config):
    ds = simulate(make_config(), paths=2000, seed=5)
    assert float(ds.utilization.min()) >= 0 and float(ds.utilization.max()) <= 1
    assert float(ds.collateral_value.min()) >= 1_000  # scrap floor
    assert float(ds.sofr.min()) >= 0
    assert set(np.unique(ds.regime.values)) <= {0, 1}
    assert (ds.regime.isel(month=-1) == 1).mean() > 0.05  # the bust regime is visited


def test_launch_lowers_the_price_in_its_month(make_config):
    """Same draws with and without the July launch: ln P differs by the impact from July on."""
    with_launch = simulate(make_config("switches.regimes=false"), paths=300, seed=3)
    without = simulate(make_config("switches.regimes=false", "market.price.launches=[]"),
                       paths=300, seed=3)
    gap = np.log(without.rental_price.values) - np.log(with_launch.rental_price.values)
    np.testing.assert_allclose(gap[:, :6], 0, atol=1e-12)
    np.testing.assert_allclose(gap[:, 6], 0.1, rtol=1e-12)


def test_efficiency_shocks_have_poisson_frequency(make_config):
    """With rebound 0 and no trend, ln e falls by J per shock; counts are Poisson(λΔ)."""
    config = make_config("market.efficiency.rebound=0", "market.efficiency.trend_per_year=0",
                         "market.efficiency.shock_rate_per_year=2.4",
                         "market.price.volatility=0", "market.demand.volatility=0",
                         "market.demand.growth.volatility=0", "switches.regimes=false",
                         "market.demand.price_elasticity=0",
                         "market.demand.training_gpu_hours=[]")
    ds = simulate(config, paths=5000, seed=8)
    # With every other shock off, inference demand H = D·e/1e6 tracks e exactly.
    d = config.market.demand
    ln_e = (np.log(ds.gpu_hour_demand.values) - np.log(ds.token_demand.values) + math.log(1e6))
    drops = -np.diff(ln_e, axis=1) / config.market.efficiency.shock_log_size
    counts = np.rint(drops)
    np.testing.assert_allclose(drops, counts, atol=1e-9)
    lam = 2.4 * DT
    n = counts.size
    assert abs(counts.mean() - lam) < 4 * math.sqrt(lam / n)
    assert abs((counts == 0).mean() - math.exp(-lam)) < 4 * math.sqrt(
        math.exp(-lam) * (1 - math.exp(-lam)) / n)
    assert d.volatility == 0


def test_float32_option_tracks_float64(make_config):
    d64 = simulate(make_config(), paths=500, seed=2)
    d32 = simulate(make_config("dtype=float32"), paths=500, seed=2)
    assert d32.rental_price.dtype == np.float32
    np.testing.assert_allclose(d32.rental_price.values, d64.rental_price.values, rtol=1e-3)
