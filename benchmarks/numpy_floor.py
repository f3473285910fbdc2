"""The numpy reference against the plain-numpy peer on the market-only model, interleaved.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/numpy_floor.py \
        [--paths 32768] [--repeats 7] [--parts] [--json results.json]

The issue's floor: the numpy reference (gpusim's `simulate_block`, Philox streams) runs at
≥ 0.6× the plain-numpy peer (`gpusim.bench.peers.run_plain`, numpy's default Generator)
on configs/base.yaml without firms, as a cube in memory, blocks of 16,384 paths, float64,
seed 1 (what `cpu_floors.py` times, without the native rows). Each repeat runs both sides
one after the other; the best wall time and the best CPU time (`time.process_time`, this
process only) of each side are kept, with the 1-minute load average per repeat. On a
machine shared with other work the CPU-time ratio is the steadier figure: it does not
count the time the process waited for a core (it still feels shared caches).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from gpusim.bench import peers
from gpusim.config import load_config
from gpusim.model.market import MarketParams, market_params
from gpusim.streams import market_draws, path_words

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base.yaml"
BLOCK = 16_384


def plain_draws(config: object, p: MarketParams, paths: int, block: int, seed: int) -> None:
    """The peer's random numbers alone: what `run_plain` draws, into the same buffers."""
    eps, unif = np.empty((6, block)), np.empty((2, block))
    for start, stop in peers.block_bounds(paths, block):
        draw = peers.numpy_draws(np.random.default_rng([seed, start]))
        for t in range(p.months - 1):
            draw(eps[:, : stop - start], unif[:, : stop - start], t)


def reference_draws(config: object, p: MarketParams, paths: int, block: int, seed: int
                    ) -> None:
    """The reference's random numbers alone: what `simulate_block` draws, into the same
    buffers (Philox4x32-10, uniforms, Box–Muller)."""
    for start, stop in peers.block_bounds(paths, block):
        words = path_words(np.arange(start, stop, dtype=np.uint64))
        out = (np.empty((6, stop - start)), np.empty((2, stop - start)))
        for t in range(p.months - 1):
            market_draws(seed, words, t, out=out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=32_768)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--parts", action="store_true",
                    help="also time each side's random numbers alone")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    config = load_config(CONFIG, overrides=["firms=[]"])
    p = market_params(config)
    sides = {"plain_numpy": peers.run_plain, "numpy_reference": peers.run_gpusim_numpy}
    if args.parts:
        sides |= {"plain_numpy_draws": plain_draws, "numpy_reference_draws": reference_draws}
    for run in sides.values():  # warm: imports, first allocations
        run(config, p, BLOCK, BLOCK, 1)
    wall: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    loads = []
    for _ in range(args.repeats):
        loads.append(os.getloadavg()[0])
        for name, run in sides.items():
            w, c = time.perf_counter(), time.process_time()
            run(config, p, args.paths, BLOCK, 1)
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    best_wall = {name: min(t) for name, t in wall.items()}
    best_cpu = {name: min(t) for name, t in cpu.items()}
    ratios = {
        "wall": best_wall["plain_numpy"] / best_wall["numpy_reference"],
        "cpu": best_cpu["plain_numpy"] / best_cpu["numpy_reference"],
    }
    for what in ("wall", "cpu"):
        best = best_wall if what == "wall" else best_cpu
        print(f"numpy reference / plain numpy, {what:4s} time: {ratios[what]:.2f}x  (best "
              f"{best['numpy_reference']:.3f} s vs {best['plain_numpy']:.3f} s)")
    pairs = [a / b for a, b in zip(cpu["plain_numpy"], cpu["numpy_reference"], strict=True)]
    ratios["cpu_median_of_repeats"] = statistics.median(pairs)
    print(f"per repeat (CPU time): median {ratios['cpu_median_of_repeats']:.2f}x, range "
          f"{min(pairs):.2f}-{max(pairs):.2f}x")
    if args.parts:
        ratios["cpu_if_model_as_plain"] = print_parts(best_cpu, args.paths * (p.months - 1))
    print(f"load average (1 min) per repeat: {', '.join(f'{x:.1f}' for x in loads)}")
    if args.json:
        threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        args.json.write_text(json.dumps({
            "paths": args.paths, "block": BLOCK, "cpus": os.cpu_count(), "env": threads,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loads": loads,
            "wall_s": wall, "cpu_s": cpu, "best_wall_s": best_wall, "best_cpu_s": best_cpu,
            "ratios": ratios}, indent=1) + "\n")


def print_parts(best_cpu: dict[str, float], path_months: int) -> float:
    """Print each side's draws and model step in ns per path-month (best CPU times);
    return plain ÷ (reference draws + plain's model step)."""
    ns = {name: t / path_months * 1e9 for name, t in best_cpu.items()}
    for side in ("plain_numpy", "numpy_reference"):
        draws = ns[f"{side}_draws"]
        print(f"{side:16s} {ns[side]:6.1f} ns/path-month: draws {draws:6.1f}, "
              f"model step {ns[side] - draws:6.1f}")
    plain_model = ns["plain_numpy"] - ns["plain_numpy_draws"]
    ceiling = ns["plain_numpy"] / (ns["numpy_reference_draws"] + plain_model)
    print(f"if the reference's model step cost what plain numpy's does: {ceiling:.2f}x")
    return ceiling


if __name__ == "__main__":
    main()
