"""Store benchmark: cube write throughput against the raw disk, codecs, and summary memory.

Three measurements, in one run, on the same machine and disk:

1. **raw disk**: the bytes of a cube written with numpy `tofile` and `fsync` (the floor a
   writer cannot beat without compression);
2. **cube writes**: the same blocks written by gpusim's store writer (chunk-aligned
   region writes, Blosc-compressed on worker threads, `fsync` of the store at the end),
   as uncompressed bytes per second; the goal is ≥ 50% of raw;
3. **codecs**: write and read speed and compression ratio of candidate codecs on one block;
4. **summary memory**: peak resident memory of `gpusim run --mode summary` in a fresh
   process for growing path counts (it must not grow with the path count).

    python benchmarks/store.py [--config configs/base.yaml] [--blocks 8] [--block-paths 16384]
        [--summary-paths 100000 1000000 10000000] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from zarr.codecs import BloscCodec, ZstdCodec

import gpusim
from gpusim.backends.reference import simulate_block
from gpusim.cube import block_dataset
from gpusim.store import create_layout, run_identity, write_region

ROOT = Path(__file__).resolve().parents[1]


def fsync_tree(path: Path) -> None:
    """Flush every file under `path` to the disk."""
    for file in path.rglob("*"):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def raw_write(arrays: list[dict[str, np.ndarray]], where: Path) -> tuple[int, float]:
    """Write every array with numpy and fsync: (bytes, seconds)."""
    where.mkdir(parents=True)
    total, start = 0, time.perf_counter()
    for b, block in enumerate(arrays):
        for name, values in block.items():
            path = where / f"{name}-{b}.bin"
            with open(path, "wb") as handle:
                np.ascontiguousarray(values).tofile(handle)
                handle.flush()
                os.fsync(handle.fileno())
            total += values.nbytes
    return total, time.perf_counter() - start


def cube_write(config: gpusim.Config, blocks: list[xr.Dataset], block_paths: int,
               where: Path) -> float:
    """Write precomputed blocks through the store writer (as `run` does): seconds."""
    from concurrent.futures import ThreadPoolExecutor

    paths = block_paths * len(blocks)
    attrs = run_identity(config, 1, paths, block_paths, "cube", "cpu")
    create_layout(where, config, paths, block_paths, attrs, "cube")
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(write_region, where, ds, b * block_paths, (b + 1) * block_paths)
                   for b, ds in enumerate(blocks)]
        for future in futures:
            future.result()
    fsync_tree(where)
    return time.perf_counter() - start


def codec_table(ds: xr.Dataset, where: Path) -> list[dict[str, Any]]:
    candidates = {
        "none": None,
        "zstd-1": ZstdCodec(level=1),
        "zstd-3": ZstdCodec(level=3),
        "blosc-zstd-1-shuffle": BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),
        "blosc-lz4-5-shuffle": BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
        "blosc-zstd-3-bitshuffle": BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),
    }
    raw = sum(v.nbytes for v in ds.data_vars.values())
    rows = []
    for name, codec in candidates.items():
        path = where / f"{name}.zarr"
        encoding = {k: {"compressors": [codec] if codec else None} for k in ds.data_vars}
        start = time.perf_counter()
        ds.to_zarr(path, zarr_format=3, encoding=encoding, consolidated=False)
        fsync_tree(path)
        wrote = time.perf_counter() - start
        stored = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        start = time.perf_counter()
        xr.open_zarr(path, consolidated=False).load()
        read = time.perf_counter() - start
        rows.append({"codec": name, "write_MBps": raw / wrote / 1e6,
                     "read_MBps": raw / read / 1e6, "ratio": raw / stored})
    return rows


def summary_peak_rss(config_path: str, paths: int, where: Path) -> dict[str, Any]:
    """Peak RSS of a summary run in a fresh process.

    Read from /proc/self/status (VmHWM, this process's own high-water mark): ru_maxrss
    would also count what the parent held when it forked the child.
    """
    out = where / f"summary-{paths}.zarr"
    code = ("import re, sys, time; from gpusim.cli import main; t = time.perf_counter();"
            f" rc = main(['run', {config_path!r}, '--paths', '{paths}', '--mode', 'summary',"
            f" '--out', {str(out)!r}, '--quiet', '--device', 'cpu']);"
            " hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1);"
            " print(time.perf_counter() - t, hwm); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    seconds, peak_kib = proc.stdout.split()[-2:]
    shutil.rmtree(out, ignore_errors=True)
    return {"paths": paths, "seconds": float(seconds), "peak_rss_MB": int(peak_kib) / 1024}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "base.yaml"))
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--block-paths", type=int, default=16_384)
    ap.add_argument("--summary-paths", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--dir", default=None, help="scratch directory on the disk to measure")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    config = gpusim.load_config(args.config)
    scratch = Path(tempfile.mkdtemp(prefix="gpusim-store-", dir=args.dir))
    try:
        arrays = [simulate_block(config, 1, b * args.block_paths, (b + 1) * args.block_paths)
                  for b in range(args.blocks)]
        blocks = [block_dataset(a, b * args.block_paths, config) for b, a in enumerate(arrays)]
        raw_arrays = [{k: v.values for k, v in ds.data_vars.items()} for ds in blocks]
        raw_bytes, raw_seconds = raw_write(raw_arrays, scratch / "raw")
        cube_seconds = cube_write(config, blocks, args.block_paths, scratch / "cube.zarr")
        codecs = codec_table(blocks[0], scratch / "codecs")
        summaries = [summary_peak_rss(args.config, n, scratch) for n in args.summary_paths]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": platform.node(),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__,
        "gpusim": gpusim.__version__, "config": args.config,
        "cube_bytes": raw_bytes,
        "raw_write_MBps": raw_bytes / raw_seconds / 1e6,
        "cube_write_MBps": raw_bytes / cube_seconds / 1e6,
        "cube_over_raw": raw_seconds / cube_seconds,
        "codecs": codecs, "summary_runs": summaries,
        "peak_rss_of_this_process_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(f"cube of {raw_bytes / 1e6:.0f} MB: raw numpy+fsync {result['raw_write_MBps']:.0f} "
          f"MB/s, gpusim store {result['cube_write_MBps']:.0f} MB/s "
          f"({result['cube_over_raw']:.0%} of raw; goal ≥ 50%)")
    for row in codecs:
        print(f"  {row['codec']:24s} write {row['write_MBps']:6.0f} MB/s  read "
              f"{row['read_MBps']:6.0f} MB/s  ratio {row['ratio']:.2f}")
    for row in summaries:
        print(f"  summary run, {row['paths']:>9,d} paths: {row['seconds']:7.1f} s, "
              f"peak RSS {row['peak_rss_MB']:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
