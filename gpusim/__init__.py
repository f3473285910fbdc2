"""gpusim: Monte Carlo scenarios for the economics of AI compute and GPU-backed debt.

    config = gpusim.load_config("configs/base.yaml")
    ds = gpusim.simulate(config, paths=10_000, seed=1)       # an xarray.Dataset
    gpusim.run(config, out="runs/x.zarr", paths=1_000_000)   # a zarr v3 store
"""

from gpusim.config import Config, load_config
from gpusim.cube import simulate
from gpusim.errors import InputError, SimulationError
from gpusim.plan import run
from gpusim.version import __version__

__all__ = [
    "Config",
    "InputError",
    "SimulationError",
    "__version__",
    "load_config",
    "run",
    "simulate",
]
