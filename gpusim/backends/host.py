"""The kernel's headers compiled as plain C++ and run on the host through ctypes.

This is how CI checks the CUDA arithmetic without a GPU: kernels/host.cpp includes the
same engine.cuh the kernel runs, and `simulate_block_host` returns arrays laid out like
`gpusim.engine.simulate_block`'s, so the two can be compared path by path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
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

HOST_FLAGS = ("-O2", "-std=c++14", "-shared", "-fPIC", "-ffp-contract=off")
"""No FMA contraction, so the host build rounds like numpy does."""


def host_compiler() -> str | None:
    """A C++ compiler for the host library: $CXX, g++, c++ or clang++ (None if none)."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def sources_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(kernel_dir().glob("*.c*")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


@cache
def host_library() -> ctypes.CDLL:
    """Build (once per source version) and load the host library."""
    compiler = host_compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX) to build the host kernel library")
    out_dir = Path(os.environ.get("GPUSIM_CACHE", Path(tempfile.gettempdir()) / "gpusim"))
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / f"libgpusim_host-{sources_digest()}.so"
    if not lib.exists():
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        cmd = [compiler, *HOST_FLAGS, str(kernel_dir() / "host.cpp"), "-o", str(tmp)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        tmp.replace(lib)
    return ctypes.CDLL(str(lib))


def _ptr(array: np.ndarray | None) -> Any:
    return None if array is None else array.ctypes.data_as(ctypes.c_void_p)


def philox_host(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, ...]:
    """Philox4x32-10 words from the host build (for the known-answer tests)."""
    out = np.zeros(4, dtype=np.uint32)
    host_library().gpusim_host_philox(_ptr(np.array(counter, dtype=np.uint32)),
                                      _ptr(np.array(key, dtype=np.uint32)), _ptr(out))
    return tuple(int(x) for x in out)


def _input_args(packed: Packed, seed: int, start: int, stop: int) -> list[Any]:
    """The kernels' common leading arguments (GPUSIM_INPUT_PARAMS in engine.cuh)."""
    n_firms, n_contracts, n_facilities = packed.counts
    return [*(_ptr(np.ascontiguousarray(a)) for a in (
        packed.market, packed.monthly, packed.firm_table, packed.contract_table,
        packed.facility_table, packed.capex, packed.draws)),
        ctypes.c_int(n_firms), ctypes.c_int(n_contracts), ctypes.c_int(n_facilities),
        ctypes.c_int(packed.months), ctypes.c_uint64(seed), ctypes.c_longlong(start),
        ctypes.c_longlong(stop - start)]


def _suffix(dtype: str) -> str:
    return "f64" if np.dtype(dtype) == np.float64 else "f32"


def run_packed(packed: Packed, seed: int, start: int, stop: int, dtype: str,
               record_flows: bool = False) -> dict[str, np.ndarray]:
    """Raw kernel outputs for paths [start, stop), as (variable, month, [entity,] path)."""
    out: dict[str, Any] = {
        key: np.zeros(shape, np.int32 if key == "default_month" else np.dtype(dtype))
        for key, shape in output_shapes(packed, stop - start).items()
    }
    if not record_flows:
        out["flows"] = None
    fn = getattr(host_library(), "gpusim_host_block_" + _suffix(dtype))
    fn(*_input_args(packed, seed, start, stop), *(_ptr(out[k]) for k in (
        "market", "firm", "facility", "default_month", "loss_total", "flows")))
    return out


def run_summary_packed(packed: Packed, seed: int, start: int, stop: int, dtype: str
                       ) -> dict[str, np.ndarray]:
    """Raw summary-kernel outputs for paths [start, stop): the count arrays of
    `summary_shapes` (uint32) and the per-path default months and total losses."""
    shapes = output_shapes(packed, stop - start)
    out: dict[str, Any] = {key: np.zeros(shape, np.uint32)
                           for key, shape in summary_shapes(packed).items()}
    out["default_month"] = np.zeros(shapes["default_month"], np.int32)
    out["loss_total"] = np.zeros(shapes["loss_total"], np.dtype(dtype))
    min_magnitude, log_gamma, key_min, key_max, buckets = sketch_layout()
    fn = getattr(host_library(), "gpusim_host_summary_" + _suffix(dtype))
    fn(*_input_args(packed, seed, start, stop), *(_ptr(out[k]) for k in (
        "market", "firm", "facility", "bust", "ltv_breach", "nonfinite", "default_month",
        "loss_total")), ctypes.c_double(min_magnitude), ctypes.c_double(log_gamma),
       ctypes.c_int(key_min), ctypes.c_int(key_max), ctypes.c_int(buckets))
    return out


def sketch_bucket_host(values: np.ndarray) -> np.ndarray:
    """kernels/sketch.cuh's bucket of each value (float64), from the host build."""
    fn = host_library().gpusim_host_sketch_bucket
    fn.restype = ctypes.c_int
    min_magnitude, log_gamma, key_min, key_max, buckets = sketch_layout()
    return np.array([fn(ctypes.c_double(min_magnitude), ctypes.c_double(log_gamma),
                        ctypes.c_int(key_min), ctypes.c_int(key_max), ctypes.c_int(buckets),
                        ctypes.c_double(float(x))) for x in np.ravel(values)], dtype=np.int64)


def simulate_block_host(config: Config, seed: int, start: int, stop: int,
                        record_flows: bool = False) -> dict[str, np.ndarray]:
    """`gpusim.engine.simulate_block`, computed by the host build of the kernel headers."""
    raw = run_packed(pack(config), seed, start, stop, config.dtype, record_flows)
    return unpack(raw, record_flows)


def summarize_block_host(config: Config, seed: int, start: int, stop: int
                         ) -> dict[str, np.ndarray]:
    """The summary kernel's block, computed by the host build: summary-mode counts (as
    `unpack_summary` names them) plus "default_month", "loss_total" and "nonfinite"."""
    raw = run_summary_packed(pack(config), seed, start, stop, config.dtype)
    return unpack_summary(raw) | {k: raw[k] for k in ("default_month", "loss_total",
                                                      "nonfinite")}
