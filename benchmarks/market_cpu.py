#!/usr/bin/env python
"""Market-model throughput on the CPU: gpusim's numpy engine against plain numpy.

Both sides simulate the market of MODEL.md §2 (no firms, so no fire sales) with the same
parameters (`gpusim.model.market.market_params(config)`), the same timing conventions,
the same block size and the same nine monthly outputs per path, in one process:

- gpusim: `gpusim.engine.simulate_block` over blocks of paths. Its draws come from the
  counter-based Philox4x32-10 streams of `gpusim.streams` (Box–Muller normals), so every
  number is a pure function of (seed, path, month, slot).
- plain:  `plain_block` below, the same equations written as one would in numpy alone:
  vectorized over the paths of a block, a loop over months, preallocated outputs and
  state, in-place ufuncs, the shock volatilities folded into the Cholesky factor, sparse
  efficiency-shock counts. Its normals and uniforms come from numpy's default Generator
  (`np.random.default_rng(...)`, PCG64 + ziggurat), one stream per block.

Throughput is path-months per second, best of `--repeats` (the two sides alternate within
each repeat). Two checks follow: (1) fed gpusim's own draws, `plain_block` reproduces
`simulate_block` to rounding (same equations); (2) with their own generators, the two
agree in distribution: mean and standard deviation of log rental price and log token
demand at the last month within 4 standard errors.

    python benchmarks/market_cpu.py                      # 200,000 paths × 84 months
    python benchmarks/market_cpu.py --paths 50000 --json benchmarks/results/x.json
    python benchmarks/market_cpu.py --profile            # where gpusim's time goes

Exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import gpusim
from gpusim import streams
from gpusim.config import Config, apply_overrides, config_from_dict, resolve_extends
from gpusim.engine import block_bounds, simulate_block
from gpusim.model.market import BOOM, BUST, MarketParams, market_params

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "base.yaml"

OUTPUTS: tuple[str, ...] = (
    "token_demand", "gpu_hour_demand", "capacity", "utilization", "rental_price",
    "collateral_value", "sofr", "credit_spread", "regime",
)
"""The market outputs per (month, path); the same nine that `simulate_block` records."""

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


# --- the plain-numpy market -------------------------------------------------------------

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


# --- running ------------------------------------------------------------------------------

def load_full_config(path: str | None, months: int) -> Config | None:
    """The config with its firms (the full model), or None if it has none."""
    if path is None and DEFAULT_CONFIG.is_file():
        path = str(DEFAULT_CONFIG)
    if path in (None, "builtin"):
        return None
    raw = apply_overrides(resolve_extends(Path(path)), [f"horizon_months={months}"])
    return config_from_dict(raw, source=str(path)) if raw.get("firms") else None


def load_market_config(path: str | None, months: int) -> tuple[Config, str]:
    """The config (firms dropped: this is the market alone) and where it came from."""
    if path is None and DEFAULT_CONFIG.is_file():
        path = str(DEFAULT_CONFIG)
    if path == "builtin":
        raw, source = dict(BUILTIN_CONFIG), "built-in (--config builtin)"
    elif path is None:
        raw, source = dict(BUILTIN_CONFIG), "built-in (configs/base.yaml not found)"
    else:
        raw, source = resolve_extends(Path(path)), str(path)
    raw = apply_overrides(raw, [f"horizon_months={months}"])
    if raw.get("firms"):
        source += " (firms dropped: market only)"
    raw.pop("firms", None)
    return config_from_dict(raw, source=source), source


def run_gpusim(config: Config, p: MarketParams, paths: int, block: int, seed: int,
               keep: dict[str, np.ndarray]) -> float:
    t0 = time.perf_counter()
    for start, stop in block_bounds(paths, block):
        out = simulate_block(config, seed, start, stop, params=p)
        keep["rental_price"][start:stop] = out["rental_price"][-1]
        keep["token_demand"][start:stop] = out["token_demand"][-1]
    return time.perf_counter() - t0


def run_plain(config: Config, p: MarketParams, paths: int, block: int, seed: int,
              keep: dict[str, np.ndarray]) -> float:
    t0 = time.perf_counter()
    for start, stop in block_bounds(paths, block):
        rng = np.random.default_rng([seed, start])
        out = plain_block(p, stop - start, numpy_draws(rng), config.dtype)
        keep["rental_price"][start:stop] = out["rental_price"][-1]
        keep["token_demand"][start:stop] = out["token_demand"][-1]
    return time.perf_counter() - t0


def moments(x: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation with their standard errors (the latter from the 4th moment)."""
    n = x.size
    mean = float(x.mean())
    dev = x - mean
    var = float(dev @ dev) / (n - 1)
    m4 = float((dev**2) @ (dev**2)) / n
    se_var = math.sqrt(max(m4 - var**2, 0.0) / n)
    std = math.sqrt(var)
    return {"mean": mean, "std": std, "se_mean": std / math.sqrt(n),
            "se_std": se_var / (2 * std) if std > 0 else 0.0}


def distribution_check(a: dict[str, np.ndarray], b: dict[str, np.ndarray], sigmas: float = 4.0
                       ) -> dict[str, Any]:
    """Last-month log rental price and log token demand: gpusim (a) vs plain (b)."""
    rows = {}
    ok = True
    for name in ("rental_price", "token_demand"):
        ma, mb = moments(np.log(a[name])), moments(np.log(b[name]))
        z_mean = (ma["mean"] - mb["mean"]) / math.hypot(ma["se_mean"], mb["se_mean"])
        z_std = (ma["std"] - mb["std"]) / math.hypot(ma["se_std"], mb["se_std"])
        passed = abs(z_mean) < sigmas and abs(z_std) < sigmas
        ok &= passed
        rows[f"log_{name}"] = {"gpusim": ma, "plain": mb, "z_mean": z_mean, "z_std": z_std,
                               "pass": passed}
    return {"sigmas": sigmas, "pass": ok, "variables": rows}


def equation_check(config: Config, p: MarketParams, seed: int, n: int = 4096) -> dict[str, Any]:
    """`plain_block` fed gpusim's Philox draws against `simulate_block`.

    Only the rounding of the arithmetic differs (order of operations, σ√Δ folded into the
    Cholesky factor), so the largest relative difference of every output must be at
    rounding level: 1e-9 in float64, 1e-3 in float32 (84 months of float32 state). The
    relative difference is taken against max(|x|, 1% of the variable's rms), so that
    values near zero (SOFR floored at 0) do not blow it up.
    """

    def gpusim_draws(eps: np.ndarray, unif: np.ndarray, month: int) -> None:
        e, u = streams.market_draws(seed, np.arange(n, dtype=np.uint64), month)
        eps[...] = e
        unif[...] = u

    tol = 1e-9 if np.dtype(config.dtype) == np.float64 else 1e-3
    ref = simulate_block(config, seed, 0, n, params=p)
    mine = plain_block(p, n, gpusim_draws, config.dtype)
    worst = {}
    for name in OUTPUTS:
        a, b = np.asarray(ref[name], np.float64), mine[name].astype(np.float64)
        scale = np.maximum(np.abs(a), 1e-2 * math.sqrt(float(np.mean(a * a))) or 1e-300)
        worst[name] = float(np.max(np.abs(a - b) / scale))
    return {"paths": n, "tol": tol, "max_rel_err": worst, "pass": max(worst.values()) <= tol}


def profile(config: Config, p: MarketParams, n: int, seed: int, months: int,
            repeats: int = 3) -> dict[str, float]:
    """Where the time goes, ns per path-month, measured inside real runs of one block.

    gpusim: `simulate_block` with `gpusim.engine.market_draws` and the Philox function of
    `gpusim.streams` wrapped by timers (so everything else is the model: state update,
    recording, correlation, checks). plain: `plain_block` with its draw callable timed.
    Each figure comes from the fastest of `repeats` runs.
    """
    import gpusim.engine as engine

    per = 1e9 / (n * months)
    spent: dict[str, float] = {}

    def timed(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
        return wrapper

    def fastest(run: Callable[[], Any]) -> dict[str, float]:
        best: dict[str, float] | None = None
        for _ in range(repeats):
            spent.clear()
            t0 = time.perf_counter()
            run()
            spent["total"] = time.perf_counter() - t0
            if best is None or spent["total"] < best["total"]:
                best = dict(spent)
        return best or {}

    philox_name = "_philox_rows" if hasattr(streams, "_philox_rows") else "philox4x32"
    saved = engine.market_draws, getattr(streams, philox_name)
    engine.market_draws = timed(saved[0], "draws")
    setattr(streams, philox_name, timed(saved[1], "philox"))
    try:
        g = fastest(lambda: simulate_block(config, seed, 0, n, params=p))
    finally:
        engine.market_draws = saved[0]
        setattr(streams, philox_name, saved[1])
    rng = np.random.default_rng(seed)
    q = fastest(lambda: plain_block(p, n, timed(numpy_draws(rng), "draws"), config.dtype))
    return {
        "gpusim_total": g["total"] * per,
        "gpusim_draws": g.get("draws", 0.0) * per,
        "gpusim_draws_philox": g.get("philox", 0.0) * per,
        "gpusim_draws_uniforms_box_muller": (g.get("draws", 0.0) - g.get("philox", 0.0)) * per,
        "gpusim_model": (g["total"] - g.get("draws", 0.0)) * per,
        "plain_total": q["total"] * per,
        "plain_draws": q.get("draws", 0.0) * per,
        "plain_model": (q["total"] - q.get("draws", 0.0)) * per,
    }


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except (KeyError, TypeError, ValueError):
        blas = "unknown"
    return {
        "hostname": socket.gethostname(),
        "cpu": cpu,
        "cpus_usable": usable,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "gpusim": gpusim.__version__,
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paths", type=int, default=200_000, help="paths (default 200,000)")
    ap.add_argument("--months", type=int, default=84, help="months simulated (default 84)")
    ap.add_argument("--block-paths", type=int, default=16_384,
                    help="paths per block, both sides (default 16,384)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats, best taken (default 3)")
    ap.add_argument("--config", default=None,
                    help="scenario YAML (default configs/base.yaml if present, else the "
                    "built-in market; 'builtin' forces the latter)")
    ap.add_argument("--seed", type=int, default=2026, help="seed (default 2026)")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the results here")
    ap.add_argument("--profile", action="store_true",
                    help="also time gpusim's pieces (Philox, Box–Muller, model) on one block")
    args = ap.parse_args(argv)
    if args.paths < 2 or args.block_paths < 1 or args.repeats < 1 or args.months < 2:
        ap.error("--paths ≥ 2, --block-paths ≥ 1, --repeats ≥ 1, --months ≥ 2")

    config, source = load_market_config(args.config, args.months)
    p = market_params(config)
    info = machine_info()
    pm = args.paths * args.months
    print(f"machine : {info['cpu']} ({info['cpus_usable']} CPUs usable), host {info['hostname']}")
    print(f"software: python {info['python']}, numpy {info['numpy']} ({info['blas']}), "
          f"gpusim {info['gpusim']}, OPENBLAS_CORETYPE={info['openblas_coretype']}")
    print(f"date    : {info['date']}")
    print(f"config  : {source}, dtype {config.dtype}")
    print(f"run     : {args.paths:,} paths × {args.months} months = {pm:,} path-months, "
          f"blocks of {args.block_paths:,}, best of {args.repeats}, seed {args.seed}")

    full = load_full_config(args.config, args.months)
    sides = ["gpusim", "plain"] + (["gpusim_full"] if full is not None else [])
    keep = {side: {name: np.empty(args.paths) for name in ("rental_price", "token_demand")}
            for side in sides}
    times: dict[str, list[float]] = {side: [] for side in sides}
    for r in range(args.repeats):
        times["gpusim"].append(run_gpusim(config, p, args.paths, args.block_paths, args.seed,
                                          keep["gpusim"]))
        times["plain"].append(run_plain(config, p, args.paths, args.block_paths, args.seed,
                                        keep["plain"]))
        if full is not None:  # the same market plus the config's firms and their debt
            times["gpusim_full"].append(run_gpusim(full, market_params(full), args.paths,
                                                   args.block_paths, args.seed,
                                                   keep["gpusim_full"]))
        print(f"  repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()))
    best = {k: min(v) for k, v in times.items()}
    rate = {k: pm / v for k, v in best.items()}
    ratio = rate["gpusim"] / rate["plain"]
    print()
    print(f"{'':12s} {'best [s]':>10s} {'path-months/s':>15s} {'ns/path-month':>14s}")
    for k in sides:
        print(f"{k:12s} {best[k]:10.3f} {rate[k]:15,.0f} {1e9 / rate[k]:14.1f}")
    print(f"ratio gpusim/plain (market alone): {ratio:.3f}  (goal ≥ 0.5)")
    if full is not None:
        print(f"full model ({len(full.firms)} firms, "
              f"{sum(len(f.facilities) for f in full.firms)} facilities): "
              f"{rate['gpusim_full']:,.0f} path-months/s, "
              f"{rate['gpusim_full'] / rate['gpusim']:.2f}× the market alone")

    dist = distribution_check(keep["gpusim"], keep["plain"])  # market alone on both sides
    print()
    print(f"distribution check, last month, {args.paths:,} paths each "
          f"(|z| < {dist['sigmas']:g} standard errors):")
    for name, row in dist["variables"].items():
        g, q = row["gpusim"], row["plain"]
        print(f"  {name:18s} mean {g['mean']:.5f} vs {q['mean']:.5f} (z {row['z_mean']:+.2f}); "
              f"std {g['std']:.5f} vs {q['std']:.5f} (z {row['z_std']:+.2f})  "
              f"{'ok' if row['pass'] else 'FAIL'}")
    eq = equation_check(config, p, args.seed, min(args.paths, 4096))
    print(f"equation check, plain fed gpusim's draws, {eq['paths']:,} paths × {args.months} "
          f"months: max relative difference {max(eq['max_rel_err'].values()):.2e} "
          f"(tolerance {eq['tol']:.0e})  {'ok' if eq['pass'] else 'FAIL'}")

    prof = None
    if args.profile:
        prof = profile(config, p, min(args.block_paths, args.paths), args.seed, args.months)
        print()
        print(f"profile, ns per path-month (one block of {min(args.block_paths, args.paths):,} "
              "paths, timers inside the run):")
        for k, v in prof.items():
            print(f"  {k:34s} {v:7.1f}")

    if hasattr(os, "getloadavg"):
        info["load_average_at_end"] = list(os.getloadavg())
        busy = max(info["load_average_at_start"][0], info["load_average_at_end"][0])
        if busy > 1.5:  # this run keeps about one CPU busy
            print(f"note: 1-minute load average reached {busy:.1f}: other processes were "
                  "running, timings may be pessimistic")

    if args.json:
        result = {
            "benchmark": "market_cpu",
            "machine": info,
            "settings": {"paths": args.paths, "months": args.months,
                         "block_paths": args.block_paths, "repeats": args.repeats,
                         "seed": args.seed, "config": source, "dtype": config.dtype},
            "path_months": pm,
            "times_s": times,
            "best_s": best,
            "path_months_per_s": rate,
            "ratio_gpusim_over_plain": ratio,
            "distribution_check": dist,
            "equation_check": eq,
            "profile_ns_per_path_month": prof,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0 if dist["pass"] and eq["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
