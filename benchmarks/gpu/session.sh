#!/usr/bin/env bash
# On a lent GPU machine (the device tool runs this in the repository root, with .whl/
# carried): install the carried wheels, then one stage or all of them, output under $OUT.
#   info      gpusim info, and `gpusim info --kernels configs/base.yaml --json`
#   tests     the GPU tests (tests/test_gpu.py) and the stand-in path (test_gpu_path.py)
#   headline  benchmarks/gpu/headline.py: 10M paths x 84 months, full model, summary f32
#             and f64 cold and warm; cube mode with D2D/D2H bandwidths; block-size and
#             launch-bounds sweep
#   peers     gpusim bench --suite quick --device gpu: numpy on CuPy and JAX on the GPU at
#             10^6 paths against the fused kernel, with the suite's checks
#   all       the four in that order, each under its own timeout (one hang loses nothing
#             else), within 9 minutes: ONE device call, e.g.
#             run(command="bash benchmarks/gpu/session.sh all", carry=[".whl"], timeout_s=580)
# Results: at most 8 files under $OUT (info.json, info.txt, tests.txt, headline.json,
# headline.txt, peers.json, peers.md, logs.tgz: pip's, the stages' and the stderr logs). Commit them under benchmarks/results/.
# Rehearsal without a GPU: GPUSIM_STANDIN=1 GPUSIM_SCALE=1e-4 bash benchmarks/gpu/session.sh all
# (CuPy replaced by the host-build stand-in, path counts scaled down).
set -uo pipefail
stage=${1:?usage: session.sh info|tests|headline|peers|all}
out=${OUT:-/tmp/gpusim-out}
mkdir -p "$out"
logs=$(mktemp -d)
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl > "$logs/pip.log" 2>&1 || { cat "$logs/pip.log"; exit 1; }
  site=/tmp/site
else
  site=""
fi
export PYTHONPATH="${site:+$site:}$PWD" PYTHONUNBUFFERED=1
scale=${GPUSIM_SCALE:-1}
if [ "${GPUSIM_STANDIN:-0}" = 1 ]; then
  export PYTHONPATH="$PWD/benchmarks/gpu/standin:$PYTHONPATH"
fi
py=${PYTHON:-python3}

# Per-stage limits [s], 530 in all, leaving time to pack the logs inside 9 minutes.
declare -A LIMIT=([info]=80 [tests]=150 [headline]=190 [peers]=110)

run_stage() {
  local name=$1 limit=${LIMIT[$1]} start=$SECONDS rc=0
  echo "== $name (limit ${limit}s)"
  case "$name" in
    info)
      timeout "$limit" "$py" -m gpusim.cli info 2>&1 | tee "$out/info.txt"
      rc=${PIPESTATUS[0]}
      timeout $((limit - (SECONDS - start) > 5 ? limit - (SECONDS - start) : 5)) \
          "$py" -m gpusim.cli info --kernels configs/base.yaml --json \
          > "$out/info.json" 2> "$logs/info-kernels.err" || rc=$? ;;
    tests)
      timeout "$limit" "$py" -m pytest -q -p no:cacheprovider tests/test_gpu.py \
          tests/test_gpu_path.py 2>&1 | tee "$out/tests.txt"
      rc=${PIPESTATUS[0]} ;;
    headline)
      timeout "$limit" "$py" benchmarks/gpu/headline.py --out "$out/headline.json" \
          --scale "$scale" 2>&1 | tee "$out/headline.txt"
      rc=${PIPESTATUS[0]} ;;
    peers)
      timeout "$limit" "$py" benchmarks/gpu/peers.py --out "$out/peers.json" \
          --scale "$scale" > "$logs/peers.log" 2>&1 || rc=$?
      tail -25 "$logs/peers.log" ;;
  esac
  echo "== $name: exit $rc after $((SECONDS - start))s" | tee -a "$logs/stages.txt"
}

case "$stage" in
  all) for s in info tests headline peers; do run_stage "$s"; done ;;
  info|tests|headline|peers) run_stage "$stage" ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
# everything else that was written: one tarball of logs
tar -czf "$out/logs.tgz" -C "$logs" . 2>/dev/null
rm -rf "$logs"
ls -la "$out"
