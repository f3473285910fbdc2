"""The small, self-contained scenario the tests bend with overrides."""

from __future__ import annotations

from gpusim.config import Config, apply_overrides, config_from_dict

SMALL = {
    "name": "small",
    "horizon_months": 24,
    "correlations": {"price-collateral": 0.6, "demand-growth": 0.3, "rate-spread": -0.2},
    "market": {
        "demand": {
            "tokens_per_month": 2.0e15,
            "volatility": 0.3,
            "growth": {"initial": 0.5, "boom_mean": 0.6, "bust_mean": 0.0,
                       "reversion": 1.0, "volatility": 0.2},
            "price_elasticity": 0.5,
            "reference_price": 2.0,
            "training_gpu_hours": [{"month": "2026-01", "value": 2.0e8}],
        },
        "regime": {"p_boom_to_bust": 0.05, "p_bust_to_boom": 0.1},
        "efficiency": {"gpu_hours_per_million_tokens": 0.25, "trend_per_year": 0.3,
                       "shock_rate_per_year": 1.0, "shock_log_size": 0.3, "rebound": 0.5},
        "capacity": {"initial_gpus": 1.5e6, "retirement_per_year": 0.18,
                     "build": [{"month": "2026-01", "value": 50_000}], "response": 2.0,
                     "target_utilization": 0.7, "max_multiplier": 2.0, "lag_months": 3},
        "price": {"initial": 2.0, "floor": 0.8, "cap": 8.0, "convexity": 5.0,
                  "reversion": 3.0, "volatility": 0.3,
                  "launches": [{"name": "B200 volume", "month": "2026-07", "log_impact": 0.1}]},
        "collateral": {"initial": 20_000, "price_elasticity": 0.8, "depreciation_per_year": 0.2,
                       "volatility": 0.15, "fire_sale_impact": 1.0,
                       "market_depth_gpus_per_month": 50_000, "scrap_value": 1_000},
        "rates": {
            "sofr": {"initial": 0.043, "mean": 0.035, "reversion": 0.3, "volatility": 0.01},
            "credit_spread": {"initial": 0.06, "mean": 0.06, "reversion": 0.5,
                              "volatility": 0.4},
        },
    },
}


def small_config(*overrides: str) -> Config:
    """The small scenario with `dotted.key=value` overrides applied."""
    return config_from_dict(apply_overrides(SMALL, overrides))


LESSOR = {
    "name": "lessor",
    "fleet": {"gpus": 100_000, "kw_per_gpu": 1.2, "power_price": 0.08,
              "opex_per_gpu_hour": 0.2, "overhead_per_month": 4.0e7,
              "capex": [{"month": "2026-01", "value": 1.0e7}]},
    "opening_cash": 5.0e8,
    "seizure_haircut": 0.3,
    "contracts": [
        {"name": "hyperscaler", "gpus": 50_000, "price": 2.2, "end": "2026-12",
         "renewal": {"p0": 0.7, "theta": 1.0, "premium": 0.1, "term_months": 12},
         "counterparty": {"name": "bigco", "insourcing_month": "2027-06", "p_insource": 0.1,
                          "default_hazard": {"boom": 0.0005, "bust": 0.002}}},
        {"name": "lab", "gpus": 20_000, "price": 2.0, "end": "2027-06",
         "renewal": {"p0": 0.6, "theta": 0.5, "term_months": 6},
         "counterparty": {"name": "lab", "default_hazard": {"boom": 0.002, "bust": 0.01}}},
    ],
    "facilities": [
        {"name": "ddtl", "balance": 1.0e9, "undrawn": 2.0e8,
         "draws": [{"month": "2026-02", "value": 5.0e7}],
         "rate_type": "floating", "rate": 0.0625, "amortization": "level",
         "maturity": "2028-06", "pledged_share": 0.5, "secured_on": ["hyperscaler"],
         "cash_sweep": 0.2, "max_ltv": 0.8, "min_liquidity": 5.0e7, "seniority": 1,
         "refinancing": {"max_ltv": 0.7, "max_spread": 0.09, "term_months": 24}},
        {"name": "notes", "balance": 5.0e8, "rate_type": "fixed", "rate": 0.10,
         "amortization": "bullet", "maturity": "2027-10", "seniority": 2,
         "refinancing": {"max_ltv": 0.9, "max_spread": 0.08}},
    ],
}

MINER = {
    "name": "miner",
    "fleet": {"gpus": 20_000, "kw_per_gpu": 1.3, "power_price": 0.06,
              "opex_per_gpu_hour": 0.3, "overhead_per_month": 1.0e6},
    "opening_cash": 3.0e7,
    "contracts": [],
    "facilities": [
        {"name": "gpu_loan", "balance": 3.0e8, "rate_type": "fixed", "rate": 0.14,
         "amortization": "straight_line", "maturity": "2028-12", "pledged_share": 1.0,
         "max_ltv": 0.85, "seniority": 1},
    ],
}


def firms_config(*overrides: str) -> Config:
    """The small scenario with a lessor and a levered miner."""
    raw = apply_overrides(SMALL, [])
    raw["firms"] = [apply_overrides(LESSOR, []), apply_overrides(MINER, [])]
    return config_from_dict(apply_overrides(raw, overrides))
