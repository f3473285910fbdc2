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
from gpusim.model import market
from gpusim.streams import market_draws

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
) -> dict[str, Any]:
    """Monthly outputs of paths [start, stop), each an array of shape (months, n).

    Month-major so that each month's values are written contiguously; the cube transposes.
    Raises SimulationError naming the variable, path and month of the first non-finite value.
    """
    p = params or market.market_params(config)
    dtype = xp.dtype(config.dtype)
    n, months = stop - start, p.months
    paths = xp.arange(start, stop, dtype=xp.uint64)
    chol = xp.asarray(p.chol)
    out = {
        name: xp.empty((months, n), dtype=xp.int8 if name == "regime" else dtype)
        for name in MARKET_OUTPUTS
    }
    no_fire_sale = xp.zeros(n, dtype=dtype)  # firms (and their fire sales) come later
    state = market.initial_state(p, n, dtype, xp)
    for t in range(months):
        h = market.gpu_hour_demand(state, p, t, xp)
        u = market.utilization(h, state, p, xp)
        _record(out, t, state, h, u, xp)
        if t + 1 < months:
            eps, uniforms = market_draws(seed, paths, t, xp)
            z = (chol @ eps).astype(dtype, copy=False)
            state = market.advance(state, p, t, u, z, uniforms, no_fire_sale, xp)
    check_finite(out, start, xp)
    return out


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
            month, path = (int(i[0]) for i in xp.nonzero(bad))
            raise SimulationError(
                f"{name} is {float(values[month, path])} on path {start + path} at month "
                f"index {month}; check the config's parameters for that variable"
            )
