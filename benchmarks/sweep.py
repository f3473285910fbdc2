"""A sweep of k scenarios against k separate runs of the same paths, in one process.

Times `gpusim.sweep.run_sweep` (one store with a `scenario` dimension) and, for the same
scenarios, k calls of `gpusim.run` (k stores), alternating, each `--repeats` times; prints
wall time and process CPU time (user + system of every thread: less sensitive to other
load on the machine than wall time) and the load average before and after.

    python benchmarks/sweep.py [--config configs/base.yaml] [--paths 4000] [--mode summary]
                               [--device cpu] [--values 1.5,2.2,3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from gpusim import run
from gpusim.config import load_config
from gpusim.sweep import plan_sweep, run_sweep

KEY = "market.price.initial"


def timed(work) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of `work()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/base.yaml"))
    parser.add_argument("--paths", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", default="summary", choices=["cube", "summary"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--values", default="1.5,2.2,3")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    values = [float(v) for v in args.values.split(",")]
    common = {"paths": args.paths, "seed": args.seed, "mode": args.mode,
              "device": args.device}
    work = Path(tempfile.mkdtemp(prefix="gpusim-sweep-bench-"))
    rows = {"sweep": [], "runs": []}
    load_before = os.getloadavg()
    out = work / "sweep.zarr"
    try:
        for _ in range(args.repeats):
            rows["sweep"].append(timed(lambda: run_sweep(plan_sweep(
                args.config, [(KEY, values)], out, overwrite=out.exists(), **common))))

            def separate() -> None:
                for i, v in enumerate(values):
                    store = work / f"run{i}.zarr"
                    run(load_config(args.config, [f"{KEY}={v}"]), store,
                        overwrite=store.exists(), **common)
            rows["runs"].append(timed(separate))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"config": str(args.config), "scenarios": len(values), **common,
              "load_before": load_before, "load_after": os.getloadavg(),
              "cpus": len(os.sched_getaffinity(0))}
    for name, samples in rows.items():
        result[name] = {"wall_s": [round(w, 2) for w, _ in samples],
                        "cpu_s": [round(c, 2) for _, c in samples]}
        print(f"{name:6s} wall {min(w for w, _ in samples):7.2f} s (best of "
              f"{len(samples)})   cpu {min(c for _, c in samples):7.2f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
