#!/usr/bin/env bash
# Every GPU check of npaccel in one device call (issue 8): the GPU test suite, the GPU bench
# rows at the size (8192² float32) and the streamed-transfer benchmark. Results go to
# $OUT (the device tool returns that folder). It runs under the device image's own python3
# (numpy, scipy, numba, numba-cuda, cupy, pytest, hypothesis are there; nothing to install):
#
#   device run:  bash benchmarks/gpu_device_check.sh          (timeout_s ~ 540)
#
# Each step is bounded by `timeout` so one hang cannot eat the device time of the others.
set -uo pipefail
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/npaccel-gpu}"
mkdir -p "$OUT"
PY=python3

{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.current,pcie.link.width.current --format=csv
  $PY -c "import cupy, numba, numpy; print('cupy', cupy.__version__, 'numba', numba.__version__, 'numpy', numpy.__version__)"
} 2>&1 | tee "$OUT/device.txt"

timeout 240 $PY -m pytest tests/gpu -m gpu -q -rs -x -p no:cacheprovider 2>&1 | tee "$OUT/tests.txt"

timeout 180 $PY -m npaccel bench --full --no-progress --threads 16 \
    --backend cupy,npaccel-cuda,cupyx,pageable,pinned,npaccel-cuda+transfers \
    --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.txt"

if [ -f benchmarks/gpu_stream.py ]; then
  timeout 90 $PY benchmarks/gpu_stream.py 2>&1 | tee "$OUT/stream.txt"
fi
