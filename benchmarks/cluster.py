"""Parallel efficiency of dask.distributed runs, and the overhead of one block task.

    python benchmarks/cluster.py [--config configs/base.yaml] [--paths 64000]
        [--block-paths 4000] [--mode summary] [--json results.json]

For a run of fixed size it times the in-process run and local clusters of 1 and 2 worker
processes (cluster start-up excluded: a cluster is started, warmed with one tiny run,
then timed), and reports the parallel efficiency T(1 worker) / (2 · T(2 workers)). The
per-task overhead is the time per block of a run of tiny blocks on 1 worker minus the
time per block of the same blocks in process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import gpusim

ROOT = Path(__file__).resolve().parents[1]


def timed_run(config: gpusim.Config, where: Path, name: str, **kwargs: object) -> float:
    start = time.perf_counter()
    gpusim.run(config, where / f"{name}.zarr", device="cpu", overwrite=True, **kwargs)
    return time.perf_counter() - start


def on_cluster(workers: int, config: gpusim.Config, where: Path, runs: dict) -> dict:
    """Seconds of each run in `runs` on a warmed LocalCluster of `workers` processes."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        address = client.scheduler.address
        timed_run(config, where, "warm", paths=workers * 200, block_paths=200,
                  scheduler=address)
        return {name: timed_run(config, where, f"{name}-{workers}", scheduler=address, **kw)
                for name, kw in runs.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "base.yaml"))
    ap.add_argument("--paths", type=int, default=64_000)
    ap.add_argument("--block-paths", type=int, default=4_000)
    ap.add_argument("--tiny-blocks", type=int, default=64, help="blocks in the overhead run")
    ap.add_argument("--mode", default="summary", choices=["cube", "summary"])
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    config = gpusim.load_config(args.config)
    fixed = {"paths": args.paths, "block_paths": args.block_paths, "mode": args.mode}
    tiny = {"paths": args.tiny_blocks * 16, "block_paths": 16, "mode": args.mode}
    with tempfile.TemporaryDirectory(prefix="gpusim-dist-") as scratch:
        where = Path(scratch)
        in_process = {"fixed": timed_run(config, where, "local", **fixed),
                      "tiny": timed_run(config, where, "local-tiny", **tiny)}
        one = on_cluster(1, config, where, {"fixed": fixed, "tiny": tiny})
        two = on_cluster(2, config, where, {"fixed": fixed})
    efficiency = one["fixed"] / (2 * two["fixed"])
    overhead = (one["tiny"] - in_process["tiny"]) / args.tiny_blocks
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": platform.node(),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "gpusim": gpusim.__version__, "config": args.config, "settings": vars(args),
        "seconds": {"in_process": in_process, "workers_1": one, "workers_2": two},
        "parallel_efficiency_2_vs_1": efficiency,
        "speedup_2_workers_vs_in_process": in_process["fixed"] / two["fixed"],
        "per_task_overhead_s": overhead,
    }
    print(f"{args.paths:,} paths in blocks of {args.block_paths:,} ({args.mode} mode), "
          f"{os.cpu_count()} cores:")
    print(f"  in process {in_process['fixed']:.2f} s; 1 worker {one['fixed']:.2f} s; "
          f"2 workers {two['fixed']:.2f} s")
    print(f"  parallel efficiency 2 vs 1 workers: {efficiency:.0%} (goal ≥ 80%)")
    print(f"  per-task overhead: {overhead * 1e3:.1f} ms per block "
          f"({args.tiny_blocks} blocks of 16 paths: {one['tiny']:.2f} s on 1 worker, "
          f"{in_process['tiny']:.2f} s in process)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
