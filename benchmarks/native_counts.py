"""The native summary with its count buffers kept from block to block against fresh
count memory every block, interleaved in one process.

    python benchmarks/native_counts.py [--threads 2] [--rounds 8] [--blocks 3]

Two `NativeBackend`s of configs/base.yaml (full model, float64), one with
`keep_counts=True` (the default: `CountBuffers`), one with `keep_counts=False` (every block
counts into freshly allocated, zeroed memory, ~100 MB per thread on this config). Both
first run the same blocks, of unequal sizes and one twice, and must give the same counts
and per-path results exactly. Then each round runs `--blocks` blocks of 16,384 paths on
each side; the best and the median round are printed in ns per path-month (wall time).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from gpusim.backends.native import NativeBackend
from gpusim.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base.yaml"
BLOCK = 16_384


def same(a: object, b: object) -> bool:
    """Two BlockSummary objects with the same counts and per-path results, exactly."""
    return all(np.array_equal(a.counts[k][i], b.counts[k][i])
               for k in a.counts for i in (0, 1)) and all(
        np.array_equal(a.per_path[k], b.per_path[k]) for k in a.per_path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--blocks", type=int, default=3)
    args = ap.parse_args()
    config = load_config(CONFIG)
    sides = {"kept": NativeBackend(config, args.threads),
             "fresh": NativeBackend(config, args.threads, keep_counts=False)}
    check = [(0, BLOCK), (BLOCK, 2 * BLOCK), (2 * BLOCK, 2 * BLOCK + 7_000), (0, BLOCK)]
    results = {name: [b.launch_summary(7, lo, hi).result() for lo, hi in check]
               for name, b in sides.items()}
    if not all(same(x, y) for x, y in zip(results["kept"], results["fresh"], strict=True)):
        raise SystemExit("kept and fresh count buffers gave different counts")
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, backend in sides.items():
            start = time.perf_counter()
            for i in range(args.blocks):
                backend.launch_summary(2026, i * BLOCK, (i + 1) * BLOCK).result()
            times[name].append(time.perf_counter() - start)
    per = args.blocks * BLOCK * config.horizon_months / 1e9
    for name, t in times.items():
        print(f"{name:5s} count buffers, {args.threads} threads: best {min(t) / per:6.1f}, "
              f"median {statistics.median(t) / per:6.1f} ns/path-month")


if __name__ == "__main__":
    main()
