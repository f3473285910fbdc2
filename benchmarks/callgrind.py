"""Host instructions per path-month of the fused kernel's host build (load-independent).

Runs one block of the host build (gpusim.backends.host) under valgrind's callgrind,
counting only inside the kernel's entry point, and prints instructions per path-month for
each case: base config float32 summary (the headline), float64 summary, float32 cube, and
market-only (no firms) float32 summary.

    python benchmarks/callgrind.py [--paths 256] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # name: (config overrides, mode, dtype)
    "base-f32-summary": ([], "summary", "float32"),
    "base-f64-summary": ([], "summary", "float64"),
    "base-f32-cube": ([], "cube", "float32"),
    "market-only-f32-summary": (["firms=[]"], "summary", "float32"),
}
ENTRY = {"summary": "gpusim_host_summary", "cube": "gpusim_host_block"}


def child(case: str, paths: int) -> None:
    """Run the case once (inside valgrind)."""
    from gpusim import load_config
    from gpusim.backends import host

    overrides, mode, dtype = CASES[case]
    config = load_config(ROOT / "configs" / "base.yaml", [*overrides, f"dtype={dtype}"])
    packed = host.pack(config)
    host.host_library()
    run = host.run_summary_packed if mode == "summary" else host.run_packed
    run(packed, 1, 0, paths, dtype)
    print("MONTHS", packed.months)


def measure(case: str, paths: int) -> dict:
    _, mode, dtype = CASES[case]
    entry = f"{ENTRY[mode]}_{'f64' if dtype == 'float64' else 'f32'}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             f"--toggle-collect={entry}", sys.executable, __file__, "--child", case,
             "--paths", str(paths)], capture_output=True, text=True, check=True,
            env=os.environ | {"PYTHONPATH": str(ROOT)})
        months = int(re.search(r"MONTHS (\d+)", run.stdout).group(1))
        totals = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
        instructions = int(totals.group(1))
    return {"case": case, "paths": paths, "months": months, "instructions": instructions,
            "per_path_month": round(instructions / (paths * months))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--paths", type=int, default=256)
    parser.add_argument("--json")
    parser.add_argument("cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    if args.child:
        child(args.child, args.paths)
        return
    rows = [measure(case, args.paths) for case in args.cases]
    for row in rows:
        print(f"{row['case']:26s} {row['per_path_month']:7,d} instructions per path-month")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
