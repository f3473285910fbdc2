"""The cube: engine outputs as an xarray Dataset with named dims, units and provenance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from gpusim import __version__
from gpusim.config import Config, config_to_yaml
from gpusim.engine import MARKET_OUTPUTS, block_bounds, simulate_block
from gpusim.errors import InputError
from gpusim.model.market import market_params


@dataclass(frozen=True)
class Variable:
    units: str
    long_name: str


VARIABLES: dict[str, Variable] = {
    "token_demand": Variable("tokens/month", "token demand D"),
    "gpu_hour_demand": Variable("H100-hours/month", "GPU-hour demand H (inference + training)"),
    "capacity": Variable("H100-equivalent GPUs", "rentable GPU capacity K"),
    "utilization": Variable("1", "utilization u = min(1, H / (K·hours))"),
    "rental_price": Variable("USD/H100-hour", "spot rental price P"),
    "collateral_value": Variable("USD/GPU", "resale value V of a pledged reference GPU"),
    "sofr": Variable("1/year", "SOFR r (Vasicek, floored at 0)"),
    "credit_spread": Variable("1/year", "lessors' credit spread S"),
    "regime": Variable("1", "market regime (0 boom, 1 bust)"),
}
assert set(VARIABLES) == set(MARKET_OUTPUTS)

DEVICES = ("cpu", "auto")


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


def variable_attrs(name: str) -> dict[str, Any]:
    meta = VARIABLES[name]
    attrs: dict[str, Any] = {"units": meta.units, "long_name": meta.long_name}
    if name == "regime":
        attrs |= {"flag_values": [0, 1], "flag_meanings": "boom bust"}
    return attrs


def block_dataset(arrays: dict[str, Any], start: int, config: Config) -> xr.Dataset:
    """A block's (months, n) arrays as a Dataset with dims (path, month)."""
    n = next(iter(arrays.values())).shape[1]
    data_vars = {
        name: (("path", "month"), np.asarray(arrays[name]).T, variable_attrs(name))
        for name in MARKET_OUTPUTS
    }
    coords = {
        "path": ("path", np.arange(start, start + n, dtype=np.int64), {"long_name": "path index"}),
        "month": ("month", month_coordinate(config), {"long_name": "first day of the month"}),
    }
    return xr.Dataset(data_vars, coords=coords)


def check_run_args(paths: int, seed: int, device: str) -> None:
    """Reject bad run arguments before any work, naming the argument."""
    if not isinstance(paths, int | np.integer) or paths < 1:
        raise InputError(f"paths = {paths!r}: expected a positive integer number of paths")
    if not isinstance(seed, int | np.integer) or not 0 <= seed < 2**64:
        raise InputError(f"seed = {seed!r}: expected an integer in [0, 2**64)")
    if device not in DEVICES:
        raise InputError(
            f"device = {device!r}: expected one of {', '.join(DEVICES)} "
            "(the GPU backend is not built yet)"
        )


def simulate(
    config: Config, paths: int = 10_000, seed: int = 0, device: str = "cpu",
    block_paths: int = 65_536,
) -> xr.Dataset:
    """Simulate `paths` paths in memory and return the cube as an xarray Dataset.

    The result does not depend on `block_paths`, which only bounds the working memory.
    """
    check_run_args(paths, seed, device)
    params = market_params(config)
    blocks = [
        block_dataset(simulate_block(config, seed, a, b, params=params), a, config)
        for a, b in block_bounds(paths, block_paths)
    ]
    ds = xr.concat(blocks, dim="path") if len(blocks) > 1 else blocks[0]
    ds.attrs = provenance(config, seed, paths, "cpu")
    return ds
