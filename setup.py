"""Builds the native CPU backend (kernels/native.cpp → gpusim/_native*.so) at install time.

Everything else is declared in pyproject.toml. The extension is optional: without a C++
compiler the install goes on without it (gpusim then runs on numpy), and without OpenMP it
is built single-threaded. It is a plain shared library with a C ABI, loaded by
gpusim/backends/native.py through ctypes (it has no Python module init).

Flags: -O3 -ffp-contract=off (no FMA contraction, so it rounds like numpy), no fast-math,
-fno-math-errno -fno-trapping-math (neither changes a value: sqrt is one instruction and
not a possible libm call for errno, and selects between computed values need not be
branches; together they let the loop that draws a tile's shocks vectorize over paths),
and on x86-64 -march=x86-64-v2 (SSE4.2/POPCNT: any x86-64 CPU since about 2009), so a wheel
built on one machine runs on another. GPUSIM_NATIVE_MARCH=native builds for this CPU (any
-march value works; an empty value passes no -march).
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
KERNELS = HERE / "kernels"
BASE_FLAGS = ["-O3", "-std=c++14", "-ffp-contract=off", "-fno-fast-math", "-fno-math-errno",
              "-fno-trapping-math", "-fPIC"]
DEFAULT_MARCH = "x86-64-v2" if platform.machine().lower() in ("x86_64", "amd64") else ""


def native_digest() -> str:
    """gpusim.backends.native.native_digest: the sources the extension is built from."""
    digest = hashlib.sha256()
    for path in sorted([*KERNELS.glob("*.cuh"), KERNELS / "native.cpp"]):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def march() -> str:
    """The -march value the build targets ('' for the compiler's default)."""
    return os.environ.get("GPUSIM_NATIVE_MARCH", DEFAULT_MARCH)


class OptionalBuildExt(build_ext):
    """Build the extension with OpenMP, else without, else not at all (with a warning)."""

    def build_extension(self, ext: Extension) -> None:
        isa = march()
        flags = BASE_FLAGS + ([f"-march={isa}"] if isa else [])
        defines = [f"-DGPUSIM_NATIVE_DIGEST=\"{native_digest()}\"",
                   f"-DGPUSIM_NATIVE_ISA=\"{isa or 'compiler default'}\""]
        for openmp in (["-fopenmp"], []):
            ext.extra_compile_args = flags + defines + openmp
            ext.extra_link_args = openmp
            try:
                super().build_extension(ext)
                if not openmp:
                    print("gpusim: native CPU backend built without OpenMP (one thread)",
                          file=sys.stderr)
                return
            except Exception as err:  # noqa: BLE001 - any failure: try the next way
                last = err
        print(f"gpusim: native CPU backend not built ({last}); gpusim will run on numpy",
              file=sys.stderr)


setup(
    ext_modules=[Extension("gpusim._native", [str(Path("kernels") / "native.cpp")],
                           depends=[str(p.relative_to(HERE)) for p in KERNELS.glob("*.cuh")],
                           language="c++", optional=True)],
    cmdclass={"build_ext": OptionalBuildExt},
)
