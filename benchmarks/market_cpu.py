#!/usr/bin/env python
"""Market-model throughput on the CPU: gpusim's numpy engine against plain numpy.

Both sides simulate the market of MODEL.md §2 (no firms, so no fire sales) with the same
parameters (`gpusim.model.market.market_params(config)`), the same timing conventions,
the same block size and the same nine monthly outputs per path, in one process:

- gpusim: `gpusim.backends.reference.simulate_block` over blocks of paths. Its draws come from the
  counter-based Philox4x32-10 streams of `gpusim.streams` (Box–Muller normals), so every
  number is a pure function of (seed, path, month, slot).
- plain:  `plain_block` (in gpusim/bench/peers.py, shared with `gpusim bench`), the same
  equations written as one would in numpy alone: vectorized over the paths of a block, a
  loop over months, preallocated outputs and state, in-place ufuncs, the shock
  volatilities folded into the Cholesky factor, sparse efficiency-shock counts. Its
  normals and uniforms come from numpy's default Generator (`np.random.default_rng(...)`,
  PCG64 + ziggurat), one stream per block.

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
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gpusim import streams
from gpusim.backends.base import block_bounds
from gpusim.backends.reference import simulate_block
from gpusim.bench.machine import machine_info
from gpusim.bench.peers import (  # the peer lives in the package, for `gpusim bench` too
    distribution_check,
    equation_check,
    load_full_config,
    load_market_config,
    numpy_draws,
    plain_block,
)
from gpusim.config import Config
from gpusim.model.market import MarketParams, market_params

# --- running ------------------------------------------------------------------------------

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


def profile(config: Config, p: MarketParams, n: int, seed: int, months: int,
            repeats: int = 3) -> dict[str, float]:
    """Where the time goes, ns per path-month, measured inside real runs of one block.

    gpusim: `simulate_block` with `gpusim.backends.reference.market_draws` and the Philox
    function of `gpusim.streams` wrapped by timers (so everything else is the model: state update,
    recording, correlation, checks). plain: `plain_block` with its draw callable timed.
    Each figure comes from the fastest of `repeats` runs.
    """
    import gpusim.backends.reference as engine

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
