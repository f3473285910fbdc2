"""Firms and their debt: cash identity, schedules, a hand-derived default, waterfall, monotonicity.

Statistical tolerances are 4 standard errors for the sample sizes used.
"""

from __future__ import annotations

import math

import numpy as np
import numpy_financial as npf
import pytest
from helpers import LESSOR, MINER, SMALL, firms_config

from gpusim import simulate
from gpusim.backends.reference import simulate_block
from gpusim.config import apply_overrides, config_from_dict
from gpusim.errors import InputError
from gpusim.model import firms
from gpusim.model.market import DT, market_params
from gpusim.streams import contract_uniforms

HOURS = 730.0


@pytest.fixture(scope="module")
def flows_run():
    config = firms_config("horizon_months=36")
    return config, simulate_block(config, seed=5, start=0, stop=4000, record_flows=True)


def test_cash_identity_holds_every_month_on_every_path(flows_run):
    config, out = flows_run
    cash = out["cash"]  # (months, firms, n)
    opening = np.array([f.opening_cash for f in config.firms])[:, None]
    previous = np.concatenate([np.broadcast_to(opening, cash.shape[1:])[None], cash[:-1]])
    f = {name: out[f"flow_{name}"] for name in firms.FLOWS}
    inflows = f["revenue"] + f["draws"]
    outflows = (f["operating_cost"] + f["capex"] + f["interest"] + f["principal"] + f["sweep"]
                + f["repayment"] + f["margin_call"] + f["settlement"])
    scale = np.maximum.reduce([np.abs(previous), inflows, outflows, np.ones_like(cash)])
    np.testing.assert_array_less(np.abs(cash - previous - (inflows - outflows)), 1e-12 * scale)
    assert (f["settlement"] != 0).any() and (f["margin_call"] > 0).any()  # exercised
    assert (f["sweep"] > 0).any() and (f["repayment"] > 0).any()


def one_firm_config(firm: dict, *overrides: str, market: tuple[str, ...] = ()):
    raw = apply_overrides(SMALL, market)
    raw["firms"] = [firm]
    return config_from_dict(apply_overrides(raw, overrides))


QUIET_MARKET = (
    "switches.jumps=false", "switches.regimes=false", "market.price.volatility=0",
    "market.price.floor=2.0", "market.price.cap=2.0", "market.collateral.volatility=0",
    "market.demand.volatility=0", "market.demand.growth.volatility=0",
    "market.rates.sofr.volatility=0", "market.rates.credit_spread.volatility=0",
)


def test_level_facility_matches_numpy_financial():
    firm = {
        "name": "rich", "opening_cash": 1e12,
        "fleet": {"gpus": 1000, "kw_per_gpu": 1, "power_price": 0.1, "opex_per_gpu_hour": 0.1,
                  "overhead_per_month": 0},
        "facilities": [{"name": "loan", "balance": 1.2e8, "rate_type": "fixed", "rate": 0.11,
                        "amortization": "level", "maturity": "2027-11", "seniority": 1}],
    }
    config = one_firm_config(firm)
    out = simulate_block(config, seed=1, start=0, stop=3, record_flows=True)
    nper = 23  # payments in months 2026-01 .. 2027-11
    per = np.arange(1, nper + 1)
    ipmt = -npf.ipmt(0.11 / 12, per, nper, 1.2e8)
    ppmt = -npf.ppmt(0.11 / 12, per, nper, 1.2e8)
    for path in range(3):
        np.testing.assert_allclose(out["flow_interest"][:nper, 0, path], ipmt, rtol=1e-9)
        np.testing.assert_allclose(out["flow_principal"][:nper, 0, path], ppmt, rtol=1e-9)
    assert np.all(out["balance"][nper - 1:, 0, :] == 0)
    assert np.all(out["flow_interest"][nper:] == 0)


def test_straight_line_and_bullet_schedules():
    firm = {
        "name": "rich", "opening_cash": 1e12,
        "fleet": {"gpus": 10, "kw_per_gpu": 1, "power_price": 0.1, "opex_per_gpu_hour": 0.1,
                  "overhead_per_month": 0},
        "facilities": [
            {"name": "sl", "balance": 1.2e7, "rate_type": "fixed", "rate": 0.06,
             "amortization": "straight_line", "maturity": "2026-12", "seniority": 1},
            {"name": "bullet", "balance": 5e6, "rate_type": "fixed", "rate": 0.12,
             "amortization": "bullet", "maturity": "2026-06", "seniority": 2},
        ],
    }
    out = simulate_block(one_firm_config(firm), seed=1, start=0, stop=1, record_flows=True)
    balances = out["balance"][:, :, 0]
    np.testing.assert_allclose(balances[:12, 0], 1.2e7 - 1e6 * np.arange(1, 13), atol=1e-6)
    np.testing.assert_allclose(out["flow_repayment"][5, 0, 0], 5e6)
    np.testing.assert_allclose(balances[:5, 1], 5e6)
    assert balances[5, 1] == 0


def test_deterministic_default_month_derived_by_hand():
    """All volatilities 0, flat price; every GPU contracted; a bullet loan; cash runs out.

    Monthly: contract margin 1,000 GPUs × (2.0 − 0.5) USD/h × 730 h = 1,095,000;
    overhead 2,000,000; interest 12,000,000 × 12% / 12 = 120,000 → net −1,025,000.
    Cash at the end of month t is 10,000,000 − (t + 1) · 1,025,000, first below the
    2,000,000 covenant at t + 1 = 8 (1,800,000): default at month index 7 (2026-08).
    """
    firm = {
        "name": "thin", "opening_cash": 1.0e7, "seizure_haircut": 0.25,
        "fleet": {"gpus": 1000, "kw_per_gpu": 1.0, "power_price": 0.1,
                  "opex_per_gpu_hour": 0.4, "overhead_per_month": 2.0e6},
        "contracts": [{"name": "c", "gpus": 1000, "price": 2.0, "end": "2032-01",
                       "renewal": {"p0": 1, "theta": 0}, "counterparty": {"name": "x"}}],
        "facilities": [{"name": "loan", "balance": 1.2e7, "rate_type": "fixed", "rate": 0.12,
                        "amortization": "bullet", "maturity": "2030-01", "pledged_share": 1.0,
                        "min_liquidity": 2.0e6, "seniority": 1}],
    }
    market = (*QUIET_MARKET, "market.collateral.initial=8000")
    config = one_firm_config(firm, market=market)
    out = simulate_block(config, seed=1, start=0, stop=2, record_flows=True)
    assert list(out["default_month"][0]) == [7, 7]
    # loss: claim = balance + the month's interest; pool = seized GPUs at V(1 − haircut)
    # plus the cash left before debt service in the default month.
    collateral = config.market.collateral
    value = collateral.initial * math.exp(-collateral.depreciation_per_year * DT * 7)
    cash_before_service = 1.0e7 - 7 * 1.025e6 + (1.095e6 - 2.0e6)
    pool = 1000 * value * 0.75 + cash_before_service
    claim = 1.2e7 * (1 + 0.12 / 12)
    np.testing.assert_allclose(out["loss_total"][0], max(claim - pool, 0.0), rtol=1e-9)
    assert max(claim - pool, 0.0) > 0
    np.testing.assert_allclose(out["cash"][6, 0], 1.0e7 - 7 * 1.025e6, rtol=1e-12)
    assert np.all(out["cash"][7:] == 0) and np.all(out["defaulted"][7:] == 1)
    assert np.all(out["defaulted"][:7] == 0)
    # the seized GPUs depress collateral value the next month (fire sale)
    on = out["collateral_value"][8, 0]
    off = simulate_block(one_firm_config(firm, "switches.fire_sale=false", market=market),
                         1, 0, 1)["collateral_value"][8, 0]
    phi, depth = collateral.fire_sale_impact, collateral.market_depth_gpus_per_month
    np.testing.assert_allclose(math.log(off / on), phi * 1000 / depth, rtol=1e-9)


def test_recoveries_follow_seniority_and_losses_are_bounded():
    config = firms_config("horizon_months=36")
    out = simulate_block(config, seed=21, start=0, stop=6000)
    loss = out["loss_total"]  # (facilities, n): ddtl (senior), notes (junior), gpu_loan
    balance = out["balance"]  # (months, facilities, n)
    assert np.all(loss >= 0)
    defaulted = out["default_month"][0] >= 0
    assert defaulted.sum() > 20
    t = out["default_month"][0][defaulted]
    paths = np.flatnonzero(defaulted)
    before = np.where(t > 0, balance[np.maximum(t - 1, 0), 0, paths],
                      LESSOR["facilities"][0]["balance"])
    max_rate = 0.0625 + float(out["sofr"].max()) + 0.0
    limit = before * (1 + max_rate / 12) + 5.0e7  # + at most one month's draw
    assert np.all(loss[0, paths] <= limit * (1 + 1e-12))
    senior_short = loss[0, paths] > 0
    junior_before = np.where(t > 0, balance[np.maximum(t - 1, 0), 1, paths], 5.0e8)
    # where the senior lender lost money, the junior one recovered nothing
    assert np.all(loss[1, paths][senior_short] >= junior_before[senior_short] * (1 - 1e-12))
    assert np.all(loss[:, ~defaulted][:2] == 0)


def test_fire_sale_feedback_never_lowers_a_default_indicator():
    on = simulate_block(firms_config("horizon_months=36"), seed=8, start=0, stop=6000)
    off = simulate_block(firms_config("horizon_months=36", "switches.fire_sale=false"),
                         seed=8, start=0, stop=6000)
    assert np.all(on["defaulted"] >= off["defaulted"])
    assert (on["defaulted"] > off["defaulted"]).any()  # the feedback bites somewhere


def test_lower_starting_price_never_lowers_default_probability():
    rates = []
    for price in (2.0, 1.7, 1.4):
        config = firms_config("horizon_months=36", f"market.price.initial={price}")
        assert config.market.demand.price_elasticity < 1
        out = simulate_block(config, seed=13, start=0, stop=6000)
        rates.append(out["defaulted"][-1].mean(axis=1))
    assert np.all(rates[1] >= rates[0]) and np.all(rates[2] >= rates[1])
    assert rates[2].sum() > rates[0].sum()


@pytest.mark.parametrize(("t", "spot", "expected"), [
    (3, 2.0, 0.8 * (2.0 / 4.0) ** 1.5),   # market below contract: fewer renewals
    (3, 5.0, 1.0),                        # above: clipped at 1
    (9, 2.0, 0.15),                       # after insourcing: p_insource
])
def test_renewal_frequency_matches_p(t, spot, expected):
    contract = firms.ContractSpec(
        gpus=10, price=4.0, start=-1, end=t - 1, p0=0.8, theta=1.5, premium=0.05, term=12,
        insource_month=8, p_insource=0.15, hazard=(0.0, 0.0), stream=0, default_stream=0)
    spec = firms.FirmSpec(name="f", gpus=10, cost_per_gpu_hour=0, overhead=0,
                          capex=np.zeros(12), opening_cash=0, haircut=0,
                          contracts=(contract,), facilities=())
    n = 40_000
    state = firms.initial_firm_state(spec, n, np.float64)
    market = firms.MarketNow(price=np.full(n, spot), utilization=np.ones(n),
                             collateral=np.ones(n), sofr=np.zeros(n), spread=np.zeros(n),
                             regime=np.zeros(n, dtype=np.int8), hours=HOURS)
    u = contract_uniforms(3, np.arange(n, dtype=np.uint64), t, 1)
    firms.update_contracts(spec, state, market, t, [u[0, 0]], [u[0, 1]], np)
    renewed = state.active[0]
    frequency = renewed.mean()
    assert abs(frequency - expected) <= 4 * math.sqrt(max(expected * (1 - expected), 1e-12) / n)
    np.testing.assert_allclose(state.price[0][renewed], spot * 1.05)
    assert np.all(state.end[0][renewed] == t + 11)


def test_counterparty_default_frequency_by_regime():
    contract = firms.ContractSpec(
        gpus=10, price=4.0, start=-1, end=100, p0=1, theta=0, premium=0, term=12,
        insource_month=firms.NEVER, p_insource=0, hazard=(0.01, 0.2), stream=0, default_stream=0)
    spec = firms.FirmSpec(name="f", gpus=10, cost_per_gpu_hour=0, overhead=0,
                          capex=np.zeros(12), opening_cash=0, haircut=0,
                          contracts=(contract,), facilities=())
    n = 40_000
    regime = (np.arange(n) % 2).astype(np.int8)
    state = firms.initial_firm_state(spec, n, np.float64)
    market = firms.MarketNow(price=np.ones(n), utilization=np.ones(n), collateral=np.ones(n),
                             sofr=np.zeros(n), spread=np.zeros(n), regime=regime, hours=HOURS)
    u = contract_uniforms(4, np.arange(n, dtype=np.uint64), 2, 1)
    firms.update_contracts(spec, state, market, 2, [u[0, 0]], [u[0, 1]], np)
    for r, hazard in ((0, 0.01), (1, 0.2)):
        lost = 1 - state.active[0][regime == r].mean()
        assert abs(lost - hazard) <= 4 * math.sqrt(hazard * (1 - hazard) / (n / 2))


@pytest.mark.parametrize(("override", "named"), [
    ("firms.0.contracts.0.gpus=90000", "contracts hold 110000 GPUs"),
    ("firms.0.facilities.1.pledged_share=0.6", "pledged_share add up to 1.1"),
    ("firms.0.facilities.1.seniority=1", "seniority must be unique; repeated: 1"),
    ("firms.0.facilities.0.secured_on=[ghost]", "names 'ghost'"),
    ("firms.0.facilities.0.draws.0.month=2025-01", "draws.0.month = '2025-01' is outside"),
    ("firms.0.contracts.0.end=2025-06", "end = '2025-06' is before the start month"),
    ("firms.1.name=lessor", "firms.name must be unique"),
    ("firms.0.facilities.0.rate_type=variable", "rate_type = 'variable'"),
    ("firms.0.facilities.0.amortisation=level", "did you mean 'amortization'"),
    ("firms.0.contracts.0.start=2027-06", "contracts.0.start = '2027-06' is after its end"),
    ("firms.0.facilities.1.draws=[{month: 2027-11, value: 1.0e7}]",
     "draws.month = '2027-11' is after its maturity"),
])
def test_bad_firm_configs_name_the_firm_and_field(override, named):
    with pytest.raises(InputError, match=None) as err:
        firms_config(override)
    assert named in str(err.value)


def test_cube_has_firm_and_facility_coordinates():
    ds = simulate(firms_config(), paths=300, seed=2)
    assert list(ds.firm.values) == ["lessor", "miner"]
    assert list(ds.facility.values) == ["ddtl", "notes", "gpu_loan"]
    assert list(ds.facility_firm.values) == ["lessor", "lessor", "miner"]
    assert ds.cash.dims == ("path", "month", "firm")
    assert ds.balance.dims == ("path", "month", "facility")
    assert ds.default_month.dims == ("path", "firm")
    np.testing.assert_array_equal(ds.loss_total, ds.loss.isel(month=-1))
    first = ds.default_month.where(ds.default_month >= 0)
    flagged = ds.defaulted.argmax("month").where(ds.defaulted.any("month"))
    np.testing.assert_array_equal(first, flagged)
    assert MINER["name"] in ds.firm


def test_market_params_unchanged_by_firms():
    assert market_params(firms_config()).k0 == market_params(
        config_from_dict(SMALL)).k0


def test_a_counterparty_defaults_once_for_all_its_contracts():
    """Two lessors renting to one counterparty lose it in the same month on every path."""
    shared = {"name": "bigco", "default_hazard": {"boom": 0.05, "bust": 0.05}}

    def renter(name: str, gpus: float, price: float) -> dict:
        return {"name": name, "opening_cash": 1e12,
                "fleet": {"gpus": gpus, "kw_per_gpu": 1, "power_price": 0.1,
                          "opex_per_gpu_hour": 0.1, "overhead_per_month": 0},
                "contracts": [{"name": f"{name}_bigco", "gpus": gpus, "price": price,
                               "end": "2031-01", "renewal": {"p0": 1, "theta": 0},
                               "counterparty": shared}]}

    raw = apply_overrides(SMALL, [])
    raw["firms"] = [renter("a", 1000, 2.2), renter("b", 300, 2.5)]
    config = config_from_dict(raw)
    specs = firms.firm_specs(config)
    assert specs[1].contracts[0].default_stream == specs[0].contracts[0].stream == 0
    out = simulate_block(config, seed=2, start=0, stop=3000)
    revenue = out["revenue"]  # (months, firms, paths): the whole fleet is under contract
    still_a = revenue[:, 0] == 1000 * 2.2 * HOURS
    still_b = revenue[:, 1] == 300 * 2.5 * HOURS
    assert (~still_a).any() and still_a.any()
    np.testing.assert_array_equal(still_a, still_b)


def test_inconsistent_counterparty_is_rejected():
    with pytest.raises(InputError, match="counterparty 'bigco' is described differently"):
        firms_config("firms.0.contracts.1.counterparty.name=bigco")


def test_a_defaulted_counterpartys_forward_contract_never_starts():
    shared = {"name": "bigco", "default_hazard": {"boom": 0.2, "bust": 0.2}}
    firm = {"name": "a", "opening_cash": 1e12,
            "fleet": {"gpus": 2000, "kw_per_gpu": 1, "power_price": 0.1,
                      "opex_per_gpu_hour": 0.1, "overhead_per_month": 0},
            "contracts": [
                {"name": "now", "gpus": 1000, "price": 2.2, "end": "2031-01",
                 "renewal": {"p0": 1, "theta": 0}, "counterparty": shared},
                {"name": "later", "gpus": 1000, "price": 3.0, "start": "2026-10",
                 "end": "2031-01", "renewal": {"p0": 1, "theta": 0}, "counterparty": shared}]}
    raw = apply_overrides(SMALL, [])
    raw["firms"] = [firm]
    config = config_from_dict(raw)
    spec = firms.firm_specs(config)[0]
    n = 4000
    state = firms.initial_firm_state(spec, n, np.float64)
    paths = np.arange(n, dtype=np.uint64)
    market = firms.MarketNow(price=np.full(n, 2.0), utilization=np.ones(n),
                             collateral=np.ones(n), sofr=np.zeros(n), spread=np.zeros(n),
                             regime=np.zeros(n, dtype=np.int8), hours=HOURS)
    for t in range(12):
        u = contract_uniforms(1, paths, t, 2)
        firms.update_contracts(spec, state, market, t, [u[0, 0], u[1, 0]],
                               [u[spec.contracts[0].default_stream, 1]] * 2, np)
    defaulted_early = state.gone[0]
    assert defaulted_early.mean() > 0.5
    assert not (state.active[1] & defaulted_early).any()
    np.testing.assert_array_equal(state.active[0], state.active[1])
