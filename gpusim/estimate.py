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
- numpy computes about 84,000 path-months a second in cube mode (writing included) and
  about 420,000 in summary mode on 2 cores (100,000 base paths: ~100 s and ~20 s). A GPU
  run is much faster; the estimate then says so rather than guess.
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
PATH_MONTHS_PER_SECOND = {"cube": 84_000.0, "summary": 420_000.0}
"""numpy on 2 CPU cores, base scenario, writing included."""
CUBE_LIMIT_BYTES = 1_000_000_000
"""`gpusim run --mode cube` asks for --allow-large-cube above this estimated size (1 GB:
100,000 paths of the base scenario, ~0.86 GB, still fit)."""


@dataclass(frozen=True)
class Estimate:
    """A run's estimated store size [bytes] and CPU time [s]."""

    mode: str
    paths: int
    store_bytes: float
    cpu_seconds: float

    def text(self, on_gpu: bool = False) -> str:
        """One line for the terminal, e.g. 'estimated store 3.6 MB, ~20 s on 2 CPU cores'."""
        when = ("much less on the GPU" if on_gpu
                else f"~{_duration(self.cpu_seconds)} on 2 CPU cores")
        return (f"{self.mode} of {self.paths:,} paths: estimated store "
                f"{format_bytes(self.store_bytes)}, {when}")


def _per_path_bytes(config: Config, names: list[str]) -> int:
    sizes = dimension_sizes(config, 1)
    return sum(math.prod(sizes[d] for d in BY_NAME[n].dims)
               * np.dtype(output_dtype(n, config)).itemsize for n in names)


def estimate(config: Config, paths: int, mode: str) -> Estimate:
    """The estimated store size and CPU time of a run of `paths` paths in `mode`."""
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
    seconds = paths * config.horizon_months / PATH_MONTHS_PER_SECOND[mode]
    return Estimate(mode, paths, size, seconds)


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
