"""The plain-numpy peer of gpusim's market model, the benchmark configs, and the checks.

`plain_block` is the market of MODEL.md §2 written as one would in numpy alone: vectorized
over the paths of a block, a loop over months, preallocated outputs and state, in-place
ufuncs, the shock volatilities folded into the Cholesky factor, sparse efficiency-shock
counts. Its draws come from a callable, normally `numpy_draws` (numpy's default Generator,
PCG64 + ziggurat); fed gpusim's own Philox draws it reproduces
`gpusim.backends.reference.simulate_block` to rounding (`equation_check`).
`distribution_check` compares the last month of two runs with their own generators (mean
and standard deviation of log rental price and log token demand within a number of
standard errors).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gpusim import sketch, streams
from gpusim.backends.base import block_bounds
from gpusim.backends.reference import simulate_block
from gpusim.config import (
    Config,
    apply_overrides,
    config_from_dict,
    month_number,
    resolve_extends,
)
from gpusim.model.market import BOOM, BUST, MarketParams

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "base.yaml"
"""configs/base.yaml of a source checkout (absent from an installed wheel)."""

OUTPUTS: tuple[str, ...] = (
    "token_demand", "gpu_hour_demand", "capacity", "utilization", "rental_price",
    "collateral_value", "sofr", "credit_spread", "regime",
)
"""The market outputs per (month, path); the same nine that `simulate_block` records."""

CHECKED: tuple[str, ...] = ("rental_price", "token_demand")
"""The last-month variables the distribution check compares (in logs)."""

BUILTIN_CONFIG: dict[str, Any] = {
    # Used only when configs/base.yaml is missing: a small but complete market, every
    # switch on (regimes, efficiency shocks, launches, capacity response).
    "name": "market-cpu-builtin",
    "start": "2026-01",
    "horizon_months": 84,
    "correlations": {"demand-growth": 0.3, "demand-price": 0.2, "price-collateral": 0.5,
                     "collateral-spread": -0.3, "rate-spread": 0.1},
    "market": {
        "demand": {
            "tokens_per_month": 2.0e15, "volatility": 0.15,
            "growth": {"initial": 1.0, "boom_mean": 0.75, "bust_mean": 0.05,
                       "reversion": 0.5, "volatility": 0.15},
            "price_elasticity": 0.3, "reference_price": 2.0,
            "training_gpu_hours": [{"month": "2026-01", "value": 2.0e8},
                                   {"month": "2028-01", "value": 2.8e8}],
        },
        "regime": {"initial": "boom", "p_boom_to_bust": 0.02, "p_bust_to_boom": 0.04},
        "efficiency": {"gpu_hours_per_million_tokens": 0.155, "trend_per_year": 0.4,
                       "shock_rate_per_year": 1.0, "shock_log_size": 0.15, "rebound": 0.5},
        "capacity": {"initial_gpus": 1.0e6, "retirement_per_year": 0.18,
                     "build": [{"month": "2026-01", "value": 60_000},
                               {"month": "2028-01", "value": 90_000}],
                     "response": 2.0, "target_utilization": 0.7, "max_multiplier": 2.0,
                     "lag_months": 6, "hours_per_month": 730},
        "price": {"initial": 2.0, "floor": 0.4, "cap": 9.0, "convexity": 4.69,
                  "reversion": 3.0, "volatility": 0.25,
                  "launches": [{"name": "B200 volume", "month": "2026-07", "log_impact": 0.10},
                               {"name": "Rubin volume", "month": "2027-10", "log_impact": 0.08}]},
        "collateral": {"initial": 20_000, "price_elasticity": 0.8, "depreciation_per_year": 0.18,
                       "volatility": 0.15, "fire_sale_impact": 0.3,
                       "market_depth_gpus_per_month": 20_000, "scrap_value": 2_000},
        "rates": {
            "sofr": {"initial": 0.037, "mean": 0.033, "reversion": 0.3, "volatility": 0.01},
            "credit_spread": {"initial": 0.065, "mean": 0.065, "reversion": 0.5,
                              "volatility": 0.35},
        },
    },
}

Draw = Callable[[np.ndarray, np.ndarray, int], None]
"""draw(eps (6, n), uniforms (2, n), month): fill both in place for one month."""


# --- configs --------------------------------------------------------------------------------

def raw_config(path: str | None) -> tuple[dict[str, Any], str]:
    """The config mapping (`extends` resolved, not validated) and where it came from: a
    YAML file, or the built-in market (`path` None: configs/base.yaml if present)."""
    if path is None and DEFAULT_CONFIG.is_file():
        path = str(DEFAULT_CONFIG)
    if path == "builtin":
        return dict(BUILTIN_CONFIG), "built-in (--config builtin)"
    if path is None:
        return dict(BUILTIN_CONFIG), "built-in (configs/base.yaml not found)"
    return resolve_extends(Path(path)), str(path)


def _keep_until(items: list[dict[str, Any]] | None, last: int, key: str = "month"
                ) -> list[dict[str, Any]] | None:
    return None if items is None else [x for x in items if month_number(x[key]) <= last]


def fit_horizon(raw: dict[str, Any], months: int) -> dict[str, Any]:
    """The config mapping with a horizon of `months` and every dated item after its last
    month dropped: price launches, build and training steps; firms' capex steps, facility
    draws, contracts that have not started, and counterparties' insourcing months. None of
    them could act within the horizon, so every horizon validates (the scaling in months
    runs from 12 months) and the months that are simulated are unchanged."""
    raw = copy.deepcopy(raw)
    raw["horizon_months"] = months
    last = month_number(raw.get("start", Config.model_fields["start"].default)) + months - 1
    market = raw.get("market", {})
    for group, name in (("price", "launches"), ("capacity", "build"),
                        ("demand", "training_gpu_hours")):
        if name in market.get(group, {}):
            market[group][name] = _keep_until(market[group][name], last)
    for firm in raw.get("firms") or []:
        fleet = firm.get("fleet", {})
        if "capex" in fleet:
            fleet["capex"] = _keep_until(fleet["capex"], last)
        for facility in firm.get("facilities", []):
            if "draws" in facility:
                facility["draws"] = _keep_until(facility["draws"], last)
        for contract in firm.get("contracts", []):
            party = contract.get("counterparty", {})
            if party.get("insourcing_month") and month_number(party["insourcing_month"]) > last:
                party.pop("insourcing_month")
    return raw


def load_market_config(path: str | None, months: int,
                       overrides: tuple[str, ...] = ()) -> tuple[Config, str]:
    """The config with its firms dropped (the market alone) and where it came from.

    `path` None means configs/base.yaml if present, else the built-in market; "builtin"
    forces the latter. `months` sets the horizon (see `fit_horizon`); `overrides` are
    `--set` strings.
    """
    raw, source = raw_config(path)
    raw = fit_horizon(apply_overrides(raw, list(overrides)), months)
    if raw.get("firms"):
        source += " (firms dropped: market only)"
    raw.pop("firms", None)
    return config_from_dict(raw, source=source), source


def load_full_config(path: str | None, months: int,
                     overrides: tuple[str, ...] = ()) -> Config | None:
    """The config with its firms (the full model), or None if it has none."""
    raw, source = raw_config(path)
    raw = fit_horizon(apply_overrides(raw, list(overrides)), months)
    return config_from_dict(raw, source=source) if raw.get("firms") else None


# --- the plain-numpy market -------------------------------------------------------------------

def numpy_draws(rng: np.random.Generator) -> Draw:
    """Independent N(0,1) and U[0,1) from a numpy Generator, written in place."""

    def draw(eps: np.ndarray, unif: np.ndarray, month: int) -> None:
        rng.standard_normal(out=eps)
        rng.random(out=unif)

    return draw


def plain_block(p: MarketParams, n: int, draw: Draw,
                dtype: Any = np.float64) -> dict[str, np.ndarray]:
    """The market of MODEL.md §2 for n paths, in plain numpy; outputs (months, n) each.

    Same equations and timing conventions as `gpusim.model.market` (see its docstring):
    H[t] uses P[t−1] (P[−1] = P[0]); u[t−L] before the start is u[0]; month t's draws move
    the state from t to t+1; a launch dated m lowers ln P[m]. No firms, so F[t] = 0.
    Units are those of the engine's outputs (tokens/month, H100-hours/month, GPUs, USD per
    H100-hour, USD per GPU, 1/year).
    """
    f = np.dtype(dtype)
    months, dt = p.months, p.dt
    out = {name: np.empty((months, n), dtype=np.int8 if name == "regime" else f)
           for name in OUTPUTS}
    td, hd = out["token_demand"], out["gpu_hour_demand"]
    cap, util = out["capacity"], out["utilization"]
    price, coll, sofr, spread, reg_out = (out["rental_price"], out["collateral_value"], out["sofr"],
                                          out["credit_spread"], out["regime"])

    # state (capacity lives in its output rows: K[t+1] is written straight into cap[t+1])
    ln_d = np.full(n, p.ln_d0, f)
    g = np.full(n, p.g0, f)
    regime = np.full(n, p.regime0, np.int8)
    ln_e = np.full(n, p.ln_e0, f)
    ln_p = np.full(n, p.ln_p0, f)
    ln_p_prev = np.full(n, p.ln_p0, f)
    ln_v = np.full(n, p.ln_v0, f)
    x_r = np.full(n, p.r0, f)
    ln_s = np.full(n, p.ln_s0, f)
    cap[0] = p.k0
    tmp = np.empty(n, f)
    flip = np.empty(n, bool)
    eps = np.empty((6, n))
    unif = np.empty((2, n))
    z = np.empty((6, n))

    # σ√Δ of each factor folded into the Cholesky factor: one matmul gives σ√Δ·(L·ε)
    sq = math.sqrt(dt)
    vol = np.array([p.sigma_d, p.sigma_g, p.sigma_p, p.sigma_v, p.sigma_r, p.sigma_s]) * sq
    chol = vol[:, None] * np.asarray(p.chol, dtype=np.float64)
    h_const = p.elasticity * math.log(p.p_ref) - math.log(1e6)
    d_drift = 0.5 * p.sigma_d**2
    g_boom, g_bust = p.g_mean[BOOM], p.g_mean[BUST]
    sw_boom, sw_bust = p.p_switch[BOOM], p.p_switch[BUST]
    cdf = np.asarray(p.poisson_cdf)
    k_keep, kg_dt, kp_dt = 1.0 - p.omega * dt, p.kappa_g * dt, p.kappa_p * dt
    r_keep, r_pull = 1.0 - p.kappa_r * dt, p.kappa_r * dt * p.r_mean
    s_keep, s_pull = 1.0 - p.kappa_s * dt, p.kappa_s * dt * p.ln_s_mean
    span = p.p_cap - p.p_floor
    clamp_v = math.isfinite(p.ln_v_scrap)

    for t in range(months):
        # H[t] = exp(ln D + ln e − ln 10⁶ − ε(ln P[t−1] − ln P_ref)) + T[t], straight into its row
        h = hd[t]
        np.multiply(ln_p_prev, -p.elasticity, out=h)
        h += ln_d
        h += ln_e
        h += h_const
        np.exp(h, out=h)
        if p.training[t]:
            h += p.training[t]
        u = util[t]
        np.multiply(cap[t], p.hours, out=u)
        np.divide(h, u, out=u)
        np.minimum(u, 1.0, out=u)
        np.exp(ln_d, out=td[t])
        np.exp(ln_p, out=price[t])
        np.exp(ln_v, out=coll[t])
        np.maximum(x_r, 0.0, out=sofr[t])
        np.exp(ln_s, out=spread[t])
        reg_out[t] = regime
        if t + 1 == months:
            break

        draw(eps, unif, t)
        np.matmul(chol, eps, out=z)  # σ√Δ·Z in FACTORS order
        z_d, z_g, z_p, z_v, z_r, z_s = z
        u_regime, u_shock = unif

        # efficiency shocks: count = #{k: U > P(N ≤ k)}; only the few paths with N ≥ 1
        hit = np.flatnonzero(u_shock > cdf[0]) if cdf.size else None
        jump = np.searchsorted(cdf, u_shock[hit]) * p.jump_size if hit is not None and hit.size \
            else None

        # ln D[t+1] = ln D + (g − σ_D²/2)Δ + σ_D√Δ Z_demand + ρ·J_E·N_E
        np.subtract(g, d_drift, out=tmp)
        tmp *= dt
        ln_d += tmp
        ln_d += z_d
        # ln e[t+1] = ln e − ηΔ − J_E·N_E
        ln_e -= p.eta * dt
        if jump is not None:
            ln_d[hit] += p.rebound * jump
            ln_e[hit] -= jump
        # g[t+1] = g + κ_g(ḡ[s] − g)Δ + σ_g√Δ Z_growth
        np.subtract(np.where(regime, g_bust, g_boom), g, out=tmp)
        tmp *= kg_dt
        g += tmp
        g += z_g
        # regime switch with probability p[s]
        if p.regimes_on:
            np.less(u_regime, np.where(regime, sw_bust, sw_boom), out=flip)
            np.bitwise_xor(regime, flip, out=regime)
        # K[t+1] = K(1 − ωΔ) + b[t]·clip(1 + ξ(u[t−L] − u*), 0, m_max)
        k_next = cap[t + 1]
        np.multiply(cap[t], k_keep, out=k_next)
        if p.build[t]:
            if p.response_on:
                np.subtract(util[max(t - p.lag, 0)], p.u_star, out=tmp)
                tmp *= p.xi
                tmp += 1.0
                np.clip(tmp, 0.0, p.m_max, out=tmp)
                tmp *= p.build[t]
                k_next += tmp
            else:
                k_next += p.build[t]
        # ln P[t+1] = ln P + κ_P(ln P*(u) − ln P)Δ + σ_P√Δ Z_price − launches at t+1
        if p.gamma == 2.0:
            np.square(u, out=tmp)
        else:
            np.power(u, p.gamma, out=tmp)
        tmp *= span
        tmp += p.p_floor
        np.log(tmp, out=tmp)
        tmp -= ln_p
        tmp *= kp_dt
        new_p = ln_p_prev  # P[t−1] is no longer needed: its buffer takes ln P[t+1]
        np.add(ln_p, tmp, out=new_p)
        new_p += z_p
        if t + 1 < months and p.launch_drop[t + 1]:
            new_p -= p.launch_drop[t + 1]
        # ln V[t+1] = ln V + β(ln P[t+1] − ln P[t]) − δΔ + σ_V√Δ Z_collateral  (F = 0), ≥ ln V_scrap
        np.subtract(new_p, ln_p, out=tmp)
        tmp *= p.beta
        ln_v += tmp
        ln_v += z_v
        ln_v -= p.delta * dt
        if clamp_v:
            np.maximum(ln_v, p.ln_v_scrap, out=ln_v)
        ln_p_prev, ln_p = ln_p, new_p
        # SOFR shadow rate (Vasicek) and ln spread (OU)
        x_r *= r_keep
        x_r += r_pull
        x_r += z_r
        ln_s *= s_keep
        ln_s += s_pull
        ln_s += z_s

    for name, values in out.items():  # the same finiteness check as the engine's
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise FloatingPointError(f"plain numpy: {name} is not finite")
    return out


def run_plain(config: Config, p: MarketParams, paths: int, block: int, seed: int
              ) -> dict[str, np.ndarray]:
    """`plain_block` over blocks of `block` paths, one Generator per block seeded with
    [seed, block start]; returns the last month of `CHECKED` (paths,) each."""
    keep = {name: np.empty(paths, np.dtype(config.dtype)) for name in CHECKED}
    for start, stop in block_bounds(paths, block):
        rng = np.random.default_rng([seed, start])
        out = plain_block(p, stop - start, numpy_draws(rng), config.dtype)
        for name in CHECKED:
            keep[name][start:stop] = out[name][-1]
    return keep


def run_gpusim_numpy(config: Config, p: MarketParams, paths: int, block: int, seed: int
                     ) -> dict[str, np.ndarray]:
    """`gpusim.backends.reference.simulate_block` (numpy) over blocks; the last month of
    `CHECKED`."""
    keep = {name: np.empty(paths, np.dtype(config.dtype)) for name in CHECKED}
    for start, stop in block_bounds(paths, block):
        out = simulate_block(config, seed, start, stop, params=p)
        for name in CHECKED:
            keep[name][start:stop] = out[name][-1]
    return keep


# --- checks -----------------------------------------------------------------------------------

def moments(x: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation with their standard errors (the latter from the 4th moment)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    mean = float(x.mean())
    dev = x - mean
    var = float(dev @ dev) / (n - 1)
    m4 = float((dev**2) @ (dev**2)) / n
    se_var = math.sqrt(max(m4 - var**2, 0.0) / n)
    std = math.sqrt(var)
    return {"mean": mean, "std": std, "se_mean": std / math.sqrt(n),
            "se_std": se_var / (2 * std) if std > 0 else 0.0}


def distribution_check(a: dict[str, np.ndarray], b: dict[str, np.ndarray], sigmas: float = 4.0,
                       labels: tuple[str, str] = ("gpusim", "plain")) -> dict[str, Any]:
    """Last-month log rental price and log token demand of run a against run b.

    Passes when the means and the standard deviations agree within `sigmas` standard
    errors of their difference. Each variable's entry carries both sides' moments under
    `labels`, the z-scores and whether it passed.
    """
    rows = {}
    ok = True
    for name in CHECKED:
        ma, mb = moments(np.log(a[name])), moments(np.log(b[name]))
        z_mean = (ma["mean"] - mb["mean"]) / (math.hypot(ma["se_mean"], mb["se_mean"]) or 1.0)
        z_std = (ma["std"] - mb["std"]) / (math.hypot(ma["se_std"], mb["se_std"]) or 1.0)
        passed = abs(z_mean) < sigmas and abs(z_std) < sigmas
        ok &= passed
        rows[f"log_{name}"] = {labels[0]: ma, labels[1]: mb, "z_mean": z_mean, "z_std": z_std,
                               "pass": passed}
    return {"sigmas": sigmas, "pass": ok, "variables": rows}


SKETCH_LEVELS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
DTYPE_SLACK = 1e-4
"""Allowed relative difference, beyond the sketch's α, between the exact values of a
float32 run and a float64 run of the same paths (84 months of compounded rounding)."""


def sketch_check(ref: dict[str, np.ndarray], sketches: dict[str, np.ndarray],
                 levels: tuple[float, ...] = SKETCH_LEVELS) -> dict[str, Any]:
    """A summary run's last-month sketches against the exact last month of a cube run.

    Both runs simulate paths 0..n−1 with the same seed, so there is no sampling error:
    each sketch quantile must lie within α (+ `DTYPE_SLACK`) relative of the exact
    `method="lower"` quantile of the first n paths of `ref` (n: the sketch's count).
    """
    tolerance = sketch.ALPHA + DTYPE_SLACK
    rows, ok = {}, True
    for name in CHECKED:
        counts = np.asarray(sketches[name])
        exact = np.quantile(np.asarray(ref[name], np.float64)[:int(counts.sum())], levels,
                            method="lower")
        approx = sketch.quantiles(counts, levels)
        error = float(np.max(np.abs(approx - exact) / np.abs(exact)))
        passed = error <= tolerance
        ok &= passed
        rows[name] = {"levels": list(levels), "sketch": approx.tolist(),
                      "exact": exact.tolist(), "max_rel_err": error, "pass": passed}
    return {"kind": "sketch", "tolerance": tolerance, "pass": ok, "variables": rows}


def gpusim_draws(seed: int, n: int) -> Draw:
    """gpusim's own market draws for paths 0..n−1 (Philox + Box–Muller), as a `Draw`."""

    def draw(eps: np.ndarray, unif: np.ndarray, month: int) -> None:
        e, u = streams.market_draws(seed, np.arange(n, dtype=np.uint64), month)
        eps[...] = e
        unif[...] = u

    return draw


def max_relative_errors(ref: dict[str, Any], mine: dict[str, Any]) -> dict[str, float]:
    """Largest |a − b| / max(|a|, 1% of a's rms) of every output in `OUTPUTS`."""
    worst = {}
    for name in OUTPUTS:
        a, b = np.asarray(ref[name], np.float64), np.asarray(mine[name], np.float64)
        scale = np.maximum(np.abs(a), 1e-2 * math.sqrt(float(np.mean(a * a))) or 1e-300)
        worst[name] = float(np.max(np.abs(a - b) / scale))
    return worst


def equation_check(config: Config, p: MarketParams, seed: int, n: int = 4096) -> dict[str, Any]:
    """`plain_block` fed gpusim's Philox draws against `simulate_block`.

    Only the rounding of the arithmetic differs (order of operations, σ√Δ folded into the
    Cholesky factor), so the largest relative difference of every output must be at
    rounding level: 1e-9 in float64, 1e-3 in float32 (84 months of float32 state). The
    relative difference is taken against max(|x|, 1% of the variable's rms), so that
    values near zero (SOFR floored at 0) do not blow it up.
    """
    tol = 1e-9 if np.dtype(config.dtype) == np.float64 else 1e-3
    ref = simulate_block(config, seed, 0, n, params=p)
    mine = plain_block(p, n, gpusim_draws(seed, n), config.dtype)
    worst = max_relative_errors(ref, mine)
    return {"paths": n, "tol": tol, "max_rel_err": worst, "pass": max(worst.values()) <= tol}
