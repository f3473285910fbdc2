"""gpusim: Monte Carlo scenarios for the economics of AI compute and GPU-backed debt.

    config = gpusim.load_config("base")                      # a shipped scenario, or a path
    ds = gpusim.simulate(config, paths=10_000, seed=1)       # an xarray.Dataset
    gpusim.run(config, out="runs/x.zarr", paths=1_000_000)   # a zarr v3 store
    xr.open_zarr("runs/x.zarr").gpusim.default_curve()       # the ds.gpusim accessor

Importing gpusim registers the `ds.gpusim` accessor (gpusim.analysis: xarray and numpy
only). The engine (`simulate`, `run`: backends, zarr, dask) and the config schema
(`load_config`, `Config`: pydantic) are imported on first use, so `import gpusim` costs
about what `import xarray` does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gpusim import analysis as analysis  # registers the ds.gpusim accessor
from gpusim.errors import InputError, SimulationError
from gpusim.version import __version__

if TYPE_CHECKING:
    from gpusim.config import Config, load_config
    from gpusim.cube import simulate
    from gpusim.plan import run
    from gpusim.scenarios import scenario_path

_LAZY = {"Config": "gpusim.config", "load_config": "gpusim.config", "simulate": "gpusim.cube",
         "run": "gpusim.plan", "scenario_path": "gpusim.scenarios"}
"""Public names imported on first use (PEP 562), with the module that defines them."""

__all__ = [
    "Config",
    "InputError",
    "SimulationError",
    "__version__",
    "analysis",
    "load_config",
    "run",
    "scenario_path",
    "simulate",
]


def __getattr__(name: str) -> Any:
    """Import `gpusim.<name>` of _LAZY on first access and cache it in the module."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gpusim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
