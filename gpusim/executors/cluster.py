"""The dask.distributed executor: the same blocks as an in-process run, as tasks.

Each task simulates one block on its worker's device and writes its own chunk-aligned
region of the store (cube mode), or writes its per-path default months and losses and
returns its sketches sparsely (summary mode); see gpusim.executors.tasks. The client
records completion and merges sketches, so `--resume` works as in process, and the
finished store holds the same bits. A worker that dies costs a retry: region writes are
idempotent and a block is recorded only once its task has returned.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import yaml

from gpusim.backends.base import Backend, Block
from gpusim.backends.devices import select_backend
from gpusim.backends.native import usable_threads
from gpusim.config import Config, config_from_dict, config_to_yaml
from gpusim.errors import InputError
from gpusim.executors.tasks import BlockTask, run_block
from gpusim.store import quiet_zarr

ENVIRON_KEY = "distributed.nanny.pre-spawn-environ"
"""dask's config of the environment a nanny sets before it starts its worker process."""
RETRIES = 3
"""Times a block task is retried after an error (worker deaths are rescheduled anyway)."""
MAX_WORKERS = 1024
"""Most worker processes `--workers` starts on this machine (each is a Python process)."""
CONNECT_SECONDS = float(os.environ.get("GPUSIM_SCHEDULER_TIMEOUT", "10"))
"""How long `--scheduler` waits for the scheduler to answer before giving up [s]."""


def check_cluster_options(workers: int | None, cuda_workers: bool, scheduler: str | None
                          ) -> bool:
    """Whether a cluster is asked for; InputError if the options contradict each other."""
    chosen = (workers is not None) + bool(cuda_workers) + (scheduler is not None)
    if chosen > 1:
        raise InputError("--workers, --cuda-workers and --scheduler are alternatives; "
                         "pass one of them")
    if workers is not None and (isinstance(workers, bool) or not 1 <= workers <= MAX_WORKERS):
        raise InputError(f"--workers = {workers!r}: expected a number of processes from 1 to "
                         f"{MAX_WORKERS}")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise InputError(f"--scheduler = {scheduler!r}: expected an address such as "
                         "tcp://10.0.0.5:8786")
    return chosen == 1


def check_scheduler(scheduler: str) -> None:
    """InputError naming the address unless it parses and, for tcp:// and tls://, a TCP
    connection to it opens within CONNECT_SECONDS (a refused one fails at once)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(scheduler)
        host, port = parse_host_port(location) if scheme in ("tcp", "tls") else (None, None)
    except (ValueError, TypeError) as err:
        raise InputError(f"--scheduler {scheduler!r}: not an address ({err}); expected e.g. "
                         "tcp://10.0.0.5:8786") from None
    if host is None:
        return
    try:
        socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
    except OSError as err:
        raise InputError(f"--scheduler {scheduler!r}: cannot reach it ({err.strerror or err}); "
                         "start the scheduler (dask scheduler) or check the address"
                         ) from None


@contextmanager
def _connect(scheduler: str) -> Iterator[Any]:
    """A Client of the scheduler at `scheduler`; InputError naming the address if it does
    not answer within CONNECT_SECONDS or the address is malformed."""
    from distributed import Client

    try:
        client = Client(scheduler, timeout=CONNECT_SECONDS)
    except Exception as err:  # noqa: BLE001 - whatever answered there, it is no scheduler
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise InputError(f"--scheduler {scheduler!r}: no dask scheduler answered within "
                         f"{CONNECT_SECONDS:g} s ({type(err).__name__}: {reason}); start one "
                         "(dask scheduler) or check the address, e.g. tcp://10.0.0.5:8786"
                         ) from None
    with client:
        yield client


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
        with _connect(scheduler) as client:
            announce_dashboard(client)
            yield client
        return
    if cuda_workers:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            raise InputError("--cuda-workers needs dask-cuda on a GPU machine: pip install "
                             "'gpusim[cuda12-cluster]' (or cuda13-cluster)") from None
        cluster = LocalCUDACluster(dashboard_address=dashboard_address())
    else:
        import dask

        with dask.config.set({ENVIRON_KEY: worker_environ(workers)}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=dashboard_address())
    with cluster, Client(cluster) as client:
        announce_dashboard(client)
        yield client


def dashboard_address() -> str:
    """Where a local cluster serves its dashboard: $GPUSIM_DASHBOARD, else dask's usual
    ':8787' (dask moves to a free port, and says so, when that one is taken; the tests set
    ':0', a free port each time, so parallel tests never clash)."""
    return os.environ.get("GPUSIM_DASHBOARD", ":8787")


def announce_dashboard(client: Any) -> None:
    """Print the cluster's dashboard link on stderr (where the run's notes go)."""
    link = client.dashboard_link if "dashboard" in _services(client) else None
    print(f"dask dashboard: {link}" if link else "dask dashboard: not served (pip install "
          "bokeh to see one)", file=sys.stderr, flush=True)


def _services(client: Any) -> dict[str, Any]:
    try:
        return client.scheduler_info().get("services", {})
    except Exception:  # noqa: BLE001 - a scheduler that does not say: no link
        return {}


def worker_environ(workers: int) -> dict[str, str | None]:
    """The environment dask's nanny gives each of `workers` local worker processes before
    they start: distributed's defaults (one BLAS thread) but with OpenMP's threads (the
    native backend's) shared out over the usable cores, and without its
    MALLOC_TRIM_THRESHOLD_=65536 (None unsets it). Setting that variable at all turns off
    glibc's adaptive mmap threshold, so every block's arrays are mapped and unmapped
    afresh: millions of page faults, and two workers slower than one process."""
    import dask

    environ = dict(dask.config.get(ENVIRON_KEY) or {})
    share = max(1, usable_threads() // workers)
    return environ | {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": str(share)}


@lru_cache(maxsize=4)
def _worker_backend(config_yaml: str, device: str) -> Backend:
    """One backend per worker process, config and device (kernels compile once)."""
    return select_backend(config_from_dict(yaml.safe_load(config_yaml)), device)


def _run_remote(task: BlockTask, config_yaml: str, device: str, block: Block) -> Any:
    """A block's task on a worker (what `DaskExecutor.run` submits)."""
    with quiet_zarr():
        return run_block(task, _worker_backend(config_yaml, device), block)


def _worker_device(config_yaml: str, device: str) -> tuple[str, str]:
    backend = _worker_backend(config_yaml, device)
    return backend.device_name, backend.device


def worker_devices(client: Any, config: Config, device: str) -> tuple[str, str]:
    """What the workers simulate on: a description for the store's provenance, and the
    backends ("numpy", "cpu", "gpu", or several joined by "+", e.g. "cpu+gpu") for its
    resume identity."""
    found = client.run(_worker_device, config_to_yaml(config), device)
    names = sorted({name for name, _ in found.values()})
    backend = "+".join(sorted({kind for _, kind in found.values()}))
    return f"dask cluster of {len(found)} workers: {', '.join(names)}", backend


class DaskExecutor:
    """Runs a config's blocks as tasks on a dask.distributed cluster's workers."""

    def __init__(self, client: Any, config: Config, device: str, cuda_workers: bool) -> None:
        self.client, self.device, self.cuda_workers = client, device, cuda_workers
        self.config_yaml = config_to_yaml(config)
        self.device_name, self.kind = worker_devices(client, config, device)
        self.on_gpu = cuda_workers

    def with_config(self, config: Config) -> DaskExecutor:
        """The same cluster for another config (a sweep's next scenario)."""
        return DaskExecutor(self.client, config, self.device, self.cuda_workers)

    def run(self, task: BlockTask, blocks: Sequence[Block],
            on_done: Callable[[Block, Any], None]) -> None:
        """Carry out `task` on every block; `on_done(block, result)` on this client, as
        the tasks finish."""
        from distributed import as_completed

        run_id = uuid.uuid4().hex  # keys are shared by every client of a scheduler
        futures = {
            self.client.submit(_run_remote, task, self.config_yaml, self.device, block,
                               key=f"gpusim-{task.mode}-{run_id}-block-{block.index}",
                               retries=RETRIES, pure=False): block
            for block in blocks}
        for future in as_completed(futures):
            on_done(futures[future], future.result())
            future.release()
