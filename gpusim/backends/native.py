"""The native CPU backend: the kernel's headers built at install time (kernels/native.cpp,
setup.py) into gpusim/_native*.so, run on every usable core through its C ABI.

Each path runs the same `simulate_path` as the CUDA kernel, so native and numpy agree
path by path (to ~1e-14 relative, not bit for bit); thread count and block size change no
bit of the native output. The library is loaded with ctypes and checked against the kernel
sources it was built from: a library built from other headers is not used.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import math
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gpusim.backends import kernel_io
from gpusim.backends.base import Backend, BlockSummary, Handle, Ready, check_finite
from gpusim.backends.header import kernel_dir
from gpusim.backends.packing import pack
from gpusim.config import Config
from gpusim.errors import InputError, SimulationError
from gpusim.outputs import PER_PATH, count_names

if TYPE_CHECKING:
    from gpusim.backends.base import SparseCounts

DISABLE = "GPUSIM_NO_NATIVE"
"""Set to 1 to run as if the extension had not been built (numpy only)."""
@dataclass(frozen=True)
class Native:
    """The loaded library (None if unusable) and, if unusable, why."""

    library: ctypes.CDLL | None
    reason: str

    @property
    def isa(self) -> str:
        """The -march the library was built for."""
        return _text(self.library.gpusim_native_isa) if self.library else ""

    @property
    def vectors(self) -> str:
        """The instruction set the shocks are drawn with here: the build's, or AVX2 on a
        CPU that has it (the same bits either way)."""
        return "avx2 draws" if self.avx2(-1) else f"{self.isa} draws"

    def avx2(self, use: int) -> bool:
        """Whether the shocks are drawn with the library's AVX2 loop: `use` 0 turns it
        off, 1 on (where the CPU has AVX2), -1 only asks. Test and benchmark use: the
        default, the CPU's answer, is what runs."""
        return bool(self.library.gpusim_native_avx2(ctypes.c_int(use))) if self.library \
            else False


def native_digest() -> str:
    """A digest of the sources the extension is built from (setup.py's native_digest)."""
    digest = hashlib.sha256()
    root = kernel_dir()
    for path in sorted([*root.glob("*.cuh"), root / "native.cpp"]):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def library_path() -> Path | None:
    """Where the built extension is, or None (found without importing it)."""
    spec = importlib.util.find_spec("gpusim._native")
    return Path(spec.origin) if spec is not None and spec.origin else None


def _text(fn: Any) -> str:
    fn.restype = ctypes.c_char_p
    return fn().decode()


@cache
def native() -> Native:
    """The native library, loaded once, or the reason it cannot be used."""
    if os.environ.get(DISABLE, "") not in ("", "0"):
        return Native(None, f"{DISABLE} is set")
    path = library_path()
    if path is None:
        return Native(None, "the native extension was not built at install (no C++ "
                            "compiler?); reinstall with one: pip install -e .")
    # Threads that finish their share sleep instead of spinning at the block's barrier
    # (libgomp reads this when the library loads it): on a shared or oversubscribed machine
    # spinning threads take the CPU from the ones still working. Blocks are coarse (one
    # parallel loop of >= 0.1 s), so waking costs nothing measurable. Set it to override.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        lib = ctypes.CDLL(str(path))
        built = _text(lib.gpusim_native_digest)
    except (OSError, AttributeError) as err:
        return Native(None, f"the native extension {path.name} does not load ({err})")
    if built != native_digest():
        return Native(None, "the native extension was built from other kernel sources; "
                            "rebuild it: pip install -e .")
    return Native(lib, "")


def cgroup_cpus(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The CPU limit of this process's cgroup (v2 cpu.max or v1 cfs quota), rounded up;
    None without one."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        return None


def usable_threads() -> int:
    """Threads to run on: OMP_NUM_THREADS if set, else the CPUs this process may use
    (affinity mask), capped by its cgroup's CPU limit."""
    given = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    limit = cgroup_cpus()
    return max(1, min(cpus, limit) if limit else cpus)


def _call(kernel: str, args: tuple[Any, ...], threads: int,
          scratch: CountBuffers | None = None) -> int:
    """Run the native build of `kernel` (e.g. simulate_summary_f64) on `threads` threads;
    its return value: a cube's count of NaN and Inf values, a summary's 0 (1: no memory
    for the threads' counts). A summary kernel counts its threads after the first into
    `scratch`'s sets (left zeroed again), or into fresh memory without."""
    lib = native().library
    if lib is None:
        raise RuntimeError(f"native backend unavailable: {native().reason}")
    mode, suffix = kernel.removeprefix("simulate_").rsplit("_", 1)
    fn = getattr(lib, f"gpusim_native_{mode}_{suffix}")
    fn.restype = ctypes.c_int if mode == "summary" else ctypes.c_longlong
    tail: tuple[Any, ...] = (ctypes.c_int(threads),)
    if mode == "summary":
        sets = scratch.thread_sets if scratch is not None else (None, 0)
        tail += (sets[0], ctypes.c_int(sets[1]))
    return fn(*(kernel_io.c_argument(a) for a in args), *tail)


def take_sparse(counts: dict[str, np.ndarray], threads: int) -> dict[str, SparseCounts]:
    """`base.sparse` of a summary's uint32 count arrays, by the native library on
    `threads` threads: each array's (index, value) of its nonzero entries in index order,
    as int64, every one of them zeroed in the array as it is taken (the arrays must be
    C-contiguous: views of the kernel's buffers are zeroed in place)."""
    lib = native().library
    if lib is None:
        raise RuntimeError(f"native backend unavailable: {native().reason}")
    count, take = lib.gpusim_native_count_nonzero, lib.gpusim_native_take_nonzero
    count.restype, take.restype = ctypes.c_longlong, None
    parts = ctypes.c_int(max(threads, 1))
    offset = np.empty(parts.value + 1, np.int64)  # where each thread's entries go
    out = {}
    for name, values in counts.items():
        if values.dtype != np.uint32 or not values.flags.c_contiguous:
            raise TypeError(f"{name}: expected C-contiguous uint32 counts, got {values.dtype}")
        n, pointer = ctypes.c_longlong(values.size), values.ctypes.data_as(ctypes.c_void_p)
        found = count(pointer, n, parts, offset.ctypes.data_as(ctypes.c_void_p))
        index, taken = np.empty(found, np.int64), np.empty(found, np.int64)
        take(pointer, n, parts, offset.ctypes.data_as(ctypes.c_void_p),
             index.ctypes.data_as(ctypes.c_void_p), taken.ctypes.data_as(ctypes.c_void_p))
        out[name] = (index, taken)
    return out


COUNTS = ("market", "firm", "facility", "bust", "ltv_breach", "nonfinite")
"""The summary kernel's count buffers, in the order of native.cpp's counts_of."""


class CountBuffers:
    """The summary kernel's count buffers kept from block to block, zeroed: the set it
    returns (`main`) and one set for each thread after the first. Fresh buffers would cost
    a page fault and a zeroed page for every 4 kB the kernel counts into (~100 MB a block
    of configs/base.yaml, for each thread); these are zeroed again where they were counted
    (`take_sparse` zeroes what it takes out of `main`, the native merge the threads' sets,
    `rezero` the rest). One block at a time (`lock`)."""

    def __init__(self, shapes: dict[str, tuple[tuple[int, ...], np.dtype]], threads: int
                 ) -> None:
        self.main = {name: np.zeros(*shapes[name]) for name in COUNTS}
        self._extra = [np.zeros(*shapes[name]) for _ in range(threads - 1) for name in COUNTS]
        pointers = (ctypes.c_void_p * max(len(self._extra), 1))(
            *(a.ctypes.data for a in self._extra))
        self.thread_sets = (pointers, threads - 1)
        self.lock = threading.Lock()

    def rezero(self, taken: dict[str, SparseCounts] | None) -> None:
        """Zero `main` again after a block whose count arrays `taken` (by
        `unpack_summary`'s names) were taken out with `take_sparse`, which left them
        zeroed: any other count array and "nonfinite" whole; every buffer whole without
        `taken` (a block that failed)."""
        if taken is None:
            for values in self.main.values():
                values.fill(0)
            return
        for name, values in kernel_io.unpack_summary(self.main).items():
            if name not in taken:
                values.fill(0)
        self.main["nonfinite"].fill(0)


class NativeBackend(Backend):
    """The kernel's headers built for this CPU, a block's paths spread over `threads`
    threads (default `usable_threads()`); blocks are computed when launched. Summary
    blocks count into buffers kept from block to block (`CountBuffers`); `keep_counts`
    False gives each block fresh memory instead (benchmarks compare the two)."""

    name, device, xp = "native", "cpu", np

    def __init__(self, config: Config, threads: int | None = None,
                 keep_counts: bool = True) -> None:
        if native().library is None:
            raise InputError(f"device = 'cpu': {native().reason}; or use --device numpy")
        super().__init__(config)
        self.packed = pack(config)
        self.threads = threads or usable_threads()
        self.keep_counts = keep_counts  # False: fresh count memory every summary block
        self._counts: CountBuffers | None = None  # summary counts, kept between blocks
        self.device_name = (f"cpu: native, {self.threads} threads, {native().isa}, "
                            f"{native().vectors}")

    def launch(self, seed: int, start: int, stop: int, on_device: bool = False,
               record_flows: bool = False) -> Handle[dict[str, Any]]:
        dtype = self.config.dtype
        out = {key: np.empty(shape, kind) for key, (shape, kind) in
               kernel_io.cube_buffers(self.packed, stop - start, dtype, record_flows).items()}
        args = kernel_io.cube_arguments(self.packed.arrays(), self.packed, seed, start, stop,
                                        out)
        bad = _call(kernel_io.kernel_name("cube", dtype), args, self.threads)
        result = kernel_io.unpack(out)
        if bad:  # the kernel counted them; the scan names the first
            check_finite(result, start)
            raise SimulationError(f"{bad} NaN or Inf values in the block of paths "
                                  f"[{start}, {stop})")
        return Ready(result)

    def launch_summary(self, seed: int, start: int, stop: int) -> Handle[BlockSummary]:
        with self._count_buffers() as buffers:
            found = None
            try:
                raw = self.summarize(seed, start, stop, buffers)
                if raw["nonfinite"][0]:
                    self.launch(seed, start, stop)  # the cube's check names variable, path, month
                    raise SimulationError(f"{int(raw['nonfinite'][0])} NaN or Inf values in the "
                                          f"block of paths [{start}, {stop})")
                counts = {name: raw[name] for name in count_names(self.config)}
                found = take_sparse(counts, self.threads)  # and zeroed for the next block
                per_path = {k: raw[k] for k in PER_PATH}
                check_finite(per_path, start)
                return Ready(BlockSummary(per_path, found))
            finally:
                if buffers is not None:
                    buffers.rezero(found)

    @contextmanager
    def _count_buffers(self) -> Any:
        """This backend's `CountBuffers` (made on first use), or None while another thread
        holds them (a dask worker with several threads) or without `keep_counts`: that
        block counts into fresh memory."""
        if not self.keep_counts:
            yield None
            return
        if self._counts is None:
            shapes = kernel_io.summary_buffers(self.packed, 0, self.config.dtype)
            self._counts = CountBuffers(shapes, self.threads)
        if not self._counts.lock.acquire(blocking=False):
            yield None
            return
        try:
            yield self._counts
        finally:
            self._counts.lock.release()

    def summarize(self, seed: int, start: int, stop: int,
                  buffers: CountBuffers | None = None) -> dict[str, np.ndarray]:
        """The summary kernel's block, dense: its counts (as `unpack_summary` names them)
        plus the per-path results (`outputs.PER_PATH`) and "nonfinite". The counts are
        `buffers`' (zeroed; the caller zeroes them again) or fresh arrays without."""
        n = stop - start
        if n >= 2**31:
            raise InputError(f"block of {n:,} paths: summary counts are 32-bit; use blocks "
                             "of fewer than 2**31 paths")
        shapes = kernel_io.summary_buffers(self.packed, n, self.config.dtype)
        raw = {key: np.zeros(shape, kind) for key, (shape, kind) in shapes.items()
               if buffers is None or key not in buffers.main}
        raw |= buffers.main if buffers is not None else {}
        args = kernel_io.summary_arguments(self.packed.arrays(), self.packed, seed, start,
                                           stop, raw)
        if _call(kernel_io.kernel_name("summary", self.config.dtype), args, self.threads,
                 buffers):
            raise MemoryError(f"no memory for {self.threads} threads' summary counts")
        return kernel_io.unpack_summary(raw) | {k: raw[k] for k in (*PER_PATH, "nonfinite")}
