#!/usr/bin/env bash
# The device check of issue 18 as one call on a lent GPU machine (see the device tool's notes):
#   bash benchmarks/run_gpu.sh            # writes $OUT/{env.txt,gpu.json,gpu.log} (GRAD_S=120: grad.json too)
# The machine's own python3 holds jax with CUDA, optax, xarray, scipy, matplotlib and tqdm; the
# package runs from the checkout (PYTHONPATH), with the data it ships.  TVB's neotraits (tvb-library)
# and docutils are not there: carry them as wheels in .whl (ignored), downloaded here with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 -d .whl tvb-library==2.10 docutils
# Budget: under 9 minutes.
set -u
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
fi
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  python3 -c "import jax, optax, xarray; print('jax', jax.__version__, jax.devices(), 'optax', optax.__version__)"
  nproc; } 2>&1 | tee "$OUT/env.txt"
set -o pipefail
timeout "${GPU_BENCH_S:-420}" python3 benchmarks/bench_gpu.py --cases 84 379d 84d 379 \
    --batches 1 4 16 64 256 1024 4096 --max-run-s 10 --json "$OUT/gpu.json" 2>&1 | tee "$OUT/gpu.log"
echo "bench_gpu exit $?"
if [ "${GRAD_S:-0}" -gt 0 ]; then  # the gradient on the device too, when the lease has time for it
  timeout "$GRAD_S" python3 benchmarks/bench_gradient.py --durations 300000 --peer-durations 60000 \
      --steps 2 --json "$OUT/grad.json" 2>&1 | tee "$OUT/grad.log"
  echo "bench_gradient exit $?"
fi
