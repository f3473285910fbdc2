"""The headline of a GPU session (benchmarks/gpu/session.sh, stage `headline`): the full
model (configs/base.yaml) at 10M paths x 84 months in summary mode, float32 and float64,
cold (the first run in the process, NVRTC compile of the run's one kernel variant
included, from an empty CuPy cache) and warm (best of 2); cube mode (kernel only, outputs
left on the device, and copied to pinned host memory) with the device-to-device and
device-to-host bandwidths measured in the same process; and a sweep of the summary
kernel's block size and launch bounds (kernel time at 2^20 paths). Writes one JSON
(--out) and prints a markdown table.

    python benchmarks/gpu/headline.py --out headline.json [--scale 1e-4]

--scale multiplies every path count (the rehearsal on the CuPy stand-in runs at 1e-4).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


from gpusim import load_config  # noqa: E402
from gpusim.backends import cuda, kernel_io  # noqa: E402
from gpusim.backends.packing import pack  # noqa: E402
from gpusim.bench import gpu  # noqa: E402

MONTHS = 84
BLOCK = 1 << 21


def scaled(paths: int, scale: float) -> int:
    return max(256, int(paths * scale))


def summary_run(cupy: Any, config: Any, paths: int, block: int) -> float:
    """Seconds for the fused summary kernel over `paths` (two blocks in flight), waiting
    for the device and the per-block results."""
    backend = cuda.CudaBackend(config)
    start = time.perf_counter()
    pending: deque[Any] = deque()
    for lo in range(0, paths, block):
        pending.append(backend.launch_summary(7, lo, min(paths, lo + block)))
        if len(pending) > 1:
            pending.popleft().result()
    while pending:
        pending.popleft().result()
    gpu.synchronize(cupy)
    return time.perf_counter() - start


def cube_run(cupy: Any, config: Any, paths: int, block: int, to_host: bool) -> float:
    """Seconds for the cube kernel over `paths`, outputs left on the device or copied to
    pinned host memory (overlapping the next block's kernel)."""
    packed = pack(config)
    start = time.perf_counter()
    pending: deque[Any] = deque()
    for lo in range(0, paths, block):
        pending.append(cuda.launch_block(config, 7, lo, min(paths, lo + block),
                                         to_host=to_host, packed=packed))
        if len(pending) > 1:
            pending.popleft().wait()
    while pending:
        pending.popleft().wait()
    gpu.synchronize(cupy)
    gpu.free_memory(cupy)
    return time.perf_counter() - start


def bounds_sweep(cupy: Any, config: Any, paths: int) -> list[dict[str, Any]]:
    """Kernel seconds of the float32 summary variant per block size and launch bounds."""
    packed = pack(config)
    name = kernel_io.kernel_name("summary", config.dtype)
    prelude = kernel_io.variant_prelude(packed, name)
    rows = []
    for threads, min_blocks in ((64, None), (128, None), (256, None), (128, 2), (128, 3),
                                (128, 4), (256, 2)):
        module = cuda._module(cupy.cuda.Device().id, prelude, threads, min_blocks)
        function = module.get_function(name)
        inputs = [cupy.asarray(a) for a in packed.arrays()]
        out = {k: cupy.zeros(shape, dtype) for k, (shape, dtype)
               in kernel_io.summary_buffers(packed, paths, config.dtype).items()}
        args = kernel_io.summary_arguments(inputs, packed, 7, 0, paths, out)
        grid = ((paths + threads - 1) // threads,)
        function(grid, (threads,), args)  # warm
        gpu.synchronize(cupy)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            function(grid, (threads,), args)
            gpu.synchronize(cupy)
            best = min(best, time.perf_counter() - start)
        rows.append({"threads": threads, "min_blocks": min_blocks, "seconds": best,
                     "path_months_per_s": paths * MONTHS / best})
        del out, inputs
        gpu.free_memory(cupy)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", nargs="*", default=["summary", "cube", "sweep"])
    args = parser.parse_args()
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "device": name,
        "python": platform.python_version(), "cupy": getattr(cupy, "__version__", "?"),
        "scale": args.scale, "months": MONTHS, "rows": []}

    def record(row: dict[str, Any]) -> None:
        row["path_months_per_s"] = row["paths"] * MONTHS / row["seconds"]
        result["rows"].append(row)
        args.out.write_text(json.dumps(result, indent=2) + "\n")  # what is done survives
        print(f"{row['what']:40s} {row['paths']:>11,} paths {row['seconds']:9.3f} s "
              f"{row['path_months_per_s']:.3e} path-months/s", flush=True)

    paths = scaled(10_000_000, args.scale)
    block = min(BLOCK, paths)
    if "summary" in args.only:
        for dtype in ("float32", "float64"):
            config = load_config(ROOT / "configs" / "base.yaml",
                                 [f"dtype={dtype}", f"horizon_months={MONTHS}"])
            with gpu.fresh_kernel_cache():
                cold = summary_run(cupy, config, paths, block)
                record({"what": f"summary {dtype} cold", "paths": paths, "seconds": cold})
                warm = min(summary_run(cupy, config, paths, block) for _ in range(2))
                record({"what": f"summary {dtype} warm", "paths": paths, "seconds": warm})
    if "cube" in args.only:
        result["bandwidths"] = gpu.bandwidths(cupy)
        config = load_config(ROOT / "configs" / "base.yaml",
                             ["dtype=float32", f"horizon_months={MONTHS}"])
        cube_paths, cube_block = scaled(2_000_000, args.scale), scaled(1 << 18, args.scale)
        for to_host in (False, True):
            cube_run(cupy, config, cube_block, cube_block, to_host)  # compile, warm up
            seconds = cube_run(cupy, config, cube_paths, cube_block, to_host)
            nbytes = cube_paths * gpu.cube_bytes(pack(config), 1, "float32")
            record({"what": f"cube float32 {'to pinned host' if to_host else 'on device'}",
                    "paths": cube_paths, "seconds": seconds,
                    "bytes_per_s": nbytes / seconds})
    if "sweep" in args.only:
        config = load_config(ROOT / "configs" / "base.yaml",
                             ["dtype=float32", f"horizon_months={MONTHS}"])
        result["sweep"] = bounds_sweep(cupy, config, scaled(1 << 20, args.scale))
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        for row in result["sweep"]:
            print(f"sweep threads {row['threads']:4d} min_blocks {row['min_blocks']!s:5s} "
                  f"{row['path_months_per_s']:.3e} path-months/s", flush=True)


if __name__ == "__main__":
    main()
