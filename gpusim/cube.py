"""The cube: engine outputs as an xarray Dataset with named dims, units and provenance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from gpusim import __version__
from gpusim.config import Config, config_to_yaml
from gpusim.engine import (
    FACILITY_OUTPUTS,
    FIRM_OUTPUTS,
    INTEGER_OUTPUTS,
    MARKET_OUTPUTS,
    PATH_OUTPUTS,
    block_bounds,
    simulate_block,
)
from gpusim.errors import InputError
from gpusim.model.firms import facility_order
from gpusim.model.market import market_params


@dataclass(frozen=True)
class Variable:
    units: str
    long_name: str
    dims: tuple[str, ...] = ("path", "month")


FIRM_DIMS = ("path", "month", "firm")
FACILITY_DIMS = ("path", "month", "facility")


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
    "revenue": Variable("USD/month", "firm revenue (contracts + spot)", FIRM_DIMS),
    "ebitda": Variable("USD/month", "revenue minus operating cost", FIRM_DIMS),
    "cash": Variable("USD", "cash at the end of the month", FIRM_DIMS),
    "debt": Variable("USD", "outstanding balance of all facilities", FIRM_DIMS),
    "ltv": Variable("1", "pledged balance / pledged collateral value, as tested", FIRM_DIMS),
    "ltv_breach": Variable("1", "1 if any facility's LTV test failed this month", FIRM_DIMS),
    "defaulted": Variable("1", "1 from the month the firm defaulted on", FIRM_DIMS),
    "balance": Variable("USD", "facility balance at the end of the month", FACILITY_DIMS),
    "loss": Variable("USD", "facility's lender loss to date (cumulative)", FACILITY_DIMS),
    "default_month": Variable("1", "month index of the firm's default (-1: none)",
                              ("path", "firm")),
    "loss_total": Variable("USD", "facility's lender loss over the run", ("path", "facility")),
}
assert set(VARIABLES) == {*MARKET_OUTPUTS, *FIRM_OUTPUTS, *FACILITY_OUTPUTS, *PATH_OUTPUTS}

DEVICES = ("cpu", "auto", "gpu")


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


def output_names(config: Config) -> list[str]:
    """The cube's variables for this config (no firm variables without firms)."""
    if not config.firms:
        return list(MARKET_OUTPUTS)
    return [*MARKET_OUTPUTS, *FIRM_OUTPUTS, *FACILITY_OUTPUTS, *PATH_OUTPUTS]


def output_dtype(name: str, config: Config) -> str:
    return INTEGER_OUTPUTS.get(name, config.dtype)


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
        name: (VARIABLES[name].dims, to_path_major(arrays[name], VARIABLES[name].dims),
               variable_attrs(name))
        for name in output_names(config)
    }
    return xr.Dataset(data_vars, coords=cube_coords(config, np.arange(start, start + n)))


def check_run_args(paths: int, seed: int, device: str) -> None:
    """Reject bad run arguments before any work, naming the argument."""
    if not isinstance(paths, int | np.integer) or paths < 1:
        raise InputError(f"paths = {paths!r}: expected a positive integer number of paths")
    if not isinstance(seed, int | np.integer) or not 0 <= seed < 2**64:
        raise InputError(f"seed = {seed!r}: expected an integer in [0, 2**64)")
    if device not in DEVICES:
        raise InputError(f"device = {device!r}: expected one of {', '.join(DEVICES)}")


def simulate(
    config: Config, paths: int = 10_000, seed: int = 0, device: str = "cpu",
    block_paths: int = 65_536,
) -> xr.Dataset:
    """Simulate `paths` paths in memory and return the cube as an xarray Dataset.

    The result does not depend on `block_paths`, which only bounds the working memory.
    """
    check_run_args(paths, seed, device)
    simulator = block_simulator(config, device)
    blocks = [
        block_dataset(simulator(seed, a, b), a, config)
        for a, b in block_bounds(paths, block_paths)
    ]
    ds = xr.concat(blocks, dim="path") if len(blocks) > 1 else blocks[0]
    ds.attrs = provenance(config, seed, paths, simulator.device_name) | {"mode": "cube"}
    return ds


@dataclass
class BlockSimulator:
    """Simulates blocks of paths on the resolved device: numpy on the CPU, the fused kernel
    on a GPU. `xp` is the array namespace of on-device results (numpy or cupy)."""

    config: Config
    device: str  # "cpu" or "gpu"
    device_name: str
    xp: Any

    def __call__(self, seed: int, start: int, stop: int, on_device: bool = False) -> dict:
        """Engine outputs of paths [start, stop), as numpy arrays unless `on_device`."""
        return self.launch(seed, start, stop, on_device).result()

    def launch(self, seed: int, start: int, stop: int, on_device: bool = False) -> Any:
        """Start a block; `.result()` returns its outputs. On a GPU the kernel runs (and its
        outputs are copied to pinned host memory) while the caller goes on; on the CPU the
        block is computed here."""
        if self.device == "gpu":
            from gpusim.backends import cuda

            return cuda.launch_block(self.config, seed, start, stop, to_host=not on_device,
                                     packed=self.packed)
        return _Done(simulate_block(self.config, seed, start, stop, params=self._params))

    def __post_init__(self) -> None:
        self._params = market_params(self.config)
        self.packed = None  # the kernel's inputs (gpusim.backends.packing.Packed) on a GPU
        if self.device == "gpu":
            from gpusim.backends.packing import pack

            self.packed = pack(self.config)


@dataclass
class _Done:
    """A block computed synchronously (the CPU's launch)."""

    outputs: dict

    def result(self) -> dict:
        return self.outputs


def block_simulator(config: Config, device: str) -> BlockSimulator:
    """The block simulator for a requested device ('cpu', 'gpu' or 'auto').

    'cpu' runs the numpy reference; 'gpu' the fused CUDA kernel; 'auto' the kernel when
    CuPy and a device are present, else numpy (with a one-line notice).
    """
    from gpusim.backends import cuda

    if cuda.resolve_device(device) == "gpu":
        import cupy

        name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
        label = f"gpu:{name.decode() if isinstance(name, bytes) else name}"
        return BlockSimulator(config, "gpu", label, cupy)
    return BlockSimulator(config, "cpu", "cpu", np)
