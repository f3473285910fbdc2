"""The fused CUDA kernel through CuPy: loading, launching, and device detection.

One cached loader compiles kernels/gpusim.cu with NVRTC (cupy.RawModule from source, with
`#line` so compiler errors point at the .cu file, and the headers found through -I),
memoized per device. Launch errors name the kernel and the block of paths.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from gpusim.backends.packing import (
    Packed,
    kernel_dir,
    output_shapes,
    pack,
    sketch_layout,
    summary_shapes,
    unpack,
    unpack_summary,
)
from gpusim.config import Config
from gpusim.engine import check_finite
from gpusim.errors import InputError, SimulationError

COMPILE_OPTIONS = ("-std=c++14", "--fmad=false")
"""NVRTC options, in one place (the include path is added by the loader). No FMA
contraction, like the host build, so the kernel rounds as numpy does."""

THREADS_PER_BLOCK = 128
STREAMS_PER_DEVICE = 2
"""Blocks take turns on this many reusable streams: two blocks in flight (one computing,
one copying) need two, and CuPy's memory pool keeps an arena per stream that a fresh
stream per block would leave behind (cupy/cupy#8068), so the pool could never reuse a
finished block's memory without a device-wide free."""
KERNELS = ("simulate_cube_f64", "simulate_cube_f32", "simulate_summary_f64",
           "simulate_summary_f32")


def cupy_or_none() -> ModuleType | None:
    """CuPy if it imports and sees at least one CUDA device, else None."""
    try:
        import cupy
    except ImportError:
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # noqa: BLE001 - no driver, no device: the same answer
        return None
    return cupy


def resolve_device(device: str) -> str:
    """'cpu' or 'gpu' for a requested device ('auto', 'cpu' or 'gpu').

    'gpu' without CuPy and a device is an InputError; 'auto' falls back to the CPU with a
    one-line notice on stderr.
    """
    if device == "cpu":
        return "cpu"
    if cupy_or_none() is not None:
        return "gpu"
    if device == "gpu":
        raise InputError(
            "device = 'gpu': no CUDA device is usable here (CuPy is not installed or sees no "
            "GPU); install gpusim[cuda12] or gpusim[cuda13] on a GPU machine, or use --device "
            "cpu")
    import sys

    print("gpusim: no usable GPU (CuPy or a CUDA device missing); running numpy on the CPU",
          file=sys.stderr)
    return "cpu"


def kernel_source() -> str:
    """gpusim.cu with a #line directive, so NVRTC's messages name the file and line."""
    path = kernel_dir() / "gpusim.cu"
    return f'#line 1 "{path}"\n' + path.read_text()


@cache
def _module(device_id: int) -> Any:
    import cupy

    from gpusim.backends.host import sources_digest

    # CuPy's cache key covers gpusim.cu's text, not the headers it includes: the digest
    # of all kernel sources makes an edited header a new kernel.
    options = (*COMPILE_OPTIONS, f"-I{kernel_dir()}", f"-DGPUSIM_SOURCES={sources_digest()}")
    with cupy.cuda.Device(device_id):
        module = cupy.RawModule(code=kernel_source(), options=options)
        module.compile()
    return module


@cache
def _device_streams(device_id: int) -> tuple[Any, ...]:
    import cupy

    with cupy.cuda.Device(device_id):
        return tuple(cupy.cuda.Stream(non_blocking=True) for _ in range(STREAMS_PER_DEVICE))


_turn = itertools.count()


def next_stream() -> Any:
    """The current device's next stream, in turn."""
    import cupy

    streams = _device_streams(cupy.cuda.Device().id)
    return streams[next(_turn) % len(streams)]


def kernel(name: str) -> Any:
    """A compiled kernel of gpusim.cu on the current device."""
    import cupy

    return _module(cupy.cuda.Device().id).get_function(name)


def compile_check() -> str:
    """'ok' if the kernels compile on the current device, else the compiler's message."""
    try:
        for name in KERNELS:
            kernel(name)
    except Exception as err:  # noqa: BLE001 - reported, not raised
        return f"failed: {err}"
    return "ok"


@dataclass
class PendingBlock:
    """A block launched on one of the device's streams (`next_stream`); `result()` waits.

    With `to_host`, the outputs are copied asynchronously into pinned host memory on the
    same stream, so the copy of one block overlaps with the kernel of the next.
    """

    name: str
    start: int
    stop: int
    stream: Any
    device_arrays: dict[str, Any]
    host_arrays: dict[str, np.ndarray] | None
    record_flows: bool
    inputs: list[Any]  # the kernel's parameter arrays, held until it has finished

    def result(self) -> dict[str, Any]:
        try:
            self.stream.synchronize()
        except Exception as err:
            raise RuntimeError(f"kernel {self.name} failed on the block of paths "
                               f"[{self.start}, {self.stop}): {err}") from err
        on_host = self.host_arrays is not None
        out = unpack(self.host_arrays if on_host else self.device_arrays, self.record_flows)
        if on_host:
            check_finite(out, self.start, np)
        else:
            import cupy

            check_finite(out, self.start, cupy)
        return out


def _suffix(real: np.dtype) -> str:
    return "f64" if real == np.float64 else "f32"


def _grid(n: int) -> tuple[int]:
    return ((n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,)


def _upload_inputs(cupy: ModuleType, packed: Packed) -> list[Any]:
    """The packed parameter arrays on the device (on the current stream)."""
    return [cupy.asarray(np.ascontiguousarray(a)) for a in (
        packed.market, packed.monthly, packed.firm_table, packed.contract_table,
        packed.facility_table, packed.capex, packed.draws)]


def _input_args(inputs: list[Any], packed: Packed, seed: int, start: int, stop: int
                ) -> tuple[Any, ...]:
    """The kernels' common leading arguments (GPUSIM_INPUT_PARAMS in engine.cuh)."""
    n_firms, n_contracts, n_facilities = packed.counts
    return (*inputs, np.int32(n_firms), np.int32(n_contracts), np.int32(n_facilities),
            np.int32(packed.months), np.uint64(seed), np.int64(start), np.int64(stop - start))


def _copy_to_pinned(cupy: ModuleType, arrays: dict[str, Any], stream: Any
                    ) -> dict[str, np.ndarray]:
    """Start copying device arrays into new pinned host arrays on `stream`; don't wait."""
    import cupyx

    host = {}
    for key, array in arrays.items():
        host[key] = cupyx.empty_pinned(array.shape, array.dtype)
        cupy.asnumpy(array, stream=stream, out=host[key], blocking=False)
    return host


def launch_block(config: Config, seed: int, start: int, stop: int, record_flows: bool = False,
                 to_host: bool = True, packed: Packed | None = None) -> PendingBlock:
    """Launch the fused kernel for paths [start, stop) on the next stream; don't wait."""
    import cupy

    packed = packed or pack(config)
    n = stop - start
    real = np.dtype(config.dtype)
    name = "simulate_cube_" + _suffix(real)
    stream = next_stream()
    host: dict[str, np.ndarray] | None = None
    try:
        with stream:
            inputs = _upload_inputs(cupy, packed)
            raw = {
                key: cupy.empty(shape, np.int32 if key == "default_month" else real)
                for key, shape in output_shapes(packed, n).items()
                if key != "flows" or record_flows
            }
            args = (*_input_args(inputs, packed, seed, start, stop),
                    raw["market"], raw["firm"], raw["facility"], raw["default_month"],
                    raw["loss_total"],
                    raw["flows"] if record_flows else np.uint64(0))  # null: no flows
            kernel(name)(_grid(n), (THREADS_PER_BLOCK,), args)
            if to_host:
                host = _copy_to_pinned(cupy, raw, stream)
    except Exception as err:
        raise RuntimeError(f"kernel {name} failed to launch on the block of paths "
                           f"[{start}, {stop}): {err}") from err
    return PendingBlock(name, start, stop, stream, raw, host, record_flows, inputs)


def simulate_block_gpu(config: Config, seed: int, start: int, stop: int,
                       record_flows: bool = False, to_host: bool = True,
                       packed: Packed | None = None) -> dict[str, Any]:
    """`gpusim.engine.simulate_block` computed by the fused kernel on the current GPU."""
    return launch_block(config, seed, start, stop, record_flows, to_host, packed).result()


@dataclass
class PendingSummary:
    """A summary-kernel block launched on the next stream; `result()` waits for it.

    The counts stay on the device; the per-path results and the non-finite count are
    copied asynchronously into pinned host memory on the same stream.
    """

    name: str
    start: int
    stop: int
    stream: Any
    counts: dict[str, Any]  # device, as `summary_shapes` names them
    host: dict[str, np.ndarray]  # pinned: default_month, loss_total, nonfinite
    config: Config
    packed: Packed
    inputs: list[Any]  # the kernel's parameter arrays, held until it has finished
    seed: int

    def result(self) -> dict[str, Any]:
        """Summary-mode counts (on the device, `unpack_summary` names) and the per-path
        "default_month" and "loss_total" (host). Raises SimulationError on NaN or Inf."""
        try:
            self.stream.synchronize()
        except Exception as err:
            raise RuntimeError(f"kernel {self.name} failed on the block of paths "
                               f"[{self.start}, {self.stop}): {err}") from err
        per_path = {k: self.host[k] for k in ("default_month", "loss_total")}
        if self.host["nonfinite"][0]:
            self._explain_nonfinite()
        check_finite(per_path, self.start, np)
        return unpack_summary(self.counts) | per_path

    def _explain_nonfinite(self) -> None:
        """Rerun the block with the cube kernel, whose check names variable, path and
        month; the summary kernel only counted the NaN or Inf values."""
        simulate_block_gpu(self.config, self.seed, self.start, self.stop,
                           packed=self.packed)
        raise SimulationError(
            f"{int(self.host['nonfinite'][0])} NaN or Inf values in the block of paths "
            f"[{self.start}, {self.stop}); check the config's parameters")


def launch_summary(config: Config, seed: int, start: int, stop: int,
                   packed: Packed | None = None) -> PendingSummary:
    """Launch the fused summary kernel for paths [start, stop) on the next stream; don't
    wait."""
    import cupy

    packed = packed or pack(config)
    n = stop - start
    if n >= 2**31:
        raise InputError(f"block of {n:,} paths: the summary kernel counts in 32 bits; "
                         "use blocks of fewer than 2**31 paths")
    real = np.dtype(config.dtype)
    name = "simulate_summary_" + _suffix(real)
    shapes = output_shapes(packed, n)
    stream = next_stream()
    try:
        with stream:
            inputs = _upload_inputs(cupy, packed)
            counts = {key: cupy.zeros(shape, np.uint32)
                      for key, shape in summary_shapes(packed).items()}
            per_path = {"default_month": cupy.empty(shapes["default_month"], np.int32),
                        "loss_total": cupy.empty(shapes["loss_total"], real)}
            min_magnitude, log_gamma, key_min, key_max, buckets = sketch_layout()
            args = (*_input_args(inputs, packed, seed, start, stop),
                    *(counts[k] for k in ("market", "firm", "facility", "bust", "ltv_breach",
                                          "nonfinite")),
                    per_path["default_month"], per_path["loss_total"],
                    np.float64(min_magnitude), np.float64(log_gamma), np.int32(key_min),
                    np.int32(key_max), np.int32(buckets))
            kernel(name)(_grid(n), (THREADS_PER_BLOCK,), args)
            host = _copy_to_pinned(cupy, per_path | {"nonfinite": counts["nonfinite"]}, stream)
    except Exception as err:
        raise RuntimeError(f"kernel {name} failed to launch on the block of paths "
                           f"[{start}, {stop}): {err}") from err
    return PendingSummary(name, start, stop, stream, counts, host, config, packed, inputs,
                          seed)
