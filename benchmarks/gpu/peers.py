"""Stage `peers` of benchmarks/gpu/session.sh: `gpusim bench --suite quick --device gpu`
(the fused kernel against numpy on CuPy and JAX on the GPU at up to 10^6 paths, with the
suite's distribution and equation checks), its path counts multiplied by --scale (the
rehearsal on the CuPy stand-in runs at 1e-4). Writes --out (.json) and its .md, no plots.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gpusim.bench.report import console_text
from gpusim.bench.rows import SUITES
from gpusim.bench.suite import run_suite


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    sizes = SUITES["quick"]["gpu"]
    if args.scale != 1.0:
        def s(n: int) -> int:
            return max(256, int(n * args.scale))

        sizes = replace(sizes, paths=tuple(s(n) for n in sizes.paths),
                        paths_at=s(sizes.paths_at), block=s(sizes.block),
                        block_sweep=tuple(s(n) for n in sizes.block_sweep),
                        host_paths=s(sizes.host_paths), host_block=s(sizes.host_block),
                        repeats=1)
    result = run_suite("quick", "gpu", args.out, sizes={"gpu": sizes}, plots=False)
    print(console_text(result), flush=True)


if __name__ == "__main__":
    main()
