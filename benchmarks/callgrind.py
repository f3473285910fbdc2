"""Host instructions per path-month of the fused kernel's host build (load-independent).

Runs one block of the host build (kernels/host.cpp, gpusim.backends.host's flags) from a
small C++ driver (callgrind_driver.cpp) under valgrind's callgrind, counting only inside
the kernel's entry point, and prints instructions per path-month for
each case: base config float32 summary (the headline), float64 summary, float32 cube, and
market-only (no firms) float32 summary.

    python benchmarks/callgrind.py [--paths 256] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # name: (config overrides, mode, dtype)
    "base-f32-summary": ([], "summary", "float32"),
    "base-f64-summary": ([], "summary", "float64"),
    "base-f32-cube": ([], "cube", "float32"),
    "market-only-f32-summary": (["firms=[]"], "summary", "float32"),
}
ENTRY = {"summary": "gpusim_host_summary", "cube": "gpusim_host_block"}


def write_inputs(path: Path, overrides: list[str], dtype: str) -> int:
    """The case's packed inputs for the driver; returns the months."""
    from gpusim import load_config
    from gpusim.backends.packing import pack

    config = load_config(ROOT / "configs" / "base.yaml", [*overrides, f"dtype={dtype}"])
    packed = pack(config)
    with path.open("wb") as f:
        np.array([*packed.counts, packed.months], dtype=np.int32).tofile(f)
        for array in (packed.market, *packed.arrays()):  # the market scalars first
            flat = np.ascontiguousarray(array, dtype=np.float64).ravel()
            np.array([flat.size], dtype=np.int64).tofile(f)
            flat.tofile(f)
    return packed.months


def build_driver(out: Path, kernels: Path | None = None, shape: str | None = None) -> Path:
    """callgrind_driver.cpp with the host build's flags (gpusim.backends.host), on the
    kernel sources in `kernels` (default: this checkout's, e.g. another commit's), with
    `shape` (kernel_io.shape_defines) included first: the code a run's device kernel is."""
    from gpusim.backends.header import kernel_dir
    from gpusim.backends.host import HOST_FLAGS

    flags = [f for f in HOST_FLAGS if f not in ("-shared", "-fPIC")]
    exe = out / ("driver-shaped" if shape else "driver")
    if shape:
        (out / "shape.h").write_text(shape)
        flags += ["-include", str(out / "shape.h")]
    subprocess.run(["g++", *flags, "-I", str(kernels or kernel_dir()),
                    str(ROOT / "benchmarks" / "callgrind_driver.cpp"), "-o", str(exe)],
                   check=True)
    return exe


def measure(case: str, paths: int, driver: Path | None, tmp: Path) -> dict:
    """One case; with no `driver`, one built with the case's shape (build_driver)."""
    overrides, mode, dtype = CASES[case]
    suffix = "f64" if dtype == "float64" else "f32"
    inputs = tmp / f"{case}.bin"
    months = write_inputs(inputs, overrides, dtype)
    if driver is None:
        from gpusim import load_config
        from gpusim.backends import kernel_io
        from gpusim.backends.packing import pack

        config = load_config(ROOT / "configs" / "base.yaml", overrides)
        driver = build_driver(tmp, shape=kernel_io.shape_defines(pack(config)))
    out = tmp / f"{case}.callgrind"
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    f"--toggle-collect={ENTRY[mode]}_{suffix}", str(driver), str(inputs),
                    mode, suffix, str(paths)], capture_output=True, text=True, check=True)
    instructions = int(re.search(r"^summary:\s+(\d+)", out.read_text(), re.M).group(1))
    return {"case": case, "shaped": driver.name == "driver-shaped", "paths": paths,
            "months": months, "instructions": instructions,
            "per_path_month": round(instructions / (paths * months))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--paths", type=int, default=256)
    parser.add_argument("--json")
    parser.add_argument("--kernels", type=Path, help="kernel sources to measure instead")
    parser.add_argument("--shaped", action="store_true",
                        help="build each case with its shape defines (the device variant)")
    parser.add_argument("cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        driver = None if args.shaped else build_driver(Path(tmp), args.kernels)
        rows = [measure(case, args.paths, driver, Path(tmp)) for case in args.cases]
    for row in rows:
        print(f"{row['case']:26s} {row['per_path_month']:7,d} instructions per path-month")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
