#!/usr/bin/env bash
# Issue 4's accuracy targets measured on a CPU (no GPU was lent to this project's sessions):
# a short search on 10k training images, then `nas train` of the best trial on all of them,
# with the shift augmentation (MNIST) / flip + shift (Fashion-MNIST, FER2013) a long retrain
# wants. The FER2013 retrain (60 epochs on 28,709 48x48 faces) is the longest part: 66 min
# alone. About 3 h on 2 cores in all (an estimate: the steps were timed in separate runs). Usage:
#   NAS_DATA_DIR=../shared/data bash benchmarks/cpu_retrain.sh [OUT_DIR]
# The figures and fronts it gave are in benchmarks/results/retrain-cpu-*.json.
set -euo pipefail
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
cd "$out"
search="nas search --space mobilenet --budget 50000 --limit-train 10000 --trials 20 --epochs 3 \
    --max-macs 3M --fill 0.9 --device cpu --no-progress --timeout 1500"
$search --dataset mnist --study mnist-50k
nas train runs/mnist-50k --best --epochs 40 --augment crop --device cpu
$search --dataset fashion-mnist --study fashion-50k
nas train runs/fashion-50k --best --epochs 60 --augment flip-crop --device cpu
$search --dataset fer2013 --study fer2013-50k
nas train runs/fer2013-50k --best --epochs 60 --augment flip-crop --device cpu
