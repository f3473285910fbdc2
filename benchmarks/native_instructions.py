"""Instructions per path-month of the kernel's CPU builds, counted by callgrind (one thread).

    python benchmarks/native_instructions.py [--paths 64 256] [--json results.json]

For each build (`native`: gpusim/_native*.so as installed; `host`: the tests' host build,
-O2, one path at a time), model (`market`: configs/base.yaml without firms; `full`: with
them) and mode (cube, summary), runs one float64 block of each path count under
`valgrind --tool=callgrind --instr-atstart=no`, with instrumentation switched on just
before the kernel call and the process ended right after it, so only the call is
counted. Instructions per path-month = difference of the two counts ÷ (difference of
paths × months): fixed costs per call (allocation, the merge of thread counts) cancel.
Counts do not depend on the machine's load; they do on the compiler and the ISA.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base.yaml"
BUILDS, MODELS, MODES = ("native", "host"), ("market", "full"), ("summary", "cube")


def child(build: str, model: str, paths: int, mode: str) -> None:
    """Inside valgrind: prepare one block, switch instrumentation on, run it, exit."""
    import ctypes

    import numpy as np

    from gpusim import load_config
    from gpusim.backends import host, kernel_io, native
    from gpusim.backends.packing import pack

    config = load_config(CONFIG, overrides=[] if model == "full" else ["firms=[]"])
    packed = pack(config)
    buffers = (kernel_io.summary_buffers if mode == "summary" else kernel_io.cube_buffers)(
        packed, paths, "float64")
    out = {k: np.zeros(shape, dtype) for k, (shape, dtype) in buffers.items()}
    make = kernel_io.summary_arguments if mode == "summary" else kernel_io.cube_arguments
    args = make(packed.arrays(), packed, 1, 0, paths, out)
    if build == "native":
        fn = getattr(native.native().library, f"gpusim_native_{mode}_f64")
        c_args = [kernel_io.c_argument(a) for a in args] + [ctypes.c_int(1)]
    else:
        fn = host.entry_point(kernel_io.kernel_name(mode, "float64"))
        c_args = [kernel_io.c_argument(a) for a in args]
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True,
                   capture_output=True)
    fn(*c_args)
    os._exit(0)


def count(build: str, model: str, paths: int, mode: str, tmp: str) -> int:
    """Instructions callgrind collected for one block."""
    out = Path(tmp) / f"{build}.{model}.{mode}.{paths}.out"
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                           f"--callgrind-out-file={out}", sys.executable, __file__,
                           "--child", build, model, str(paths), mode],
                          capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if not found or proc.returncode != 0:  # the child failed: its count is not the call's
        raise RuntimeError(proc.stderr[-2000:])
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, nargs=2, default=(64, 256))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        build, model, paths, mode = args.child
        child(build, model, int(paths), mode)
    from gpusim import load_config

    months = load_config(CONFIG).horizon_months
    jobs = [(b, m, n, mode) for b in BUILDS for m in MODELS for mode in MODES
            for n in args.paths]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(len(jobs)) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: count(*job, tmp), jobs), strict=True))
    small, large = args.paths
    rows = []
    for b in BUILDS:
        for m in MODELS:
            for mode in MODES:
                extra = counts[(b, m, large, mode)] - counts[(b, m, small, mode)]
                rows.append({"build": b, "model": m, "mode": mode,
                             "instructions_per_path_month": extra / ((large - small) * months),
                             "counts": {str(small): counts[(b, m, small, mode)],
                                        str(large): counts[(b, m, large, mode)]}})
                print(f"{b:7s} {m:7s} {mode:8s} {rows[-1]['instructions_per_path_month']:8.0f}"
                      " instructions per path-month")
    if args.json:
        args.json.write_text(json.dumps({"months": months, "paths": list(args.paths),
                                         "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
