#!/usr/bin/env bash
# The training-throughput table of docs/performance.md on one CUDA GPU, in one command:
# TSM-ResNet50 through Lightning with the standard loader, the batch ring, decoding on the
# GPU, a preloaded batch and one copied into fresh shared memory each step, for
# RGB bf16 + channels-last at batch 64 (with profiler tables of one step of each run), RGB
# fp32 at batch 64, RGB bf16 at the published per-GPU batch (16: 64 over 4 GPUs), and flow
# bf16 at batch 64; nvJPEG's pixels against the CPU path's (device_decode_pixels.py); then
# page faults under `perf stat` (main process and workers) where perf exists.
# Meant to fit one device command (10 minutes); not run on a GPU yet (DRY_RUN=1 runs the
# same commands on the CPU). Outputs: $OUT (default benchmarks/out/gpu).
#
#     OUT=/tmp/gpu bash benchmarks/gpu_training_table.sh
#
# On a GPU machine with torch and Lightning but no internet and no epic-ar install:
#   here:  pip download --only-binary=:all: --python-version 3.12 \
#              --platform manylinux2014_x86_64 -d device_kit/wheels orjson simplejpeg
#          and copy jpeglib.h, jerror.h, jmorecfg.h and jconfig.h into device_kit/include;
#   there: pip install --no-index device_kit/wheels/*; link Pillow's bundled libjpeg-turbo
#          (pillow.libs/libjpeg-*.so.62*) as /tmp/jl/libjpeg.so; build the extension with
#          CFLAGS=-I$PWD/device_kit/include LDFLAGS="-L/tmp/jl -Wl,-rpath,<pillow.libs>"
#          python3 setup.py build_ext --inplace; then run this script with
#          PYTHON=python3 PYTHONPATH=src:benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/gpu}
PYTHON=${PYTHON:-.venv/bin/python}
WORKERS=${WORKERS:-14}
# DRY_RUN=1: the same commands on the CPU with tiny batches and two steps, to check the
# plumbing (arguments, outputs) before spending GPU time.
if [[ "${DRY_RUN:-0}" == 1 ]]; then
    ACCELERATOR=cpu DEVICE=cpu STEPS=2 WARMUP=1 WORKERS=1 TINY=2
else
    ACCELERATOR=gpu DEVICE=cuda STEPS=25 WARMUP=5 TINY=
fi
batch() { echo "${TINY:-$1}"; }
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
bench() { "$PYTHON" benchmarks/bench_training.py --accelerator "$ACCELERATOR" \
    --workers "$WORKERS" --steps "$STEPS" --warmup "$WARMUP" "$@"; }

bench --batch "$(batch 64)" --precision bf16-mixed --channels-last --repeats 2 \
    --profile "$OUT/profiles" | tee "$OUT/rgb_bf16_b64.txt"
bench --batch "$(batch 64)" --precision 32-true | tee "$OUT/rgb_fp32_b64.txt"
bench --batch "$(batch 16)" --precision bf16-mixed --channels-last | tee "$OUT/rgb_bf16_b16.txt"
bench --batch "$(batch 64)" --precision bf16-mixed --channels-last --modality flow \
    | tee "$OUT/flow_bf16_b64.txt"
"$PYTHON" benchmarks/device_decode_pixels.py --device "$DEVICE" | tee "$OUT/device_decode_pixels.txt"
if command -v perf >/dev/null; then
    for run in loader ring; do
        perf stat -e page-faults,minor-faults,major-faults -o "$OUT/perf_$run.txt" -- \
            "$PYTHON" benchmarks/bench_training.py --accelerator "$ACCELERATOR" \
            --workers "$WORKERS" --batch "$(batch 64)" --precision bf16-mixed \
            --channels-last --steps "$STEPS" --warmup "$WARMUP" --runs "$run" > /dev/null
    done
fi
echo "tables and profiles in $OUT"
