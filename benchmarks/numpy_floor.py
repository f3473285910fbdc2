"""The numpy reference against the plain-numpy peer on the market-only model, interleaved.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/numpy_floor.py \
        [--paths 32768] [--repeats 7] [--json results.json]

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
import time
from pathlib import Path

from gpusim.bench import peers
from gpusim.config import load_config
from gpusim.model.market import market_params

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base.yaml"
BLOCK = 16_384


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=32_768)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    config = load_config(CONFIG, overrides=["firms=[]"])
    p = market_params(config)
    sides = {"plain_numpy": peers.run_plain, "numpy_reference": peers.run_gpusim_numpy}
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
    print(f"load average (1 min) per repeat: {', '.join(f'{x:.1f}' for x in loads)}")
    if args.json:
        threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        args.json.write_text(json.dumps({
            "paths": args.paths, "block": BLOCK, "cpus": os.cpu_count(), "env": threads,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loads": loads,
            "wall_s": wall, "cpu_s": cpu, "best_wall_s": best_wall, "best_cpu_s": best_cpu,
            "ratios": ratios}, indent=1) + "\n")


if __name__ == "__main__":
    main()
