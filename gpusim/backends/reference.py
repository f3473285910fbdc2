"""The numpy reference backend: walks the months of a block of paths, vectorized over the
paths, and returns its monthly outputs (MODEL.md's arithmetic is in gpusim.model).

The same code runs on CuPy arrays (`xp=cupy`): the unfused GPU baseline of the benchmarks.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from gpusim import sketch
from gpusim.backends.base import (
    Backend,
    BlockSummary,
    Handle,
    Ready,
    SparseCounts,
    check_finite,
    sparse,
)
from gpusim.config import Config
from gpusim.model import firms, market
from gpusim.outputs import (
    BY_NAME,
    FACILITY,
    FIRM,
    MARKET,
    MONTHLY,
    PER_PATH,
    count_names,
    counted_flags,
    dimension_sizes,
    sketch_name,
    summary_variables,
)
from gpusim.streams import contract_uniforms, market_draws, path_words


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
    the first non-finite value. BLAS (the 6×6 correlation product) runs on one thread
    here: on a matrix this small its threads only spin, and the bits do not depend on it.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _simulate_block(config, seed, start, stop, xp, params, record_flows)


def _simulate_block(config: Config, seed: int, start: int, stop: int, xp: ModuleType,
                    params: market.MarketParams | None, record_flows: bool
                    ) -> dict[str, Any]:
    p = params or market.market_params(config)
    specs = firms.firm_specs(config)
    dtype = np.dtype(config.dtype)
    n, months = stop - start, p.months
    n_firms, n_facilities = len(specs), sum(len(f.facilities) for f in specs)
    n_contracts = sum(len(f.contracts) for f in specs)
    paths = path_words(xp.arange(start, stop, dtype=xp.uint64), xp)  # counter words, once
    chol = xp.asarray(p.chol)
    out = {name: xp.empty((months, n), dtype=BY_NAME[name].dtype(config.dtype))
           for name in MARKET}
    out |= {name: xp.empty((months, n_firms, n), dtype=BY_NAME[name].dtype(config.dtype))
            for name in FIRM}
    out |= {name: xp.empty((months, n_facilities, n), dtype=dtype) for name in FACILITY}
    if record_flows:
        out |= {f"flow_{name}": xp.empty((months, n_firms, n), dtype=dtype)
                for name in firms.FLOWS}
    state = market.initial_state(p, n, dtype, xp)
    firm_states = [firms.initial_firm_state(f, n, dtype, xp) for f in specs]
    eps, uniforms = xp.empty((6, n)), xp.empty((2, n))  # each month's draws, float64
    z64 = xp.empty((6, n))
    z = z64 if dtype == z64.dtype else xp.empty((6, n), dtype=dtype)
    for t in range(months):
        h = market.gpu_hour_demand(state, p, t, xp, out=out["gpu_hour_demand"][t])
        u = market.utilization(h, state, p, xp, out=out["utilization"][t])
        _record(out, t, state, xp)
        seized = None  # no firms: no GPUs seized, no fire sales
        if specs:
            now = firms.MarketNow(
                price=out["rental_price"][t], utilization=u,
                collateral=out["collateral_value"][t], sofr=out["sofr"][t],
                spread=out["credit_spread"][t], regime=state.regime, hours=p.hours)
            draws = contract_uniforms(seed, paths, t, n_contracts, xp).astype(dtype, copy=False)
            seized = _step_firms(out, t, specs, firm_states, now, draws, xp, record_flows)
        if t + 1 < months:
            market_draws(seed, paths, t, xp, out=(eps, uniforms))
            xp.matmul(chol, eps, out=z64)  # Z = L·ε, one thread (see simulate_block)
            if z is not z64:
                z[...] = z64  # rounded to the run's precision
            market.advance(state, p, t, u, z, uniforms, seized, xp)
    out["default_month"] = xp.stack([f.default_month for f in firm_states]) if specs else \
        xp.empty((0, n), dtype=xp.int32)
    out["loss_total"] = (xp.stack([loss for f in firm_states for loss in f.loss])
                         if n_facilities else xp.empty((0, n), dtype=dtype))
    out["exposure_at_default"] = (xp.stack([ead for f in firm_states for ead in f.ead])
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
        for name in FIRM:
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


def _record(out: dict[str, Any], t: int, s: market.MarketState, xp: ModuleType) -> None:
    """The market's outputs of month t besides H and u (written by their own functions),
    straight into row t of each output."""
    xp.exp(s.ln_d, out=out["token_demand"][t])
    out["capacity"][t] = s.k
    xp.exp(s.ln_p, out=out["rental_price"][t])
    xp.exp(s.ln_v, out=out["collateral_value"][t])
    xp.maximum(s.x_r, 0.0, out=out["sofr"][t])
    xp.exp(s.ln_s, out=out["credit_spread"][t])
    out["regime"][t] = s.regime


def dense_counts(config: Config, arrays: dict[str, Any], xp: Any = np) -> dict[str, Any]:
    """A block's sketches and flag counts, dense, from its cube outputs (month-major), on
    numpy or CuPy arrays: the CPU's way to summarize a block (and the unfused GPU
    baseline's)."""
    sizes = dimension_sizes(config)
    variables = summary_variables(config)
    sketches = {sketch_name(name): name for name in MONTHLY}
    flags = {count: flag for flag, count in counted_flags(config).items()}
    out = {}
    for name in count_names(config):
        if name in sketches:
            out[name] = xp.zeros(tuple(sizes[d] for d in variables[name][0]), dtype=xp.int64)
            sketch.accumulate(out[name], arrays[sketches[name]], xp)
        else:  # the paths where a 0/1 flag is 1
            out[name] = (arrays[flags[name]] == 1).sum(axis=-1)
    return out


def block_counts(config: Config, arrays: dict[str, Any], xp: Any = np
                 ) -> dict[str, SparseCounts]:
    """One block's sketches and counts, sparse, from its cube outputs (month-major)."""
    return sparse(dense_counts(config, arrays, xp), xp)


class NumpyBackend(Backend):
    """The numpy reference, on the CPU: blocks are computed when launched."""

    name, device, device_name, xp = "numpy", "numpy", "cpu: numpy reference", np

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._params = market.market_params(config)

    def launch(self, seed: int, start: int, stop: int, on_device: bool = False,
               record_flows: bool = False) -> Handle[dict[str, Any]]:
        return Ready(simulate_block(self.config, seed, start, stop, params=self._params,
                                    record_flows=record_flows))

    def launch_summary(self, seed: int, start: int, stop: int) -> Handle[BlockSummary]:
        arrays = self(seed, start, stop)
        per_path = {name: arrays[name] for name in PER_PATH if name in arrays}
        return Ready(BlockSummary(per_path, block_counts(self.config, arrays)))
