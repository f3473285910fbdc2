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
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import yaml

from gpusim.backends.base import Backend, Block
from gpusim.backends.devices import resolve_device, select_backend
from gpusim.backends.native import NativeBackend, usable_threads
from gpusim.backends.reference import NumpyBackend
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
LOCAL_SETTINGS: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.scheduler.work-stealing": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
}
"""dask settings of the clusters `--workers N` starts, to leave the cores to the blocks:
no statistical profiler sampling every worker's stack each 10 ms (and shipping the
profiles to the scheduler), no work stealing (the blocks are equal and queued on the
scheduler, so there is nothing to steal, only its bookkeeping), and slower timers in
every process: the event-loop watchdog every 0.5 s instead of 20 ms (it still warns of a
loop blocked for 3 s), the system monitor every 2 s instead of 0.5 s, the memory monitor
every 0.5 s instead of 0.1 s (a block's memory is bounded; the nanny's limits still
hold). Together they cut the cluster's own CPU per busy second by ~2/3 (benchmarks/
README.md, "cluster_cpu.py")."""
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


def check_dashboard(dashboard: str | None, workers: int | None, cuda_workers: bool) -> None:
    """InputError unless `dashboard` is None or an address (a string; '' for the default)
    for a cluster started here (`--workers`, `--cuda-workers`)."""
    if dashboard is None:
        return
    if not isinstance(dashboard, str):
        raise InputError(f"--dashboard = {dashboard!r}: expected an address such as :8787 "
                         "or 127.0.0.1:8787")
    if workers is None and not cuda_workers:
        raise InputError("--dashboard serves the dashboard of a cluster started here: pass "
                         "it with --workers or --cuda-workers (a --scheduler's cluster "
                         "serves its own)")


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
                   scheduler: str | None = None, dashboard: str | None = None
                   ) -> Iterator[Any]:
    """A dask.distributed Client for the requested cluster, or None for in-process runs.

    `workers`: a LocalCluster of that many single-threaded processes; `cuda_workers`:
    dask-cuda's LocalCUDACluster, one worker per GPU; `scheduler`: an existing cluster's
    address (e.g. tcp://10.0.0.5:8786). `dashboard`: where a cluster started here serves
    its dashboard (e.g. ':8787'; None: not served).
    """
    if not check_cluster_options(workers, cuda_workers, scheduler):
        yield None
        return
    _import_distributed()
    if scheduler is not None:
        with _connect(scheduler) as client:
            announce_dashboard(client, asked=True)
            yield client
        return
    if workers is not None:
        with local_cluster(workers, dashboard) as (starting, _):
            yield starting.result()
        return
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError:
        raise InputError("--cuda-workers needs dask-cuda on a GPU machine: pip install "
                         "'gpusim[cuda12-cluster]' (or cuda13-cluster)") from None
    from distributed import Client

    with LocalCUDACluster(dashboard_address=dashboard) as cluster, Client(cluster) as client:
        announce_dashboard(client, asked=dashboard is not None)
        yield client


def _import_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError as err:
        raise InputError("running on a cluster needs dask.distributed: pip install "
                         f"distributed ({err})") from None


@contextmanager
def local_cluster(workers: int, dashboard: str | None = None,
                  warm: Callable[[Any], None] | None = None
                  ) -> Iterator[tuple[Future[Any], Callable[[], None]]]:
    """A Client of a LocalCluster of `workers` single-threaded worker processes, as a
    Future, and a `wind_down()` to call once no more tasks will be sent. The cluster
    starts on a background thread (then runs `warm(client)`, e.g. building the workers'
    backends) while the caller goes on, e.g. lays out the store; `wind_down` closes it
    there too, while the caller writes the sketches. On leaving, both have finished."""
    check_cluster_options(workers, False, None)
    _import_distributed()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpusim-cluster")
    starting = pool.submit(_start_local, workers, dashboard, warm)
    client: Future[Any] = Future()
    starting.add_done_callback(lambda f: client.set_exception(f.exception())
                               if f.exception() else client.set_result(f.result()[1]))
    closing: list[Future[None]] = []

    def close() -> None:
        cluster, started = starting.result()
        started.close()
        cluster.close()

    def wind_down() -> None:
        if not closing:
            closing.append(pool.submit(close))

    try:
        yield client, wind_down
    finally:
        if starting.exception() is None:
            wind_down()
        pool.shutdown(wait=True)
        if closing:
            closing[0].result()


def _start_local(workers: int, dashboard: str | None, warm: Callable[[Any], None] | None
                 ) -> tuple[Any, Any]:
    """Start a LocalCluster with gpusim's worker environment and LOCAL_SETTINGS and
    connect to it; returns (cluster, client)."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({ENVIRON_KEY: worker_environ(workers)} | LOCAL_SETTINGS):
        # without a dashboard the scheduler still serves its HTTP routes (health, metrics),
        # on 8787 with a warning when another cluster holds it: on a free port instead
        quiet_http = {} if dashboard else {"dashboard_address": ":0"}
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=dashboard, scheduler_kwargs=quiet_http)
        try:
            client = Client(cluster)
            announce_dashboard(client, asked=dashboard is not None)
            if warm is not None:
                warm(client)
        except BaseException:
            cluster.close()
            raise
    return cluster, client


def dashboard_address(dashboard: str | None) -> str | None:
    """Where a cluster started here serves its dashboard: `dashboard` as asked (the CLI's
    `--dashboard [ADDRESS]`; an empty string: $GPUSIM_DASHBOARD, else dask's usual
    ':8787', from which dask moves to a free port, and says so, when it is taken), or
    None, not served. Serving it costs the in-process scheduler ~2 s of CPU per 40 s run
    (benchmarks/README.md, "workers.py"), taken from the workers on a small machine."""
    if dashboard is None:
        return None
    return dashboard or os.environ.get("GPUSIM_DASHBOARD", ":8787")


def announce_dashboard(client: Any, asked: bool) -> None:
    """Print the cluster's dashboard link on stderr (where the run's notes go), if one
    was asked for (or the cluster is a --scheduler's, which serves its own)."""
    if not asked:
        return
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


def _warm_worker(config_yaml: str, device: str) -> None:
    _worker_backend(config_yaml, device)


def worker_devices(client: Any, config: Config, device: str) -> tuple[str, str]:
    """What the workers simulate on: a description for the store's provenance, and the
    backends ("numpy", "cpu", "gpu", or several joined by "+", e.g. "cpu+gpu") for its
    resume identity."""
    found = client.run(_worker_device, config_to_yaml(config), device)
    names = sorted({name for name, _ in found.values()})
    backend = "+".join(sorted({kind for _, kind in found.values()}))
    return f"dask cluster of {len(found)} workers: {', '.join(names)}", backend


def local_devices(config: Config, device: str, workers: int) -> tuple[str, str, str] | None:
    """What `workers` local worker processes will simulate on, decided here without
    asking them (they run on this machine, in this environment): the resolved device
    they are sent, the provenance's description and the resume identity's backend, as
    `worker_devices` would find them. None for a GPU (its name is the workers' to say)."""
    resolved = resolve_device(device)
    if resolved == "gpu":
        return None
    threads = max(1, usable_threads() // workers)  # what worker_environ gives each one
    backend = NumpyBackend(config) if resolved == "numpy" else NativeBackend(config, threads)
    return resolved, f"dask cluster of {workers} workers: {backend.device_name}", backend.device


class DaskExecutor:
    """Runs a config's blocks as tasks on a dask.distributed cluster's workers.

    `client` is a Client, or a Future of one (a local cluster still starting: see
    `open_local`); `found`, the (description, backend) of the workers when known
    without asking them; `closer`, what `wind_down` calls (a local cluster's close)."""

    def __init__(self, client: Any, config: Config, device: str, cuda_workers: bool,
                 found: tuple[str, str] | None = None,
                 closer: Callable[[], None] | None = None) -> None:
        self._client, self.device, self.cuda_workers = client, device, cuda_workers
        self.closer = closer
        self.config_yaml = config_to_yaml(config)
        self.found = found
        self.device_name, self.kind = found or worker_devices(self.client, config, device)
        self.on_gpu = cuda_workers
        self.native_threads = None  # blocks spread over workers: the CPU default size

    @property
    def client(self) -> Any:
        """The cluster's Client (waiting for a local cluster to have started)."""
        if isinstance(self._client, Future):
            self._client = self._client.result()
        return self._client

    def with_config(self, config: Config) -> DaskExecutor:
        """The same cluster for another config (a sweep's next scenario)."""
        return DaskExecutor(self._client, config, self.device, self.cuda_workers, self.found,
                            self.closer)

    def wind_down(self) -> None:
        """No more blocks will be run: a cluster started here may start closing (see
        `open_local`); a --scheduler's or --cuda-workers' cluster: nothing to do."""
        if self.closer is not None:
            self.closer()

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


@contextmanager
def open_local(config: Config, device: str, workers: int, dashboard: str | None = None
               ) -> Iterator[DaskExecutor]:
    """The executor of `--workers N`. Where the device is decided here (numpy, cpu), the
    cluster starts in the background and the workers build their backends while the
    caller lays out the store: the executor's first `run` waits for them."""
    found = local_devices(config, device, workers)
    if found is None:
        with cluster_client(workers, dashboard=dashboard) as client:
            yield DaskExecutor(client, config, device, False)
        return
    resolved, description, kind = found
    config_yaml = config_to_yaml(config)

    def warm(client: Any) -> None:
        client.run(_warm_worker, config_yaml, resolved)

    with local_cluster(workers, dashboard, warm) as (starting, wind_down):
        yield DaskExecutor(starting, config, resolved, False, (description, kind), wind_down)
