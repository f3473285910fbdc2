"""Running a store's blocks on a dask.distributed cluster.

The same blocks as an in-process run become tasks: each simulates one block on its
worker's device and writes its own chunk-aligned region of the store (cube mode), or
writes its per-path default months and losses and returns its sketches sparsely (summary
mode). The client records completion and merges sketches, so `--resume` works as in
process, and the finished store holds the same bits. A worker that dies costs a retry:
region writes are idempotent and a block is recorded only once its task has returned.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from gpusim.config import Config, config_from_dict, config_to_yaml
from gpusim.cube import BlockSimulator, block_simulator
from gpusim.errors import InputError

RETRIES = 3
"""Times a block task is retried after an error (worker deaths are rescheduled anyway)."""


def check_cluster_options(workers: int | None, cuda_workers: bool, scheduler: str | None
                          ) -> bool:
    """Whether a cluster is asked for; InputError if the options contradict each other."""
    chosen = (workers is not None) + bool(cuda_workers) + (scheduler is not None)
    if chosen > 1:
        raise InputError("--workers, --cuda-workers and --scheduler are alternatives; "
                         "pass one of them")
    if workers is not None and workers < 1:
        raise InputError(f"--workers = {workers}: expected a positive number of processes")
    return chosen == 1


@contextmanager
def cluster_client(workers: int | None = None, cuda_workers: bool = False,
                   scheduler: str | None = None) -> Iterator[Any]:
    """A dask.distributed Client for the requested cluster, or None for in-process runs.

    `workers`: a LocalCluster of that many single-threaded processes; `cuda_workers`:
    dask-cuda's LocalCUDACluster, one worker per GPU; `scheduler`: an existing cluster's
    address (e.g. tcp://10.0.0.5:8786).
    """
    if not check_cluster_options(workers, cuda_workers, scheduler):
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise InputError("running on a cluster needs dask.distributed: pip install "
                         f"distributed ({err})") from None
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    if cuda_workers:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            raise InputError("--cuda-workers needs dask-cuda on a GPU machine: pip install "
                             "'gpusim[cuda12]' (or cuda13)") from None
        cluster = LocalCUDACluster()
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    with cluster, Client(cluster) as client:
        yield client


@cache
def _simulator(config_yaml: str, device: str) -> BlockSimulator:
    """One simulator per worker process, config and device (kernels compile once)."""
    import yaml

    return block_simulator(config_from_dict(yaml.safe_load(config_yaml)), device)


def _cube_task(out: str, config_yaml: str, device: str, seed: int, block: int, start: int,
               stop: int) -> tuple[int, int]:
    from gpusim.cube import block_dataset
    from gpusim.store import quiet_zarr, write_region

    simulator = _simulator(config_yaml, device)
    ds = block_dataset(simulator(seed, start, stop), start, simulator.config)
    with quiet_zarr():
        write_region(Path(out), ds, start, stop)
    return block, stop - start


def _summary_task(out: str, config_yaml: str, device: str, seed: int, block: int, start: int,
                  stop: int) -> tuple[int, int, dict]:
    from gpusim.store import quiet_zarr, summary_block

    simulator = _simulator(config_yaml, device)
    with quiet_zarr():
        counts = summary_block(Path(out), simulator, seed, start, stop)
    return block, stop - start, counts


def _worker_device(config_yaml: str, device: str) -> str:
    return f"{_simulator(config_yaml, device).device_name} (pid {os.getpid()})"


def worker_devices(client: Any, config: Config, device: str) -> tuple[str, str]:
    """What the workers simulate on: a description for the store's provenance, and the
    backend ("cpu", "gpu" or "cpu+gpu") for its resume identity."""
    names = client.run(_worker_device, config_to_yaml(config), device)
    kinds = sorted({name.split(" (pid")[0] for name in names.values()})
    backend = "+".join(sorted({kind.split(":")[0] for kind in kinds}))
    return f"dask cluster of {len(names)} workers: {', '.join(kinds)}", backend


def run_blocks(client: Any, out: Path, config: Config, bounds: list[tuple[int, int]],
               seed: int, device: str, mode: str, on_block: Callable[[int], None] | None
               ) -> None:
    """Run the blocks not yet recorded as done on the cluster, as tasks."""
    from distributed import as_completed

    from gpusim.store import CHECKPOINT, Summary, blocks_done, mark_done

    config_yaml = config_to_yaml(config)
    summary = Summary.load(out / CHECKPOINT, config) if mode == "summary" else None
    done = set(summary.blocks) if summary else set(map(int, blocks_done(out).nonzero()[0]))
    task = _summary_task if mode == "summary" else _cube_task
    futures = []
    run_id = uuid.uuid4().hex  # keys are shared by every client of a scheduler
    for b, (start, stop) in enumerate(bounds):
        if b in done:
            if on_block is not None:
                on_block(stop - start)
            continue
        futures.append(client.submit(task, str(out), config_yaml, device, seed, b, start, stop,
                                     key=f"gpusim-{mode}-{run_id}-block-{b}", retries=RETRIES,
                                     pure=False))
    for future in as_completed(futures):
        block, n, *counts = future.result()
        if summary is not None:
            summary.add(block, counts[0])
            summary.checkpoint_if_due(out)
        else:
            mark_done(out, [block])
        future.release()
        if on_block is not None:
            on_block(n)
    if summary is not None:
        summary.finish(out)
