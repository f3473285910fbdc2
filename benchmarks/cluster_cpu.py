"""CPU that a local dask cluster's own machinery takes from the blocks, per setting.

    python benchmarks/cluster_cpu.py [--workers 2] [--tasks 8] [--task-seconds 1.5]
        [--json results.json]

A local cluster of N single-threaded workers runs tasks that each spin one thread for a
fixed CPU time (no gpusim work, so nothing else varies). Measured in CPU time, which the
load of other users on the machine changes far less than wall time: the client process's
threads other than the main one (the in-process scheduler's and the client's event
loops, the dashboard), each worker's CPU beyond its tasks' own thread time (heartbeats,
the profiler, the system monitor, the event loop), and the cluster's start-up wall time.
Variants: dask's defaults with the dashboard served, the same without a dashboard, and
the settings `gpusim run --workers N` uses (gpusim.executors.cluster.LOCAL_SETTINGS).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any


def spin(seconds: float) -> float:
    """Burn `seconds` of this thread's CPU; returns the thread CPU it took [s]."""
    start = time.thread_time()
    x = 0
    while time.thread_time() - start < seconds:
        for i in range(10_000):
            x += i
    return time.thread_time() - start


def process_cpu() -> float:
    return time.process_time()


def client_threads_cpu() -> float:
    """CPU [s] of this process's threads other than the main one, alive now."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) == os.getpid():
            continue
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(stat[11]) + int(stat[12])) / tick
    return total


def one_variant(name: str, workers: int, tasks: int, seconds: float,
                settings: dict[str, Any], dashboard: str | None) -> dict[str, Any]:
    import dask
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with dask.config.set(settings):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=dashboard)
        client = Client(cluster)
    started = time.perf_counter() - start
    with cluster, client:
        client.run(process_cpu)  # warm
        before_c, before_w = client_threads_cpu(), client.run(process_cpu)
        wall = time.perf_counter()
        futures = [client.submit(spin, seconds, pure=False) for _ in range(tasks * workers)]
        task_cpu = sum(f.result() for f in futures)
        wall = time.perf_counter() - wall
        after_c, after_w = client_threads_cpu(), client.run(process_cpu)
        worker_cpu = sum(after_w[w] - before_w[w] for w in after_w)
        row = {"variant": name, "startup_wall_s": started, "busy_wall_s": wall,
               "client_threads_cpu_s": after_c - before_c,
               "worker_overhead_cpu_s": worker_cpu - task_cpu,
               "task_cpu_s": task_cpu, "load": os.getloadavg()[0]}
    row["per_busy_second"] = {
        "client": row["client_threads_cpu_s"] / wall,
        "workers": row["worker_overhead_cpu_s"] / wall}
    return row


def main() -> None:
    from gpusim.executors.cluster import LOCAL_SETTINGS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=8, help="tasks per worker")
    ap.add_argument("--task-seconds", type=float, default=1.5)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    variants = [("dask defaults, dashboard served", {}, ":0"),
                ("dask defaults, no dashboard", {}, None),
                ("gpusim LOCAL_SETTINGS, no dashboard", LOCAL_SETTINGS, None)]
    rows = []
    for _ in range(args.repeats):
        for name, settings, dashboard in variants:
            rows.append(one_variant(name, args.workers, args.tasks, args.task_seconds,
                                    settings, dashboard))
            print(json.dumps(rows[-1]), flush=True)
    result = {"workers": args.workers, "tasks_per_worker": args.tasks,
              "task_seconds": args.task_seconds, "cpus": os.cpu_count(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
