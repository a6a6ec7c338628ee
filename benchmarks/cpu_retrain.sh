#!/usr/bin/env bash
# Issue 4's CPU stand-in figures (no GPU was lent): a short search, then `nas train` of one
# found net on every training image. Usage:
#   NAS_DATA_DIR=../shared/data bash benchmarks/cpu_retrain.sh [OUT_DIR]
# MNIST: trial 4 was retrained (not the best trial) because it is the cheapest good one
# on a CPU; Fashion-MNIST: the best trial.
set -euo pipefail
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
cd "$out"
nas search --space mobilenet --budget 50000 --dataset mnist --limit-train 10000 --trials 12 \
    --epochs 2 --max-macs 3M --device cpu --no-progress --study mnist-50k-cpu
nas train runs/mnist-50k-cpu --trial 4 --epochs 12 --device cpu
nas search --space mobilenet --budget 50000 --dataset fashion-mnist --limit-train 5000 \
    --trials 6 --epochs 2 --max-macs 2M --device cpu --no-progress --study fashion-50k-cpu
nas train runs/fashion-50k-cpu --best --epochs 10 --device cpu
