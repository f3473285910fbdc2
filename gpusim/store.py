"""Writing runs to zarr v3 stores, block by block, with exact resume.

Two modes:
- **cube**: every per-path variable, chunked (block_paths × all months [× entities]) so
  that every region write covers whole chunks (unaligned concurrent region writes can
  silently lose data in zarr; aligned ones cannot);
- **summary**: no per-path monthly data. Each monthly variable becomes a mergeable
  quantile sketch per month (and firm or facility), see `gpusim.sketch`; default months
  and per-facility losses are kept exactly per path (they are small), as are the counts
  of LTV breaches and of bust-regime paths per month.

A block counts as complete only once all it writes is written: cube mode then sets its
entry in `_gpusim/blocks_done` (one chunk per block, so concurrent writers never share a
chunk); summary mode records the blocks folded into its sketches in a checkpoint file
replaced atomically. `run(..., resume=True)` recomputes just the other blocks. Because
every block's numbers depend only on (seed, path) and sketches merge by integer addition,
the finished store holds the same bits as an uninterrupted run. Metadata is consolidated
at the end so that `xr.open_zarr(store)` opens it in one read.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from gpusim import cluster, sketch
from gpusim.cluster import cluster_client
from gpusim.config import Config
from gpusim.cube import (
    VARIABLES,
    BlockSimulator,
    block_dataset,
    block_simulator,
    check_run_args,
    cube_coords,
    output_dtype,
    output_names,
    provenance,
    to_path_major,
    variable_attrs,
)
from gpusim.engine import (
    PATH_OUTPUTS,
    block_bounds,
)
from gpusim.errors import InputError
from gpusim.summary import (
    BlockSummary,
    SparseCounts,
    dimension_sizes,
    launch_block_summary,
    summary_variables,
)

DEFAULT_BLOCK_PATHS = 16_384
"""Paths per block (and chunk) on the CPU: a block of the base scenario is ~400 MB."""
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
CONTROL_GROUP = "_gpusim"
CHECKPOINT = "_gpusim_checkpoint.npz"
CHECKPOINT_SECONDS = float(os.environ.get("GPUSIM_CHECKPOINT_SECONDS", "30"))
"""Summary mode saves its sketches at most this often (and at the end); a killed summary
run recomputes at most this many seconds of blocks when resumed."""
IDENTITY = ("config", "seed", "paths", "block_paths", "mode", "dtype", "months", "start",
            "gpusim_version", "backend")
"""Attributes a resumed run must share with the store it continues. `backend` is what
computes the blocks ("cpu", "gpu", or "cpu+gpu" for a mixed cluster): CPU and GPU agree
to ~1e-14 in float64, not bit for bit, so a store finished on the other one would hold
blocks no single run would write (and a near-threshold default could flip)."""

WRITERS = 2
"""Threads that compress and write cube blocks while the next block is computed."""
COMPRESSOR = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")
"""Chosen by measurement (benchmarks/store.py): the best ratio (≈2.3× on a firms cube) at
the same write speed as zstd alone or no compression; see README, 'Stores'."""

@contextmanager
def quiet_zarr() -> Iterator[None]:
    """Silence zarr's note that consolidated metadata is not yet in the v3 spec."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr")
        yield


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# --- checks ---------------------------------------------------------------------------------

def check_output(out: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to touch an existing path unless asked, and never replace a non-store."""
    if resume:
        if not (out / "zarr.json").is_file():
            raise InputError(f"--resume: {str(out)!r} is not a gpusim store to resume "
                             "(start the run without --resume)")
        return
    if not out.exists():
        return
    if not overwrite:
        raise InputError(
            f"--out {str(out)!r} already exists; pass --overwrite to replace it, --resume to "
            "continue it, or choose another path")
    if not (out / "zarr.json").is_file():
        raise InputError(
            f"--out {str(out)!r} exists and is not a zarr store; refusing to replace it "
            "even with --overwrite")


def check_run(out: str | Path, paths: int, seed: int, block_paths: int, overwrite: bool,
              device: str, mode: str = "cube", resume: bool = False) -> None:
    """Every check `run` makes before writing anything; raises InputError."""
    check_run_args(paths, seed, device)
    if not isinstance(block_paths, int | np.integer) or not 1 <= block_paths < 2**31:
        raise InputError(f"block_paths = {block_paths!r}: expected a positive integer below "
                         "2**31 (a block is one kernel launch, counted in 32 bits)")
    if mode not in MODES:
        raise InputError(f"mode = {mode!r}: expected one of {', '.join(MODES)}")
    if resume and overwrite:
        raise InputError("--resume and --overwrite contradict each other; pass one of them")
    check_output(Path(out), overwrite, resume)


def run_identity(config: Config, seed: int, paths: int, block_paths: int, mode: str,
                 backend: str) -> dict[str, Any]:
    attrs = provenance(config, seed, paths, "")
    attrs |= {"block_paths": int(block_paths), "mode": mode, "backend": backend}
    return {key: attrs[key] for key in IDENTITY}


def check_resumable(out: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """The store's attributes, after checking it is the same run; else InputError."""
    if not (out / CONTROL_GROUP / "blocks_done" / "zarr.json").is_file():
        raise InputError(f"--resume: {out} was interrupted while it was being laid out; "
                         "start it again with --overwrite")
    with quiet_zarr():
        attrs = dict(zarr.open_group(out, mode="r").attrs)
    differs = [key for key in IDENTITY if attrs.get(key) != identity[key]]
    if differs:
        details = "; ".join(
            f"{key}: store has {_short(attrs.get(key))}, this run {_short(identity[key])}"
            for key in differs)
        raise InputError(f"--resume: {out} was written by a different run ({details}); "
                         "resume with the same config, seed, paths, block size, mode and "
                         "device (cpu or gpu), or start a new store")
    return attrs


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else f"a different value ({len(text)} characters)"


# --- layout ---------------------------------------------------------------------------------

def create_layout(out: Path, config: Config, paths: int, block_paths: int, attrs: dict,
                  mode: str) -> None:
    """Write the store's metadata and coordinates, every data chunk still empty."""
    sizes = dimension_sizes(config, paths)
    block = min(block_paths, paths)
    data_vars, encoding = {}, {}
    if mode == "cube":
        variables = {name: (VARIABLES[name].dims, output_dtype(name, config),
                            variable_attrs(name)) for name in output_names(config)}
    else:
        variables = summary_variables(config)
    for name, (dims, dtype, var_attrs) in variables.items():
        shape = tuple(sizes[d] for d in dims)
        chunks = (block, *shape[1:]) if dims[0] == "path" else shape
        data_vars[name] = (dims, da.zeros(shape, chunks=chunks, dtype=dtype), var_attrs)
        encoding[name] = {"chunks": chunks, "compressors": [COMPRESSOR]}
    coords = cube_coords(config, np.arange(paths, dtype=np.int64))
    if mode == "summary":
        coords["bucket"] = ("bucket", sketch.representative(np.arange(sketch.BUCKETS)),
                            {"long_name": "value a sketch bucket stands for",
                             "relative_accuracy": sketch.ALPHA})
    template = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    encoding["path"] = {"chunks": (paths,)}
    template.to_zarr(out, mode="w", compute=False, zarr_format=3, consolidated=False,
                     encoding=encoding)
    n_blocks = len(range(0, paths, block_paths))
    group = zarr.open_group(out, mode="r+")
    group.create_group(CONTROL_GROUP).create_array(
        "blocks_done", shape=(n_blocks,), chunks=(1,), dtype="int8", fill_value=0)


def write_region(out: Path, ds: xr.Dataset, start: int, stop: int) -> None:
    """Write one block's per-path data into its (chunk-aligned) region of the store."""
    data = ds.drop_vars(list(ds.coords))  # coordinates are written once, with the layout
    data.to_zarr(out, region={"path": slice(start, stop)}, zarr_format=3, consolidated=False)


def blocks_done(out: Path) -> np.ndarray:
    with quiet_zarr():
        return zarr.open_array(out / CONTROL_GROUP / "blocks_done", mode="r")[:].astype(bool)


def mark_done(out: Path, blocks: list[int]) -> None:
    array = zarr.open_array(out / CONTROL_GROUP / "blocks_done", mode="r+")
    for b in blocks:
        array[b] = 1


# --- summary accumulation -------------------------------------------------------------------

@dataclass
class Summary:
    """Sketches and counts of the blocks folded in so far (their indices in `blocks`)."""

    counts: dict[str, np.ndarray]
    blocks: set[int] = field(default_factory=set)
    _saved_at: float = field(default_factory=time.monotonic)

    @classmethod
    def empty(cls, config: Config) -> Summary:
        sizes = dimension_sizes(config)
        counts = {name: np.zeros(tuple(sizes[d] for d in dims), dtype=np.int64)
                  for name, (dims, _, _) in summary_variables(config).items()
                  if name not in PATH_OUTPUTS}
        return cls(counts)

    def add(self, block: int, counts: dict[str, SparseCounts]) -> None:
        """Fold one block's counts (from `block_counts`) in; a block is folded in once."""
        if block in self.blocks:
            return
        for name, (index, values) in counts.items():
            np.add.at(self.counts[name].reshape(-1), index, values)
        self.blocks.add(block)

    def checkpoint_if_due(self, out: Path) -> None:
        """Save the sketches (and mark their blocks done) if CHECKPOINT_SECONDS have passed."""
        if time.monotonic() - self._saved_at > CHECKPOINT_SECONDS:
            self.save(out / CHECKPOINT)
            mark_done(out, sorted(self.blocks))
            self._saved_at = time.monotonic()

    def finish(self, out: Path) -> None:
        """Write the sketches and counts into the store, mark every block done."""
        for name, counts in self.counts.items():
            zarr.open_array(out / name, mode="r+")[...] = counts
        mark_done(out, sorted(self.blocks))
        (out / CHECKPOINT).unlink(missing_ok=True)

    def save(self, path: Path) -> None:
        """Write a checkpoint atomically (a crash leaves the previous one whole)."""
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, __blocks__=np.array(sorted(self.blocks), np.int64),
                                **self.counts)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, config: Config) -> Summary:
        summary = cls.empty(config)
        if path.is_file():
            with np.load(path) as saved:
                summary.counts = {k: saved[k] for k in summary.counts}
                summary.blocks = set(int(b) for b in saved["__blocks__"])
        return summary


def write_per_path(out: Path, config: Config, block: BlockSummary, start: int, stop: int
                   ) -> None:
    """Write a summary block's exact per-path variables into their region of the store."""
    per_path = xr.Dataset({
        name: (VARIABLES[name].dims, to_path_major(block.per_path[name], VARIABLES[name].dims))
        for name in PATH_OUTPUTS if name in output_names(config)})
    if per_path.data_vars:
        write_region(out, per_path, start, stop)


def summary_block(out: Path, simulator: BlockSimulator, seed: int, start: int, stop: int
                  ) -> dict[str, SparseCounts]:
    """Simulate one block for a summary store: write its exact per-path variables, return
    its sketches and counts (built on the device on a GPU). What a cluster task does."""
    block = launch_block_summary(simulator, seed, start, stop).result()
    write_per_path(out, simulator.config, block, start, stop)
    return block.counts


# --- the run --------------------------------------------------------------------------------

def default_block_paths(on_gpu: bool, mode: str) -> int:
    if not on_gpu:
        return DEFAULT_BLOCK_PATHS
    return GPU_SUMMARY_BLOCK_PATHS if mode == "summary" else GPU_BLOCK_PATHS


def run(
    config: Config,
    out: str | Path,
    paths: int = 10_000,
    seed: int = 0,
    block_paths: int | None = None,
    overwrite: bool = False,
    device: str = "cpu",
    mode: str = "cube",
    resume: bool = False,
    on_block: Callable[[int], None] | None = None,
    source: str = "",
    workers: int | None = None,
    cuda_workers: bool = False,
    scheduler: str | None = None,
) -> Path:
    """Simulate `paths` paths block by block into a zarr v3 store at `out`.

    Everything is checked before anything is written. `block_paths` defaults to
    DEFAULT_BLOCK_PATHS on the CPU, GPU_BLOCK_PATHS (cube) or GPU_SUMMARY_BLOCK_PATHS
    (summary) on a GPU (results do not depend on
    it; a resumed run must use the same). `mode` is "cube" or "summary";
    `resume=True` continues an interrupted run of the same config, seed, paths, block size
    and mode. `on_block(n)` is called after each block with its path count (also for the
    blocks a resumed run finds done). `source` is the config as given (file text and
    overrides), kept in the store's provenance. `workers`, `cuda_workers` or `scheduler`
    run the blocks as tasks on a dask.distributed cluster (see gpusim.cluster) with the same
    result. Returns the store path.
    """
    out = Path(out)
    check_run(out, paths, seed, 1 if block_paths is None else block_paths, overwrite, device,
              mode, resume)
    with cluster_client(workers, cuda_workers, scheduler) as client, quiet_zarr():
        simulator = None if client else block_simulator(config, device)
        on_gpu = cuda_workers or (simulator is not None and simulator.device == "gpu")
        if block_paths is None:
            block_paths = default_block_paths(on_gpu, mode)
        if client is not None:
            device_name, backend = cluster.worker_devices(client, config, device)
        else:
            device_name, backend = simulator.device_name, simulator.device
        identity = run_identity(config, seed, paths, block_paths, mode, backend)
        if resume:
            attrs = check_resumable(out, identity)
        else:
            if out.exists():
                (out / "zarr.json").unlink()  # a store killed mid-deletion is no store
                shutil.rmtree(out)
            attrs = provenance(config, seed, paths, device_name) | identity | {
                "config_given": source, "run_started": now_iso()}
            create_layout(out, config, paths, block_paths, attrs, mode)
        bounds = list(block_bounds(paths, block_paths))
        if client is not None:
            cluster.run_blocks(client, out, config, bounds, seed, device, mode, on_block)
        elif mode == "cube":
            _run_cube(out, config, bounds, simulator, seed, on_block)
        else:
            _run_summary(out, config, bounds, simulator, seed, on_block)
        finished = {"run_finished": now_iso()}
        if resume:
            finished["resumed_on"] = device_name
        zarr.consolidate_metadata(str(out))  # a store marked finished is always readable
        zarr.open_group(out, mode="r+").attrs.update(finished)
        zarr.consolidate_metadata(str(out))
    return out


def _run_cube(out: Path, config: Config, bounds: list[tuple[int, int]],
              simulator: BlockSimulator, seed: int, on_block: Callable | None) -> None:
    """Compute blocks in this thread while WRITERS threads compress and write earlier ones.

    On a GPU the next block's kernel is launched before the last one's outputs are
    collected, so the kernel overlaps with the copy to pinned host memory and with the
    writes. At most WRITERS blocks wait to be written (plus one in flight), so host memory
    stays bounded by a few blocks whatever the path count. A block is marked done only
    after its write returns.
    """
    done = blocks_done(out)
    pending: deque[tuple[Future, int]] = deque()

    def write(b: int, ds: xr.Dataset, start: int, stop: int) -> int:
        write_region(out, ds, start, stop)
        mark_done(out, [b])
        return stop - start

    def finish_one() -> None:
        future, n = pending.popleft()
        future.result()  # re-raises a failed write here
        if on_block is not None:
            on_block(n)

    def write_launched(launched: tuple[int, Any, int, int]) -> None:
        b, handle, start, stop = launched
        ds = block_dataset(handle.result(), start, config)
        while len(pending) >= WRITERS:
            finish_one()
        pending.append((pool.submit(write, b, ds, start, stop), stop - start))

    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="gpusim-write") as pool:
        previous = None  # launched, not yet collected: on a GPU it runs while we write
        for b, (start, stop) in enumerate(bounds):
            if done[b]:
                if on_block is not None:
                    on_block(stop - start)
                continue
            launched = (b, simulator.launch(seed, start, stop), start, stop)
            if previous is not None:
                write_launched(previous)
            previous = launched
        if previous is not None:
            write_launched(previous)
        while pending:
            finish_one()


def _run_summary(out: Path, config: Config, bounds: list[tuple[int, int]],
                 simulator: BlockSimulator, seed: int, on_block: Callable | None) -> None:
    """Fold blocks into sketches. On a GPU the fused summary kernel builds them on the
    device, and the next block's kernel runs while this thread merges the last one's
    counts and writes its per-path default months and losses."""
    summary = Summary.load(out / CHECKPOINT, config)

    def fold(launched: tuple[int, Any, int, int]) -> None:
        b, handle, start, stop = launched
        block = handle.result()
        write_per_path(out, config, block, start, stop)
        summary.add(b, block.counts)
        summary.checkpoint_if_due(out)
        if on_block is not None:
            on_block(stop - start)

    previous = None  # launched, not yet folded in
    for b, (start, stop) in enumerate(bounds):
        if b in summary.blocks:
            if on_block is not None:
                on_block(stop - start)
            continue
        launched = (b, launch_block_summary(simulator, seed, start, stop), start, stop)
        if previous is not None:
            fold(previous)
        previous = launched
    if previous is not None:
        fold(previous)
    summary.finish(out)


def open_store(path: str | Path) -> xr.Dataset:
    """Open a finished store written by `run` as a lazy, dask-backed Dataset."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise InputError(f"store {str(path)!r} is not a zarr store written by gpusim run")
    with quiet_zarr():
        if "run_finished" not in zarr.open_group(path, mode="r").attrs:
            raise InputError(f"store {str(path)!r} is incomplete (its run was interrupted); "
                             "finish it with gpusim run ... --resume")
        return xr.open_zarr(path, consolidated=True)
