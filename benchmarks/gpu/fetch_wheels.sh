#!/usr/bin/env bash
# Here (no GPU needed): download the wheels of benchmarks/gpu/wheels.txt for the lent GPU
# machines' Python 3.12 on x86-64 into .whl/ (git-ignored), to carry to them:
#   bash benchmarks/gpu/fetch_wheels.sh
# then, with the device tool: run(command="bash benchmarks/gpu/session.sh all", carry=[".whl"], timeout_s=580)
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
grep -v '^#' benchmarks/gpu/wheels.txt | xargs python3 -m pip download -q --no-deps \
    --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl
du -sh .whl
python3 benchmarks/gpu/check_wheels.py .whl  # every Requires-Dist met
