"""The engine: walks the months of a block of paths and returns its monthly outputs.

A block is a contiguous range of path indices [start, start + n). Its draws depend only on
(seed, path, month, slot), so any split of the paths into blocks gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from gpusim.config import Config
from gpusim.errors import SimulationError
from gpusim.model import firms, market
from gpusim.streams import contract_uniforms, market_draws

MARKET_OUTPUTS: tuple[str, ...] = (
    "token_demand",
    "gpu_hour_demand",
    "capacity",
    "utilization",
    "rental_price",
    "collateral_value",
    "sofr",
    "credit_spread",
    "regime",
)
"""Per (path, month) market variables, in MODEL.md §4 order."""

FIRM_OUTPUTS: tuple[str, ...] = ("revenue", "ebitda", "cash", "debt", "ltv", "ltv_breach",
                                 "defaulted")
"""Per (path, month, firm) variables."""

FACILITY_OUTPUTS: tuple[str, ...] = ("balance", "loss")
"""Per (path, month, facility) variables; `loss` is cumulative to that month."""

PATH_OUTPUTS: tuple[str, ...] = ("default_month", "loss_total")
"""Per path: default month index per firm (-1: none), total loss per facility."""

FLAG_OUTPUTS: tuple[str, ...] = ("regime", "ltv_breach", "defaulted")
"""Monthly 0/1 variables (regime: 1 is bust): counted in summary mode, not sketched."""

INTEGER_OUTPUTS = {"regime": "int8", "ltv_breach": "int8", "defaulted": "int8",
                   "default_month": "int32"}


def block_bounds(paths: int, block_paths: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of each block of at most `block_paths` paths."""
    for start in range(0, paths, block_paths):
        yield start, min(start + block_paths, paths)


def simulate_block(
    config: Config,
    seed: int,
    start: int,
    stop: int,
    xp: ModuleType = np,
    params: market.MarketParams | None = None,
    record_flows: bool = False,
) -> dict[str, Any]:
    """Outputs of paths [start, stop): market (months, n), firm (months, firms, n),
    facility (months, facilities, n), and per path (firms or facilities, n).

    Month-major so that each month's values are written contiguously; the cube transposes.
    With `record_flows`, also "flow_<term>" arrays (months, firms, n) of the cash-flow
    terms of `firms.FLOWS`. Raises SimulationError naming the variable, path and month of
    the first non-finite value.
    """
    p = params or market.market_params(config)
    specs = firms.firm_specs(config)
    dtype = np.dtype(config.dtype)
    n, months = stop - start, p.months
    n_firms, n_facilities = len(specs), sum(len(f.facilities) for f in specs)
    n_contracts = sum(len(f.contracts) for f in specs)
    paths = xp.arange(start, stop, dtype=xp.uint64)
    chol = xp.asarray(p.chol)
    out = {name: xp.empty((months, n), dtype=INTEGER_OUTPUTS.get(name, dtype))
           for name in MARKET_OUTPUTS}
    out |= {name: xp.empty((months, n_firms, n), dtype=INTEGER_OUTPUTS.get(name, dtype))
            for name in FIRM_OUTPUTS}
    out |= {name: xp.empty((months, n_facilities, n), dtype=dtype) for name in FACILITY_OUTPUTS}
    if record_flows:
        out |= {f"flow_{name}": xp.empty((months, n_firms, n), dtype=dtype)
                for name in firms.FLOWS}
    state = market.initial_state(p, n, dtype, xp)
    firm_states = [firms.initial_firm_state(f, n, dtype, xp) for f in specs]
    for t in range(months):
        h = market.gpu_hour_demand(state, p, t, xp)
        u = market.utilization(h, state, p, xp)
        _record(out, t, state, h, u, xp)
        seized = xp.zeros(n, dtype=dtype)
        if specs:
            now = firms.MarketNow(
                price=out["rental_price"][t], utilization=u,
                collateral=out["collateral_value"][t], sofr=out["sofr"][t],
                spread=out["credit_spread"][t], regime=state.regime, hours=p.hours)
            draws = contract_uniforms(seed, paths, t, n_contracts, xp).astype(dtype)
            seized = _step_firms(out, t, specs, firm_states, now, draws, xp, record_flows)
        if t + 1 < months:
            eps, uniforms = market_draws(seed, paths, t, xp)
            z = (chol @ eps).astype(dtype, copy=False)
            state = market.advance(state, p, t, u, z, uniforms, seized, xp)
    out["default_month"] = xp.stack([f.default_month for f in firm_states]) if specs else \
        xp.empty((0, n), dtype=xp.int32)
    out["loss_total"] = (xp.stack([loss for f in firm_states for loss in f.loss])
                         if n_facilities else xp.empty((0, n), dtype=dtype))
    check_finite(out, start, xp)
    return out


def _step_firms(out: dict[str, Any], t: int, specs: tuple[firms.FirmSpec, ...],
                states: list[firms.FirmState], now: firms.MarketNow, draws: Any,
                xp: ModuleType, record_flows: bool) -> Any:
    """Advance every firm by month t, record its outputs; return the GPUs seized in total."""
    seized, facility = 0.0, 0
    for i, (spec, state) in enumerate(zip(specs, states, strict=True)):
        u_renew = [draws[c.stream, 0] for c in spec.contracts]
        u_default = [draws[c.default_stream, 1] for c in spec.contracts]
        result = firms.firm_month(spec, state, now, t, u_renew, u_default, xp, record_flows)
        for name in FIRM_OUTPUTS:
            out[name][t, i] = result[name]
        for j in range(len(spec.facilities)):
            out["balance"][t, facility + j] = state.balance[j]
            out["loss"][t, facility + j] = state.loss[j]
        if record_flows:
            for name, values in state.flows.items():
                out[f"flow_{name}"][t, i] = values
        seized = seized + result["seized"]
        facility += len(spec.facilities)
    return seized


def _record(
    out: dict[str, Any], t: int, s: market.MarketState, h: Any, u: Any, xp: ModuleType
) -> None:
    out["token_demand"][t] = xp.exp(s.ln_d)
    out["gpu_hour_demand"][t] = h
    out["capacity"][t] = s.k
    out["utilization"][t] = u
    out["rental_price"][t] = xp.exp(s.ln_p)
    out["collateral_value"][t] = xp.exp(s.ln_v)
    out["sofr"][t] = xp.maximum(s.x_r, 0.0)
    out["credit_spread"][t] = xp.exp(s.ln_s)
    out["regime"][t] = s.regime


def check_finite(out: dict[str, Any], start: int, xp: ModuleType = np) -> None:
    """Raise SimulationError at the first NaN or Inf, naming variable, path and month."""
    for name, values in out.items():
        if values.dtype.kind != "f":
            continue
        bad = ~xp.isfinite(values)
        if bool(bad.any()):
            where = [int(i[0]) for i in xp.nonzero(bad)]
            path = where[-1]
            month = f" at month index {where[0]}" if values.ndim > 1 and name not in PATH_OUTPUTS \
                else ""
            raise SimulationError(
                f"{name} is {float(values[tuple(where)])} on path {start + path}{month}; "
                "check the config's parameters for that variable"
            )
