#!/usr/bin/env bash
# One prepared run on a machine with an accelerator (the CPU works too): what the machine is, the
# full benchmark (`make bench`'s script, unchanged), a million-sensor fleet, and the test suite.
# Everything lands in $OUT (default ./device-out); the last lines printed are a summary.
# Usage: OUT=folder PYTHON=python3 benchmarks/device_check.sh
# Budgets in seconds per stage: BENCH_S (default 260), FLEET_S (70), TEST_S (170).
set -u
OUT=${OUT:-device-out}
PY=${PYTHON:-python3}
mkdir -p "$OUT/bench"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  nproc
  "$PY" -c "import sys, jax, numpy; print(sys.version.split()[0], 'jax', jax.__version__, jax.devices(), 'numpy', numpy.__version__)"
  "$PY" -c "import torch; print('torch', torch.__version__)"; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# Offline: install the package without dependencies (they are already there), or fall back to the tree.
if ! "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . > /tmp/jaxcal-install.txt 2>&1; then
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    echo "(no editable install: running from the tree)"
fi

start=$(date +%s)
timeout "${BENCH_S:-260}" "$PY" benchmarks/bench.py --out "$OUT/bench" > "$OUT/bench.log" 2>&1
echo "bench: rc $? in $(( $(date +%s) - start )) s"

start=$(date +%s)
{ timeout "${FLEET_S:-70}" "$PY" benchmarks/bench_fleet.py --sensors 1000000 --repeats 3
  timeout "${FLEET_S:-70}" "$PY" benchmarks/bench_fleet.py --sensors 100000 --repeats 3; } > "$OUT/fleet_1e6.log" 2>&1
echo "fleet 1e6: rc $? in $(( $(date +%s) - start )) s"

start=$(date +%s)
parallel=$("$PY" -c "import xdist" 2>/dev/null && echo "-n 8")  # pytest-xdist where installed
# (pytest-benchmark, where installed, refuses to run beside xdist: hence -p no:benchmark)
timeout "${TEST_S:-170}" "$PY" -m pytest -q -p no:cacheprovider -p no:benchmark -rfE $parallel > "$OUT/pytest.log" 2>&1
echo "pytest: rc $? in $(( $(date +%s) - start )) s"

echo "--- bench"; grep -E "^\||Compiled|Measured" "$OUT/bench.log" | head -60
echo "--- fleets"; grep -vE "^\s*$" "$OUT/fleet_1e6.log" | tail -8
echo "--- pytest"; grep -E "passed|failed|^FAILED|^ERROR" "$OUT/pytest.log" | tail -25
