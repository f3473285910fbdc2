"""`gpusim run --workers N` against one process: wall time of whole summary runs.

    python benchmarks/workers.py [--paths 400000] [--workers 2] [--device numpy]
        [--repeats 2] [--json results.json]

Each repeat runs the same summary run (configs/base.yaml, seed 1) in one process and on a
local cluster of N workers (cluster start-up included), alternating, each as a fresh
`gpusim run` command; the 1-minute load average is recorded with every run. The speed-up
is best single-process time ÷ best cluster time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(paths: int, workers: int | None, device: str, out: Path) -> dict:
    """Wall time [s] of one `gpusim run --mode summary` and the load around it."""
    cmd = [sys.executable, "-m", "gpusim.cli", "run", str(ROOT / "configs" / "base.yaml"),
           "--paths", str(paths), "--seed", "1", "--mode", "summary", "--device", device,
           "--out", str(out), "--overwrite", "--quiet"]
    if workers:
        cmd += ["--workers", str(workers)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    wall = time.perf_counter() - start
    return {"workers": workers, "wall_s": wall, "load_before": load,
            "load_after": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=400_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="numpy")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for workers in (None, args.workers):
                runs.append(one_run(args.paths, workers, args.device, Path(tmp) / "s.zarr"))
                print(json.dumps(runs[-1]), flush=True)
    best = {w: min(r["wall_s"] for r in runs if r["workers"] == w)
            for w in (None, args.workers)}
    result = {"paths": args.paths, "device": args.device, "workers": args.workers,
              "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "runs": runs, "speedup": best[None] / best[args.workers]}
    print(f"one process {best[None]:.1f} s, {args.workers} workers {best[args.workers]:.1f} s: "
          f"speed-up {result['speedup']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
