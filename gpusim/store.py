"""The zarr v3 format of gpusim's stores: layout, region writes, completion records,
sketches, the resume identity, and opening a finished store. (gpusim.plan decides what a
run writes; gpusim.executors write it, block by block.)

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
replaced atomically (`progress` gives either record). A resumed run recomputes just the
other blocks. Because every block's numbers depend only on (seed, path) and sketches merge
by integer addition, the finished store holds the same bits as an uninterrupted run.
Metadata is consolidated at the end so that `xr.open_zarr(store)` opens it in one read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import yaml
import zarr
from zarr.codecs import BloscCodec

from gpusim import sketch
from gpusim.backends.base import BlockSummary, SparseCounts
from gpusim.config import Config
from gpusim.cube import cube_coords, provenance, to_path_major
from gpusim.errors import InputError
from gpusim.outputs import (
    BY_NAME,
    PER_PATH,
    dimension_sizes,
    output_dtype,
    output_names,
    summary_variables,
)
from gpusim.storage import root_attributes

CONTROL_GROUP = "_gpusim"
STORE_ID = "store_id"
"""Root attribute: a random id given to each store when it is laid out (a resumed run
keeps it). Block tasks carry it and write only into the store that still has it."""
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


# --- what a path holds ---------------------------------------------------------------------

def is_store(path: Path) -> bool:
    """Whether `path` is a zarr store (its root metadata is there)."""
    return (path / "zarr.json").is_file()


# --- identity -------------------------------------------------------------------------------

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
    differs = [key for key in identity if attrs.get(key) != identity[key]]
    if differs:
        lines = []
        for key in differs:
            if key == "config":
                lines += config_differences(attrs.get(key), identity[key])
            else:
                lines.append(f"{key}: {_short(attrs.get(key))} → {_short(identity[key])}")
        shown = lines[:MAX_DIFFERENCES]
        if len(lines) > len(shown):
            shown.append(f"... and {len(lines) - len(shown)} more")
        raise InputError(f"--resume: {out} was written by a different run (store → this "
                         "run):\n  " + "\n  ".join(shown) + "\nresume with the same config, "
                         "seed, paths, block size, mode and device (numpy, cpu or gpu), or "
                         "start a new store")
    return attrs


MAX_DIFFERENCES = 6
"""Lines a refused resume lists (then how many more differ)."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping/list as {dotted.key: leaf} (list items by index, as --set takes)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix or "config": value}
    out: dict[str, Any] = {}
    for key, item in items:
        out |= _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    return out or {prefix or "config": value}


def config_differences(stored: Any, current: Any) -> list[str]:
    """`dotted.key: old → new` for each config field that differs between two resolved
    configs (as stored, YAML text); '(none)' for a field one of them lacks."""
    try:
        old, new = (_flatten(yaml.safe_load(text)) if isinstance(text, str) else {}
                    for text in (stored, current))
    except yaml.YAMLError:
        return ["config: the store's config is not readable YAML"]
    missing = object()
    return [f"{key}: {_short(old.get(key, '(none)'))} → {_short(new.get(key, '(none)'))}"
            for key in [*old, *(k for k in new if k not in old)]
            if old.get(key, missing) != new.get(key, missing)] or ["config: (formatting)"]


# --- layout ---------------------------------------------------------------------------------

def create_layout(out: Path, config: Config, paths: int, block_paths: int, attrs: dict,
                  mode: str, scenario_coords: dict[str, Any] | None = None) -> None:
    """Write the store's metadata and coordinates, every data chunk still empty.

    `scenario_coords` (a sweep's store): coordinates along a leading `scenario` dimension,
    one of them named "scenario"; every data variable then gains that dimension, chunked
    1 along it, so each (scenario, block) is its own chunk-aligned region."""
    sizes = dimension_sizes(config, paths)
    block = min(block_paths, paths)
    lead = () if scenario_coords is None else ("scenario",)
    n_scenarios = 0 if scenario_coords is None else len(scenario_coords["scenario"][1])
    data_vars, encoding = {}, {}
    if mode == "cube":
        variables = {name: (BY_NAME[name].dims, output_dtype(name, config),
                            BY_NAME[name].attrs()) for name in output_names(config)}
    else:
        variables = summary_variables(config)
    for name, (dims, dtype, var_attrs) in variables.items():
        shape = tuple(sizes[d] for d in dims)
        chunks = (block, *shape[1:]) if dims[0] == "path" else shape
        if lead:
            shape, chunks = (n_scenarios, *shape), (1, *chunks)
        data_vars[name] = ((*lead, *dims), da.zeros(shape, chunks=chunks, dtype=dtype),
                           var_attrs)
        encoding[name] = {"chunks": chunks, "compressors": [COMPRESSOR]}
    coords = cube_coords(config, np.arange(paths, dtype=np.int64)) | (scenario_coords or {})
    if mode == "summary":
        coords["bucket"] = ("bucket", sketch.representative(np.arange(sketch.BUCKETS)),
                            {"long_name": "value a sketch bucket stands for",
                             "relative_accuracy": sketch.ALPHA})
    template = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    encoding["path"] = {"chunks": (paths,)}
    template.to_zarr(out, mode="w", compute=False, zarr_format=3, consolidated=False,
                     encoding=encoding)
    n_blocks = len(range(0, paths, block_paths))
    shape = (n_blocks,) if not lead else (n_scenarios, n_blocks)
    group = zarr.open_group(out, mode="r+")
    group.create_group(CONTROL_GROUP).create_array(
        "blocks_done", shape=shape, chunks=(1,) * len(shape), dtype="int8", fill_value=0)


def shrink_paths(out: Path, config: Config, paths: int, block_paths: int, mode: str) -> None:
    """Make a store laid out for more paths, of which only the first `paths` (whole blocks)
    were computed, the layout of a run of `paths` paths: every path-indexed array's
    metadata, the `path` coordinate and the block record are those of a fresh layout of
    `paths` paths (so its arrays equal a fixed-size run's), chunks beyond are removed and
    the `paths` attribute and history say `paths`. Used by runs that stop early
    (gpusim.target)."""
    group = zarr.open_group(out, mode="r+")
    cap = int(group.attrs["paths"])
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        fresh = Path(tmp) / "layout.zarr"
        create_layout(fresh, config, paths, block_paths, {}, mode)
        for name, array in zarr.open_group(fresh, mode="r").arrays():
            if "path" in (array.metadata.dimension_names or ()):
                _replace_metadata(fresh / name, out / name, array.cdata_shape[0])
        shutil.rmtree(out / "path")
        shutil.copytree(fresh / "path", out / "path")
        done = Path(CONTROL_GROUP) / "blocks_done"
        _replace_metadata(fresh / done, out / done, len(range(0, paths, block_paths)))
    history = str(group.attrs.get("history", ""))
    group.attrs.update({"paths": int(paths), "history": history.replace(
        f"simulated {cap} paths", f"simulated {int(paths)} paths")})


def _replace_metadata(fresh: Path, array: Path, chunks: int) -> None:
    """`array`'s zarr.json from `fresh`, and its chunks from index `chunks` on removed."""
    shutil.copy(fresh / "zarr.json", array / "zarr.json")
    for chunk in (array / "c").glob("*") if (array / "c").is_dir() else ():
        if int(chunk.name) >= chunks:
            shutil.rmtree(chunk) if chunk.is_dir() else chunk.unlink()


class StaleWriter(RuntimeError):
    """A block task of a run whose store has since been replaced (e.g. a dask worker still
    busy for a killed client): its block is not written into the new store."""


def check_store_id(out: Path, store_id: str | None) -> None:
    """StaleWriter unless the store at `out` is the one laid out as `store_id` (None: a
    store from before store ids, not checked)."""
    if store_id is None:
        return
    found = (root_attributes(out) or {}).get(STORE_ID)
    if found != store_id:
        raise StaleWriter(f"{out} is no longer the store this block was computed for "
                          f"(store id {found}, expected {store_id}): it was replaced; "
                          "the block is not written")


def write_region(out: Path, ds: xr.Dataset, start: int, stop: int,
                 store_id: str | None = None, scenario: int | None = None) -> None:
    """Write one block's per-path data into its (chunk-aligned) region of the store, if
    it is still the store laid out as `store_id` (see `check_store_id`); in a sweep's
    store, into scenario `scenario`'s slice."""
    check_store_id(out, store_id)
    data = ds.drop_vars(list(ds.coords))  # coordinates are written once, with the layout
    region = {"path": slice(start, stop)}
    if scenario is not None:
        data = data.expand_dims(scenario=1)
        region = {"scenario": slice(scenario, scenario + 1)} | region
    data.to_zarr(out, region=region, zarr_format=3, consolidated=False)


def blocks_done(out: Path, scenario: int | None = None) -> np.ndarray:
    """Which blocks are written (of scenario `scenario`, in a sweep's store)."""
    with quiet_zarr():
        done = zarr.open_array(out / CONTROL_GROUP / "blocks_done", mode="r")
        return (done[:] if scenario is None else done[scenario]).astype(bool)


def mark_done(out: Path, blocks: list[int], scenario: int | None = None) -> None:
    array = zarr.open_array(out / CONTROL_GROUP / "blocks_done", mode="r+")
    for b in blocks:
        array[(b,) if scenario is None else (scenario, b)] = 1


# --- summary accumulation -------------------------------------------------------------------

def checkpoint_path(out: Path, scenario: int | None = None) -> Path:
    """The summary checkpoint of a run (of scenario `scenario`, in a sweep's store)."""
    return out / (CHECKPOINT if scenario is None
                  else CHECKPOINT.replace(".npz", f"_scenario_{scenario}.npz"))


@dataclass
class Summary:
    """Sketches and counts of the blocks folded in so far (their indices in `blocks`), of
    one run, or of scenario `scenario` of a sweep's store."""

    counts: dict[str, np.ndarray]
    blocks: set[int] = field(default_factory=set)
    scenario: int | None = None
    _saved_at: float = field(default_factory=time.monotonic)

    @classmethod
    def empty(cls, config: Config, scenario: int | None = None) -> Summary:
        sizes = dimension_sizes(config)
        counts = {name: np.zeros(tuple(sizes[d] for d in dims), dtype=np.int64)
                  for name, (dims, _, _) in summary_variables(config).items()
                  if name not in PER_PATH}
        return cls(counts, scenario=scenario)

    def add(self, block: int, counts: dict[str, SparseCounts]) -> None:
        """Fold one block's sparse counts in; a block is folded in once."""
        if block in self.blocks:
            return
        for name, (index, values) in counts.items():
            np.add.at(self.counts[name].reshape(-1), index, values)
        self.blocks.add(block)

    def checkpoint_if_due(self, out: Path) -> None:
        """Save the sketches (and mark their blocks done) if CHECKPOINT_SECONDS have passed."""
        if time.monotonic() - self._saved_at > CHECKPOINT_SECONDS:
            self.save(checkpoint_path(out, self.scenario))
            mark_done(out, sorted(self.blocks), self.scenario)
            self._saved_at = time.monotonic()

    def finish(self, out: Path) -> None:
        """Write the sketches and counts into the store, mark every block done."""
        for name, counts in self.counts.items():
            array = zarr.open_array(out / name, mode="r+")
            if self.scenario is None:
                array[...] = counts
            else:
                array[self.scenario] = counts
        mark_done(out, sorted(self.blocks), self.scenario)
        checkpoint_path(out, self.scenario).unlink(missing_ok=True)

    def save(self, path: Path) -> None:
        """Write a checkpoint atomically (a crash leaves the previous one whole)."""
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, __blocks__=np.array(sorted(self.blocks), np.int64),
                                **self.counts)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, config: Config, scenario: int | None = None) -> Summary:
        summary = cls.empty(config, scenario)
        if path.is_file():
            with np.load(path) as saved:
                summary.counts = {k: saved[k] for k in summary.counts}
                summary.blocks = set(int(b) for b in saved["__blocks__"])
        return summary


def write_per_path(out: Path, config: Config, block: BlockSummary, start: int, stop: int,
                   store_id: str | None = None, scenario: int | None = None) -> None:
    """Write a summary block's exact per-path variables into their region of the store."""
    per_path = xr.Dataset({
        name: (BY_NAME[name].dims, to_path_major(block.per_path[name], BY_NAME[name].dims))
        for name in PER_PATH if name in output_names(config)})
    if per_path.data_vars:
        write_region(out, per_path, start, stop, store_id, scenario)
    else:
        check_store_id(out, store_id)


# --- completion -----------------------------------------------------------------------------

class CubeProgress:
    """Which blocks of a cube store (of one scenario of a sweep's) are written: one flag
    per block in the control group, set once the block's region write has returned."""

    def __init__(self, out: Path, scenario: int | None = None) -> None:
        self.out, self.scenario = out, scenario
        self.done = set(map(int, blocks_done(out, scenario).nonzero()[0]))

    def record(self, block: int, result: Any) -> None:
        mark_done(self.out, [block], self.scenario)
        self.done.add(block)

    def finish(self) -> None:
        """Nothing to do: every block was recorded as it was written."""


class SummaryProgress:
    """Which blocks a summary store's sketches hold: those of the checkpoint, then those
    folded in (`record` with the block's sparse counts); `finish` writes the sketches.
    Every block marked done and no checkpoint: the sketches are already written (`finish`
    marks the blocks only after writing them, and removes the checkpoint last)."""

    def __init__(self, out: Path, config: Config, scenario: int | None = None) -> None:
        self.out = out
        path = checkpoint_path(out, scenario)
        marked = blocks_done(out, scenario)
        self.written = not path.is_file() and bool(marked.all())
        self.summary = Summary.load(path, config, scenario)
        if self.written:
            self.summary.blocks = set(range(len(marked)))
        self.done = self.summary.blocks

    def record(self, block: int, counts: dict[str, SparseCounts]) -> None:
        self.summary.add(block, counts)
        self.summary.checkpoint_if_due(self.out)

    def finish(self) -> None:
        if not self.written:
            self.summary.finish(self.out)


def progress(out: Path, config: Config, mode: str, scenario: int | None = None
             ) -> CubeProgress | SummaryProgress:
    """The completion record of a laid-out store of `mode` (of one of its scenarios)."""
    if mode == "summary":
        return SummaryProgress(out, config, scenario)
    return CubeProgress(out, scenario)


def mark_finished(out: Path, attrs: dict[str, Any]) -> None:
    """Record the run as finished (with `attrs`, e.g. its end time) and consolidate the
    metadata, so that a store marked finished is always readable in one read."""
    zarr.consolidate_metadata(str(out))
    zarr.open_group(out, mode="r+").attrs.update(attrs)
    zarr.consolidate_metadata(str(out))


def open_store(path: str | Path) -> xr.Dataset:
    """Open a finished store written by `run` as a lazy, dask-backed Dataset."""
    path = Path(path)
    if not is_store(path):
        raise InputError(f"store {str(path)!r} is not a zarr store written by gpusim run")
    with quiet_zarr():
        if "run_finished" not in zarr.open_group(path, mode="r").attrs:
            raise InputError(f"store {str(path)!r} is incomplete (its run was interrupted); "
                             "finish it with gpusim run ... --resume")
        return xr.open_zarr(path, consolidated=True)
