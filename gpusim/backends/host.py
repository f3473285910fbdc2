"""The kernel's headers compiled as plain C++ and run on the host through ctypes.

This is how CI checks the CUDA arithmetic without a GPU: kernels/host.cpp includes the
same engine.cuh the kernel runs, and its entry points take the kernels' arguments in the
kernels' order (gpusim.backends.kernel_io), so `HostBackend` returns blocks laid out like
the numpy reference's and the two can be compared path by path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import stat
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from gpusim.backends import kernel_io
from gpusim.backends.base import Backend, BlockSummary, Handle, Ready, sparse
from gpusim.backends.header import kernel_dir, sources_digest
from gpusim.backends.kernel_io import c_argument
from gpusim.backends.packing import Packed, pack
from gpusim.config import Config
from gpusim.outputs import PER_PATH, count_names

HOST_FLAGS = ("-O2", "-std=c++14", "-shared", "-fPIC", "-ffp-contract=off")
"""No FMA contraction, so the host build rounds like numpy does."""
HOST_NAMES = {"simulate_cube": "gpusim_host_block", "simulate_summary": "gpusim_host_summary"}
"""host.cpp's entry point for each of gpusim.cu's kernels (same suffix, same arguments)."""
def host_compiler() -> str | None:
    """A C++ compiler for the host library: $CXX, g++, c++ or clang++ (None if none)."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def _check_private(path: Path) -> None:
    """RuntimeError unless `path` is no symbolic link, belongs to this user and only this
    user can write it: nothing another local account planted gets loaded."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise RuntimeError(
            f"{path} is not private to this user (owner uid {st.st_uid}, mode "
            f"{stat.filemode(st.st_mode)}); refusing to build or load the host kernel "
            "library there: remove it, or set GPUSIM_CACHE to a folder of your own")


def cache_dir() -> Path:
    """This user's private folder for the host build: $GPUSIM_CACHE, else the user cache
    folder (platformdirs; ~/.cache/gpusim on Linux), created with mode 0700."""
    path = Path(os.environ.get("GPUSIM_CACHE") or platformdirs.user_cache_dir("gpusim"))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_private(path)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verified(folder: Path, stem: str) -> Path | None:
    """A built library of `stem` in `folder` whose name ends in its own SHA-256, private
    to this user (or None): a truncated or altered file is never loaded."""
    for lib in sorted(folder.glob(f"{stem}-*.so")):
        _check_private(lib)
        if lib.stem.rsplit("-", 1)[1] == _sha256(lib):
            return lib
    return None


@cache
def host_library() -> ctypes.CDLL:
    """Build (once per source version) into the user's private cache, verify, and load
    the host library."""
    compiler = host_compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX) to build the host kernel library")
    folder = cache_dir()
    stem = f"libgpusim_host-{sources_digest()}"
    lib = _verified(folder, stem)
    if lib is None:
        tmp = folder / f".{stem}.{os.getpid()}.tmp"
        cmd = [compiler, *HOST_FLAGS, str(kernel_dir() / "host.cpp"), "-o", str(tmp)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        lib = folder / f"{stem}-{_sha256(tmp)}.so"
        tmp.replace(lib)
    return ctypes.CDLL(str(lib))


def entry_point(kernel: str) -> Any:
    """host.cpp's function for the kernel named `kernel` (e.g. simulate_cube_f64)."""
    stem, suffix = kernel.rsplit("_", 1)
    return getattr(host_library(), f"{HOST_NAMES[stem]}_{suffix}")


def launch_host(kernel: str, args: tuple[Any, ...]) -> None:
    """Run `kernel`'s host build on every path of the block its arguments describe."""
    entry_point(kernel)(*(c_argument(a) for a in args))


def _zeros(buffers: dict[str, tuple[tuple[int, ...], np.dtype]]) -> dict[str, np.ndarray]:
    return {key: np.zeros(shape, dtype) for key, (shape, dtype) in buffers.items()}


def run_packed(packed: Packed, seed: int, start: int, stop: int, dtype: str,
               record_flows: bool = False) -> dict[str, np.ndarray]:
    """Raw cube-kernel outputs for paths [start, stop), as (variable, month, [entity,]
    path)."""
    out = _zeros(kernel_io.cube_buffers(packed, stop - start, dtype, record_flows))
    args = kernel_io.cube_arguments(packed.arrays(), packed, seed, start, stop, out)
    launch_host(kernel_io.kernel_name("cube", dtype), args)
    return out


def run_summary_packed(packed: Packed, seed: int, start: int, stop: int, dtype: str
                       ) -> dict[str, np.ndarray]:
    """Raw summary-kernel outputs for paths [start, stop): the uint32 count arrays and
    the per-path results (`kernel_io.summary_buffers`)."""
    out = _zeros(kernel_io.summary_buffers(packed, stop - start, dtype))
    args = kernel_io.summary_arguments(packed.arrays(), packed, seed, start, stop, out)
    launch_host(kernel_io.kernel_name("summary", dtype), args)
    return out


def philox_host(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, ...]:
    """Philox4x32-10 words from the host build (for the known-answer tests)."""
    out = np.zeros(4, dtype=np.uint32)
    host_library().gpusim_host_philox(c_argument(np.array(counter, dtype=np.uint32)),
                                      c_argument(np.array(key, dtype=np.uint32)),
                                      c_argument(out))
    return tuple(int(x) for x in out)


def box_muller_host(u_a: np.ndarray, u_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """kernels/philox.cuh's Box–Muller normals (z_a, z_b) of uniform pairs in (0, 1), from
    the host build (its own log and sin/cos, kernels/gsmath.cuh)."""
    u = np.ascontiguousarray(np.stack([u_a, u_b], axis=-1), dtype=np.float64)
    z = np.zeros_like(u)
    host_library().gpusim_host_box_muller(c_argument(u), ctypes.c_longlong(len(u)),
                                          c_argument(z))
    return z[:, 0], z[:, 1]


def sketch_bucket_host(values: np.ndarray) -> np.ndarray:
    """kernels/sketch.cuh's bucket of each value (float64), from the host build."""
    fn = host_library().gpusim_host_sketch_bucket
    fn.restype = ctypes.c_int
    layout = kernel_io.arguments("GPUSIM_SKETCH_PARAMS", kernel_io.sketch_layout())
    layout = [c_argument(a) for a in layout]
    return np.array([fn(*layout, ctypes.c_double(float(x)))
                     for x in np.ravel(values)], dtype=np.int64)


class HostBackend(Backend):
    """The kernel's host build, one path after another on this thread (for the tests
    that hold the kernel's arithmetic against numpy, and the CuPy stand-in)."""

    name, device, device_name, xp = "host", "cpu", "cpu (host build)", np

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.packed = pack(config)

    def launch(self, seed: int, start: int, stop: int, on_device: bool = False,
               record_flows: bool = False) -> Handle[dict[str, Any]]:
        raw = run_packed(self.packed, seed, start, stop, self.config.dtype, record_flows)
        return Ready(kernel_io.unpack(raw))

    def launch_summary(self, seed: int, start: int, stop: int) -> Handle[BlockSummary]:
        raw = self.summarize(seed, start, stop)
        counts = {name: raw[name] for name in count_names(self.config)}
        return Ready(BlockSummary({k: raw[k] for k in PER_PATH}, sparse(counts)))

    def summarize(self, seed: int, start: int, stop: int) -> dict[str, np.ndarray]:
        """The summary kernel's block, dense: its counts (as `unpack_summary` names them)
        plus the per-path results (`outputs.PER_PATH`) and "nonfinite"."""
        raw = run_summary_packed(self.packed, seed, start, stop, self.config.dtype)
        return kernel_io.unpack_summary(raw) | {k: raw[k] for k in (*PER_PATH, "nonfinite")}
