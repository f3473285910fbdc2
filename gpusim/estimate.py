"""What a run will cost before it starts: the store's size on disk and the time on the
CPU, so that `gpusim run` can say so and refuse a surprisingly large cube.

Both are estimates from measurements of the base scenario (84 months, 2 firms, 7
facilities) on 2 CPU cores, scaled by the config's shape:
- a cube stores every variable for every path and month: its raw bytes per path follow
  from gpusim.outputs; Blosc zstd-1 with byte shuffle compresses them about 2.5× (measured
  2.56 on 16,384 base paths: 140.6 MB);
- a summary store keeps the per-path default months, losses and exposures at default
  (about a third of their raw size after compression: measured 3.4× on 16,384 base
  paths, 0.58 MB of 1.97 MB, mostly zeros where no firm defaulted) and one sketch per
  monthly variable and entity (at most about 25 kB each, growing slowly with the path
  count: measured 12 kB at 2,048 paths, 16 kB at 16,384; the whole store 1.28 MB at
  16,384 paths);
- the time is the whole command's: a fixed part (imports, the store's layout, the
  summary tables' first reads), the simulation with its writes at a rate measured per
  backend and mode, and the tables of the store's summary, which on a cube read every
  path (about 80 µs a path). Measured on 2 cores (base scenario, `gpusim.run` then
  `results.summary_document`, 20,000-300,000 paths): numpy ~300,000 path-months a second
  in either mode (the simulation on one core, compression on the other); the native
  backend ~700,000 in cube mode, where writing the cube takes much of it, and ~2,000,000
  in summary mode. The native rates are scaled by the cores it will use (its threads
  split a block's paths), numpy's by its processes (`--workers`, at most one a core). A
  GPU run is much faster, and a cluster's speed unknown here: the estimate then says so
  rather than guess (its `seconds` is NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpusim.config import Config
from gpusim.outputs import BY_NAME, DIMS, dimension_sizes, output_dtype, output_names

CUBE_COMPRESSION = 2.5
"""Raw bytes / stored bytes of a cube (measured 2.56 on the base scenario)."""
SUMMARY_COMPRESSION = 3.0
"""Raw / stored bytes of a summary store's exact per-path variables (measured 3.4)."""
SKETCH_BYTES = 25_000
"""Stored bytes of one month-by-bucket sketch (one variable, one entity)."""
PATH_MONTHS_PER_SECOND = {("numpy", "cube"): 300_000.0, ("numpy", "summary"): 300_000.0,
                          ("cpu", "cube"): 700_000.0, ("cpu", "summary"): 2_000_000.0}
"""Simulated and written per second on MEASURED_CORES cores, by (backend, mode): the
base scenario, the slope between runs of 20,000 to 300,000 paths."""
MEASURED_CORES = 2
"""The cores of the machine the rates were measured on (the development VM)."""
FIXED_SECONDS = {"cube": 6.5, "summary": 6.0}
"""The part of a run's time that does not grow with its paths: imports, laying out the
store, and the summary tables' fixed reads."""
TABLE_SECONDS_PER_PATH = {"cube": 80e-6, "summary": 5e-6}
"""The summary tables printed after a run: a cube's read every path's balances and
losses, a summary store's only its per-path default months and losses."""
BACKEND_NAMES = {"numpy": "numpy reference", "cpu": "native CPU backend"}
CUBE_LIMIT_BYTES = 1_000_000_000
"""`gpusim run --mode cube` asks for --allow-large-cube above this estimated size (1 GB:
100,000 paths of the base scenario, ~0.86 GB, still fit)."""


@dataclass(frozen=True)
class Estimate:
    """A run's estimated store size [bytes] and time [s] on `cores` CPU cores with
    `backend` ("numpy", "cpu", or "gpu" and "cluster", whose time is not estimated: NaN)."""

    mode: str
    paths: int
    store_bytes: float
    seconds: float
    backend: str = "numpy"
    cores: int = MEASURED_CORES

    def text(self) -> str:
        """One line for the terminal, e.g. 'summary of 100,000 paths: estimated store
        4.2 MB, ~11 s on 2 CPU cores (native CPU backend)'."""
        where = f"{self.cores} CPU core{'s' if self.cores != 1 else ''}"
        if self.backend == "gpu":
            when = "much less on the GPU"
        elif self.backend == "cluster":
            when = "the time depends on the cluster's workers"
        else:
            when = f"~{_duration(self.seconds)} on {where} ({BACKEND_NAMES[self.backend]})"
        return (f"{self.mode} of {self.paths:,} paths: estimated store "
                f"{format_bytes(self.store_bytes)}, {when}")


def _per_path_bytes(config: Config, names: list[str]) -> int:
    sizes = dimension_sizes(config, 1)
    return sum(math.prod(sizes[d] for d in BY_NAME[n].dims)
               * np.dtype(output_dtype(n, config)).itemsize for n in names)


def estimate(config: Config, paths: int, mode: str, backend: str = "numpy",
             cores: int = MEASURED_CORES, workers: int = 1) -> Estimate:
    """The estimated store size and time of a run of `paths` paths in `mode` on `backend`
    ("numpy", "cpu": the native backend, or "gpu" and "cluster", not timed) with
    `cores` CPU cores and `workers` processes (`--workers`), its summary tables
    included."""
    names = output_names(config)
    if mode == "cube":
        size = paths * _per_path_bytes(config, names) / CUBE_COMPRESSION
    else:
        exact = [n for n in names if BY_NAME[n].summary == "exact"]
        sizes = dimension_sizes(config)
        sketches = sum(math.prod(sizes[d] for d in DIMS[BY_NAME[n].group][2:]) or 1
                       for n in names if BY_NAME[n].summary == "sketch")
        size = paths * _per_path_bytes(config, exact) / SUMMARY_COMPRESSION \
            + sketches * SKETCH_BYTES
    seconds = math.nan  # a GPU or a cluster: not timed
    if backend in BACKEND_NAMES:
        rate = PATH_MONTHS_PER_SECOND[(backend, mode)]
        if backend == "cpu":  # its threads share every core, in one process or several
            rate *= max(cores, 1) / MEASURED_CORES
        else:  # one core a process
            rate *= max(min(workers, cores), 1)
        seconds = (FIXED_SECONDS[mode] + paths * config.horizon_months / rate
                   + paths * TABLE_SECONDS_PER_PATH[mode])
    return Estimate(mode, paths, size, seconds, backend, cores)


def format_bytes(n: float) -> str:
    """Bytes in decimal units: '817 MB', '3.6 MB', '12 GB'."""
    for scale, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n < 10 * scale else f"{n / scale:.0f} {unit}"
    return f"{n:.0f} B"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
