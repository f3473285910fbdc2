"""Writing runs to zarr v3 stores, block by block.

A store is laid out once (all variables, coordinates and attributes, no data) and then
each block of paths is written into its own region. Chunks are (block_paths × all months)
per variable, so every region write covers whole chunks: unaligned concurrent region
writes can silently lose data in zarr, aligned ones cannot. Metadata is consolidated at
the end so that `xr.open_zarr(store)` opens it in one read.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from gpusim.config import Config
from gpusim.cube import (
    VARIABLES,
    block_dataset,
    block_simulator,
    check_run_args,
    cube_coords,
    output_dtype,
    output_names,
    provenance,
    variable_attrs,
)
from gpusim.engine import block_bounds
from gpusim.errors import InputError

DEFAULT_BLOCK_PATHS = 16_384


def _quiet_zarr() -> warnings.catch_warnings:
    """Silence zarr's note that consolidated metadata is not yet in the v3 spec."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
    return ctx


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse to touch an existing path unless asked, and never replace a non-store."""
    if not out.exists():
        return
    if not overwrite:
        raise InputError(
            f"--out {str(out)!r} already exists; pass --overwrite to replace it "
            "(or choose another path)"
        )
    if not (out / "zarr.json").is_file():
        raise InputError(
            f"--out {str(out)!r} exists and is not a zarr store; refusing to replace it "
            "even with --overwrite"
        )


def check_block_paths(block_paths: int) -> None:
    if not isinstance(block_paths, int | np.integer) or block_paths < 1:
        raise InputError(f"block_paths = {block_paths!r}: expected a positive integer")


def check_run(out: str | Path, paths: int, seed: int, block_paths: int, overwrite: bool,
              device: str) -> None:
    """Every check `run` makes before writing anything; raises InputError."""
    check_run_args(paths, seed, device)
    check_block_paths(block_paths)
    check_output(Path(out), overwrite)


def create_layout(out: Path, config: Config, paths: int, seed: int, block_paths: int,
                  device: str) -> None:
    """Write the store's metadata and coordinates, with every data chunk still empty."""
    sizes = {"path": paths, "month": config.horizon_months, "firm": len(config.firms),
             "facility": sum(len(f.facilities) for f in config.firms)}
    block = min(block_paths, paths)
    data_vars, encoding = {}, {}
    for name in output_names(config):
        dims = VARIABLES[name].dims
        shape = tuple(sizes[d] for d in dims)
        chunks = (block, *shape[1:])
        data_vars[name] = (dims, da.zeros(shape, chunks=chunks, dtype=output_dtype(name, config)),
                           variable_attrs(name))
        encoding[name] = {"chunks": chunks}
    coords = cube_coords(config, np.arange(paths, dtype=np.int64))
    template = xr.Dataset(data_vars, coords=coords, attrs=provenance(config, seed, paths, device))
    encoding["path"] = {"chunks": (paths,)}
    template.to_zarr(out, mode="w", compute=False, zarr_format=3, consolidated=False,
                     encoding=encoding)


def write_block(out: Path, ds: xr.Dataset, start: int, stop: int) -> None:
    """Write one block's data into its (chunk-aligned) region of the store."""
    data = ds.drop_vars(list(ds.coords))  # coordinates are written once, with the layout
    data.to_zarr(out, region={"path": slice(start, stop)}, zarr_format=3, consolidated=False)


def run(
    config: Config,
    out: str | Path,
    paths: int = 10_000,
    seed: int = 0,
    block_paths: int = DEFAULT_BLOCK_PATHS,
    overwrite: bool = False,
    device: str = "cpu",
    on_block: Callable[[int], None] | None = None,
) -> Path:
    """Simulate `paths` paths block by block and stream them into a zarr v3 store at `out`.

    Arguments are checked before anything is written. `on_block(n)` is called after each
    block with the number of paths it held (for progress bars). Returns the store path.
    """
    out = Path(out)
    check_run(out, paths, seed, block_paths, overwrite, device)
    simulate_block_on, device_name = block_simulator(config, device)
    if out.exists():
        shutil.rmtree(out)
    ctx = _quiet_zarr()
    try:
        create_layout(out, config, paths, seed, block_paths, device_name)
        for start, stop in block_bounds(paths, block_paths):
            arrays = simulate_block_on(seed, start, stop)
            write_block(out, block_dataset(arrays, start, config), start, stop)
            if on_block is not None:
                on_block(stop - start)
        zarr.consolidate_metadata(str(out))
    finally:
        ctx.__exit__(None, None, None)
    return out


def open_store(path: str | Path) -> xr.Dataset:
    """Open a store written by `run` as a lazy, dask-backed Dataset."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise InputError(f"store {str(path)!r} is not a zarr store written by gpusim run")
    ctx = _quiet_zarr()
    try:
        return xr.open_zarr(path, consolidated=True)
    finally:
        ctx.__exit__(None, None, None)
