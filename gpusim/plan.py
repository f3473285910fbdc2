"""A run, checked once, laid out once, then carried out by an executor.

`check_run` turns what a user asked for into a `RunRequest`, or raises InputError before
anything is touched. `execute` then opens the executor (which says what the blocks run
on), lays the store out, or checks that a resumed store is the same run, works out once
which blocks are still to do, and hands those to the executor. The store records each
block as it is written, so an interrupted run resumes exactly where it stopped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gpusim.backends.base import Block, blocks
from gpusim.config import Config
from gpusim.cube import check_run_args, now_iso, provenance
from gpusim.errors import InputError
from gpusim.executors import Executor, open_executor
from gpusim.executors.cluster import (
    check_cluster_options,
    check_dashboard,
    check_scheduler,
    dashboard_address,
)
from gpusim.executors.tasks import task_for
from gpusim.storage import (
    OutOfSpace,
    check_writable_folder,
    clear_leftovers,
    is_ours,
    out_of_space,
    replace_store,
    staging_path,
    store_lock,
)
from gpusim.store import (
    STORE_ID,
    check_resumable,
    create_layout,
    mark_finished,
    progress,
    quiet_zarr,
    run_identity,
    shrink_paths,
)

DEFAULT_BLOCK_PATHS = 16_384
"""Paths per block (and chunk) on the CPU: a block of the base scenario is ~400 MB."""
NATIVE_SUMMARY_PATHS_PER_THREAD = 32_768
"""Paths per block and thread of a summary run on the in-process native backend (65,536
on 2 threads). Its memory hardly grows with the block (the counts are ~100 MB a thread
whatever the block; 64 bytes a path besides), but every block pays a fixed ~80 ms on 2
threads to merge the threads' counts and take them out sparse, more with more threads,
while its paths take less: 262,144 base paths ran in 12.4 / 10.3 / 9.0 / 9.4 s (best of 4,
interleaved, in one process) with blocks of 16,384 / 32,768 / 65,536 / 131,072 paths.
A cube's block is held in memory whole, so cube runs keep DEFAULT_BLOCK_PATHS; so do
runs on dask workers, where more, smaller blocks share out more evenly."""
GPU_BLOCK_PATHS = 131_072
"""Paths per block on a GPU: 1,024 thread blocks of 128, enough to fill an H100's 132 SMs
several times over; a float64 cube block of the base scenario is ~3 GB."""
GPU_SUMMARY_BLOCK_PATHS = 1 << 20
"""Paths per block of a summary run on a GPU. Its device memory does not grow with the
block (the counts are ~110 MB for the base scenario, plus 64 bytes per path), but the
host's share of a block does: merging its sparse counts costs ~13 ms per 300k nonzero
buckets (measured on the CPU), about what the kernel needs for a 131k-path block at the
1e9 path-months/s goal. A million paths keeps the device, not the host, the bottleneck."""
MODES = ("cube", "summary")


@dataclass(frozen=True)
class RunRequest:
    """A run as asked for, every argument checked (`check_run` makes one)."""

    config: Config
    out: Path
    paths: int
    seed: int
    block_paths: int | None
    overwrite: bool
    device: str
    mode: str
    resume: bool
    source: str
    workers: int | None
    cuda_workers: bool
    scheduler: str | None
    growth: Growth | None = None  # stop early (gpusim.target); `paths` is then the cap
    sweep: SweepGrid | None = None
    dashboard: str | None = None  # where a cluster started here serves it; None: not


@dataclass(frozen=True)
class Growth:
    """How a run that stops early grows (gpusim.target makes one): once the first `paths`
    paths are in the store, `want(out, paths)` is how many it wants in all (`paths` or
    fewer: stop; more is rounded up to whole blocks, at most the request's paths), and
    `attrs(out, paths)` what the finished store records about the stop."""

    want: Callable[[Path, int], int]
    attrs: Callable[[Path, int], dict[str, Any]]


@dataclass(frozen=True)
class SweepGrid:
    """A sweep's scenarios, run into one store along a leading `scenario` dimension (see
    gpusim.sweep, which checks and builds it): each scenario's config (same dimensions as
    the run's), the `scenario` coordinates to lay out, the identity a resumed sweep must
    share beside the run's (its grid), and further root attributes."""

    configs: tuple[Config, ...]
    coords: dict[str, Any]
    identity: dict[str, Any]
    attrs: dict[str, Any]


def check_output(out: Path, overwrite: bool, resume: bool) -> None:
    """Refuse a path that cannot hold a store, an existing path unless asked, and anything
    that is not a gpusim store of ours even when asked (see gpusim.storage)."""
    if out.is_symlink():
        raise InputError(f"--out {str(out)!r} is a symbolic link; gpusim never writes or "
                         "replaces through one: give the real path of the store")
    check_writable_folder(out, "--out")
    if resume:
        if not is_ours(out):
            raise InputError(f"--resume: {str(out)!r} is not a gpusim store to resume "
                             "(start the run without --resume)")
        return
    if not out.exists():
        return
    if not overwrite:
        raise InputError(
            f"--out {str(out)!r} already exists; pass --overwrite to replace it, --resume to "
            "continue it, or choose another path")
    if not is_ours(out):
        raise InputError(
            f"--out {str(out)!r} exists and is not a zarr store written by gpusim (no "
            "zarr.json with gpusim's attributes); refusing to replace it even with "
            "--overwrite")


def check_run(config: Config, out: str | Path, paths: int = 10_000, seed: int = 0,
              block_paths: int | None = None, overwrite: bool = False, device: str = "auto",
              mode: str = "cube", resume: bool = False, source: str = "",
              workers: int | None = None, cuda_workers: bool = False,
              scheduler: str | None = None, dashboard: str | None = None) -> RunRequest:
    """Every check a run makes before writing anything; raises InputError naming the
    argument, its value and what was expected."""
    check_run_args(paths, seed, device)
    if block_paths is not None and (not isinstance(block_paths, int | np.integer)
                                    or isinstance(block_paths, bool)
                                    or not 1 <= block_paths < 2**31):
        raise InputError(f"block_paths = {block_paths!r}: expected a positive integer below "
                         "2**31 (a block is one kernel launch, counted in 32 bits)")
    if mode not in MODES:
        raise InputError(f"mode = {mode!r}: expected one of {', '.join(MODES)}")
    if resume and overwrite:
        raise InputError("--resume and --overwrite contradict each other; pass one of them")
    check_cluster_options(workers, cuda_workers, scheduler)
    check_dashboard(dashboard, workers, cuda_workers)
    if scheduler is not None:
        check_scheduler(scheduler)
    out = Path(out)
    if out.name in ("", "..") or str(out) == ".":
        out = Path(os.path.abspath(out))  # the lock and staging folders need its name
    check_output(out, overwrite, resume)
    return RunRequest(config, out, paths, seed, block_paths, overwrite, device, mode, resume,
                      source, workers, cuda_workers, scheduler,
                      dashboard=dashboard_address(dashboard))


def default_block_paths(on_gpu: bool, mode: str, native_threads: int | None = None) -> int:
    """Paths per block when the run does not say: see the constants above
    (`native_threads`: the threads of an in-process native backend, else None)."""
    if on_gpu:
        return GPU_SUMMARY_BLOCK_PATHS if mode == "summary" else GPU_BLOCK_PATHS
    if mode == "summary" and native_threads:
        return NATIVE_SUMMARY_PATHS_PER_THREAD * native_threads
    return DEFAULT_BLOCK_PATHS


@dataclass(frozen=True)
class Plan:
    """A checked run on a known executor: its block size and blocks, and the identity a
    resumed store must share."""

    request: RunRequest
    block_paths: int
    blocks: list[Block]
    identity: dict[str, Any]
    device_name: str

    @classmethod
    def make(cls, request: RunRequest, executor: Executor) -> Plan:
        r = request
        block_paths = r.block_paths or default_block_paths(executor.on_gpu, r.mode,
                                                           executor.native_threads)
        identity = run_identity(r.config, r.seed, r.paths, block_paths, r.mode, executor.kind)
        if r.sweep is not None:
            identity |= r.sweep.identity
        return cls(request, block_paths, blocks(r.paths, block_paths), identity,
                   executor.device_name)

    def lay_out(self) -> str | None:
        """Create the store (replacing the old one with --overwrite), or check that the
        store to resume is the same run. Returns the store's id (None for a store laid
        out before stores had one)."""
        r = self.request
        if r.resume:
            return check_resumable(r.out, self.identity).get(STORE_ID)
        store_id = uuid.uuid4().hex
        attrs = provenance(r.config, r.seed, r.paths, self.device_name) | self.identity | {
            "config_given": r.source, "run_started": now_iso(), STORE_ID: store_id}
        attrs |= {} if r.sweep is None else r.sweep.attrs
        staged = staging_path(r.out)  # laid out beside, renamed into place when whole
        create_layout(staged, r.config, r.paths, self.block_paths, attrs, r.mode,
                      None if r.sweep is None else r.sweep.coords)
        replace_store(staged, r.out)
        return store_id


def execute(request: RunRequest, on_block: Callable[[int], None] | None = None) -> Path:
    """Carry out a checked run; `on_block(n)` after each block with its path count (also
    for the blocks a resumed run finds done). Returns the store path."""
    r = request
    try:
        r.out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {str(r.out)!r}: cannot create its folder "
                         f"{str(r.out.parent)!r} ({err.strerror})") from None
    with store_lock(r.out):
        check_output(r.out, r.overwrite, r.resume)  # again: the path may have changed
        clear_leftovers(r.out)
        laid_out = [False]
        try:
            _execute_locked(r, on_block or (lambda n: None), laid_out)
        except Exception as err:
            if not out_of_space(err):
                raise
            hint = ("continue with the same command and --resume: the blocks written so "
                    "far are kept" if laid_out[0] else "run the same command again")
            raise OutOfSpace(f"no space left on the device (or quota) while writing "
                             f"{str(r.out)!r} ({err}); free some space, then {hint}"
                             ) from err
    return r.out


def _execute_locked(r: RunRequest, report: Callable[[int], None], laid_out: list[bool]
                    ) -> None:
    """`execute` once the store's lock is held; sets laid_out[0] once the store is there.
    A sweep runs its scenarios one after another on the same executor (process or
    cluster), each into its own slice of the store."""
    configs = (r.config,) if r.sweep is None else r.sweep.configs
    with open_executor(configs[0], r.device, r.workers, r.cuda_workers, r.scheduler,
                       r.dashboard) as executor, quiet_zarr():
        plan = Plan.make(r, executor)
        store_id = plan.lay_out()
        laid_out[0] = True
        for k, config in enumerate(configs):
            on = executor if k == 0 else executor.with_config(config)
            paths = run_blocks(plan, on, config, store_id, None if r.sweep is None else k,
                               report, last=k == len(configs) - 1)
        finished: dict[str, Any] = {}
        if r.growth is not None:  # shrunk last: until then a resume finds its layout
            finished = r.growth.attrs(r.out, paths)
            if paths < r.paths:
                shrink_paths(r.out, r.config, paths, plan.block_paths, r.mode)
        finished["run_finished"] = now_iso()
        if r.resume:
            finished["resumed_on"] = plan.device_name
        if r.sweep is not None:
            finished |= r.sweep.attrs  # e.g. the baseline a resumed sweep was asked for
        mark_finished(r.out, finished)


def run_blocks(plan: Plan, executor: Executor, config: Config, store_id: str | None,
               scenario: int | None, report: Callable[[int], None], last: bool = True
               ) -> int:
    """Run the blocks of `config` not yet done (of scenario `scenario`, in a sweep's
    store), record each as it is written, then finish its record (the `last` config's
    while the executor winds down). Returns the paths run: the request's, or fewer where
    its growth (gpusim.target) stopped early."""
    r = plan.request
    record = progress(r.out, config, r.mode, scenario)
    todo = [b for b in plan.blocks if b.index not in record.done]
    for block in plan.blocks:
        if block.index in record.done:
            report(block.paths)

    def done(block: Block, result: Any) -> None:
        record.record(block.index, result)
        report(block.paths)

    task = task_for(r.mode, r.out, r.seed, store_id, scenario)
    if r.growth is None:
        executor.run(task, todo, done)
        paths = r.paths
    else:
        paths = _grow(r.paths, r.growth, plan.block_paths, r.out,
                      lambda batch: executor.run(task, batch, done), todo)
    if last:
        executor.wind_down()
    record.finish()
    return paths


def _grow(cap: int, growth: Growth, block_paths: int, out: Path,
          run_batch: Callable[[list[Block]], None], todo: list[Block]) -> int:
    """Run the blocks in order, a batch at a time, until `growth` wants no more paths or
    the cap is reached; returns the paths run (whole blocks, or the cap). Each decision
    depends only on the paths before it, so a resumed run stops where an uninterrupted
    one does."""
    paths = min(block_paths, cap)
    while True:
        run_batch([b for b in todo if b.start < paths])
        todo = [b for b in todo if b.start >= paths]
        wanted = growth.want(out, paths)
        if wanted <= paths or paths == cap:
            return paths
        paths = min(cap, -(-wanted // block_paths) * block_paths)


def run(
    config: Config,
    out: str | Path,
    paths: int = 10_000,
    seed: int = 0,
    block_paths: int | None = None,
    overwrite: bool = False,
    device: str = "auto",
    mode: str = "cube",
    resume: bool = False,
    on_block: Callable[[int], None] | None = None,
    source: str = "",
    workers: int | None = None,
    cuda_workers: bool = False,
    scheduler: str | None = None,
    dashboard: str | None = None,
) -> Path:
    """Simulate `paths` paths block by block into a zarr v3 store at `out`.

    Everything is checked before anything is written. `block_paths` defaults to
    DEFAULT_BLOCK_PATHS on the CPU, GPU_BLOCK_PATHS (cube) or GPU_SUMMARY_BLOCK_PATHS
    (summary) on a GPU (results do not depend on it; a resumed run must use the same).
    `mode` is "cube" or "summary"; `resume=True` continues an interrupted run of the same
    config, seed, paths, block size and mode. `on_block(n)` is called after each block
    with its path count (also for the blocks a resumed run finds done). `source` is the
    config as given (file text and overrides), kept in the store's provenance. `workers`,
    `cuda_workers` or `scheduler` run the blocks as tasks on a dask.distributed cluster
    (see gpusim.executors.cluster) with the same result; a cluster started here serves
    its dashboard only if asked, at `dashboard` (e.g. ':8787'; '': $GPUSIM_DASHBOARD or
    ':8787'). Returns the store path.
    """
    request = check_run(config, out, paths, seed, block_paths, overwrite, device, mode,
                        resume, source, workers, cuda_workers, scheduler, dashboard)
    return execute(request, on_block)
