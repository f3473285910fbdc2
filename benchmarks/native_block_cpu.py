"""Wall and CPU time of one 16,384-path block of the native backend, best of N.

    python benchmarks/native_block_cpu.py {market,full} THREADS REPEATS [--fresh-counts]

`market`: configs/base.yaml without firms, a float64 cube (`launch`); `full`: with them, a
summary block (`launch_summary`). One warm-up block first, then REPEATS blocks at
successive path offsets. `--fresh-counts`: summary blocks count into fresh memory, as
before the backend kept its count buffers from block to block (`keep_counts=False`). CPU
time is `time.process_time` (every thread of the process), which a busy machine distorts
less than wall time; the 1-minute load average is printed.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from gpusim.backends.native import NativeBackend
from gpusim.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base.yaml"
BLOCK = 16_384


def block_runner(model: str, threads: int, keep_counts: bool = True
                 ) -> Callable[[int], object]:
    """A function that runs the block of paths [start, start + BLOCK)."""
    config = load_config(CONFIG, overrides=["firms=[]"] if model == "market" else [])
    backend = NativeBackend(config, threads, keep_counts=keep_counts)
    if model == "market":
        return lambda start: backend.launch(1, start, start + BLOCK).result()
    return lambda start: backend.launch_summary(1, start, start + BLOCK).result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=["market", "full"])
    ap.add_argument("threads", type=int)
    ap.add_argument("repeats", type=int)
    ap.add_argument("--fresh-counts", action="store_true",
                    help="summary blocks count into fresh memory each time")
    args = ap.parse_args()
    run = block_runner(args.model, args.threads, keep_counts=not args.fresh_counts)
    run(0)
    wall, cpu = [], []
    for r in range(1, args.repeats + 1):
        w0, c0 = time.perf_counter(), time.process_time()
        run(BLOCK * r)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    counts = ", fresh counts" if args.fresh_counts and args.model == "full" else ""
    print(f"{args.model} {args.threads}t{counts}: wall min {1e3 * min(wall):.0f} ms, cpu min "
          f"{1e3 * min(cpu):.0f} ms, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
