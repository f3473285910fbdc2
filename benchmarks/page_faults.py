"""Minor page faults of summary blocks in a fresh process, with and without dask's nanny
setting MALLOC_TRIM_THRESHOLD_=65536 (what --workers N used to give its workers).

    python benchmarks/page_faults.py [--blocks 3] [--block-paths 16384] [--device numpy]

Page faults do not depend on the machine's load, unlike times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = """
import resource, sys, time
from pathlib import Path
from gpusim.backends.devices import select_backend
from gpusim.config import load_config
config = load_config(Path(sys.argv[1]))
backend = select_backend(config, sys.argv[4])
n = int(sys.argv[3])
backend.launch_summary(1, 0, n).result()
before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
for b in range(1, 1 + int(sys.argv[2])):
    backend.launch_summary(1, b * n, (b + 1) * n).result()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, time.process_time() - start)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--block-paths", type=int, default=16_384)
    ap.add_argument("--device", default="numpy")
    args = ap.parse_args()
    config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs",
                          "base.yaml")
    out = {}
    for label, trim in (("unset", None), ("nanny default 65536", "65536")):
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
        env |= {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        if trim:
            env["MALLOC_TRIM_THRESHOLD_"] = trim
        proc = subprocess.run([sys.executable, "-c", CHILD, config, str(args.blocks),
                               str(args.block_paths), args.device], env=env, check=True,
                              capture_output=True, text=True)
        faults, cpu_s = proc.stdout.split()
        out[label] = {"minor_page_faults": int(faults), "cpu_s": float(cpu_s)}
        print(f"MALLOC_TRIM_THRESHOLD_ {label:20s}: {int(faults):>10,} minor page faults, "
              f"{float(cpu_s):.1f} s CPU for {args.blocks} blocks")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
