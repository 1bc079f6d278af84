#!/usr/bin/env bash
# One prepared run on a machine with an accelerator (the CPU works too): what the machine is, the
# test suite (the fused kernel compiled and checked against interpret mode among it), the fused
# kernel against the XLA path and the placement crossovers (benchmarks/bench_gpu.py -> gpu.json),
# the formulations side by side (benchmarks/variants.py, with XLA's optimised programs dumped for
# reading afterwards), the calibration fleets (benchmarks/bench_calibrate.py: a million Misra1a-shaped
# Levenberg-Marquardt fits and a million lines with standard errors, float32 and float64, into
# bench/calibrate.json), and the full benchmark (`make bench`'s script, unchanged).
# Everything lands in $OUT (default ./device-out), at most 8 files; the last lines printed are a
# summary. Usage: OUT=folder PYTHON=python3 benchmarks/device_check.sh
# Budgets in seconds per stage: TEST_S (default 170), GPU_S (150), VARIANTS_S (60), CAL_S (150, both dtypes),
# BENCH_S (200).
set -u
OUT=${OUT:-device-out}
PY=${PYTHON:-python3}
mkdir -p "$OUT/bench"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  nproc
  "$PY" -c "import sys, jax, numpy; print(sys.version.split()[0], 'jax', jax.__version__, jax.devices(), 'numpy', numpy.__version__)"
  "$PY" -c "import torch; print('torch', torch.__version__)"; } > "$OUT/pytest.log" 2>&1
cat "$OUT/pytest.log"  # the machine heads the test log (8 files come back at most)

# Offline: install the package without dependencies (they are already there), or fall back to the tree.
if ! "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . > /tmp/jaxcal-install.txt 2>&1; then
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    echo "(no editable install: running from the tree)"
fi

start=$(date +%s)
parallel=$("$PY" -c "import xdist" 2>/dev/null && echo "-n 8")  # pytest-xdist where installed
# (pytest-benchmark, where installed, refuses to run beside xdist: hence -p no:benchmark)
timeout "${TEST_S:-170}" "$PY" -m pytest -q -p no:cacheprovider -p no:benchmark -rfE $parallel >> "$OUT/pytest.log" 2>&1
echo "pytest: rc $? in $(( $(date +%s) - start )) s"

start=$(date +%s)
timeout "${GPU_S:-150}" "$PY" benchmarks/bench_gpu.py --out "$OUT" > "$OUT/bench_gpu.log" 2>&1
echo "bench_gpu: rc $? in $(( $(date +%s) - start )) s"

start=$(date +%s)
dump=/tmp/jaxcal-hlo
rm -rf "$dump"
XLA_FLAGS="--xla_dump_to=$dump --xla_dump_hlo_as_text --xla_dump_hlo_module_re=.*(compiled_loop|fleet_chunk|run).*" \
    timeout "${VARIANTS_S:-60}" "$PY" benchmarks/variants.py --sensors 1000000 --readings 10000000 --repeats 3 \
    > "$OUT/variants.log" 2>&1
echo "variants: rc $? in $(( $(date +%s) - start )) s"
tar -czf "$OUT/hlo.tgz" --exclude='*before_optimizations*' --exclude='*.ll' --exclude='*.o' --exclude='*.ptx' \
    --exclude='*buffer-assignment*' --exclude='*live-range*' --exclude='*memory-usage*' -C /tmp jaxcal-hlo 2>/dev/null

start=$(date +%s)
for x64 in "" --x64; do
    timeout $(( ${CAL_S:-150} / 2 )) "$PY" benchmarks/bench_calibrate.py --sensors 1000000 --optimistix-sensors 102400 \
        --repeats 3 $x64 --out "$OUT/bench/calibrate.json" >> "$OUT/bench_gpu.log" 2>&1
done
echo "calibrate: rc $? in $(( $(date +%s) - start )) s"

start=$(date +%s)
timeout "${BENCH_S:-200}" "$PY" benchmarks/bench.py --out /tmp/jaxcal-bench > "$OUT/bench.log" 2>&1
echo "bench: rc $? in $(( $(date +%s) - start )) s"
cp /tmp/jaxcal-bench/bench.json "$OUT/bench/" 2>/dev/null

echo "--- pytest"; grep -E "passed|failed|^FAILED|^ERROR" "$OUT/pytest.log" | tail -25
echo "--- bench_gpu"; "$PY" -c "import json; d = json.load(open('$OUT/gpu.json')); print(json.dumps({k: d[k] for k in ('kernel', 'ceiling')})); print(d['placement'].get('fleet_crossover_sensors'))" 2>&1 | cut -c1-3000
echo "--- variants"; grep -E "^(#|large|fleet)" "$OUT/variants.log"
echo "--- calibrate"; grep -E "^(float|jaxcal|scipy|optimistix|agreement|lines)" "$OUT/bench_gpu.log" | cut -c1-400
echo "--- bench"; tail -3 "$OUT/bench.log"
