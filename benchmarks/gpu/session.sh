#!/usr/bin/env bash
# On a lent GPU machine (the device tool runs this in the repository root, with .whl/
# carried): install the carried wheels, then one stage, its output under $OUT.
#   tests  gpusim info, the GPU tests (tests/test_gpu.py) and the host-build and
#          stand-in tests of the kernels (test_kernels.py, test_gpu_path.py)
#   quick  gpusim bench --suite quick --device gpu
#   full   gpusim bench --suite full --device gpu (may need most of a 10-minute call)
# Commit what comes back under benchmarks/results/ (the JSON names device, versions, date).
set -uo pipefail
stage=${1:?usage: session.sh tests|quick|full}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
out=${OUT:-/tmp/gpusim-out}
mkdir -p "$out"
day=$(date +%F)
gpusim() { python3 -m gpusim.cli "$@"; }
case "$stage" in
  tests)
    gpusim info 2>&1 | tee "$out/info-$day.txt"
    python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_kernels.py \
        tests/test_gpu_path.py 2>&1 | tee "$out/gpu-tests-$day.txt" ;;
  quick|full)
    gpusim bench --suite "$stage" --device gpu --out "$out/bench-$stage-gpu-$day.json" 2>&1 \
        | tee "$out/bench-$stage-gpu-$day.log" ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
