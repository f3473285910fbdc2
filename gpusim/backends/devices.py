"""Which backend runs a block: the one place where a requested device becomes a backend.

'gpu' is the fused CUDA kernel (an error without CuPy and a device); 'cpu' the native
build of the same kernel headers on every usable core (an error if the extension was not
built); 'numpy' the numpy reference; 'auto' the first of gpu, cpu and numpy that is
usable here, with a one-line notice when it is not the GPU saying which and why.
"""

from __future__ import annotations

import sys
from types import ModuleType

from gpusim.backends.base import Backend
from gpusim.backends.cuda import CudaBackend
from gpusim.backends.native import NativeBackend, native
from gpusim.backends.reference import NumpyBackend
from gpusim.config import Config
from gpusim.errors import InputError

DEVICES = ("auto", "gpu", "cpu", "numpy")


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


def check_device(device: str) -> None:
    """InputError unless `device` is one of DEVICES."""
    if device not in DEVICES:
        raise InputError(f"device = {device!r}: expected one of {', '.join(DEVICES)}")


def resolve_device(device: str, notice: bool = True) -> str:
    """'gpu', 'cpu' or 'numpy' for a requested device (one of DEVICES).

    'gpu' without CuPy and a device, or 'cpu' without the native extension, is an
    InputError; 'auto' falls back from gpu to cpu to numpy with a one-line notice on
    stderr (unless not `notice`).
    """
    check_device(device)
    if device == "numpy":
        return "numpy"
    if device == "cpu":
        if native().library is None:
            raise InputError(f"device = 'cpu': {native().reason}; or use --device numpy")
        return "cpu"
    if cupy_or_none() is not None:
        return "gpu"
    if device == "gpu":
        raise InputError(
            "device = 'gpu': no CUDA device is usable here (CuPy is not installed or sees no "
            "GPU); install gpusim[cuda12] or gpusim[cuda13] on a GPU machine, or use --device "
            "cpu")
    why = "no usable GPU (CuPy or a CUDA device missing)"
    chosen = "cpu" if native().library is not None else "numpy"
    if notice:
        what = "the native CPU backend" if chosen == "cpu" else \
            f"the numpy reference ({native().reason})"
        print(f"gpusim: {why}; running {what}", file=sys.stderr)
    return chosen


def select_backend(config: Config, device: str) -> Backend:
    """The backend that simulates `config` on the requested device."""
    resolved = resolve_device(device)
    if resolved == "gpu":
        return CudaBackend(config)
    if resolved == "cpu":
        return NativeBackend(config)
    return NumpyBackend(config)
