"""GPU measurements: memory bandwidths and the GPU runs of the suite (CuPy required).

Every run here waits for the device before it returns, so a wall-clock timer around it
measures the finished work. What each run times:

- `fused_cube`: the fused kernel writing every output of every path and month into device
  memory, block after block (`gpusim.backends.cuda.launch_block(..., to_host=False)`, the
  next block launched before the last is waited for); nothing is copied to the host.
  With `to_host=True` the outputs are also copied into pinned host memory, overlapped with
  the next block's kernel, as `gpusim run --mode cube` does before compressing.
- `fused_summary`: what `gpusim run --mode summary` does per block on a GPU without the
  store: the fused summary kernel, which counts every monthly value into its quantile
  sketch as it computes it (no monthly output is written, even to device memory), the
  next block launched before the last is merged, the sparse counts brought to the host
  and merged (`Summary.add`), the per-path default months and losses copied to the host
  (not written). It returns the last month's sketches of `CHECKED`, which the suite
  checks against the exact quantiles of the cube rows.
- `numpy_on_cupy`: `gpusim.backends.reference.simulate_block(..., xp=cupy)`, the numpy reference run
  unchanged on CuPy arrays.

The cube runs keep the last month of rental price and token demand of every path on the
device (a small device-to-device copy) for the distribution check; they reach the host
after the timer stops.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np

from gpusim.backends import cuda
from gpusim.backends.base import Backend, block_bounds
from gpusim.backends.kernel_io import cube_buffers
from gpusim.backends.packing import Packed
from gpusim.backends.reference import simulate_block
from gpusim.bench.peers import CHECKED
from gpusim.config import Config
from gpusim.model.market import MarketParams
from gpusim.outputs import MARKET, sketch_name
from gpusim.store import Summary

BANDWIDTH_BYTES = 1 << 30
"""Size of the arrays the bandwidths are measured with: 1 GiB."""


def synchronize(cupy: ModuleType) -> None:
    """Wait for all work on the current device."""
    cupy.cuda.Device().synchronize()


def free_memory(cupy: ModuleType) -> None:
    """Give CuPy's cached device and pinned host blocks back (between benchmarks)."""
    cupy.get_default_memory_pool().free_all_blocks()
    cupy.get_default_pinned_memory_pool().free_all_blocks()


# --- bandwidths -------------------------------------------------------------------------------

def _best_seconds(cupy: ModuleType, action: Callable[[], Any], repeats: int) -> float:
    """Fastest of `repeats` runs of `action` on the current stream, by CUDA events [s]."""
    action()  # warm up (allocations, first-touch of pinned pages)
    best = math.inf
    for _ in range(repeats):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        action()
        stop.record()
        stop.synchronize()
        best = min(best, cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return best


def bandwidths(cupy: ModuleType, nbytes: int = BANDWIDTH_BYTES, repeats: int = 10
               ) -> dict[str, float]:
    """Device memory and device-to-host bandwidths [bytes/s], best of `repeats`.

    - d2d_copy: `cupy.copyto` of an `nbytes` array into another; counts the bytes read
      plus the bytes written (2·nbytes), i.e. the traffic the memory system sustains;
    - write: `fill` of an `nbytes` array with a non-zero value (an elementwise kernel
      that only writes), nbytes per call: the floor for a kernel that writes its outputs;
    - d2h_pinned: `ndarray.get(out=pinned)` of `nbytes` into page-locked host memory.
    """
    try:
        copy, write, d2h = _bandwidth_seconds(cupy, nbytes, repeats)
    finally:
        free_memory(cupy)
    return {"bytes": nbytes, "d2d_copy_bytes_per_s": 2 * nbytes / copy,
            "write_bytes_per_s": nbytes / write, "d2h_pinned_bytes_per_s": nbytes / d2h}


def _bandwidth_seconds(cupy: ModuleType, nbytes: int, repeats: int
                       ) -> tuple[float, float, float]:
    """Seconds of one copy, one fill and one copy to pinned host memory of `nbytes`."""
    import cupyx

    a = cupy.empty(nbytes // 4, dtype=cupy.float32)
    b = cupy.empty_like(a)
    a.fill(1.0)
    pinned = cupyx.empty_pinned(a.shape, a.dtype)
    return (_best_seconds(cupy, lambda: cupy.copyto(b, a), repeats),
            _best_seconds(cupy, lambda: b.fill(2.0), repeats),
            _best_seconds(cupy, lambda: a.get(out=pinned), max(3, repeats // 2)))


# --- compilation --------------------------------------------------------------------------------

@contextmanager
def fresh_kernel_cache() -> Iterator[None]:
    """Compile CUDA code from scratch inside: an empty CuPy kernel cache directory (for the
    fused kernel and CuPy's own elementwise kernels) and gpusim's in-memory module cache
    cleared, so that cold times include compilation. Restores CUPY_CACHE_DIR after."""
    saved = os.environ.get("CUPY_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="gpusim-bench-cupy-") as tmp:
        os.environ["CUPY_CACHE_DIR"] = tmp
        cuda._module.cache_clear()  # the memoized NVRTC module of gpusim.cu
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("CUPY_CACHE_DIR", None)
            else:
                os.environ["CUPY_CACHE_DIR"] = saved


def compile_seconds(cupy: ModuleType, dtype: Any) -> float:
    """Seconds to compile (NVRTC) and load gpusim.cu's module on the current device."""
    name = "simulate_cube_" + ("f64" if np.dtype(dtype) == np.float64 else "f32")
    start = time.perf_counter()
    cuda.kernel(name)
    synchronize(cupy)
    return time.perf_counter() - start


# --- runs ------------------------------------------------------------------------------------

def cube_bytes(packed: Packed, n: int, dtype: Any) -> int:
    """Bytes the fused kernel writes for a block of n paths (no cash-flow terms)."""
    return sum(math.prod(shape) * dt.itemsize
               for shape, dt in cube_buffers(packed, n, dtype).values())


def _keep_rows(out: dict[str, Any], keep: dict[str, list[Any]], xp: ModuleType) -> None:
    """Copy the last month of `CHECKED` out of a block's outputs (so the block can go)."""
    for name in CHECKED:
        keep[name].append(xp.array(out[name][-1], copy=True))


def fused_cube(cupy: ModuleType, config: Config, packed: Packed, paths: int, block: int,
               seed: int, to_host: bool = False) -> dict[str, list[Any]]:
    """The fused kernel over blocks, at most two in flight; see the module docstring."""
    keep: dict[str, list[Any]] = {name: [] for name in CHECKED}
    pending: deque[cuda.PendingBlock] = deque()
    for start, stop in block_bounds(paths, block):
        pending.append(cuda.launch_block(config, seed, start, stop, to_host=to_host,
                                         packed=packed))
        if len(pending) > 1:
            _finish_raw(pending.popleft(), keep, np if to_host else cupy)
    while pending:
        _finish_raw(pending.popleft(), keep, np if to_host else cupy)
    synchronize(cupy)
    return keep


def _finish_raw(handle: cuda.PendingBlock, keep: dict[str, list[Any]], xp: ModuleType) -> None:
    """Wait for a launched block and copy rows out of its raw (variable, month, path)
    market array; unlike `PendingBlock.result()`, no flag arrays are converted to int8, so
    the device does nothing but the kernel (and the copy to the host)."""
    handle.wait()
    arrays = handle.host_arrays if handle.host_arrays is not None else handle.device_arrays
    for name in CHECKED:
        keep[name].append(xp.array(arrays["market"][MARKET.index(name), -1], copy=True))


SKETCHES = "sketches"
"""Key of a summary run's result: {name: last month's sketch counts} for `CHECKED`."""


def fused_summary(cupy: ModuleType, backend: Backend, paths: int, block: int,
                  seed: int) -> dict[str, Any]:
    """The fused summary kernel over blocks, at most two in flight; merged on the host.
    See the module docstring."""
    summary = Summary.empty(backend.config)
    pending: deque[tuple[int, Any]] = deque()
    for b, (start, stop) in enumerate(block_bounds(paths, block)):
        pending.append((b, backend.launch_summary(seed, start, stop)))
        if len(pending) > 1:
            done, handle = pending.popleft()
            summary.add(done, handle.result().counts)
    while pending:
        done, handle = pending.popleft()
        summary.add(done, handle.result().counts)
    synchronize(cupy)
    return last_month_sketches(summary)


def last_month_sketches(summary: Summary) -> dict[str, Any]:
    """A summary run's result: the last month's sketch counts of `CHECKED` (`SKETCHES`)."""
    return {SKETCHES: {name: summary.counts[sketch_name(name)][-1].copy() for name in CHECKED}}


def numpy_on_cupy(cupy: ModuleType, config: Config, p: MarketParams, paths: int, block: int,
                  seed: int) -> dict[str, list[Any]]:
    """gpusim's numpy reference on CuPy arrays, block after block."""
    keep: dict[str, list[Any]] = {name: [] for name in CHECKED}
    for start, stop in block_bounds(paths, block):
        _keep_rows(simulate_block(config, seed, start, stop, xp=cupy, params=p), keep, cupy)
    synchronize(cupy)
    return keep
