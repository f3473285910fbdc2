"""The fused CUDA kernel through CuPy: loading, launching, and the CUDA backend.

One cached loader compiles kernels/gpusim.cu with NVRTC (cupy.RawModule from source, with
`#line` so compiler errors point at the .cu file, and the headers found through -I),
memoized per device: a run compiles only the kernel it launches, specialized to its shape
(kernels/shapes.cuh, kernel_io.variant_prelude), so its per-path state lives in
registers. Launch errors name the kernel and the block of paths.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from gpusim.backends import kernel_io
from gpusim.backends.base import Backend, BlockSummary, Handle, check_finite, sparse
from gpusim.backends.header import kernel_dir, sources_digest
from gpusim.backends.packing import Packed, pack
from gpusim.config import Config
from gpusim.errors import InputError, SimulationError
from gpusim.outputs import PER_PATH, count_names

COMPILE_OPTIONS = ("-std=c++14", "--fmad=false")
"""NVRTC options, in one place (the include path and the defines are added by
`compile_options`). No FMA contraction, like the host build, so the kernel rounds as
numpy does."""
CUPY_OPTIONS = ("-ftz=true", "--device-as-default-execution-space")
"""What cupy.RawModule adds to our options for NVRTC, besides -arch (tests/test_nvrtc.py
compiles with these to check the kernels compile as CuPy will compile them)."""

THREADS_PER_BLOCK = 128
STREAMS_PER_DEVICE = 2
"""Blocks take turns on this many reusable streams: two blocks in flight (one computing,
one copying) need two, and CuPy's memory pool keeps an arena per stream that a fresh
stream per block would leave behind (cupy/cupy#8068), so the pool could never reuse a
finished block's memory without a device-wide free."""
KERNELS = ("simulate_cube_f64", "simulate_cube_f32", "simulate_summary_f64",
           "simulate_summary_f32")


def kernel_source(prelude: str = "") -> str:
    """gpusim.cu with a #line directive, so NVRTC's messages name the file and line,
    after `prelude` (a variant's #defines: kernel_io.variant_prelude)."""
    path = kernel_dir() / "gpusim.cu"
    return prelude + f'#line 1 "{path}"\n' + path.read_text()


def compile_options(threads: int = THREADS_PER_BLOCK, min_blocks: int | None = None
                    ) -> tuple[str, ...]:
    """Our NVRTC (and nvcc) options: COMPILE_OPTIONS, the include path, the digest of the
    sources and, with `min_blocks`, launch bounds (gpusim.cu's GPUSIM_THREADS,
    GPUSIM_MIN_BLOCKS). None by default: ptxas spills the base config's float32 summary
    kernel under __launch_bounds__(128) alone (48 bytes) and not without it."""
    # CuPy's cache key covers the source text, not the headers it includes: the digest
    # of all kernel sources makes an edited header a new kernel.
    bounds = ((f"-DGPUSIM_THREADS={threads}", f"-DGPUSIM_MIN_BLOCKS={min_blocks}")
              if min_blocks else ())
    return (*COMPILE_OPTIONS, f"-I{kernel_dir()}", f"-DGPUSIM_SOURCES={sources_digest()}",
            *bounds)


@dataclass(frozen=True)
class Variant:
    """One compiled kernel: its name, and the prelude that specializes gpusim.cu to a
    run's shape ("" for the generic build of all four kernels)."""

    name: str
    prelude: str = ""


def variant(name: str, packed: Packed | None) -> Variant:
    """The variant of kernel `name` for `packed`'s shape (generic without `packed`)."""
    if packed is None:
        return Variant(name)
    return Variant(name, kernel_io.variant_prelude(packed, name))


def variants(config: Config) -> list[Variant]:
    """Every kernel variant a config can launch (cube and summary, in its dtype)."""
    packed = pack(config)
    return [variant(kernel_io.kernel_name(mode, config.dtype), packed)
            for mode in ("cube", "summary")]


@cache
def _module(device_id: int, prelude: str = "", threads: int = THREADS_PER_BLOCK,
            min_blocks: int | None = None) -> Any:
    """The module compiled from gpusim.cu after `prelude`, memoized per device and by
    everything that affects the code (CuPy's disk cache keys by source and options)."""
    import cupy

    with cupy.cuda.Device(device_id):
        module = cupy.RawModule(code=kernel_source(prelude),
                                options=compile_options(threads, min_blocks))
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


def kernel(name: str, packed: Packed | None = None) -> Any:
    """Kernel `name` of gpusim.cu on the current device: compiled for `packed`'s shape
    alone (only the kernel a run launches), or from the generic build without it."""
    import cupy

    v = variant(name, packed)
    return _module(cupy.cuda.Device().id, v.prelude).get_function(name)


def compile_check(config: Config | None = None) -> str:
    """'ok' if the kernels compile on the current device (the config's variants, or the
    generic build), else the compiler's message."""
    try:
        if config is None:
            for name in KERNELS:
                kernel(name)
        else:
            packed = pack(config)
            for v in variants(config):
                kernel(v.name, packed)
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
    inputs: list[Any]  # the kernel's parameter arrays, held until it has finished

    def wait(self) -> None:
        """Wait for the kernel (and the copy); a failure names the kernel and the block."""
        try:
            self.stream.synchronize()
        except Exception as err:
            raise RuntimeError(f"kernel {self.name} failed on the block of paths "
                               f"[{self.start}, {self.stop}): {err}") from err

    def result(self) -> dict[str, Any]:
        self.wait()
        on_host = self.host_arrays is not None
        out = kernel_io.unpack(self.host_arrays if on_host else self.device_arrays)
        if on_host:
            check_finite(out, self.start, np)
        else:
            import cupy

            check_finite(out, self.start, cupy)
        return out


def _grid(n: int) -> tuple[int]:
    return ((n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,)


def _upload_inputs(cupy: ModuleType, packed: Packed) -> list[Any]:
    """The packed parameter arrays on the device (on the current stream)."""
    return [cupy.asarray(a) for a in packed.arrays()]


def _allocate(cupy: ModuleType, buffers: dict[str, tuple[tuple[int, ...], np.dtype]],
              zeroed: tuple[str, ...] = ()) -> dict[str, Any]:
    """Device buffers of `kernel_io`'s shapes; those named in `zeroed` are zeroed."""
    return {key: (cupy.zeros if key in zeroed else cupy.empty)(shape, dtype)
            for key, (shape, dtype) in buffers.items()}


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
    name = kernel_io.kernel_name("cube", config.dtype)
    stream = next_stream()
    host: dict[str, np.ndarray] | None = None
    try:
        with stream:
            inputs = _upload_inputs(cupy, packed)
            raw = _allocate(cupy, kernel_io.cube_buffers(packed, stop - start, config.dtype,
                                                         record_flows))
            args = kernel_io.cube_arguments(inputs, packed, seed, start, stop, raw)
            kernel(name, packed)(_grid(stop - start), (THREADS_PER_BLOCK,), args)
            if to_host:
                host = _copy_to_pinned(cupy, raw, stream)
    except Exception as err:
        raise RuntimeError(f"kernel {name} failed to launch on the block of paths "
                           f"[{start}, {stop}): {err}") from err
    return PendingBlock(name, start, stop, stream, raw, host, inputs)


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
    counts: dict[str, Any]  # device, as `kernel_io.SUMMARY_COUNTS` names them
    host: dict[str, np.ndarray]  # pinned: the per-path results (PER_PATH), nonfinite
    config: Config
    packed: Packed
    inputs: list[Any]  # the kernel's parameter arrays, held until it has finished
    seed: int

    def result(self) -> BlockSummary:
        """The block's summary, its sparse counts made on the device. Raises
        SimulationError on NaN or Inf."""
        import cupy

        try:
            self.stream.synchronize()
        except Exception as err:
            raise RuntimeError(f"kernel {self.name} failed on the block of paths "
                               f"[{self.start}, {self.stop}): {err}") from err
        per_path = {k: self.host[k] for k in PER_PATH}
        if self.host["nonfinite"][0]:
            self._explain_nonfinite()
        check_finite(per_path, self.start, np)
        dense = kernel_io.unpack_summary(self.counts)
        counts = {name: dense[name] for name in count_names(self.config)}
        return BlockSummary(per_path, sparse(counts, cupy))

    def _explain_nonfinite(self) -> None:
        """Rerun the block with the cube kernel, whose check names variable, path and
        month; the summary kernel only counted the NaN or Inf values."""
        launch_block(self.config, self.seed, self.start, self.stop,
                     packed=self.packed).result()
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
    name = kernel_io.kernel_name("summary", config.dtype)
    stream = next_stream()
    try:
        with stream:
            inputs = _upload_inputs(cupy, packed)
            out = _allocate(cupy, kernel_io.summary_buffers(packed, n, config.dtype),
                            zeroed=kernel_io.SUMMARY_COUNTS)
            args = kernel_io.summary_arguments(inputs, packed, seed, start, stop, out)
            kernel(name, packed)(_grid(n), (THREADS_PER_BLOCK,), args)
            host = _copy_to_pinned(cupy, {k: out[k] for k in (*PER_PATH, "nonfinite")},
                                   stream)
    except Exception as err:
        raise RuntimeError(f"kernel {name} failed to launch on the block of paths "
                           f"[{start}, {stop}): {err}") from err
    counts = {k: out[k] for k in kernel_io.SUMMARY_COUNTS}
    return PendingSummary(name, start, stop, stream, counts, host, config, packed, inputs,
                          seed)


class CudaBackend(Backend):
    """The fused CUDA kernel on the current GPU: launches return while the kernel runs."""

    name, device = "cuda", "gpu"

    def __init__(self, config: Config) -> None:
        import cupy

        super().__init__(config)
        self.xp = cupy
        name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
        self.device_name = f"gpu:{name.decode() if isinstance(name, bytes) else name}"
        self.packed = pack(config)

    def launch(self, seed: int, start: int, stop: int, on_device: bool = False,
               record_flows: bool = False) -> Handle[dict[str, Any]]:
        return launch_block(self.config, seed, start, stop, record_flows,
                            to_host=not on_device, packed=self.packed)

    def launch_summary(self, seed: int, start: int, stop: int) -> Handle[BlockSummary]:
        return launch_summary(self.config, seed, start, stop, packed=self.packed)
