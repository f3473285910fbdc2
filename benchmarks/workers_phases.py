"""Where a `--workers N` summary run's time goes: wall and CPU of its parts, in process.

    python benchmarks/workers_phases.py [--paths 200000] [--workers 2] [--device numpy]
        [--json results.json]

Runs `gpusim.run(configs/base.yaml, mode="summary", workers=N)` once in this process with
its parts timed (whichever of them the code at hand has): the cluster's start (on its
background thread since session 3, overlapping the layout), the workers' device probe
(gone for numpy/cpu since session 3), laying out the store, running the blocks, writing
the sketches, marking the store finished, and the whole run. CPU is measured where the
other users' load changes it least: per thread of this client process (the scheduler's
event loop lives here) just before the cluster closes, and per worker process over the
blocks (with its threads). Run it against older code with PYTHONPATH=<that checkout>.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMES: dict[str, Any] = {}


def threads_cpu() -> dict[str, float]:
    """CPU [s] of each live thread of this process, by name/tid."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
            stat = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[f"{name}/{tid}"] = round((int(stat[11]) + int(stat[12])) / tick, 2)
    return out


def process_cpu() -> float:
    return time.process_time()


def timed(owner: Any, name: str, label: str, after: Callable[..., None] | None = None
          ) -> None:
    """Wrap owner.name so that its wall and CPU (this thread's) add up under `label`."""
    if not hasattr(owner, name):
        return
    inner = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            TIMES[label] = round(TIMES.get(label, 0) + time.perf_counter() - wall, 3)
            TIMES[label + "_thread_cpu"] = round(
                TIMES.get(label + "_thread_cpu", 0) + time.thread_time() - cpu, 3)
            if after is not None:
                after(*args)

    setattr(owner, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="numpy")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import gpusim
    import gpusim.executors.cluster as cluster
    import gpusim.plan as plan
    import gpusim.store as store

    def workers_before(executor: Any, *rest: Any) -> None:
        TIMES["_before"] = executor.client.run(process_cpu)

    def workers_after(executor: Any, *rest: Any) -> None:
        after = executor.client.run(process_cpu)
        TIMES["worker_cpu_in_blocks"] = [round(after[w] - TIMES["_before"][w], 2)
                                         for w in after]
        TIMES["worker_threads_cpu"] = list(executor.client.run(threads_cpu).values())
        TIMES["client_threads_cpu_before_close"] = {
            k: v for k, v in threads_cpu().items() if v >= 0.05}

    timed(cluster, "_start_local", "cluster_start_background")
    timed(cluster, "worker_devices", "device_probe")
    timed(plan.Plan, "lay_out", "lay_out")
    timed(store.SummaryProgress, "finish", "sketches_write")
    timed(plan, "mark_finished", "mark_finished")
    inner_run = cluster.DaskExecutor.run

    def run(self: Any, *a: Any, **k: Any) -> None:
        wall = time.perf_counter()
        workers_before(self)  # waits for a cluster still starting
        TIMES["waiting_for_cluster"] = round(time.perf_counter() - wall, 3)
        wall = time.perf_counter()
        inner_run(self, *a, **k)
        TIMES["blocks"] = round(TIMES.get("blocks", 0) + time.perf_counter() - wall, 3)
        workers_after(self)

    cluster.DaskExecutor.run = run
    config = gpusim.load_config(ROOT / "configs" / "base.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        gpusim.run(config, Path(tmp) / "s.zarr", paths=args.paths, seed=1, mode="summary",
                   device=args.device, workers=args.workers)
        TIMES["whole_run"] = round(time.perf_counter() - wall, 3)
        TIMES["whole_run_client_cpu"] = round(time.process_time() - cpu, 3)
    TIMES.pop("_before", None)
    result = {"paths": args.paths, "workers": args.workers, "device": args.device,
              "code": gpusim.__file__, "cpus": os.cpu_count(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "load_after": os.getloadavg(), **TIMES}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
