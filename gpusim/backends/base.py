"""The one face every backend shows: launch a block of paths in cube or summary mode, get
back a handle, and call its `result()`.

A block is a contiguous range of path indices [start, stop). Its draws depend only on
(seed, path, month, slot), so any split of the paths into blocks, on any backend, gives
the same numbers. A backend that computes synchronously (numpy, the host build) returns a
`Ready` handle; the CUDA backend returns one whose kernel is still running on its stream,
so that a caller can launch the next block before it collects the last.

- cube mode (`launch`): every output of `gpusim.outputs`, month-major: market (months, n),
  firm (months, firms, n), facility (months, facilities, n), per path (entities, n);
- summary mode (`launch_summary`): a `BlockSummary`, the block's exact per-path results
  and its sketches and flag counts as sparse (index, count) pairs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import numpy as np

from gpusim.config import Config
from gpusim.errors import SimulationError
from gpusim.outputs import PER_PATH

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

SparseCounts = tuple[np.ndarray, np.ndarray]
"""(flat indices, counts) of the nonzero entries of a count array: what a block's sketch
costs to ship from a worker (a dense one is 8,983 buckets per month and series)."""


class Block(NamedTuple):
    """Block `index` of a run: paths [start, stop)."""

    index: int
    start: int
    stop: int

    @property
    def paths(self) -> int:
        return self.stop - self.start


def block_bounds(paths: int, block_paths: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of each block of at most `block_paths` paths."""
    for start in range(0, paths, block_paths):
        yield start, min(start + block_paths, paths)


def blocks(paths: int, block_paths: int) -> list[Block]:
    """The blocks of a run of `paths` paths, in order."""
    return [Block(b, start, stop) for b, (start, stop) in
            enumerate(block_bounds(paths, block_paths))]


class Handle(Protocol[T_co]):
    """A launched block; `result()` waits for it and returns its outputs."""

    def result(self) -> T_co: ...


@dataclass
class Ready(Generic[T]):
    """The handle of a block computed synchronously."""

    value: T

    def result(self) -> T:
        return self.value


@dataclass
class BlockSummary:
    """One block's summary: its per-path results (backend layout (firm | facility, path),
    numpy) and its counts, sparse (`SparseCounts` by summary variable name)."""

    per_path: dict[str, np.ndarray]
    counts: dict[str, SparseCounts]


def check_finite(out: dict[str, Any], start: int, xp: ModuleType = np) -> None:
    """Raise SimulationError at the first NaN or Inf, naming variable, path and month."""
    for name, values in out.items():
        if values.dtype.kind != "f" or _all_finite(values, xp):
            continue
        bad = ~xp.isfinite(values)
        if bool(bad.any()):
            where = [int(i[0]) for i in xp.nonzero(bad)]
            path = where[-1]
            month = f" at month index {where[0]}" if values.ndim > 1 and name not in PER_PATH \
                else ""
            raise SimulationError(
                f"{name} is {float(values[tuple(where)])} on path {start + path}{month}; "
                "check the config's parameters for that variable"
            )


def _all_finite(values: Any, xp: ModuleType) -> bool:
    """Whether every value is finite, in one read pass: a sum is finite only if each term
    is (NaN and ±Inf propagate), and a sum that overflows from finite terms alone falls
    back to the element-wise test, so the answer is exact either way."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is an answer here
        total = values.sum()
    if bool(xp.isfinite(total)):
        return True
    return bool(xp.isfinite(values).all())


def to_numpy(values: Any) -> np.ndarray:
    """A numpy array of `values`, copied from the device if they are CuPy's."""
    return values.get() if hasattr(values, "get") else np.asarray(values)


def sparse(dense: dict[str, Any], xp: Any = np) -> dict[str, SparseCounts]:
    """The nonzero entries of each count array, found where the array lives, as numpy."""
    out = {}
    for name, values in dense.items():
        flat = values.reshape(-1)
        index = xp.flatnonzero(flat)
        out[name] = (to_numpy(index).astype(np.int64), to_numpy(flat[index]).astype(np.int64))
    return out


class Backend(ABC):
    """Simulates blocks of paths of one config on one device.

    `name` is the implementation ("numpy", "native", "host" or "cuda"); `device` what the
    store's resume identity records ("numpy", "cpu" or "gpu": the numpy reference, the
    native build and the GPU agree to ~1e-14, not bit for bit); `device_name` the
    description kept in a store's provenance; `xp` the array namespace of on-device
    results (numpy or cupy).
    """

    name: str
    device: str
    device_name: str
    xp: Any

    def __init__(self, config: Config) -> None:
        self.config = config

    @abstractmethod
    def launch(self, seed: int, start: int, stop: int, on_device: bool = False,
               record_flows: bool = False) -> Handle[dict[str, Any]]:
        """Start the cube of paths [start, stop); `.result()` returns its outputs, as
        numpy arrays unless `on_device`, with the cash-flow terms if `record_flows`."""

    @abstractmethod
    def launch_summary(self, seed: int, start: int, stop: int) -> Handle[BlockSummary]:
        """Start the summary of paths [start, stop); `.result()` returns its
        BlockSummary."""

    def __call__(self, seed: int, start: int, stop: int, on_device: bool = False,
                 record_flows: bool = False) -> dict[str, Any]:
        """The cube outputs of paths [start, stop), computed now."""
        return self.launch(seed, start, stop, on_device, record_flows).result()
