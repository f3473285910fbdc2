"""The cube: backend outputs as an xarray Dataset with named dims, units and provenance."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from gpusim.backends.base import block_bounds
from gpusim.backends.devices import check_device, select_backend
from gpusim.config import Config, config_to_yaml
from gpusim.errors import InputError
from gpusim.model.firms import facility_order
from gpusim.outputs import BY_NAME, output_names
from gpusim.version import __version__


def month_coordinate(config: Config) -> np.ndarray:
    """First day of each simulated month, as datetime64[ns]."""
    first = np.datetime64(config.start, "M")
    return (first + np.arange(config.horizon_months)).astype("datetime64[ns]")


def provenance(config: Config, seed: int, paths: int, device: str) -> dict[str, Any]:
    """Dataset attributes that say where the numbers came from."""
    return {
        "title": f"gpusim scenario {config.name}",
        "scenario": config.name,
        "config": config_to_yaml(config),
        "seed": int(seed),
        "paths": int(paths),
        "months": config.horizon_months,
        "start": config.start,
        "dtype": config.dtype,
        "device": device,
        "gpusim_version": __version__,
    }


def cube_coords(config: Config, paths: np.ndarray) -> dict[str, Any]:
    """Coordinates: path indices, month dates, firm and facility names."""
    coords: dict[str, Any] = {
        "path": ("path", paths, {"long_name": "path index"}),
        "month": ("month", month_coordinate(config), {"long_name": "first day of the month"}),
    }
    if config.firms:
        order = facility_order(config)
        coords["firm"] = ("firm", _strings(f.name for f in config.firms), {"long_name": "firm"})
        coords["facility"] = ("facility", _strings(name for _, name in order),
                              {"long_name": "facility (loan)"})
        coords["facility_firm"] = ("facility", _strings(firm for firm, _ in order),
                                   {"long_name": "firm that owes the facility"})
    return coords


def _strings(values: Any) -> np.ndarray:
    """Names as variable-length strings (zarr v3 has a stable spec for those only)."""
    return np.array(list(values), dtype=object)


def to_path_major(values: Any, dims: tuple[str, ...]) -> np.ndarray:
    """Engine layout (month, [entity,] path) or (entity, path) → cube layout (path, ...)."""
    values = np.asarray(values)
    if dims == ("path", "month"):
        return values.T
    if len(dims) == 3:
        return values.transpose(2, 0, 1)
    return values.T


def block_dataset(arrays: dict[str, Any], start: int, config: Config) -> xr.Dataset:
    """A block's engine arrays as a Dataset with dims (path, month[, firm | facility])."""
    n = np.asarray(arrays["rental_price"]).shape[-1]
    data_vars = {
        name: (BY_NAME[name].dims, to_path_major(arrays[name], BY_NAME[name].dims),
               BY_NAME[name].attrs())
        for name in output_names(config)
    }
    return xr.Dataset(data_vars, coords=cube_coords(config, np.arange(start, start + n)))


def check_run_args(paths: int, seed: int, device: str) -> None:
    """Reject bad run arguments before any work, naming the argument."""
    if not isinstance(paths, int | np.integer) or paths < 1:
        raise InputError(f"paths = {paths!r}: expected a positive integer number of paths")
    if not isinstance(seed, int | np.integer) or not 0 <= seed < 2**64:
        raise InputError(f"seed = {seed!r}: expected an integer in [0, 2**64)")
    check_device(device)


def simulate(
    config: Config, paths: int = 10_000, seed: int = 0, device: str = "auto",
    block_paths: int = 65_536,
) -> xr.Dataset:
    """Simulate `paths` paths in memory and return the cube as an xarray Dataset.

    The result does not depend on `block_paths`, which only bounds the working memory
    besides the cube itself: each block is written into the cube's preallocated arrays.
    """
    check_run_args(paths, seed, device)
    backend = select_backend(config, device)
    data: dict[str, np.ndarray] = {}
    for a, b in block_bounds(paths, block_paths):
        arrays = backend(seed, a, b)
        for name in output_names(config):
            block = to_path_major(arrays[name], BY_NAME[name].dims)
            if name not in data:
                data[name] = np.empty((paths, *block.shape[1:]), dtype=block.dtype)
            data[name][a:b] = block
    ds = xr.Dataset({name: (BY_NAME[name].dims, values, BY_NAME[name].attrs())
                     for name, values in data.items()},
                    coords=cube_coords(config, np.arange(paths)))
    ds.attrs = provenance(config, seed, paths, backend.device_name) | {"mode": "cube"}
    return ds
