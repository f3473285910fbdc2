"""A stand-in for CuPy that runs gpusim's kernels through their host build.

It lets CI drive gpusim's GPU code path (gpusim.backends.cuda: argument marshalling,
streams, pinned copies, unpacking, checks; and the engine, store and summary code above
it) without a GPU. Arrays are numpy arrays; "launching" a kernel calls the host library's
entry point of the same name, which takes the kernel's arguments in the kernel's order
(kernels/host.cpp), so an argument passed out of order fails here as it would on a GPU.
What it cannot check is the device itself: the atomics, the grid, NVRTC. tests/test_gpu.py
does that on a GPU.
"""

from __future__ import annotations

import time
import types
from typing import Any

import numpy as np

from gpusim.backends import host


class _Function:
    def __init__(self, name: str) -> None:
        self.function = host.entry_point(name)
        self.launches: list[tuple] = []

    def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
        self.launches.append((grid, block))
        self.function(*(host.c_argument(a) for a in args))


class RawModule:
    def __init__(self, code: str, options: tuple = ()) -> None:
        self.code, self.options, self.functions = code, options, {}

    def compile(self) -> None:
        pass

    def get_function(self, name: str) -> _Function:
        return self.functions.setdefault(name, _Function(name))


class _Context:
    def __enter__(self) -> _Context:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class Stream(_Context):
    def __init__(self, non_blocking: bool = False) -> None:
        self.non_blocking = non_blocking

    def synchronize(self) -> None:
        pass


class Device(_Context):
    def __init__(self, device_id: int = 0) -> None:
        self.id = device_id

    def synchronize(self) -> None:
        pass


class DeviceArray(np.ndarray):
    """A numpy array with CuPy's `get`."""

    def get(self, stream: Any = None, out: Any = None) -> np.ndarray:
        return asnumpy(self, out=out)


def _on_device(make: Any) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> DeviceArray:
        return np.asarray(make(*args, **kwargs)).view(DeviceArray)
    return wrapped


class Event:
    def record(self, stream: Any = None) -> None:
        self.time = time.perf_counter()

    def synchronize(self) -> None:
        pass


class _Pool:
    def free_all_blocks(self) -> None:
        pass


PROPERTIES = {"name": b"host build", "totalGlobalMem": 1 << 30, "multiProcessorCount": 1,
              "major": 0, "minor": 0}


def asnumpy(array: Any, stream: Any = None, out: Any = None, blocking: bool = True) -> Any:
    if out is None:
        return np.array(array)
    np.copyto(out, array)
    return out


def make() -> tuple[types.ModuleType, types.ModuleType]:
    """(cupy, cupyx) stand-ins, to put in sys.modules."""
    cupy = types.ModuleType("cupy")
    cupy.__getattr__ = lambda name: getattr(np, name)  # everything else: numpy's
    cupy.__version__ = "0.0.0+host.build"  # xarray parses it
    cupy.ndarray = DeviceArray  # what xarray takes for a CuPy array (it calls .get())
    for name in ("asarray", "array", "empty", "empty_like", "zeros", "full"):
        setattr(cupy, name, _on_device(getattr(np, name)))
    cupy.asnumpy = asnumpy
    cupy.RawModule = RawModule
    cupy.get_default_memory_pool = cupy.get_default_pinned_memory_pool = _Pool
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1,
                                    getDeviceProperties=lambda i: PROPERTIES,
                                    driverGetVersion=lambda: 0, runtimeGetVersion=lambda: 0)
    cupy.cuda = types.SimpleNamespace(
        runtime=runtime, Device=Device, Stream=Stream, Event=Event,
        get_elapsed_time=lambda start, stop: 1e3 * (stop.time - start.time))
    cupyx = types.ModuleType("cupyx")
    cupyx.empty_pinned = lambda shape, dtype=float: np.empty(shape, dtype)
    return cupy, cupyx
