"""The shipped scenario configs validate, run, and start at their own equilibrium."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import CONFIGS

from gpusim import load_config, simulate
from gpusim.model.market import fair_log_price, gpu_hour_demand, initial_state, market_params

SCENARIOS = sorted(p.name for p in CONFIGS.glob("*.yaml"))


def test_the_issue_scenarios_are_shipped():
    assert {"base.yaml", "compute_deflation.yaml", "token_boom.yaml",
            "efficiency_shock.yaml"} <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_config_validates_and_runs(name):
    config = load_config(CONFIGS / name)
    ds = simulate(config, paths=200, seed=1)
    assert (ds.sizes["path"], ds.sizes["month"]) == (200, config.horizon_months)
    assert ("firm" in ds.sizes) == bool(config.firms)
    if name != "base.yaml":
        assert "extends: base.yaml" in (CONFIGS / name).read_text()


def test_every_number_in_a_config_is_cited_or_an_assumption():
    for path in CONFIGS.glob("*.yaml"):
        block_indent = None  # inside a multi-line text (description: >-)
        for number, line in enumerate(path.read_text().splitlines(), 1):
            indent = len(line) - len(line.lstrip())
            if block_indent is not None and (indent > block_indent or not line.strip()):
                continue
            block_indent = None
            code = line.split("#", 1)[0]
            value = code.split(":", 1)[1].strip() if ":" in code else ""
            if value in (">-", "|", ">"):
                block_indent = indent
                continue
            if any(ch.isdigit() for ch in value):
                # the comment may sit on the line or in the block of comment lines above
                assert "#" in line or _comment_above(path, number), f"{path.name}:{number}"


def _comment_above(path, number):
    lines = path.read_text().splitlines()
    return number >= 2 and lines[number - 2].strip().startswith("#")


def test_base_starts_at_its_equilibrium():
    config = load_config(CONFIGS / "base.yaml")
    p = market_params(config)
    state = initial_state(p, 1, np.float64)
    h = gpu_hour_demand(state, p, 0)
    u0 = min(1.0, float(h[0]) / (p.k0 * p.hours))
    fair = math.exp(float(fair_log_price(np.array([u0]), p)[0]))
    assert fair == pytest.approx(config.market.price.initial, rel=0.02)
    assert 1.8 <= config.market.price.initial <= 2.2  # FACTS.md: $1.8-2.2 in early 2026
    ds = simulate(config, paths=2000, seed=3)
    month_one = float(ds.rental_price.isel(month=1).median())
    assert month_one == pytest.approx(config.market.price.initial, rel=0.03)
