"""Summary mode's content: which variables a summary store keeps, and one block's summary.

A summary store has no per-path monthly data. Each monthly variable but the 0/1 flags
becomes a quantile sketch per month (and firm or facility), see `gpusim.sketch`; the flags
become counts (paths in the bust regime, paths with an LTV breach; `defaulted` is
implied by the exact default months); default months and total losses are kept per path.

A block's summary is made where the block is simulated: on the CPU from the numpy
engine's outputs; on a GPU inside the fused summary kernel (kernels/sketch.cuh), which
counts every value into its bucket as it is computed, so a block's monthly outputs are
never written even to device memory. Either way only the nonzero counts travel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gpusim import sketch
from gpusim.config import Config
from gpusim.cube import VARIABLES, BlockSimulator, output_dtype, output_names, variable_attrs
from gpusim.engine import FLAG_OUTPUTS, PATH_OUTPUTS

SparseCounts = tuple[np.ndarray, np.ndarray]
"""(flat indices, counts) of the nonzero entries of a count array: what a block's sketch
costs to ship from a worker (a dense one is 8,983 buckets per month and series)."""


def dimension_sizes(config: Config, paths: int = 0) -> dict[str, int]:
    """Length of every dimension of a cube or summary store of `paths` paths."""
    return {"path": paths, "month": config.horizon_months, "firm": len(config.firms),
            "facility": sum(len(f.facilities) for f in config.firms),
            "bucket": sketch.BUCKETS}


def sketched(config: Config) -> list[str]:
    """Monthly variables that summary mode keeps as sketches."""
    return [name for name in output_names(config)
            if name not in FLAG_OUTPUTS and name not in PATH_OUTPUTS]


def summary_variables(config: Config) -> dict[str, tuple[tuple[str, ...], str, dict]]:
    """name → (dims, dtype, attrs) of a summary store's data variables."""
    out: dict[str, tuple[tuple[str, ...], str, dict]] = {}
    for name in output_names(config):
        dims = VARIABLES[name].dims
        if name in PATH_OUTPUTS:
            out[name] = (dims, output_dtype(name, config), variable_attrs(name))
        elif name not in FLAG_OUTPUTS:
            out[f"{name}_sketch"] = (
                (*dims[1:], "bucket"), "int64",
                {"units": "paths", "long_name": f"quantile sketch of {name} "
                 f"({VARIABLES[name].units}): paths per bucket",
                 "sketched_units": VARIABLES[name].units})
    out["bust_count"] = (("month",), "int64",
                         {"units": "paths", "long_name": "paths in the bust regime"})
    if config.firms:
        out["ltv_breach_count"] = (("month", "firm"), "int64",
                                   {"units": "paths", "long_name": "paths with an LTV breach"})
    return out


def count_names(config: Config) -> list[str]:
    """The summary variables that are counts (sketches and flag counts), not per path."""
    return [name for name in summary_variables(config) if name not in PATH_OUTPUTS]


@dataclass
class BlockSummary:
    """One block's summary: its per-path results (engine layout (firm | facility, path),
    numpy) and its counts, sparse (`SparseCounts` by summary variable name)."""

    per_path: dict[str, np.ndarray]
    counts: dict[str, SparseCounts]


def dense_counts(config: Config, arrays: dict[str, Any], xp: Any = np) -> dict[str, Any]:
    """A block's sketches and flag counts, dense, from its engine outputs (month-major),
    on numpy or CuPy arrays: the CPU's way (and the unfused GPU baseline's)."""
    sizes = dimension_sizes(config)
    variables = summary_variables(config)
    out = {}
    for name in count_names(config):
        dims = variables[name][0]
        if name.endswith("_sketch"):
            out[name] = xp.zeros(tuple(sizes[d] for d in dims), dtype=xp.int64)
            sketch.accumulate(out[name], arrays[name.removesuffix("_sketch")], xp)
        elif name == "bust_count":
            out[name] = (arrays["regime"] == 1).sum(axis=-1)
        else:  # ltv_breach_count
            out[name] = arrays["ltv_breach"].sum(axis=-1)
    return out


def sparse(dense: dict[str, Any], xp: Any = np) -> dict[str, SparseCounts]:
    """The nonzero entries of each count array, found where the array lives, as numpy."""
    out = {}
    for name, values in dense.items():
        flat = values.reshape(-1)
        index = xp.flatnonzero(flat)
        out[name] = (to_numpy(index).astype(np.int64), to_numpy(flat[index]).astype(np.int64))
    return out


def to_numpy(values: Any) -> np.ndarray:
    return values.get() if hasattr(values, "get") else np.asarray(values)


def block_counts(config: Config, arrays: dict[str, Any], xp: Any = np
                 ) -> dict[str, SparseCounts]:
    """One block's sketches and counts, sparse, from its engine outputs (month-major)."""
    return sparse(dense_counts(config, arrays, xp), xp)


def launch_block_summary(simulator: BlockSimulator, seed: int, start: int, stop: int) -> Any:
    """Start the summary of paths [start, stop); `.result()` returns its BlockSummary.

    On a GPU the fused summary kernel runs on its own stream while the caller goes on
    (e.g. merges the previous block); on the CPU the block is computed here.
    """
    if simulator.device == "gpu":
        from gpusim.backends import cuda

        return _GpuSummary(cuda.launch_summary(simulator.config, seed, start, stop,
                                               packed=simulator.packed), simulator.config)
    arrays = simulator(seed, start, stop)
    return _Ready(BlockSummary({name: arrays[name] for name in PATH_OUTPUTS if name in arrays},
                               block_counts(simulator.config, arrays)))


@dataclass
class _Ready:
    summary: BlockSummary

    def result(self) -> BlockSummary:
        return self.summary


@dataclass
class _GpuSummary:
    pending: Any  # gpusim.backends.cuda.PendingSummary
    config: Config

    def result(self) -> BlockSummary:
        import cupy

        out = self.pending.result()
        counts = {name: out[name] for name in count_names(self.config)}
        per_path = {name: out[name] for name in PATH_OUTPUTS}
        return BlockSummary(per_path, sparse(counts, cupy))
