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

from gpusim.backends.packing import Packed, kernel_dir, output_shapes, pack, unpack
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


def run_packed(packed: Packed, seed: int, start: int, stop: int, dtype: str,
               record_flows: bool = False) -> dict[str, np.ndarray]:
    """Raw kernel outputs for paths [start, stop), as (variable, month, [entity,] path)."""
    n, months = stop - start, packed.months
    n_firms, n_contracts, n_facilities = packed.counts
    real = np.dtype(dtype)
    out: dict[str, Any] = {
        key: np.zeros(shape, np.int32 if key == "default_month" else real)
        for key, shape in output_shapes(packed, n).items()
    }
    if not record_flows:
        out["flows"] = None
    fn = getattr(host_library(), "gpusim_host_block_" + ("f64" if real == np.float64 else "f32"))
    fn(*(_ptr(np.ascontiguousarray(a)) for a in (
        packed.market, packed.monthly, packed.firm_table, packed.contract_table,
        packed.facility_table, packed.capex, packed.draws)),
       ctypes.c_int(n_firms), ctypes.c_int(n_contracts), ctypes.c_int(n_facilities),
       ctypes.c_int(months), ctypes.c_uint64(seed), ctypes.c_longlong(start),
       ctypes.c_longlong(n), *(_ptr(out[k]) for k in (
           "market", "firm", "facility", "default_month", "loss_total", "flows")))
    return out


def simulate_block_host(config: Config, seed: int, start: int, stop: int,
                        record_flows: bool = False) -> dict[str, np.ndarray]:
    """`gpusim.engine.simulate_block`, computed by the host build of the kernel headers."""
    raw = run_packed(pack(config), seed, start, stop, config.dtype, record_flows)
    return unpack(raw, record_flows)
