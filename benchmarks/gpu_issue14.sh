#!/usr/bin/env bash
# Issue 14's figures on a GPU, in one go: the fidelity benchmark (both scores on the same
# weights), then each target row: a search and `nas train` of its best net.
#   bash benchmarks/gpu_issue14.sh DATA_DIR OUT_DIR [rows...]     rows: fidelity mnist-8k mnist-50k fashion-50k
set -euo pipefail
data=${1:?data dir}; out=${2:?output dir}; shift 2
rows=${*:-fidelity mnist-8k mnist-50k fashion-50k}
export PYTHONUNBUFFERED=1
runs=$(mktemp -d)
t() { local start=$SECONDS; "$@"; echo "$((SECONDS - start)) s: $*"; }
nas() { python3 -m nas "$@"; }
for row in $rows; do
  case $row in
    fidelity)
      t python3 benchmarks/fidelity.py --data-dir "$data" --device cuda --nets 24 --retrain-epochs 15 \
        --json "$out/fidelity-gpu.json" ;;
    mnist-8k)
      t nas search --space cnn --budget 8000 --dataset mnist --data-dir "$data" --trials 60 --epochs 3 \
        --fill 0.8 --jobs 4 --runs-dir "$runs" --study mnist-8k --no-progress
      t nas train "$runs/mnist-8k" --best --epochs 40 --augment affine --data-dir "$data" ;;
    mnist-50k)
      t nas search --space mobilenet --budget 50000 --dataset mnist --data-dir "$data" --trials 60 \
        --epochs 3 --fill 0.8 --jobs 4 --runs-dir "$runs" --study mnist-50k --no-progress
      t nas train "$runs/mnist-50k" --best --epochs 40 --augment affine --data-dir "$data" ;;
    fashion-50k)
      t nas search --space mobilenet --budget 50000 --dataset fashion-mnist --data-dir "$data" --trials 60 \
        --epochs 3 --fill 0.8 --jobs 4 --runs-dir "$runs" --study fashion-50k --no-progress
      t nas train "$runs/fashion-50k" --best --epochs 60 --augment flip-crop --data-dir "$data" ;;
  esac
  [ -d "$runs/$row" ] && cp "$runs/$row/pareto.json" "$out/$row-pareto.json" \
    && cp "$runs/$row"/retrained/trial-*.json "$out/$row-retrained.json" || true
done
