"""Credit summaries equal plain numpy on small runs, lazily on a store and in memory."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import firms_config

from gpusim import run, simulate
from gpusim.analysis import (
    credit_summary,
    default_curve,
    expected_loss,
    expected_shortfall,
    ltv_breach_curve,
    value_at_risk,
)
from gpusim.cli import main


@pytest.fixture(scope="module")
def firm_run():
    return simulate(firms_config(), paths=1500, seed=6)


def test_curves_are_path_means(firm_run):
    ds = firm_run
    np.testing.assert_allclose(default_curve(ds).transpose("month", "firm"),
                               ds.defaulted.values.mean(axis=0))
    np.testing.assert_allclose(ltv_breach_curve(ds).transpose("month", "firm"),
                               ds.ltv_breach.values.mean(axis=0))
    curve = default_curve(ds).values
    assert np.all(np.diff(curve, axis=0) >= 0)  # cumulative


def test_losses_match_numpy(firm_run):
    losses = firm_run.loss_total.values  # (path, facility)
    np.testing.assert_allclose(expected_loss(firm_run), losses.mean(axis=0))
    np.testing.assert_allclose(value_at_risk(firm_run, 0.99), np.quantile(losses, 0.99, axis=0))
    k = int(np.ceil(1500 * 0.025))
    worst = -np.sort(-losses, axis=0)[:k]
    np.testing.assert_allclose(expected_shortfall(firm_run, 0.975), worst.mean(axis=0))
    assert np.all(expected_shortfall(firm_run, 0.975) >= value_at_risk(firm_run, 0.975) - 1e-6)


@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 0.975, 0.99, 0.9999, 1.0])
def test_value_at_risk_is_numpys_quantile_at_every_level(firm_run, q):
    losses = firm_run.loss_total.values
    np.testing.assert_allclose(value_at_risk(firm_run, q), np.quantile(losses, q, axis=0),
                               rtol=1e-12)


def test_summary_on_a_lazy_store_equals_in_memory(tmp_path, firm_run):
    store = run(firms_config(), tmp_path / "f.zarr", paths=1500, seed=6, block_paths=400)
    lazy = xr.open_zarr(store)
    assert lazy.defaulted.chunks is not None
    # the tail measures stay lazy (bounded by the tail, not the path count)
    assert expected_shortfall(lazy).chunks is not None
    assert value_at_risk(lazy).chunks is not None
    xr.testing.assert_allclose(credit_summary(lazy), credit_summary(firm_run))


def test_cli_summary_prints_credit_tables(tmp_path, capsys):
    store = run(firms_config(), tmp_path / "f.zarr", paths=300, seed=2)
    assert main(["summary", str(store)]) == 0
    printed = capsys.readouterr().out
    for text in ("cumulative default probability", "lessor", "miner", "ddtl", "VaR 99%",
                 "ES 97.5%", "expected loss"):
        assert text in printed
