"""Executors carry out a planned run's blocks: in this process (local.py) or as tasks on a
dask.distributed cluster (cluster.py), behind one interface, with the same result.

An executor is made for one config and device. It says what the blocks run on
(`device_name` for the store's provenance, `kind` for its resume identity: "numpy",
"cpu", "gpu" or several joined by "+") and `run(task, blocks, on_done)` carries out a
block task (tasks.py) on the blocks it is given, calling `on_done(block, result)` in the
caller's thread once each block is written; `with_config(config)` gives the same executor
(process, cluster) for another config, as a sweep's scenarios need; `wind_down()` says no
more blocks will be run (a cluster started here then closes while the run's record is
finished). Which blocks are still
to do is the plan's business (gpusim.plan), so both executors skip finished blocks through
the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from gpusim.backends.base import Block
from gpusim.config import Config
from gpusim.executors.cluster import DaskExecutor, cluster_client, open_local
from gpusim.executors.local import LocalExecutor
from gpusim.executors.tasks import BlockTask


class Executor(Protocol):
    device_name: str
    kind: str
    on_gpu: bool
    native_threads: int | None  # an in-process native backend's threads, else None

    def with_config(self, config: Config) -> Executor: ...

    def wind_down(self) -> None: ...

    def run(self, task: BlockTask, blocks: Sequence[Block],
            on_done: Callable[[Block, Any], None]) -> None: ...


@contextmanager
def open_executor(config: Config, device: str, workers: int | None = None,
                  cuda_workers: bool = False, scheduler: str | None = None,
                  dashboard: str | None = None) -> Iterator[Executor]:
    """The executor for a run: in-process unless `workers`, `cuda_workers` or `scheduler`
    ask for a cluster (see `cluster_client`; `--workers N`: `open_local`), which is shut
    down on leaving; `dashboard`: where a cluster started here serves its dashboard."""
    if workers is not None and not cuda_workers and scheduler is None:
        with open_local(config, device, workers, dashboard) as executor:
            yield executor
        return
    with cluster_client(workers, cuda_workers, scheduler, dashboard) as client:
        if client is None:
            yield LocalExecutor(config, device)
        else:
            yield DaskExecutor(client, config, device, cuda_workers)
