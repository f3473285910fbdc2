"""The cube: backend outputs as an xarray Dataset with named dims, units and provenance."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
import xarray as xr

from gpusim.backends.base import block_bounds
from gpusim.backends.devices import check_device, select_backend
from gpusim.config import Config, config_to_yaml
from gpusim.errors import InputError
from gpusim.model.firms import facility_order
from gpusim.outputs import BY_NAME, output_names
from gpusim.safe_yaml import excerpt
from gpusim.version import __version__

MAX_PATHS = 10**9
"""Most paths a run may ask for, checked before anything is allocated. Path indices are
64-bit, but laying a store out holds its `path` coordinate in memory (8 bytes a path:
8 GB at this bound), and 10^9 paths of 84 months is about a day on one GPU."""


def month_coordinate(config: Config) -> np.ndarray:
    """First day of each simulated month, as datetime64[ns]. Raises InputError if a month
    falls outside what datetime64[ns] holds (numpy would wrap it around silently); the
    config's own check (`Config._months_representable`) refuses such configs first."""
    months = np.datetime64(config.start, "M") + np.arange(config.horizon_months)
    coordinate = months.astype("datetime64[ns]")
    if not np.array_equal(coordinate.astype("datetime64[M]"), months):
        raise InputError(f"start = {config.start!r}, horizon_months = "
                         f"{config.horizon_months}: months outside the range of "
                         "datetime64[ns] (1677-10 .. 2262-04)")
    return coordinate


CONVENTIONS = "CF-1.11"
"""The CF version the stores follow (docs/conventions.md: what is CF, what is gpusim's)."""


def now_iso() -> str:
    """The current UTC time, to the second, in ISO 8601 (for `history` and run times)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def provenance(config: Config, seed: int, paths: int, device: str) -> dict[str, Any]:
    """Dataset attributes that say where the numbers came from: CF's `Conventions`,
    `title`, `source` and `history` (one line: UTC time, what ran), then gpusim's own."""
    now = now_iso()
    return {
        "Conventions": CONVENTIONS,
        "title": f"gpusim scenario {config.name}",
        "source": f"gpusim {__version__} Monte Carlo simulation (docs/model.md)",
        "history": f"{now}: gpusim {__version__} simulated {int(paths)} paths of scenario "
                   f"{config.name} with seed {int(seed)}" + (f" on {device}" if device else ""),
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
        "month": ("month", month_coordinate(config), {
            "long_name": "first day of the month", "standard_name": "time", "axis": "T"}),
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
    """Names as variable-length UTF-8 strings: zarr v3's registered `string` data type
    (vlen-utf8 codec), which zarr-python, zarrs, zarrita.js and GDAL read; numpy's
    fixed-width `<U` would become `fixed_length_utf32`, which fewer readers know (see
    docs/conventions.md)."""
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
    if (not isinstance(paths, int | np.integer) or isinstance(paths, bool)
            or not 1 <= paths <= MAX_PATHS):
        raise InputError(f"paths = {excerpt(repr(paths))}: expected a whole number of paths "
                         f"from 1 to {MAX_PATHS:,} (MAX_PATHS: the store's path coordinate "
                         "is held in memory while it is laid out)")
    if (not isinstance(seed, int | np.integer) or isinstance(seed, bool)
            or not 0 <= seed < 2**64):
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
