"""The kernels compiled without a device: ptxas's registers, stack and spills of each
variant (nvcc), and NVRTC from its pip wheel through ctypes, with exactly the options
cupy.RawModule passes (gpusim.backends.cuda), so CI and `gpusim info` can say whether and
how the kernels compile on a machine with no GPU.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpusim.backends import kernel_io
from gpusim.backends.cuda import (
    CUPY_OPTIONS,
    KERNELS,
    THREADS_PER_BLOCK,
    compile_options,
    kernel_source,
    variants,
)
from gpusim.backends.packing import pack
from gpusim.config import Config

RESOURCE_ARCH = "sm_90"
"""The architecture `resource_usage` compiles for (H100/H200)."""


def occupancy(registers: int, threads: int = THREADS_PER_BLOCK) -> float:
    """Resident warps / 64 on an SM of compute capability 9.0 (65,536 registers, 64 warps,
    32 blocks), limited by registers alone (allocated per warp in units of 256)."""
    per_warp = -(-registers * 32 // 256) * 256
    warps_per_block = -(-threads // 32)
    blocks = min(65536 // (per_warp * warps_per_block), 32, 64 // warps_per_block)
    return blocks * warps_per_block / 64


def parse_resource_usage(text: str) -> dict[str, dict[str, int]]:
    """ptxas's `--resource-usage` report → kernel name → registers, stack bytes and spill
    bytes (stores + loads) of each entry function."""
    out: dict[str, dict[str, int]] = {}
    entry = current = None
    for line in text.splitlines():
        if m := re.search(r"Compiling entry function '(\w+)'", line):
            entry = m.group(1)
        elif m := re.search(r"Function properties for (\w+)", line):
            current = m.group(1)
        elif (m := re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, "
                             r"(\d+) bytes spill loads", line)) and current == entry:
            out.setdefault(entry, {}).update(
                stack_bytes=int(m.group(1)), spill_bytes=int(m.group(2)) + int(m.group(3)))
        elif (m := re.search(r"Used (\d+) registers", line)) and entry in out:
            out[entry]["registers"] = int(m.group(1))
    return out


def resource_usage(config: Config, names: Sequence[str] = KERNELS,
                   min_blocks: int | None = None) -> list[dict[str, Any]]:
    """Registers, stack and spill bytes of each kernel in `names`, specialized to the
    config's shape as a run compiles it (our options and CuPy's, -arch=RESOURCE_ARCH),
    from nvcc's ptxas report; with the occupancy of 128-thread blocks. Every figure is
    None where no nvcc is found (or it fails: "error" says why)."""
    rows = [{"name": name, "registers": None, "stack_bytes": None, "spill_bytes": None,
             "occupancy": None, "compiler": None} for name in names]
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return rows
    packed = pack(config)
    source = kernel_source(kernel_io.variant_prelude(packed, names[0]) if len(names) == 1
                           else kernel_io.shape_defines(packed))  # all four kernels
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "variant.cu"
        path.write_text(source)
        cmd = [nvcc, "-cubin", f"-arch={RESOURCE_ARCH}", "--resource-usage",
               *(o for o in CUPY_OPTIONS if o != "--device-as-default-execution-space"),
               *compile_options(min_blocks=min_blocks), str(path), "-o",
               str(Path(tmp) / "variant.cubin")]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    usage = parse_resource_usage(done.stdout + done.stderr)
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True,
                             check=False).stdout.strip().splitlines()[-1:]
    for row in rows:
        row["compiler"] = f"nvcc ({version[0] if version else '?'})"
        if done.returncode != 0:
            row["error"] = (done.stderr or done.stdout).strip()[-2000:]
        elif row["name"] in usage:
            row.update(usage[row["name"]])
            row["occupancy"] = occupancy(row["registers"])
    return rows


# --- NVRTC without CuPy or a GPU (the pip wheel's library through ctypes) ---------------------

def nvrtc_library() -> Any:
    """libnvrtc from a pip wheel (nvidia-cuda-nvrtc-cu12, or CUDA 13's nvidia/cu13) or the
    system, loaded with ctypes; None where none is found. Needs no GPU or driver."""
    import ctypes
    import ctypes.util
    import sys

    candidates: list[str] = []
    for entry in map(Path, sys.path):
        for pattern in ("nvidia/cuda_nvrtc/lib/libnvrtc.so.*", "nvidia/cu13/lib/libnvrtc.so.*",
                        "nvidia/cu*/lib/libnvrtc.so.*"):
            candidates += sorted(str(p) for p in entry.glob(pattern)
                                 if "builtins" not in p.name and ".alt." not in p.name)
    if found := ctypes.util.find_library("nvrtc"):
        candidates.append(found)
    for candidate in candidates:
        try:
            return ctypes.CDLL(candidate)
        except OSError:
            continue
    return None


def nvrtc_version(lib: Any) -> str:
    import ctypes

    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return f"{major.value}.{minor.value}"


def nvrtc_compile(lib: Any, source: str, options: Sequence[str], name: str = "gpusim.cu"
                  ) -> tuple[bool, str]:
    """Compile `source` with NVRTC and `options` (as cupy.RawModule passes them): (it
    compiled, the compiler's log)."""
    import ctypes

    program = ctypes.c_void_p()
    check = lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(), name.encode(), 0,
                                   None, None)
    if check != 0:
        return False, f"nvrtcCreateProgram failed ({check})"
    try:
        encoded = [o.encode() for o in options]
        argv = (ctypes.c_char_p * len(encoded))(*encoded)
        result = lib.nvrtcCompileProgram(program, len(encoded), argv)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(program, log)
        return result == 0, log.value.decode(errors="replace")
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))


def nvrtc_options(arch: str = RESOURCE_ARCH) -> tuple[str, ...]:
    """Exactly what cupy.RawModule gives NVRTC for our kernels on an `arch` device."""
    return (*CUPY_OPTIONS, f"-arch={arch}", *compile_options())


def nvrtc_check(config: Config | None = None, arch: str = RESOURCE_ARCH) -> str:
    """Whether the kernels (the config's variants, or the generic build) compile through
    NVRTC with CuPy's options, without a device: 'ok (NVRTC x.y, sm_90)', the compiler's
    message, or why it was not tried."""
    lib = nvrtc_library()
    if lib is None:
        return "not checked (no NVRTC library: pip install nvidia-cuda-nvrtc-cu12)"
    sources = ([kernel_source()] if config is None else
               [kernel_source(v.prelude) for v in variants(config)])
    for source in sources:
        ok, log = nvrtc_compile(lib, source, nvrtc_options(arch))
        if not ok:
            return f"failed: {log.strip()[-2000:]}"
    return f"ok (NVRTC {nvrtc_version(lib)}, {arch.replace('-arch=', '')})"
