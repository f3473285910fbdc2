"""`gpusim info`: what this machine offers gpusim (versions, compilers, the native CPU
build, CUDA devices) and, with --kernels, a config's kernel variants and their resources;
kept beside gpusim.cli so that the command-line module stays about running."""

from __future__ import annotations

import argparse
import json
import platform
import shutil

from rich.console import Console
from rich.markup import escape

from gpusim.config import load_config
from gpusim.version import __version__


def cmd_info(args: argparse.Namespace, console: Console) -> None:
    """Versions, devices, driver and CUDA versions, and whether the kernels compile."""
    import dask
    import numpy
    import xarray
    import zarr

    from gpusim.backends.cuda import compile_check
    from gpusim.backends.devices import cupy_or_none
    from gpusim.backends.host import host_compiler
    from gpusim.backends.native import native, usable_threads
    from gpusim.backends.toolchain import nvrtc_check

    if getattr(args, "kernels", None) is not None:
        info_kernels(args, console)
        return

    console.print(f"gpusim {__version__}; python {platform.python_version()} on "
                  f"{platform.machine()} ({platform.processor() or platform.system()})")
    console.print(f"numpy {numpy.__version__}, xarray {xarray.__version__}, zarr "
                  f"{zarr.__version__}, dask {dask.__version__}")
    console.print(f"host C++ compiler (kernel tests): {host_compiler() or 'none'}; "
                  f"nvcc: {shutil.which('nvcc') or 'none'}")
    built = native()
    console.print(escape(
        f"native CPU backend (--device cpu): built for {built.isa}, OpenMP "
        f"{'on' if built.library.gpusim_native_openmp() else 'off'}, {usable_threads()} "
        "threads" if built.library else f"native CPU backend: unavailable ({built.reason})"))
    cupy = cupy_or_none()
    if cupy is None:
        try:
            import cupy as cp  # noqa: F401
            console.print("cupy: installed, but no CUDA device is usable (CPU only)")
        except ImportError:
            console.print(escape("cupy: not installed (CPU only; pip install 'gpusim[cuda12]')"))
        console.print(f"kernels compile (NVRTC, no device): {nvrtc_check()}")
        return
    runtime = cupy.cuda.runtime
    console.print(f"cupy {cupy.__version__}; CUDA driver {runtime.driverGetVersion()}, "
                  f"runtime {runtime.runtimeGetVersion()}")
    for i in range(runtime.getDeviceCount()):
        props = runtime.getDeviceProperties(i)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        console.print(f"device {i}: {name}, {props['totalGlobalMem'] / 2**30:.0f} GiB, "
                      f"sm_{props['major']}{props['minor']}")
    console.print(f"kernels compile: {compile_check()}")


def info_kernels(args: argparse.Namespace, console: Console) -> None:
    """`gpusim info --kernels CONFIG [--json]`: the config's kernel variants (all four
    kernels, specialized to its shape) with ptxas's registers, stack and spill bytes (null
    without nvcc), the occupancy of 128-thread blocks on sm_90, and the NVRTC check."""
    from gpusim.backends.toolchain import nvrtc_check, resource_usage

    config = load_config(args.kernels)
    rows = resource_usage(config)
    report = {"config": str(args.kernels), "variants": rows,
              "nvrtc": nvrtc_check(config)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for row in rows:
        console.print(f"{row['name']}: registers {row['registers']}, stack "
                      f"{row['stack_bytes']} B, spills {row['spill_bytes']} B, occupancy "
                      f"{row['occupancy']}", markup=False, highlight=False)
    console.print(f"NVRTC: {report['nvrtc']}", markup=False, highlight=False)
