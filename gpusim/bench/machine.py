"""What a benchmark ran on: CPU, GPU, driver, library versions and the date."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import socket
import subprocess
from types import ModuleType
from typing import Any

import numpy as np

from gpusim.version import __version__

LIBRARIES = ("numpy", "scipy", "cupy", "cupy-cuda12x", "cupy-cuda13x", "jax", "jaxlib",
             "jax-cuda12-plugin", "jax-cuda13-plugin", "matplotlib", "xarray", "zarr")
"""Distributions whose versions are recorded when installed."""


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def blas() -> str:
    """numpy's BLAS, e.g. 'scipy-openblas 0.3.31'."""
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name')} {info.get('version')}"
    except (KeyError, TypeError, ValueError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    """Host, CPU, usable CPUs, Python, numpy/BLAS, gpusim, platform, date (UTC) and load."""
    return {
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "cpus_usable": usable_cpus(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "gpusim": __version__,
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries in `LIBRARIES` (absent ones are left out)."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def nvidia_driver() -> str | None:
    """The NVIDIA kernel driver version (e.g. '550.54.15'), from nvidia-smi or /proc."""
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True)
        return proc.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    try:
        with open("/proc/driver/nvidia/version") as fh:
            return fh.readline().strip()
    except OSError:
        return None


def gpu_info(cupy: ModuleType) -> dict[str, Any]:
    """The current CUDA device: name, memory [GiB], SMs, compute capability, clocks,
    CUDA driver and runtime versions, NVIDIA driver and CuPy version."""
    runtime = cupy.cuda.runtime
    device = cupy.cuda.Device()
    props = runtime.getDeviceProperties(device.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return {
        "name": name,
        "device_id": device.id,
        "devices": runtime.getDeviceCount(),
        "memory_GiB": props["totalGlobalMem"] / 2**30,
        "multiprocessors": props["multiProcessorCount"],
        "compute_capability": f"{props['major']}.{props['minor']}",
        "clock_MHz": props.get("clockRate", 0) / 1000,
        "memory_clock_MHz": props.get("memoryClockRate", 0) / 1000,
        "memory_bus_bits": props.get("memoryBusWidth"),
        "cuda_driver": runtime.driverGetVersion(),
        "cuda_runtime": runtime.runtimeGetVersion(),
        "nvidia_driver": nvidia_driver(),
        "cupy": cupy.__version__,
    }
