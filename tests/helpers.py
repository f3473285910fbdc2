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
