"""Instructions and L1 data-cache misses per path-month of the numpy reference and the
plain-numpy peer (market only), under valgrind's cachegrind: a load-independent figure.

    python benchmarks/numpy_instructions.py [--paths 8192] [--json out.json]

Runs, each in its own process under `valgrind --tool=cachegrind --cache-sim=yes`, with
OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1: the set-up alone (imports, config, a 64-path
warm-up) and then each side once more with one block of `--paths` paths of
configs/base.yaml without firms (84 months, float64, seed 1). The set-up's counts are
subtracted and the rest divided by paths × 83 stepped months. glibc's memcpy/memset use
`rep movsb`/`rep stosb` for large copies, which valgrind counts per byte: their share is
inflated. Takes about 5 minutes on an idle core (valgrind is ~50× slower than native).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(side: str, paths: int) -> None:
    """The measured process: set-up, then `side` once on `paths` paths ("setup": none)."""
    from gpusim.bench import peers
    from gpusim.config import load_config
    from gpusim.model.market import market_params

    config = load_config(ROOT / "configs" / "base.yaml", overrides=["firms=[]"])
    p = market_params(config)
    for run in (peers.run_plain, peers.run_gpusim_numpy):
        run(config, p, 64, 64, 1)
    run = {"plain_numpy": peers.run_plain, "numpy_reference": peers.run_gpusim_numpy,
           "setup": None}[side]
    if run is not None:
        run(config, p, paths, paths, 1)


def counts(side: str, paths: int) -> dict[str, int]:
    """Instructions and D1/LL data misses of one child process under cachegrind."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=yes",
           "--cachegrind-out-file=/dev/null", sys.executable, __file__, "--child", side,
           "--paths", str(paths)]
    text = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stderr
    found = {}
    for key, label in (("instructions", r"I\s+refs"), ("d1_misses", r"D1\s+misses"),
                       ("lld_misses", r"LLd misses")):
        found[key] = int(re.search(label + r":\s+([\d,]+)", text).group(1).replace(",", ""))
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=8192)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.paths)
        return
    setup = counts("setup", args.paths)
    path_months = args.paths * 83
    result = {}
    for side in ("plain_numpy", "numpy_reference"):
        raw = counts(side, args.paths)
        result[side] = {k: (raw[k] - setup[k]) / path_months for k in raw}
        print(f"{side:16s} " + "  ".join(f"{k} {v:8.1f}" for k, v in result[side].items())
              + "  per path-month")
    ratio = result["plain_numpy"]["instructions"] / result["numpy_reference"]["instructions"]
    print(f"instruction ratio plain / reference: {ratio:.3f}")
    if args.json:
        args.json.write_text(json.dumps({
            "paths": args.paths, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "setup": setup, "per_path_month": result, "instruction_ratio": ratio},
            indent=1) + "\n")


if __name__ == "__main__":
    main()
