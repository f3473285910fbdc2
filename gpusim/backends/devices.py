"""Which backend runs a block: the one place where a requested device becomes a backend.

'cpu' is the numpy reference; 'gpu' the fused CUDA kernel (an error without CuPy and a
device); 'auto' the kernel when CuPy sees a device, else numpy with a one-line notice.
"""

from __future__ import annotations

import sys
from types import ModuleType

from gpusim.backends.base import Backend
from gpusim.backends.cuda import CudaBackend
from gpusim.backends.reference import NumpyBackend
from gpusim.config import Config
from gpusim.errors import InputError

DEVICES = ("cpu", "auto", "gpu")


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


def resolve_device(device: str) -> str:
    """'cpu' or 'gpu' for a requested device ('auto', 'cpu' or 'gpu').

    'gpu' without CuPy and a device is an InputError; 'auto' falls back to the CPU with a
    one-line notice on stderr.
    """
    check_device(device)
    if device == "cpu":
        return "cpu"
    if cupy_or_none() is not None:
        return "gpu"
    if device == "gpu":
        raise InputError(
            "device = 'gpu': no CUDA device is usable here (CuPy is not installed or sees no "
            "GPU); install gpusim[cuda12] or gpusim[cuda13] on a GPU machine, or use --device "
            "cpu")
    print("gpusim: no usable GPU (CuPy or a CUDA device missing); running numpy on the CPU",
          file=sys.stderr)
    return "cpu"


def select_backend(config: Config, device: str) -> Backend:
    """The backend that simulates `config` on the requested device."""
    if resolve_device(device) == "gpu":
        return CudaBackend(config)
    return NumpyBackend(config)
