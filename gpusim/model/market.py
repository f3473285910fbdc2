"""The market of MODEL.md §2, one monthly step at a time, vectorized over paths.

This is the reference arithmetic. `MarketParams` flattens a `Config` into the numbers the
step needs (per-month schedules as arrays, the Cholesky factor, Poisson thresholds), so
that the numpy code here and the CUDA kernel read the same inputs.

Timing convention (month index t = 0 .. T−1, t = 0 is the start month):
- the state at t (D, g, s, e, K, P, V, r, S) is known; then
- H[t] = D[t]·e[t]/10⁶·(P[t−1]/P_ref)^(−ε) + T[t], with P[−1] = P[0];
- u[t] = min(1, H[t] / (K[t]·hours));
- the shocks drawn for month t move the state from t to t+1. A launch dated month m
  lowers ln P[m] (the price of the launch month already reflects it), so launches must
  fall after the start month. Utilization before the start month is taken as u[0].
- SOFR is a Vasicek shadow rate x; the reported rate is max(x, 0).
- The collateral value starts at V[0] = V0·(P[0]/P_ref)^β: `collateral.initial` is the
  value at the reference price, so a stress that starts the price lower starts the
  collateral lower too, and ln V − β ln P then follows its own recursion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from gpusim.config import Config, Schedule, correlation_factor, correlation_matrix, month_number

DT = 1.0 / 12.0
"""Length of one step [years]."""

BOOM, BUST = 0, 1
POISSON_TERMS = 12
"""Efficiency-shock counts are capped at this many per month (P(more) < 1e-15 for λΔ ≤ 1)."""


@dataclass(frozen=True)
class MarketParams:
    """Numbers of the market step, in the units of the config (rates per year)."""

    months: int
    dt: float
    # demand
    ln_d0: float
    sigma_d: float
    g0: float
    g_mean: tuple[float, float]  # (boom, bust)
    kappa_g: float
    sigma_g: float
    elasticity: float
    p_ref: float
    training: np.ndarray  # (months,) H100-hours/month
    # regime
    regime0: int
    p_switch: tuple[float, float]  # (boom→bust, bust→boom)
    regimes_on: bool
    # efficiency
    ln_e0: float
    eta: float
    jump_size: float
    rebound: float
    poisson_cdf: np.ndarray  # (POISSON_TERMS,) P(N ≤ k), k = 0..; empty when jumps off
    # capacity
    k0: float
    omega: float
    build: np.ndarray  # (months,) GPUs/month
    xi: float
    u_star: float
    m_max: float
    lag: int
    hours: float
    response_on: bool
    # price
    ln_p0: float
    p_floor: float
    p_cap: float
    gamma: float
    kappa_p: float
    sigma_p: float
    launch_drop: np.ndarray  # (months,) fall in ln P at month t
    # collateral
    ln_v0: float
    beta: float
    delta: float
    sigma_v: float
    phi: float
    depth: float
    ln_v_scrap: float
    fire_sale_on: bool
    # rates
    r0: float
    r_mean: float
    kappa_r: float
    sigma_r: float
    ln_s0: float
    ln_s_mean: float
    kappa_s: float
    sigma_s: float
    # shocks
    chol: np.ndarray = field(repr=False)  # (6, 6) lower-triangular

    @property
    def n_poisson(self) -> int:
        """How many Poisson thresholds there are (0: efficiency jumps off)."""
        return len(self.poisson_cdf)


def schedule_array(steps: Schedule, start: str, months: int) -> np.ndarray:
    """A piecewise-constant schedule as one value per simulated month (0 before its first step)."""
    out = np.zeros(months)
    first = month_number(start)
    for step in steps:
        out[month_number(step.month) - first :] = step.value
    return out


def poisson_cdf(mean: float, terms: int = POISSON_TERMS) -> np.ndarray:
    """P(N ≤ k) for k = 0 .. terms−1 of a Poisson(mean) count."""
    pmf = [math.exp(-mean)]
    for k in range(1, terms):
        pmf.append(pmf[-1] * mean / k)
    return np.cumsum(pmf)


def market_params(config: Config) -> MarketParams:
    """Flatten a validated config into `MarketParams`."""
    m = config.market
    months = config.horizon_months
    sw = config.switches
    launch_drop = np.zeros(months)
    if sw.jumps:
        first = month_number(config.start)
        for launch in m.price.launches:
            launch_drop[month_number(launch.month) - first] += launch.log_impact
    shock_mean = m.efficiency.shock_rate_per_year * DT
    return MarketParams(
        months=months,
        dt=DT,
        ln_d0=math.log(m.demand.tokens_per_month),
        sigma_d=m.demand.volatility,
        g0=m.demand.growth.initial,
        g_mean=(m.demand.growth.boom_mean, m.demand.growth.bust_mean),
        kappa_g=m.demand.growth.reversion,
        sigma_g=m.demand.growth.volatility,
        elasticity=m.demand.price_elasticity,
        p_ref=m.demand.reference_price,
        training=schedule_array(m.demand.training_gpu_hours, config.start, months),
        regime0=BOOM if m.regime.initial == "boom" else BUST,
        p_switch=(m.regime.p_boom_to_bust, m.regime.p_bust_to_boom),
        regimes_on=sw.regimes,
        ln_e0=math.log(m.efficiency.gpu_hours_per_million_tokens),
        eta=m.efficiency.trend_per_year,
        jump_size=m.efficiency.shock_log_size,
        rebound=m.efficiency.rebound,
        poisson_cdf=poisson_cdf(shock_mean) if sw.jumps and shock_mean > 0 else np.zeros(0),
        k0=m.capacity.initial_gpus,
        omega=m.capacity.retirement_per_year,
        build=schedule_array(m.capacity.build, config.start, months),
        xi=m.capacity.response,
        u_star=m.capacity.target_utilization,
        m_max=m.capacity.max_multiplier,
        lag=m.capacity.lag_months,
        hours=m.capacity.hours_per_month,
        response_on=sw.capacity_response,
        ln_p0=math.log(m.price.initial),
        p_floor=m.price.floor,
        p_cap=m.price.cap,
        gamma=m.price.convexity,
        kappa_p=m.price.reversion,
        sigma_p=m.price.volatility,
        launch_drop=launch_drop,
        ln_v0=(math.log(m.collateral.initial)
               + m.collateral.price_elasticity
               * (math.log(m.price.initial) - math.log(m.demand.reference_price))),
        beta=m.collateral.price_elasticity,
        delta=m.collateral.depreciation_per_year,
        sigma_v=m.collateral.volatility,
        phi=m.collateral.fire_sale_impact,
        depth=m.collateral.market_depth_gpus_per_month,
        ln_v_scrap=(
            math.log(m.collateral.scrap_value) if m.collateral.scrap_value > 0 else -math.inf
        ),
        fire_sale_on=sw.fire_sale,
        r0=m.rates.sofr.initial,
        r_mean=m.rates.sofr.mean,
        kappa_r=m.rates.sofr.reversion,
        sigma_r=m.rates.sofr.volatility,
        ln_s0=math.log(m.rates.credit_spread.initial),
        ln_s_mean=math.log(m.rates.credit_spread.mean),
        kappa_s=m.rates.credit_spread.reversion,
        sigma_s=m.rates.credit_spread.volatility,
        chol=correlation_factor(correlation_matrix(config.correlations)),
    )


@dataclass
class MarketState:
    """Every path of a block at one month (in logs where MODEL.md uses logs).

    `advance` updates these arrays in place (no month allocates a fresh one: on numpy a
    fresh 128 kB array costs page faults and cold cache lines every month); `tmp` is its
    scratch row.
    """

    ln_d: Any  # ln token demand [ln tokens/month]
    g: Any  # token growth rate [1/year]
    regime: Any  # 0 boom, 1 bust (int8)
    ln_e: Any  # ln compute per token [ln H100-hours per 10^6 tokens]
    k: Any  # capacity [GPUs]
    ln_p: Any  # ln spot price [ln USD/H100-hour]
    ln_p_prev: Any  # ln P[t−1], for the price elasticity of demand
    ln_v: Any  # ln collateral value [ln USD/GPU]
    x_r: Any  # SOFR shadow rate [1/year]
    ln_s: Any  # ln credit spread [ln 1/year]
    u_hist: Any  # (lag+1, n) ring buffer of utilization, u[t] at row t mod (lag+1)
    tmp: Any  # (n,) scratch for the terms of one equation at a time


def initial_state(p: MarketParams, n: int, dtype: Any, xp: ModuleType = np) -> MarketState:
    """Every path at the start month."""

    def full(value: float) -> Any:
        return xp.full(n, value, dtype=dtype)

    return MarketState(
        ln_d=full(p.ln_d0), g=full(p.g0), regime=xp.full(n, p.regime0, dtype=xp.int8),
        ln_e=full(p.ln_e0), k=full(p.k0), ln_p=full(p.ln_p0), ln_p_prev=full(p.ln_p0),
        ln_v=full(p.ln_v0), x_r=full(p.r0), ln_s=full(p.ln_s0),
        u_hist=xp.zeros((p.lag + 1, n), dtype=dtype), tmp=xp.empty(n, dtype=dtype),
    )


def gpu_hour_demand(s: MarketState, p: MarketParams, t: int, xp: ModuleType = np,
                    out: Any = None) -> Any:
    """H[t]: inference GPU-hours from tokens at last month's price, plus training [H100-hours].

    Written into `out` (n,) when given (the bits do not depend on it).
    """
    price_term = xp.subtract(s.ln_p_prev, math.log(p.p_ref), out=s.tmp)
    price_term *= p.elasticity
    h = xp.add(s.ln_d, s.ln_e, out=out)
    h -= math.log(1e6)
    h -= price_term
    xp.exp(h, out=h)  # inference
    h += h.dtype.type(p.training[t])  # in the state's precision
    return h


def utilization(h: Any, s: MarketState, p: MarketParams, xp: ModuleType = np,
                out: Any = None) -> Any:
    """u[t] = min(1, H / (K·hours)) [-], into `out` (n,) when given."""
    u = xp.multiply(s.k, p.hours, out=out)
    xp.divide(h, u, out=u)
    return xp.minimum(u, 1.0, out=u)


_FAST_POWERS = (-1.0, 0.0, 0.5, 1.0, 2.0)
"""Exponents for which numpy's `**` calls another ufunc (reciprocal, sqrt, square, ...)."""


def fair_log_price(u: Any, p: MarketParams, xp: ModuleType = np, out: Any = None) -> Any:
    """ln P*(u), P*(u) = P_floor + (P_cap − P_floor)·u^γ [ln USD/H100-hour], into `out`.

    u^γ is what `u**γ` gives (numpy's `**` takes sqrt or square for γ = 0.5 or 2).
    """
    if out is None:
        out = u**p.gamma
    elif float(p.gamma) in _FAST_POWERS:
        out[...] = u**p.gamma
    else:
        xp.power(u, p.gamma, out=out)
    out *= p.p_cap - p.p_floor
    out += p.p_floor
    return xp.log(out, out=out)


def jump_paths(u_shock: Any, p: MarketParams, xp: ModuleType = np) -> tuple[Any, Any]:
    """Efficiency shocks this month: the paths with at least one, and J_E·N_E there [-].

    N_E, the Poisson count, comes by inversion of its CDF: N = #{k: U > P(N ≤ k)}
    (`searchsorted` on the sorted CDF). Most months most paths have none (P ≈ 8%).
    """
    if not p.n_poisson:
        return None, None
    hit = xp.flatnonzero(u_shock > p.poisson_cdf[0])
    count = xp.searchsorted(xp.asarray(p.poisson_cdf), u_shock[hit], side="left")
    return hit, count.astype(xp.float64) * p.jump_size


def build_multiplier(u_lagged: Any, p: MarketParams, xp: ModuleType = np,
                     out: Any = None) -> Any:
    """clip(1 + ξ(u[t−L] − u*), 0, m_max): builders respond to utilization seen L months ago."""
    if not p.response_on:
        return 1.0
    m = xp.subtract(u_lagged, p.u_star, out=out)
    m *= p.xi
    m += 1.0
    return xp.clip(m, 0.0, p.m_max, out=m)


def advance(
    s: MarketState,
    p: MarketParams,
    t: int,
    u: Any,
    z: Any,
    uniforms: Any,
    fire_sold: Any | None,
    xp: ModuleType = np,
) -> MarketState:
    """The state at t+1 from the state at t, its utilization u[t] and month t's draws,
    in place (returns `s`).

    `z` are the correlated shocks (6, n) in `FACTORS` order, `uniforms` (U_regime,
    U_shock) and `fire_sold` F[t], the GPUs seized and sold in the path this month (None:
    none anywhere, as without firms; the step then skips the fire-sale term, which would
    subtract an exact zero).
    Each equation is evaluated term by term in the order its formula reads, left to
    right, so that the result rounds as the one-line formula would.
    """
    dt, sq, tmp = p.dt, math.sqrt(p.dt), s.tmp
    z_demand, z_growth, z_price, z_coll, z_rate, z_spread = z

    if t == 0:
        s.u_hist[:] = u  # utilization before the start month is taken as u[0]
    s.u_hist[t % (p.lag + 1)] = u
    u_lagged = s.u_hist[(t + 1) % (p.lag + 1)]  # row of u[t−L] (≡ t+1 mod L+1)
    hit, jumps = jump_paths(uniforms[1], p, xp)  # J_E·N_E on the paths `hit`

    # ln D ← ln D + (g − σ_D²/2)Δ + σ_D√Δ Z_demand + ρ·J_E·N_E
    _add_scaled(s.ln_d, xp.subtract(s.g, 0.5 * p.sigma_d**2, out=tmp), dt, xp)
    _add_scaled(s.ln_d, z_demand, p.sigma_d * sq, xp, tmp)
    # ln e ← ln e − ηΔ − J_E·N_E
    s.ln_e -= p.eta * dt
    if hit is not None:  # in float64, as the formula with a float64 J_E rounds
        s.ln_d[hit] += p.rebound * jumps
        s.ln_e[hit] -= jumps
    # g ← g + κ_g(ḡ[s] − g)Δ + σ_g√Δ Z_growth
    g_target = xp.take(xp.asarray(p.g_mean, dtype=s.g.dtype), s.regime, out=tmp)  # ḡ[s]
    xp.subtract(g_target, s.g, out=tmp)
    tmp *= p.kappa_g
    _add_scaled(s.g, tmp, dt, xp)
    _add_scaled(s.g, z_growth, p.sigma_g * sq, xp, tmp)
    # regime switch with probability p[s]
    if p.regimes_on:
        switch_p = xp.take(xp.asarray(p.p_switch), s.regime)
        s.regime ^= uniforms[0] < switch_p
    # K ← K(1 − ωΔ) + b[t]·m(u[t−L]); schedules enter in the state's precision
    s.k *= 1.0 - p.omega * dt
    s.k += xp.multiply(s.k.dtype.type(p.build[t]), build_multiplier(u_lagged, p, xp, out=tmp),
                       out=tmp)
    # ln P ← ln P + κ_P(ln P*(u) − ln P)Δ + σ_P√Δ Z_price − launches at t+1, into the
    # buffer of ln P[t−1], which is no longer needed
    ln_p, ln_p_new = s.ln_p, s.ln_p_prev
    fair = fair_log_price(u, p, xp, out=tmp)
    fair -= ln_p
    fair *= p.kappa_p
    fair *= dt
    xp.add(ln_p, fair, out=ln_p_new)
    _add_scaled(ln_p_new, z_price, p.sigma_p * sq, xp, tmp)
    if t + 1 < p.months and p.launch_drop[t + 1] != 0.0:  # x − 0 is x: months without one skip it
        ln_p_new -= ln_p.dtype.type(p.launch_drop[t + 1])
    s.ln_p, s.ln_p_prev = ln_p_new, ln_p
    # ln V ← ln V + β(ln P[t+1] − ln P[t]) − δΔ + σ_V√Δ Z_collateral − φF/depth, ≥ ln V_scrap
    _add_scaled(s.ln_v, xp.subtract(ln_p_new, ln_p, out=tmp), p.beta, xp)
    s.ln_v -= p.delta * dt
    _add_scaled(s.ln_v, z_coll, p.sigma_v * sq, xp, tmp)
    if p.fire_sale_on and fire_sold is not None:  # in F's precision, as the formula rounds
        s.ln_v -= p.phi * fire_sold / p.depth
    xp.maximum(s.ln_v, p.ln_v_scrap, out=s.ln_v)
    # SOFR shadow rate x ← x + κ_r(r̄ − x)Δ + σ_r√Δ Z_rate; ln spread likewise (OU)
    _revert(s.x_r, p.r_mean, p.kappa_r, dt, z_rate, p.sigma_r * sq, tmp, xp)
    _revert(s.ln_s, p.ln_s_mean, p.kappa_s, dt, z_spread, p.sigma_s * sq, tmp, xp)
    return s


def _add_scaled(x: Any, term: Any, scale: float, xp: ModuleType, tmp: Any = None) -> None:
    """x += term·scale in place (into `tmp` first when `term` must be kept)."""
    scaled = xp.multiply(term, scale, out=term if tmp is None else tmp)
    x += scaled


def _revert(x: Any, mean: float, kappa: float, dt: float, z: Any, vol: float, tmp: Any,
            xp: ModuleType) -> None:
    """x ← x + κ(mean − x)Δ + vol·z, in place (an Ornstein–Uhlenbeck step)."""
    pull = xp.subtract(mean, x, out=tmp)
    pull *= kappa
    _add_scaled(x, pull, dt, xp)
    _add_scaled(x, z, vol, xp, tmp)
