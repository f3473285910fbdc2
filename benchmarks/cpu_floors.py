"""The CPU floors of the native backend, measured interleaved so that a busy machine
slows every side alike.

    python benchmarks/cpu_floors.py [--paths 32768] [--full-paths 16384] [--repeats 5]
        [--json results.json]

Each repeat runs, one after the other: the market-only model (configs/base.yaml without
firms) as a cube in memory with plain numpy, the numpy reference and the native backend
(one thread, all cores); then the full model in summary mode with the numpy reference
and the native backend (one thread, all cores). Blocks of 16,384 paths, float64, seed 1.
The best time of each side is kept; the 1-minute load average is recorded per repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from gpusim.backends.native import NativeBackend, usable_threads
from gpusim.backends.reference import NumpyBackend
from gpusim.bench import cpu, peers
from gpusim.config import load_config
from gpusim.model.market import market_params

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base.yaml"
BLOCK = 16_384


def sides(paths: int, full_paths: int) -> dict:
    """name → a function that runs that side once."""
    market = load_config(CONFIG, overrides=["firms=[]"])
    full = load_config(CONFIG)
    p = market_params(market)
    every = usable_threads()
    return {
        "market_cube_plain_numpy": lambda: peers.run_plain(market, p, paths, BLOCK, 1),
        "market_cube_numpy_reference": lambda: peers.run_gpusim_numpy(market, p, paths,
                                                                      BLOCK, 1),
        "market_cube_native_1t": lambda: cpu.cube_run(NativeBackend(market, 1), paths,
                                                      BLOCK, 1),
        f"market_cube_native_{every}t": lambda: cpu.cube_run(NativeBackend(market, every),
                                                             paths, BLOCK, 1),
        "full_summary_numpy_reference": lambda: cpu.summary_run(NumpyBackend(full),
                                                                full_paths, BLOCK, 1),
        "full_summary_native_1t": lambda: cpu.summary_run(NativeBackend(full, 1), full_paths,
                                                          BLOCK, 1),
        f"full_summary_native_{every}t": lambda: cpu.summary_run(NativeBackend(full, every),
                                                                 full_paths, BLOCK, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=32_768)
    ap.add_argument("--full-paths", type=int, default=16_384)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    runs = sides(args.paths, args.full_paths)
    for run in runs.values():  # warm: imports, first allocations
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    loads = []
    for _ in range(args.repeats):
        loads.append(os.getloadavg()[0])
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    every = usable_threads()
    ratios = {
        "numpy_reference_over_plain_numpy_market":
            best["market_cube_plain_numpy"] / best["market_cube_numpy_reference"],
        "native_1t_over_plain_numpy_market":
            best["market_cube_plain_numpy"] / best["market_cube_native_1t"],
        f"native_{every}t_over_plain_numpy_market":
            best["market_cube_plain_numpy"] / best[f"market_cube_native_{every}t"],
        "native_1t_over_numpy_reference_full_summary":
            best["full_summary_numpy_reference"] / best["full_summary_native_1t"],
        f"native_{every}t_over_numpy_reference_full_summary":
            best["full_summary_numpy_reference"] / best[f"full_summary_native_{every}t"],
    }
    for name, value in ratios.items():
        print(f"{name:48s} {value:6.2f}x")
    print(f"load average (1 min) per repeat: {', '.join(f'{x:.1f}' for x in loads)}")
    if args.json:
        args.json.write_text(json.dumps({
            "paths": args.paths, "full_paths": args.full_paths, "block": BLOCK,
            "threads": every, "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loads": loads,
            "times_s": times, "best_s": best, "ratios": ratios}, indent=1) + "\n")


if __name__ == "__main__":
    main()
