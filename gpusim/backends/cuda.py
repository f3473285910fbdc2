"""The fused CUDA kernel through CuPy: loading, launching, and device detection.

One cached loader compiles kernels/gpusim.cu with NVRTC (cupy.RawModule from source, with
`#line` so compiler errors point at the .cu file, and the headers found through -I),
memoized per device. Launch errors name the kernel and the block of paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from gpusim.backends.packing import Packed, kernel_dir, output_shapes, pack, unpack
from gpusim.config import Config
from gpusim.engine import check_finite
from gpusim.errors import InputError

COMPILE_OPTIONS = ("-std=c++14", "--fmad=false")
"""NVRTC options, in one place (the include path is added by the loader). No FMA
contraction, like the host build, so the kernel rounds as numpy does."""

THREADS_PER_BLOCK = 128


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


def kernel(name: str) -> Any:
    """A compiled kernel of gpusim.cu on the current device."""
    import cupy

    return _module(cupy.cuda.Device().id).get_function(name)


def compile_check() -> str:
    """'ok' if the kernels compile on the current device, else the compiler's message."""
    try:
        kernel("simulate_cube_f64")
        kernel("simulate_cube_f32")
    except Exception as err:  # noqa: BLE001 - reported, not raised
        return f"failed: {err}"
    return "ok"


@dataclass
class PendingBlock:
    """A block launched on its own CUDA stream; `result()` waits for it.

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


def launch_block(config: Config, seed: int, start: int, stop: int, record_flows: bool = False,
                 to_host: bool = True, packed: Packed | None = None) -> PendingBlock:
    """Launch the fused kernel for paths [start, stop) on a new stream; don't wait."""
    import cupy
    import cupyx

    packed = packed or pack(config)
    n, months = stop - start, packed.months
    n_firms, n_contracts, n_facilities = packed.counts
    real = np.dtype(config.dtype)
    name = "simulate_cube_" + ("f64" if real == np.float64 else "f32")
    stream = cupy.cuda.Stream(non_blocking=True)
    host: dict[str, np.ndarray] | None = None
    try:
        with stream:
            inputs = [cupy.asarray(np.ascontiguousarray(a)) for a in (
                packed.market, packed.monthly, packed.firm_table, packed.contract_table,
                packed.facility_table, packed.capex, packed.draws)]
            raw = {
                key: cupy.empty(shape, np.int32 if key == "default_month" else real)
                for key, shape in output_shapes(packed, n).items()
                if key != "flows" or record_flows
            }
            grid = ((n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,)
            args = (*inputs, np.int32(n_firms), np.int32(n_contracts), np.int32(n_facilities),
                    np.int32(months), np.uint64(seed), np.int64(start), np.int64(n),
                    raw["market"], raw["firm"], raw["facility"], raw["default_month"],
                    raw["loss_total"],
                    raw["flows"] if record_flows else np.uint64(0))  # null: no flows
            kernel(name)(grid, (THREADS_PER_BLOCK,), args)
            if to_host:
                host = {}
                for key, array in raw.items():
                    host[key] = cupyx.empty_pinned(array.shape, array.dtype)
                    cupy.asnumpy(array, stream=stream, out=host[key], blocking=False)
    except Exception as err:
        raise RuntimeError(f"kernel {name} failed to launch on the block of paths "
                           f"[{start}, {stop}): {err}") from err
    return PendingBlock(name, start, stop, stream, raw, host, record_flows, inputs)


def simulate_block_gpu(config: Config, seed: int, start: int, stop: int,
                       record_flows: bool = False, to_host: bool = True,
                       packed: Packed | None = None) -> dict[str, Any]:
    """`gpusim.engine.simulate_block` computed by the fused kernel on the current GPU."""
    return launch_block(config, seed, start, stop, record_flows, to_host, packed).result()
